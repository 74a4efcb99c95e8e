//! Log-outs: one row (every session on a device), one session, or all sessions of the account.
//! Each is one transaction that marks the sessions (or writes the account's cut-off), removes
//! trust where it must, appends to the revocation log and the security history; the validation
//! cache is invalidated after commit and before the call returns, so once a log-out has
//! returned OK no validation on this server reports those sessions valid.

use super::Sessions;
use crate::{
    domain::{
        DomainError,
        history::{Actor, SecurityEvent, SecurityEventType},
        ids::{DeviceId, RevocationId, SessionId, new_ulid},
        revocation::{Revocation, RevocationScope},
        session::{Product, RevocationReason, Session, SessionStatus},
        subject::{Owner, Subject},
    },
    store::{accounts, revocations, security_events, sessions, trusted_devices},
};

/// What RevokeSession logs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeTarget {
    /// A row: every active session on the device.
    Device(DeviceId),
    /// One session.
    Session(SessionId),
}

/// What a log-out did, or would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// Sessions were logged out.
    LoggedOut,
    /// Sessions were logged out and the device's trust removed.
    LoggedOutAndRemoved,
    /// Nothing was active there; nothing changed.
    AlreadyLoggedOut,
}

/// The result of RevokeSession.
#[derive(Debug, Clone)]
pub struct RevokeResult {
    /// What happened (or would).
    pub outcome: RevokeOutcome,
    /// The sessions logged out (or that would be).
    pub session_ids: Vec<SessionId>,
    /// Their products.
    pub products: Vec<Product>,
    /// Whether trust was (or would be) removed.
    pub trust_removed: bool,
    /// The recorded revocation (not with validate_only, nor when nothing changed).
    pub revocation: Option<Revocation>,
}

/// How [`Sessions::record_log_out`] records a log-out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogOut<'a> {
    /// Session or device.
    pub scope: RevocationScope,
    /// The reason when the owner acts (operators' log-outs say so instead).
    pub owner_reason: RevocationReason,
    /// Also remove the device's trust.
    pub remove_trust: bool,
    /// Who acts.
    pub actor: &'a Actor,
    /// When.
    pub now: crate::clock::Timestamp,
}

impl Sessions {
    /// Logs out one row or one session (RevokeSession).
    pub async fn revoke(
        &self,
        subject: &Subject,
        target: &RevokeTarget,
        validate_only: bool,
        actor: &Actor,
    ) -> Result<RevokeResult, DomainError> {
        let owner = self.eligible_owner(subject).await?;
        let txn = self.inner.store.write().await?;
        let account = accounts::lock(&*txn, &owner.account_id)
            .await?
            .ok_or(DomainError::NotFound("session"))?;
        // Read once the account lock is held: see `register`.
        let now = self.inner.clock.now();

        let candidates = self.revocation_candidates(&*txn, &owner, target).await?;
        let active: Vec<Session> = candidates
            .into_iter()
            .filter(|s| s.is_active(now, self.idle_timeout(), account.revoked_before))
            .collect();
        if active.is_empty() {
            return Ok(RevokeResult {
                outcome: RevokeOutcome::AlreadyLoggedOut,
                session_ids: Vec::new(),
                products: Vec::new(),
                trust_removed: false,
                revocation: None,
            });
        }
        // The current row is one row (S8): every session on the current session's device
        // belongs to it, whichever product, and whether named by device or by session id.
        let current_row = owner
            .current_device
            .as_ref()
            .is_some_and(|current| active.iter().any(|s| &s.device_id == current));
        if current_row {
            return Err(DomainError::CurrentSession);
        }
        if active
            .iter()
            .any(|s| s.status == SessionStatus::Unavailable)
        {
            return Err(DomainError::StatusUnavailable);
        }
        let device_id = active[0].device_id.clone();
        let remove_trust = matches!(target, RevokeTarget::Device(_))
            && !trusted_devices::trusted_among(
                &*txn,
                &owner.account_id,
                std::slice::from_ref(&device_id),
                now,
            )
            .await?
            .is_empty();
        let session_ids: Vec<SessionId> = active.iter().map(|s| s.session_id).collect();
        let mut products: Vec<Product> = active.iter().map(|s| s.product).collect();
        products.sort();
        products.dedup();
        let outcome = if remove_trust {
            RevokeOutcome::LoggedOutAndRemoved
        } else {
            RevokeOutcome::LoggedOut
        };
        if validate_only {
            return Ok(RevokeResult {
                outcome,
                session_ids,
                products,
                trust_removed: remove_trust,
                revocation: None,
            });
        }

        let scope = match target {
            RevokeTarget::Device(_) => RevocationScope::Device,
            RevokeTarget::Session(_) => RevocationScope::Session,
        };
        let revocation = self
            .record_log_out(
                &*txn,
                &active,
                LogOut {
                    scope,
                    owner_reason: RevocationReason::UserLogOut,
                    remove_trust,
                    actor,
                    now,
                },
            )
            .await?;
        txn.commit().await?;
        self.after_revocation(&revocation);
        tracing::info!(
            account_id = %owner.account_id,
            revocation_id = %revocation.revocation_id,
            sessions = session_ids.len(),
            trust_removed = remove_trust,
            "sessions logged out"
        );
        Ok(RevokeResult {
            outcome,
            session_ids,
            products,
            trust_removed: remove_trust,
            revocation: Some(revocation),
        })
    }

