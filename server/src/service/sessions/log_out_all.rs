//! Log out of all sessions (RevokeAllSessions), and the same cut-off written for the identity
//! system's reasons (password or factor changed, security reset), for DisableAccount and for
//! DeleteAccount. One write of the account's generation ends every covered session at once,
//! whatever their number; the sweep marks the rows afterwards. "All but one" keeps a named
//! session valid by moving it into the new generation under the same account lock, so the
//! validation read (session joined with its account) never sees one without the other, and a
//! cache that drops it by generation simply validates it again. A log-out that includes the
//! hidden kinds (asked for, or implied by the reason) raises their cut too.
//!
//! The transaction is O(1) in the account's sessions: it never counts or reads them under the
//! account lock (which on SQLite is the writer lock). How many sessions were logged out, and of
//! which products, the sweep records as it marks them: the revocation's `sessions_revoked` and
//! `products`, and the LOG_OUT_ALL history event's `session_count` once the sweep completes.
//! Only a `validate_only` preview counts, with nothing locked.

use super::{Sessions, reason_for};
use crate::domain::stored::StoredEnum as _;
use crate::service::ServiceError;
use crate::{
    clock::Timestamp,
    domain::{
        account::Account,
        history::{Actor, SecurityEvent, SecurityEventType},
        ids::{AccountId, RevocationId, SessionId, new_ulid},
        modes::{Effect, HiddenKinds, TrustedDevices},
        revocation::{Revocation, RevocationScope},
        session::{RevocationReason, Session},
        subject::Subject,
    },
    store::{accounts, generation_cuts, revocations, security_events, sessions, trusted_devices},
};

/// What RevokeAllSessions asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOutAllRequest {
    /// Write the log-out, or only report what it would do.
    pub effect: Effect,
    /// What happens to the account's trusted devices.
    pub trusted_devices: TrustedDevices,
    /// Why, when the identity system or an operator says; `None` for the owner's log-out of all
    /// (or an operator's, recorded as OPERATOR).
    pub reason: Option<RevocationReason>,
    /// A session to keep valid ("log out of all other sessions").
    pub keep_session: Option<SessionId>,
    /// Whether the hidden kinds end too (reasons that ask for it imply it).
    pub hidden_kinds: HiddenKinds,
}

/// How [`Sessions::write_log_out_all`] writes a log-out of all, inside a transaction holding
/// the account lock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogOutAllPlan<'a> {
    /// Why.
    pub reason: RevocationReason,
    /// Also end the hidden kinds.
    pub include_hidden: bool,
    /// The session kept valid, if any (active, of this account).
    pub kept: Option<&'a Session>,
    /// What happens to the account's trusted devices.
    pub trusted_devices: TrustedDevices,
    /// Who marks the covered sessions.
    pub completion: Completion,
    /// Who acts.
    pub actor: &'a Actor,
    /// When (read once the lock is held).
    pub now: Timestamp,
}

impl<'a> LogOutAllPlan<'a> {
    /// Every session of every kind, trust left alone: what disabling and deleting write.
    pub fn whole_account(
        reason: RevocationReason,
        completion: Completion,
        actor: &'a Actor,
        now: Timestamp,
    ) -> Self {
        Self {
            reason,
            include_hidden: true,
            kept: None,
            trusted_devices: TrustedDevices::Keep,
            completion,
            actor,
            now,
        }
    }
}

/// Who finishes a log-out of all's work on the session rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Completion {
    /// The sweep marks the covered sessions and records their count and products.
    BySweep,
    /// The caller erases the sessions itself (a deletion): the revocation is complete at once.
    Immediate,
}

