//! Log-outs: one row (every session on a device), one session, or all sessions of the account.
//! Each is one transaction that marks the sessions (or writes the account's cut-off), removes
//! trust where it must, appends to the revocation log and the security history; the validation
//! cache is invalidated after commit and before the call returns, so once a log-out has
//! returned OK no validation on this server reports those sessions valid. A row is read and
//! marked set-based, whatever its number of sessions; what a call returns names at most
//! [`MAX_SESSION_IDS`] of them, with the counts.

use super::Sessions;
use crate::service::ServiceError;
use crate::{
    clock::Timestamp,
    domain::{
        history::{Actor, SecurityEvent, SecurityEventType},
        ids::{AccountId, DeviceId, RevocationId, SessionId, new_ulid},
        log_out_rule::{LogOutDecision, NoLogOutReason, RowFacts, decide},
        modes::Effect,
        revocation::{Revocation, RevocationScope},
        session::{GenerationCut, Product, RevocationReason, Session, SessionStatus},
        subject::{Owner, Subject},
    },
    store::{
        accounts, revocations, security_events,
        session_sets::{self, ActiveAt},
        sessions, trusted_devices,
    },
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
    /// The sessions logged out (or that would be): all of them up to [`MAX_SESSION_IDS`],
    /// otherwise the newest that many.
    pub session_ids: Vec<SessionId>,
    /// How many sessions were (or would be) logged out.
    pub session_count: u64,
    /// Their products.
    pub products: Vec<Product>,
    /// Whether trust was (or would be) removed.
    pub trust_removed: bool,
    /// The recorded revocation (not with validate_only, nor when nothing changed).
    pub revocation: Option<Revocation>,
}

/// The most session ids a response, a revocation or a stream event names: a log-out of more
/// reports counts and (in responses) the newest this many, never every id.
pub const MAX_SESSION_IDS: usize = 100;

/// Sessions locked and marked per statement when a device's sessions are logged out.
const DEVICE_MARK_BATCH: u64 = 5_000;

/// What a log-out covers, read before it is written.
#[derive(Debug, Clone)]
pub(crate) enum Covered {
    /// One session (active).
    Session(Session),
    /// Every active visible session of the account on one device.
    Device(DevicePlan),
}

/// A device's active visible sessions, summed up by the database: what a row log-out covers.
#[derive(Debug, Clone)]
pub(crate) struct DevicePlan {
    /// The validity rule the log-out applies (the instant, the idle timeout, the cut-off).
    pub active: ActiveAt,
    /// How many sessions.
    pub count: u64,
    /// Their products, in enum order.
    pub products: Vec<Product>,
    /// True when one of them cannot be confirmed.
    pub unavailable: bool,
    /// The latest sign-in among them.
    pub last_sign_in: Timestamp,
    /// The newest of their ids, at most [`MAX_SESSION_IDS`].
    pub newest_ids: Vec<SessionId>,
    /// The most recently active of them: what the history describes the device by.
    pub latest: Session,
}

impl Covered {
    fn first(&self) -> &Session {
        match self {
            Self::Session(session) => session,
            Self::Device(plan) => &plan.latest,
        }
    }
}

/// How [`Sessions::record_log_out`] records a log-out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogOut<'a> {
    /// Why (see [`reason_for`]).
    pub reason: RevocationReason,
    /// Also remove the device's trust.
    pub remove_trust: bool,
    /// Who acts.
    pub actor: &'a Actor,
    /// When.
    pub now: crate::clock::Timestamp,
}

impl Sessions {
    /// The validity rule as of `now` for an account whose log-out-of-all generation is
    /// `cut_generation`.
    pub(crate) fn active_at(&self, now: Timestamp, cut_generation: i64) -> ActiveAt {
        ActiveAt {
            now,
            idle_timeout: self.idle_timeout(),
            cut_generation,
        }
    }

    /// Sums up the account's active visible sessions on a device (None when there are none).
    pub(crate) async fn device_plan(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
        account_id: &AccountId,
        device_id: &DeviceId,
        active: ActiveAt,
    ) -> Result<Option<DevicePlan>, ServiceError> {
        let summaries = session_sets::summaries(
            conn,
            account_id,
            std::slice::from_ref(device_id),
            &active,
            None,
        )
        .await?;
        let Some(last_sign_in) = summaries.iter().map(|s| s.last_sign_in).max() else {
            return Ok(None);
        };
        let Some(latest) =
            session_sets::newest_on_device(conn, account_id, device_id, &active, None, 1)
                .await?
                .into_iter()
                .next()
        else {
            return Ok(None);
        };
        let mut products: Vec<Product> = summaries.iter().map(|s| s.product).collect();
        products.sort();
        products.dedup();
        Ok(Some(DevicePlan {
            count: summaries.iter().map(|s| s.count).sum(),
            unavailable: summaries.iter().any(|s| s.unavailable > 0),
            newest_ids: session_sets::newest_ids_on_device(
                conn,
                account_id,
                device_id,
                &active,
                MAX_SESSION_IDS as u64,
            )
            .await?,
            active,
            products,
            last_sign_in,
            latest,
        }))
    }