    /// Writes a log-out of `active` (non-empty sessions of one account, on one device) inside
    /// the caller's transaction, for `owner_reason` (operators' log-outs say so instead): marks
    /// the sessions, removes the device's trust when asked,
    /// appends the revocation and the history. The caller commits, then calls
    /// [`after_revocation`](Self::after_revocation).
    pub(crate) async fn record_log_out(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
        active: &[Session],
        log_out: LogOut<'_>,
    ) -> Result<Revocation, DomainError> {
        let LogOut {
            scope,
            owner_reason,
            remove_trust,
            actor,
            now,
        } = log_out;
        let first = active.first().ok_or(DomainError::NotFound("session"))?;
        let session_ids: Vec<SessionId> = active.iter().map(|s| s.session_id).collect();
        let mut products: Vec<Product> = active.iter().map(|s| s.product).collect();
        products.sort();
        products.dedup();
        let revocation = Revocation {
            revocation_id: RevocationId::from_ulid(new_ulid(now)),
            seq: revocations::next_seq(conn).await?,
            account_id: first.account_id.clone(),
            scope,
            reason: reason_for(actor, owner_reason),
            device_id: Some(first.device_id.clone()),
            session_ids: session_ids.clone(),
            products,
            effective_at: now,
            revoked_before: None,
            trust_removed: remove_trust,
            sessions_revoked: i64::try_from(session_ids.len()).unwrap_or(i64::MAX),
            completed_at: Some(now),
            actor: actor.to_stored(),
        };
        sessions::mark_revoked(
            conn,
            &session_ids,
            now,
            revocation.reason,
            revocation.revocation_id,
        )
        .await?;
        if remove_trust {
            trusted_devices::remove(conn, &first.account_id, &first.device_id, now).await?;
        }
        revocations::insert(conn, &revocation).await?;
        let mut event = SecurityEvent::new(
            first.account_id.clone(),
            SecurityEventType::LogOut,
            now,
            actor,
        )
        .about_device(first);
        if let [only] = active {
            event = event.about_session(only);
        }
        event.revocation_id = Some(revocation.revocation_id);
        event.session_count = revocation.sessions_revoked;
        security_events::insert(conn, &event).await?;
        if remove_trust {
            let event = SecurityEvent::new(
                first.account_id.clone(),
                SecurityEventType::DeviceTrustRemoved,
                now,
                actor,
            )
            .about_device(first);
            security_events::insert(conn, &event).await?;
        }
        Ok(revocation)
    }

    /// The visible sessions a target names on the owner's account. Another account's session,
    /// a hidden kind, or a device never seen is NOT_FOUND, all alike.
    async fn revocation_candidates(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
        owner: &Owner,
        target: &RevokeTarget,
    ) -> Result<Vec<Session>, DomainError> {
        let candidates = match target {
            RevokeTarget::Device(device_id) => {
                sessions::visible_on_device(conn, &owner.account_id, device_id).await?
            }
            RevokeTarget::Session(session_id) => sessions::find(conn, *session_id)
                .await?
                .filter(|s| s.account_id == owner.account_id && s.client_kind.is_visible())
                .into_iter()
                .collect(),
        };
        if candidates.is_empty() {
            return Err(DomainError::NotFound("session"));
        }
        Ok(candidates)
    }

