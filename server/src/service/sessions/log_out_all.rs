//! Log out of all sessions (RevokeAllSessions), and the same cut-off written for the identity
//! system's reasons (password or factor changed, security reset), for DisableAccount and for
//! DeleteAccount. One write of the account's generation ends every covered session at once,
//! whatever their number; the sweep marks the rows afterwards. "All but one" keeps a named
//! session valid by moving it into the new generation under the same account lock, so the
//! validation read (session joined with its account) never sees one without the other, and a
//! cache that drops it by generation simply validates it again. A log-out that includes the
//! hidden kinds (asked for, or implied by the reason) raises their cut too.

use super::{Sessions, reason_for};
use crate::service::ServiceError;
use crate::{
    clock::Timestamp,
    domain::{
        account::Account,
        history::{Actor, SecurityEvent, SecurityEventType},
        ids::{RevocationId, SessionId, new_ulid},
        revocation::{Revocation, RevocationScope},
        session::{RevocationReason, Session},
        subject::Subject,
    },
    store::{accounts, generation_cuts, revocations, security_events, sessions, trusted_devices},
};

/// What RevokeAllSessions asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOutAllRequest {
    /// Only report what the call would do.
    pub validate_only: bool,
    /// Also remove every trusted device.
    pub remove_trusted_devices: bool,
    /// Why, when the identity system or an operator says; `None` for the owner's log-out of all
    /// (or an operator's, recorded as OPERATOR).
    pub reason: Option<RevocationReason>,
    /// A session to keep valid ("log out of all other sessions").
    pub keep_session: Option<SessionId>,
    /// Also end the hidden kinds (implied by reasons that ask for it).
    pub include_hidden_kinds: bool,
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
    /// Also remove every trusted device.
    pub remove_trusted_devices: bool,
    /// The caller erases the sessions itself (a deletion): no sweep is needed.
    pub complete_now: bool,
    /// Only compute what it would cover; write nothing.
    pub validate_only: bool,
    /// Who acts.
    pub actor: &'a Actor,
    /// When (read once the lock is held).
    pub now: Timestamp,
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
        let txn = self.inner.store.write().await?;
        let mut account =
            accounts::lock_or_create(&*txn, &owner.account_id, self.inner.clock.now()).await?;
        // The generation is read once the account lock is held, so every registration ordered
        // before this log-out by the lock is born below its cut, and every later one at it.
        let now = self.inner.clock.now();
        let reason = request
            .reason
            .unwrap_or_else(|| reason_for(actor, RevocationReason::UserLogOutAll));
        let kept = match request.keep_session {
            None => None,
            Some(session_id) => Some(
                sessions::find(&*txn, session_id)
                    .await?
                    .filter(|session| {
                        session.account_id == owner.account_id
                            && session.is_active(now, self.idle_timeout(), account.generation_cut())
                    })
                    .ok_or(ServiceError::NotFound("session"))?,
            ),
        };
        let revocation = self
            .write_log_out_all(
                &*txn,
                &mut account,
                LogOutAllPlan {
                    reason,
                    include_hidden: request.include_hidden_kinds || reason.ends_hidden_kinds(),
                    kept: kept.as_ref(),
                    remove_trusted_devices: request.remove_trusted_devices,
                    complete_now: false,
                    validate_only: request.validate_only,
                    actor,
                    now,
                },
            )
            .await?;
        if request.validate_only {
            return Ok(revocation);
        }
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

    /// Writes a log-out of all inside the caller's transaction, which holds the account lock:
    /// raises the account's generation (and the hidden kinds' cut when asked), moves the kept
    /// session into the new generation, removes trust when asked, appends the revocation and the
    /// history. With `validate_only` it writes nothing and reports what it would cover. The
    /// caller commits, then calls [`after_log_out_all`](Self::after_log_out_all).
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
            remove_trusted_devices,
            complete_now,
            validate_only,
            actor,
            now,
        } = plan;
        let account_id = account.account_id.clone();
        let cut_generation = account.revoked_generation.saturating_add(1);
        // For display only: the instant shown as the cut-off never moves back, even when this
        // replica's clock is behind the one that wrote the previous cut-off.
        let revoked_before = account.revoked_before.map_or(now, |old| old.max(now));
        let products =
            generation_cuts::products_before(conn, &account_id, cut_generation, include_hidden)
                .await?;
        let mut covered =
            generation_cuts::count_before(conn, &account_id, cut_generation, include_hidden)
                .await?;
        if kept.is_some_and(|kept| include_hidden || kept.client_kind.is_visible()) {
            covered = covered.saturating_sub(1);
        }
        let mut revocation = Revocation {
            revocation_id: RevocationId::from_ulid(new_ulid(now)),
            seq: 0,
            account_id: account_id.clone(),
            scope: RevocationScope::All,
            reason,
            device_id: None,
            session_ids: Vec::new(),
            products,
            effective_at: now,
            revoked_before: Some(revoked_before),
            cut_generation: Some(cut_generation),
            trust_removed: false,
            sessions_revoked: 0,
            completed_at: (covered == 0 || complete_now).then_some(now),
            actor: actor.to_stored(),
            includes_hidden_kinds: include_hidden,
            kept_session_id: kept.map(|kept| kept.session_id),
        };
        if validate_only {
            revocation.sessions_revoked = i64::try_from(covered).unwrap_or(i64::MAX);
            return Ok(revocation);
        }
        revocation.seq = revocations::next_seq(conn).await?;
        account.revoked_before = Some(revoked_before);
        account.revoked_generation = cut_generation;
        if include_hidden {
            account.hidden_cut_generation = cut_generation;
        }
        account.updated_at = now;
        accounts::update(conn, account).await?;
        if let Some(kept) = kept {
            generation_cuts::restamp_generation(conn, kept.session_id, cut_generation).await?;
        }
        let untrusted = if remove_trusted_devices {
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
        event.session_count = i64::try_from(covered).unwrap_or(i64::MAX);
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

    /// After a log-out of all commits: caches forget the account, the feed and the sweep wake.
    pub(crate) fn after_log_out_all(&self, revocation: &Revocation) {
        self.after_revocation(revocation);
        self.inner.sweep_wake.notify_one();
    }
}