impl Sessions {
    /// Logs out every session of the account, or every session but one (RevokeAllSessions).
    pub async fn revoke_all(
        &self,
        subject: &Subject,
        request: &LogOutAllRequest,
        actor: &Actor,
    ) -> Result<Revocation, ServiceError> {
        let owner = self.eligible_owner(subject).await?;
        if request.effect == Effect::Preview {
            return self
                .preview_log_out_all(&owner.account_id, request, actor)
                .await;
        }
        let txn = self.inner.store.write().await?;
        let mut account =
            accounts::lock_or_create(&*txn, &owner.account_id, self.inner.clock.now()).await?;
        // The generation is read once the account lock is held, so every registration ordered
        // before this log-out by the lock is born below its cut, and every later one at it.
        let now = self.inner.clock.now();
        let reason = request
            .reason
            .unwrap_or_else(|| reason_for(actor, RevocationReason::UserLogOutAll));
        let kept = self
            .kept_session(&*txn, &account, request.keep_session, now)
            .await?;
        let revocation = self
            .write_log_out_all(
                &*txn,
                &mut account,
                LogOutAllPlan {
                    reason,
                    include_hidden: request.hidden_kinds == HiddenKinds::End
                        || reason.ends_hidden_kinds(),
                    kept: kept.as_ref(),
                    trusted_devices: request.trusted_devices,
                    completion: Completion::BySweep,
                    actor,
                    now,
                },
            )
            .await?;
        txn.commit().await?;
        self.after_log_out_all(&revocation);
        tracing::info!(
            account_id = %owner.account_id,
            revocation_id = %revocation.revocation_id,
            reason = reason.as_str(),
            hidden_kinds = revocation.includes_hidden_kinds,
            kept = revocation.kept_session_id.is_some(),
            "logged out of all sessions"
        );
        Ok(revocation)
    }

    /// What a log-out of all would cover, read without locking anything: the revocation it
    /// would record, with the count and products of the sessions it would end and no id.
    async fn preview_log_out_all(
        &self,
        account_id: &AccountId,
        request: &LogOutAllRequest,
        actor: &Actor,
    ) -> Result<Revocation, ServiceError> {
        let reader = self.inner.store.reader();
        let now = self.inner.clock.now();
        let account = accounts::find(reader, account_id)
            .await?
            .unwrap_or_else(|| Account::first_seen(account_id.clone(), now));
        let kept = self
            .kept_session(reader, &account, request.keep_session, now)
            .await?;
        let reason = request
            .reason
            .unwrap_or_else(|| reason_for(actor, RevocationReason::UserLogOutAll));
        let include_hidden = request.hidden_kinds == HiddenKinds::End || reason.ends_hidden_kinds();
        let cut_generation = account.revoked_generation.saturating_add(1);
        let mut covered =
            generation_cuts::count_before(reader, account_id, cut_generation, include_hidden)
                .await?;
        if kept
            .as_ref()
            .is_some_and(|kept| include_hidden || kept.client_kind.is_visible())
        {
            covered = covered.saturating_sub(1);
        }
        let mut revocation = self.log_out_all_revocation(
            &account,
            reason,
            include_hidden,
            kept.as_ref(),
            actor,
            now,
        );
        revocation.products =
            generation_cuts::products_before(reader, account_id, cut_generation, include_hidden)
                .await?;
        revocation.sessions_revoked = i64::try_from(covered).unwrap_or(i64::MAX);
        Ok(revocation)
    }

    /// The session a log-out of "all but one" keeps: it must be an active session of this
    /// account.
    async fn kept_session(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
        account: &Account,
        keep_session: Option<SessionId>,
        now: Timestamp,
    ) -> Result<Option<Session>, ServiceError> {
        let Some(session_id) = keep_session else {
            return Ok(None);
        };
        let kept = sessions::find(conn, session_id)
            .await?
            .filter(|session| {
                session.account_id == account.account_id
                    && session.is_active(now, self.idle_timeout(), account.generation_cut())
            })
            .ok_or(ServiceError::NotFound("session"))?;
        Ok(Some(kept))
    }