    /// The caller's current session, when it is active now (and visible).
    pub(crate) async fn active_current(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
        owner: &Owner,
        active: &ActiveAt,
    ) -> Result<Option<Session>, ServiceError> {
        let Some(current) = owner.current_session else {
            return Ok(None);
        };
        Ok(sessions::find(conn, current).await?.filter(|s| {
            s.client_kind.is_visible()
                && s.is_active(
                    active.now,
                    active.idle_timeout,
                    GenerationCut::visible_only(active.cut_generation),
                )
        }))
    }

    /// Logs out one row or one session (RevokeSession).
    pub async fn revoke(
        &self,
        subject: &Subject,
        target: &RevokeTarget,
        effect: Effect,
        actor: &Actor,
    ) -> Result<RevokeResult, ServiceError> {
        let owner = self.eligible_owner(subject).await?;
        let txn = self.inner.store.write().await?;
        let account = accounts::lock(&*txn, &owner.account_id)
            .await?
            .ok_or(ServiceError::NotFound("session"))?;
        // Read once the account lock is held: see `register`.
        let now = self.inner.clock.now();
        let active = self.active_at(now, account.revoked_generation);

        let covered = match target {
            RevokeTarget::Device(device_id) => {
                // A device never seen is NOT_FOUND, like another account's session.
                if !session_sets::any_visible_on_device(&*txn, &owner.account_id, device_id).await?
                {
                    return Err(ServiceError::NotFound("session"));
                }
                self.device_plan(&*txn, &owner.account_id, device_id, active)
                    .await?
                    .map(Covered::Device)
            }
            RevokeTarget::Session(session_id) => {
                let session = sessions::find(&*txn, *session_id)
                    .await?
                    .filter(|s| s.account_id == owner.account_id && s.client_kind.is_visible())
                    .ok_or(ServiceError::NotFound("session"))?;
                session
                    .is_active(now, self.idle_timeout(), account.generation_cut())
                    .then_some(Covered::Session(session))
            }
        };
        // The current row is one row (S8): every session on the current session's device
        // belongs to it, whichever product, and whether named by device or by session id.
        let holds_current_session = covered.as_ref().is_some_and(|covered| {
            owner
                .current_device
                .as_ref()
                .is_some_and(|current| covered.first().device_id == *current)
        });
        let status_unavailable = match &covered {
            Some(Covered::Session(session)) => session.status == SessionStatus::Unavailable,
            Some(Covered::Device(plan)) => plan.unavailable,
            None => false,
        };
        // Only a whole device is "logged out and removed".
        let trusted_device = match (&covered, target) {
            (Some(covered), RevokeTarget::Device(_)) => !trusted_devices::trusted_among(
                &*txn,
                &owner.account_id,
                std::slice::from_ref(&covered.first().device_id),
                now,
            )
            .await?
            .is_empty(),
            _ => false,
        };
        let decision = decide(RowFacts {
            has_active_session: covered.is_some(),
            holds_current_session,
            status_unavailable,
            trusted_device,
        });
        let remove_trust = match decision {
            LogOutDecision::Refused(NoLogOutReason::CurrentSession) => {
                return Err(ServiceError::CurrentSession);
            }
            LogOutDecision::Refused(NoLogOutReason::StatusUnavailable) => {
                return Err(ServiceError::StatusUnavailable);
            }
            LogOutDecision::AlreadyLoggedOut => None,
            LogOutDecision::LogOut => Some(false),
            LogOutDecision::LogOutAndRemove => Some(true),
        };
        let (Some(covered), Some(remove_trust)) = (covered, remove_trust) else {
            return Ok(RevokeResult {
                outcome: RevokeOutcome::AlreadyLoggedOut,
                session_ids: Vec::new(),
                session_count: 0,
                products: Vec::new(),
                trust_removed: false,
                revocation: None,
            });
        };
        let (session_ids, session_count, products) = match &covered {
            Covered::Session(session) => (vec![session.session_id], 1, vec![session.product]),
            Covered::Device(plan) => (plan.newest_ids.clone(), plan.count, plan.products.clone()),
        };
        let outcome = if remove_trust {
            RevokeOutcome::LoggedOutAndRemoved
        } else {
            RevokeOutcome::LoggedOut
        };
        if effect == Effect::Preview {
            return Ok(RevokeResult {
                outcome,
                session_ids,
                session_count,
                products,
                trust_removed: remove_trust,
                revocation: None,
            });
        }

        let revocation = self
            .record_log_out(
                &*txn,
                &covered,
                LogOut {
                    reason: reason_for(actor, RevocationReason::UserLogOut),
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
            sessions = revocation.sessions_revoked,
            trust_removed = remove_trust,
            "sessions logged out"
        );
        Ok(RevokeResult {
            outcome,
            session_ids,
            session_count: u64::try_from(revocation.sessions_revoked).unwrap_or(0),
            products,
            trust_removed: remove_trust,
            revocation: Some(revocation),
        })
    }

    /// Writes a log-out of what `covered` names (one session, or every active visible session
    /// of one device) inside the caller's transaction, which holds the account lock: takes the
    /// log position, marks the sessions (set-based, in session-id order), removes the device's
    /// trust when asked, appends the revocation and the history. The caller commits, then calls
    /// [`after_revocation`](Self::after_revocation).
    pub(crate) async fn record_log_out(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
        covered: &Covered,
        log_out: LogOut<'_>,
    ) -> Result<Revocation, ServiceError> {
        let LogOut {
            reason,
            remove_trust,
            actor,
            now,
        } = log_out;
        let first = covered.first();
        let revocation_id = RevocationId::from_ulid(new_ulid(now));
        let seq = revocations::next_seq(conn).await?;
        let marking = session_sets::Marking {
            at: now,
            reason,
            revocation_id,
        };
        let (scope, marked, session_ids, products, revoked_before) = match covered {
            Covered::Session(session) => (
                RevocationScope::Session,
                sessions::mark_revoked(conn, &[session.session_id], now, reason, revocation_id)
                    .await?,
                vec![session.session_id],
                vec![session.product],
                None,
            ),
            Covered::Device(plan) => {
                let marked = session_sets::revoke_on_device(
                    conn,
                    &first.account_id,
                    &first.device_id,
                    &plan.active,
                    marking,
                    DEVICE_MARK_BATCH,
                )
                .await?;
                // Every id when they are few; otherwise none: the device and the cut-off
                // describe them, and no message grows with the device.
                let ids = if marked as usize <= MAX_SESSION_IDS
                    && plan.newest_ids.len() as u64 == marked
                {
                    plan.newest_ids.clone()
                } else {
                    Vec::new()
                };
                (
                    RevocationScope::Device,
                    marked,
                    ids,
                    plan.products.clone(),
                    Some(plan.last_sign_in.max(now)),
                )
            }
        };
        let revocation = Revocation {
            revocation_id,
            seq,
            account_id: first.account_id.clone(),
            scope,
            reason,
            device_id: Some(first.device_id.clone()),
            session_ids,
            products,
            effective_at: now,
            revoked_before,
            cut_generation: None,
            trust_removed: remove_trust,
            sessions_revoked: i64::try_from(marked).unwrap_or(i64::MAX),
            completed_at: Some(now),
            actor: actor.to_stored(),
            includes_hidden_kinds: false,
            kept_session_id: None,
        };
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
        if let Covered::Session(only) = covered {
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

    /// A revocation of the owner's account, with its progress (GetRevocation).
    pub async fn get_revocation(
        &self,
        subject: &Subject,
        revocation_id: RevocationId,
    ) -> Result<Revocation, ServiceError> {
        let owner = self.eligible_owner(subject).await?;
        revocations::find(self.inner.store.reader(), revocation_id)
            .await?
            .filter(|r| r.account_id == owner.account_id)
            .ok_or(ServiceError::NotFound("revocation"))
    }

    /// After commit: forget cached validations the revocation covers and wake the feed.
    pub(crate) fn after_revocation(&self, revocation: &Revocation) {
        if revocation.sessions_revoked > 0 {
            crate::telemetry::metrics::metrics().sessions_revoked.add(
                u64::try_from(revocation.sessions_revoked).unwrap_or(0),
                &crate::telemetry::metrics::attribute("scope", revocation.scope.as_str()),
            );
        }
        self.inner.cache.apply(revocation);
        self.inner.feed.wake();
    }
}

/// Operators' revocations say so; the owner's say what the owner did.
pub(crate) fn reason_for(actor: &Actor, owner_reason: RevocationReason) -> RevocationReason {
    match actor {
        Actor::User => owner_reason,
        Actor::Operator(_) | Actor::Service(_) => RevocationReason::Operator,
    }
}
