//! The identity system's account lifecycle: DisableAccount, EnableAccount and DeleteAccount.
//! Disabling writes a log-out of all (reason ACCOUNT_DISABLED, hidden kinds included) and marks
//! the account under its lock, so every session is invalid at once and registration, which
//! takes the same lock, is refused from then on. Deleting first writes the same cut-off (reason
//! ACCOUNT_DELETED) and marks the account as being deleted, in one short transaction; then it
//! erases the account's sessions (with their idempotency records), trusted devices, security
//! events and earlier revocations in bounded batches, one short transaction each, and finally
//! the account row. The deletion's revocation stays on the revocation log so caches drop the
//! sessions; it names only ids. An interrupted deletion is finished by a retry or by the
//! pruner, which leaves a deletion begun less than [`DELETION_GRACE`] ago to the call making it
//! (so the counts a DeleteAccount answers are all its own).

use super::{Sessions, log_out_all::Completion};
use crate::domain::{
    account::Account,
    history::{Actor, SecurityEvent, SecurityEventType},
    ids::{AccountId, RevocationId},
    revocation::Revocation,
    session::RevocationReason,
};
use crate::service::ServiceError;
use crate::store::{accounts, erasure, security_events, sessions};

/// Rows erased per transaction by a deletion.
const ERASE_BATCH: u64 = 1_000;

/// How long after a deletion began the pruner takes it for interrupted and finishes it.
pub const DELETION_GRACE: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// The tables a deletion erases before the account row.
#[derive(Debug, Clone, Copy)]
enum Erased {
    Sessions,
    TrustedDevices,
    SecurityEvents,
    Revocations,
}

/// What DeleteAccount erased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erasure {
    /// False when nothing was stored about the account.
    pub existed: bool,
    /// The revocation left on the stream.
    pub revocation_id: Option<RevocationId>,
    /// Session rows erased.
    pub sessions: u64,
    /// Trusted devices erased.
    pub trusted_devices: u64,
    /// Security events erased.
    pub security_events: u64,
    /// Earlier revocations of the account erased from the log.
    pub revocations: u64,
}

impl Sessions {
    /// Disables the account: ends every session of every kind and refuses sign-ins until
    /// [`enable_account`](Self::enable_account). Returns the account and, unless it was
    /// already disabled, the revocation.
    pub async fn disable_account(
        &self,
        account_id: &AccountId,
        actor: &Actor,
    ) -> Result<(Account, Option<Revocation>), ServiceError> {
        let txn = self.inner.store.write().await?;
        let mut account =
            accounts::lock_or_create(&*txn, account_id, self.inner.clock.now()).await?;
        if account.is_disabled() {
            return Ok((account, None));
        }
        let (revocation, now) = self
            .end_whole_account(
                &*txn,
                &mut account,
                RevocationReason::AccountDisabled,
                Completion::BySweep,
                actor,
            )
            .await?;
        account.disabled_at = Some(now);
        accounts::update(&*txn, &account).await?;
        let mut event = SecurityEvent::new(
            account_id.clone(),
            SecurityEventType::AccountDisabled,
            now,
            actor,
        );
        event.revocation_id = Some(revocation.revocation_id);
        event.reason = Some(RevocationReason::AccountDisabled);
        security_events::insert(&*txn, &event).await?;
        txn.commit().await?;
        self.after_log_out_all(&revocation);
        tracing::info!(account_id = %account_id, revocation_id = %revocation.revocation_id, "account disabled");
        Ok((account, Some(revocation)))
    }

    /// Enables a disabled account: sign-ins are accepted again (the sessions the disable ended
    /// stay ended). An account being deleted stays refused.
    pub async fn enable_account(
        &self,
        account_id: &AccountId,
        actor: &Actor,
    ) -> Result<Account, ServiceError> {
        let txn = self.inner.store.write().await?;
        let mut account =
            accounts::lock_or_create(&*txn, account_id, self.inner.clock.now()).await?;
        if account.deleted_at.is_some() {
            return Err(ServiceError::AccountDisabled);
        }
        if account.disabled_at.is_none() {
            return Ok(account);
        }
        let now = self.inner.clock.now();
        account.disabled_at = None;
        account.updated_at = now;
        accounts::update(&*txn, &account).await?;
        let event = SecurityEvent::new(
            account_id.clone(),
            SecurityEventType::AccountEnabled,
            now,
            actor,
        );
        security_events::insert(&*txn, &event).await?;
        txn.commit().await?;
        tracing::info!(account_id = %account_id, "account enabled");
        Ok(account)
    }