    /// Logs out every session of the account (RevokeAllSessions): one write of the cut-off
    /// makes them invalid at once; the sweep marks the rows afterwards.
    pub async fn revoke_all(
        &self,
        subject: &Subject,
        validate_only: bool,
        remove_trusted_devices: bool,
        actor: &Actor,
    ) -> Result<Revocation, DomainError> {
        let owner = self.eligible_owner(subject).await?;
        let txn = self.inner.store.write().await?;
        let mut account =
            accounts::lock_or_create(&*txn, &owner.account_id, self.inner.clock.now()).await?;
        // The cut-off is read once the account lock is held, so every registration ordered
        // before this log-out by the lock is also before its cut-off.
        let now = self.inner.clock.now();
        let products = sessions::products_before(&*txn, &owner.account_id, now).await?;
        let to_sweep = sessions::count_before(&*txn, &owner.account_id, now).await?;
        let mut revocation = Revocation {
            revocation_id: RevocationId::from_ulid(new_ulid(now)),
            seq: 0,
            account_id: owner.account_id.clone(),
            scope: RevocationScope::All,
            reason: reason_for(actor, RevocationReason::UserLogOutAll),
            device_id: None,
            session_ids: Vec::new(),
            products,
            effective_at: now,
            revoked_before: Some(now),
            trust_removed: false,
            sessions_revoked: 0,
            completed_at: (to_sweep == 0).then_some(now),
            actor: actor.to_stored(),
        };
        if validate_only {
            revocation.sessions_revoked = i64::try_from(to_sweep).unwrap_or(i64::MAX);
            return Ok(revocation);
        }
        revocation.seq = revocations::next_seq(&*txn).await?;
        account.revoked_before = Some(now);
        account.updated_at = now;
        accounts::update(&*txn, &account).await?;
        let untrusted = if remove_trusted_devices {
            trusted_devices::remove_all(&*txn, &owner.account_id, now).await?
        } else {
            Vec::new()
        };
        revocation.trust_removed = !untrusted.is_empty();
        revocations::insert(&*txn, &revocation).await?;
        let mut event = SecurityEvent::new(
            owner.account_id.clone(),
            SecurityEventType::LogOutAll,
            now,
            actor,
        );
        event.revocation_id = Some(revocation.revocation_id);
        event.session_count = i64::try_from(to_sweep).unwrap_or(i64::MAX);
        security_events::insert(&*txn, &event).await?;
        for device_id in untrusted {
            let mut event = SecurityEvent::new(
                owner.account_id.clone(),
                SecurityEventType::DeviceTrustRemoved,
                now,
                actor,
            );
            event.device_id = Some(device_id);
            event.revocation_id = Some(revocation.revocation_id);
            security_events::insert(&*txn, &event).await?;
        }
        txn.commit().await?;
        self.after_revocation(&revocation);
        self.inner.sweep_wake.notify_one();
        tracing::info!(
            account_id = %owner.account_id,
            revocation_id = %revocation.revocation_id,
            sessions = to_sweep,
            "logged out of all sessions"
        );
        Ok(revocation)
    }

    /// A revocation of the owner's account, with its progress (GetRevocation).
    pub async fn get_revocation(
        &self,
        subject: &Subject,
        revocation_id: RevocationId,
    ) -> Result<Revocation, DomainError> {
        let owner = self.eligible_owner(subject).await?;
        revocations::find(self.inner.store.reader(), revocation_id)
            .await?
            .filter(|r| r.account_id == owner.account_id)
            .ok_or(DomainError::NotFound("revocation"))
    }

    /// After commit: forget cached validations the revocation covers and wake the feed.
    pub(crate) fn after_revocation(&self, revocation: &Revocation) {
        if revocation.sessions_revoked > 0 {
            crate::telemetry::metrics::metrics().sessions_revoked.add(
                u64::try_from(revocation.sessions_revoked).unwrap_or(0),
                &crate::telemetry::metrics::attribute("scope", revocation.scope.as_str()),
            );
        }
        match revocation.scope {
            RevocationScope::All => self.inner.cache.invalidate_account(&revocation.account_id),
            RevocationScope::Session | RevocationScope::Device => {
                self.inner
                    .cache
                    .invalidate_sessions(&revocation.session_ids);
            }
        }
        self.inner.feed.wake();
    }
}

/// Operators' revocations say so; the owner's say what the owner did.
fn reason_for(actor: &Actor, owner_reason: RevocationReason) -> RevocationReason {
    match actor {
        Actor::User => owner_reason,
        Actor::Operator(_) | Actor::Service(_) => RevocationReason::Operator,
    }
}