    /// The revocation a log-out of all records, before any session is counted.
    fn log_out_all_revocation(
        &self,
        account: &Account,
        reason: RevocationReason,
        include_hidden: bool,
        kept: Option<&Session>,
        actor: &Actor,
        now: Timestamp,
    ) -> Revocation {
        // For display only: the instant shown as the cut-off never moves back, even when this
        // replica's clock is behind the one that wrote the previous cut-off.
        let revoked_before = account.revoked_before.map_or(now, |old| old.max(now));
        Revocation {
            revocation_id: RevocationId::from_ulid(new_ulid(now)),
            seq: 0,
            account_id: account.account_id.clone(),
            scope: RevocationScope::All,
            reason,
            device_id: None,
            session_ids: Vec::new(),
            products: Vec::new(),
            effective_at: now,
            revoked_before: Some(revoked_before),
            cut_generation: Some(account.revoked_generation.saturating_add(1)),
            trust_removed: false,
            sessions_revoked: 0,
            completed_at: None,
            actor: actor.to_stored(),
            includes_hidden_kinds: include_hidden,
            kept_session_id: kept.map(|kept| kept.session_id),
        }
    }

    /// Writes a log-out of all inside the caller's transaction, which holds the account lock:
    /// raises the account's generation (and the hidden kinds' cut when asked), moves the kept
    /// session into the new generation, removes trust when asked, appends the revocation and the
    /// history. A constant number of statements whatever the account holds. The caller commits,
    /// then calls [`after_log_out_all`](Self::after_log_out_all).
    pub(crate) async fn write_log_out_all(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
        account: &mut Account,
        plan: LogOutAllPlan<'_>,
    ) -> Result<Revocation, ServiceError> {
        let LogOutAllPlan {
            reason,
            include_hidden,
            kept,
            trusted_devices,
            completion,
            actor,
            now,
        } = plan;
        let account_id = account.account_id.clone();
        let mut revocation =
            self.log_out_all_revocation(account, reason, include_hidden, kept, actor, now);
        let cut_generation = account.revoked_generation.saturating_add(1);
        if completion == Completion::Immediate {
            revocation.completed_at = Some(now);
        }
        revocation.seq = revocations::next_seq(conn).await?;
        account.revoked_before = revocation.revoked_before;
        account.revoked_generation = cut_generation;
        if include_hidden {
            account.hidden_cut_generation = cut_generation;
        }
        account.updated_at = now;
        accounts::update(conn, account).await?;
        if let Some(kept) = kept {
            generation_cuts::restamp_generation(conn, kept.session_id, cut_generation).await?;
        }
        let untrusted = if trusted_devices == TrustedDevices::Remove {
            trusted_devices::remove_all(conn, &account_id, now).await?
        } else {
            Vec::new()
        };
        revocation.trust_removed = !untrusted.is_empty();
        revocations::insert(conn, &revocation).await?;
        let mut event =
            SecurityEvent::new(account_id.clone(), SecurityEventType::LogOutAll, now, actor);
        if let Some(kept) = kept {
            // The kept session is the one the history describes: "every session but this one".
            event = event.about_session(kept);
        }
        event.revocation_id = Some(revocation.revocation_id);
        // The sweep writes the count when it completes.
        event.reason = Some(reason);
        security_events::insert(conn, &event).await?;
        for device_id in untrusted {
            let mut event = SecurityEvent::new(
                account_id.clone(),
                SecurityEventType::DeviceTrustRemoved,
                now,
                actor,
            );
            event.device_id = Some(device_id);
            event.revocation_id = Some(revocation.revocation_id);
            security_events::insert(conn, &event).await?;
        }
        Ok(revocation)
    }

    /// Ends every session of every kind, trust left alone (disabling and deleting), inside the
    /// caller's transaction holding the account lock; returns the revocation and its instant.
    pub(crate) async fn end_whole_account(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
        account: &mut Account,
        reason: RevocationReason,
        completion: Completion,
        actor: &Actor,
    ) -> Result<(Revocation, Timestamp), ServiceError> {
        let now = self.inner.clock.now();
        let plan = LogOutAllPlan::whole_account(reason, completion, actor, now);
        Ok((self.write_log_out_all(conn, account, plan).await?, now))
    }

    /// After a log-out of all commits: caches forget the account, the feed and the sweep wake.
    pub(crate) fn after_log_out_all(&self, revocation: &Revocation) {
        self.after_revocation(revocation);
        self.inner.sweep_wake.notify_one();
    }
}