    /// Deletes everything stored about the account (DeleteAccount); see the module comment.
    pub async fn delete_account(
        &self,
        account_id: &AccountId,
        actor: &Actor,
    ) -> Result<Erasure, ServiceError> {
        let txn = self.inner.store.write().await?;
        let Some(mut account) = accounts::lock(&*txn, account_id).await? else {
            return Ok(Erasure::default());
        };
        let revocation_id = if account.deleted_at.is_some() {
            // A retry of an interrupted deletion: finish it.
            let id = erasure::deletion_revocation(&*txn, account_id).await?;
            drop(txn);
            id
        } else {
            let (revocation, now) = self
                .end_whole_account(
                    &*txn,
                    &mut account,
                    RevocationReason::AccountDeleted,
                    Completion::Immediate,
                    actor,
                )
                .await?;
            account.deleted_at = Some(now);
            accounts::update(&*txn, &account).await?;
            txn.commit().await?;
            self.after_log_out_all(&revocation);
            Some(revocation.revocation_id)
        };
        let erased = self.erase_account(account_id, revocation_id).await?;
        tracing::info!(
            account_id = %account_id,
            sessions = erased.sessions,
            trusted_devices = erased.trusted_devices,
            security_events = erased.security_events,
            "account deleted"
        );
        Ok(erased)
    }

    /// Erases an account marked as being deleted, batch by batch, then its row. Safe to run
    /// twice at once (each batch deletes what is there) and to resume.
    pub(crate) async fn erase_account(
        &self,
        account_id: &AccountId,
        keep: Option<RevocationId>,
    ) -> Result<Erasure, ServiceError> {
        let mut erased = Erasure {
            existed: true,
            revocation_id: keep,
            ..Erasure::default()
        };
        loop {
            erased.sessions += self.erase_all(account_id, keep, Erased::Sessions).await?;
            erased.trusted_devices += self
                .erase_all(account_id, keep, Erased::TrustedDevices)
                .await?;
            erased.security_events += self
                .erase_all(account_id, keep, Erased::SecurityEvents)
                .await?;
            erased.revocations += self
                .erase_all(account_id, keep, Erased::Revocations)
                .await?;
            // The row goes last, under its lock, once nothing of the account is left; the
            // registrations it refused could not add anything meanwhile.
            let txn = self.inner.store.write().await?;
            if accounts::lock(&*txn, account_id).await?.is_none() {
                return Ok(erased);
            }
            if sessions::any_for_account(&*txn, account_id).await? {
                continue;
            }
            accounts::delete(&*txn, account_id).await?;
            txn.commit().await?;
            return Ok(erased);
        }
    }

    /// Erases one table's rows of the account, a batch per transaction, until none is left;
    /// returns how many.
    async fn erase_all(
        &self,
        account_id: &AccountId,
        keep: Option<RevocationId>,
        table: Erased,
    ) -> Result<u64, ServiceError> {
        let mut total = 0;
        loop {
            let txn = self.inner.store.write().await?;
            let deleted = match table {
                Erased::Sessions => erasure::sessions(&*txn, account_id, ERASE_BATCH).await?,
                Erased::TrustedDevices => {
                    erasure::trusted_devices(&*txn, account_id, ERASE_BATCH).await?
                }
                Erased::SecurityEvents => {
                    erasure::security_events(&*txn, account_id, ERASE_BATCH).await?
                }
                Erased::Revocations => {
                    erasure::revocations(&*txn, account_id, keep, ERASE_BATCH).await?
                }
            };
            txn.commit().await?;
            total += deleted;
            if deleted == 0 {
                return Ok(total);
            }
        }
    }

    /// Finishes deletions that were interrupted (a crash, a lost connection): the pruner calls
    /// this on every round. A deletion begun less than [`DELETION_GRACE`] ago is left to the
    /// call making it. Returns how many accounts it finished.
    pub async fn finish_pending_deletions(&self) -> Result<u64, ServiceError> {
        let begun_before = self.inner.clock.now().minus(DELETION_GRACE);
        let pending =
            accounts::pending_deletions(self.inner.store.reader(), begun_before, 16).await?;
        let mut finished = 0;
        for account_id in pending {
            let keep = erasure::deletion_revocation(self.inner.store.reader(), &account_id).await?;
            self.erase_account(&account_id, keep).await?;
            finished += 1;
        }
        Ok(finished)
    }
}
