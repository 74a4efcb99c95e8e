//! RegisterSession: a product records a sign-in. The server mints the id and the token, reads
//! the user agent and the IP's approximate location, and stores the session, its sign-in event
//! and (with a request id) an idempotency record in one transaction. A retry with the same
//! request id and request returns the same session and token; the token is kept in the
//! idempotency record encrypted under the token seal key, which is not in the database
//! (`domain::token_seal`). A replay whose record no longer opens (the key changed) is refused
//! with SEALED_TOKEN_UNAVAILABLE; the session is untouched. An account's active visible
//! sessions are capped (`--max-sessions-per-account`): at the cap, a visible sign-in ends the
//! oldest in the same transaction, as a revocation with reason SESSION_LIMIT.

use std::{net::IpAddr, time::Duration};

use sha2::{Digest, Sha256};

use super::{Covered, LogOut, Sessions};
use crate::domain::stored::StoredEnum as _;
use crate::service::ServiceError;
use crate::{
    domain::{
        account::Account,
        history::{Actor, SecurityEvent, SecurityEventType},
        ids::{AccountId, DeviceId, RequestId, SessionId, new_ulid},
        revocation::Revocation,
        session::{AuthMethod, ClientKind, Product, RevocationReason, Session, SessionStatus},
        text::Violations,
        token::SessionToken,
        token_seal::SealBinding,
    },
    enrich::parse_user_agent,
    store::{
        StoreError, accounts,
        idempotency::{self, IdempotencyRecord},
        security_events, session_sets, sessions,
        sign_in_novelty::{self, Novelty},
    },
};

/// A sign-in to record, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// Idempotency key, if the caller sent one.
    pub request_id: Option<RequestId>,
    /// The account.
    pub account_id: AccountId,
    /// The product.
    pub product: Product,
    /// The client kind.
    pub client_kind: ClientKind,
    /// The device id.
    pub device_id: DeviceId,
    /// The raw user agent (may be empty).
    pub user_agent: String,
    /// The client's IP, if known.
    pub ip: Option<IpAddr>,
    /// How the user signed in.
    pub auth_method: AuthMethod,
    /// Requested lifetime, if any.
    pub lifetime: Option<Duration>,
    /// Imported with a state that cannot be confirmed.
    pub status_unavailable: bool,
}

impl NewSession {
    /// SHA-256 over every field but the request id: "the same request" for idempotency.
    fn fingerprint(&self) -> [u8; 32] {
        let lifetime = self
            .lifetime
            .map_or_else(|| "default".to_owned(), |d| d.as_micros().to_string());
        let ip = self.ip.map(|ip| ip.to_string()).unwrap_or_default();
        let fields = [
            self.account_id.as_str(),
            self.product.as_str(),
            self.client_kind.as_str(),
            self.device_id.as_str(),
            &self.user_agent,
            &ip,
            self.auth_method.as_str(),
            &lifetime,
            if self.status_unavailable {
                "unavailable"
            } else {
                "active"
            },
        ];
        let mut hasher = Sha256::new();
        for field in fields {
            hasher.update((field.len() as u64).to_be_bytes());
            hasher.update(field.as_bytes());
        }
        hasher.finalize().into()
    }
}

/// A registered session and its token.
#[derive(Debug, Clone)]
pub struct Registered {
    /// The session.
    pub session: Session,
    /// Its token (returned to the caller once; only the hash is stored).
    pub token: SessionToken,
    /// True when a retried request id returned an earlier registration.
    pub replayed: bool,
}

impl Sessions {
    /// Records a sign-in. `scope` names the caller, so that two callers' request ids never
    /// collide.
    pub async fn register(
        &self,
        scope: &str,
        request: NewSession,
        actor: &Actor,
    ) -> Result<Registered, ServiceError> {
        let lifetimes = self.inner.settings.lifetimes;
        let lifetime = match request.lifetime {
            None => lifetimes.default_lifetime,
            Some(lifetime) if lifetime.is_zero() => {
                return Err(Violations::single("lifetime", "must be positive").into());
            }
            Some(lifetime) if lifetime > lifetimes.max_lifetime => {
                return Err(Violations::single(
                    "lifetime",
                    format!(
                        "must be at most {}",
                        humantime::format_duration(lifetimes.max_lifetime)
                    ),
                )
                .into());
            }
            Some(lifetime) => lifetime,
        };
        let job = SignIn {
            scope: scope.to_owned(),
            request,
            lifetime,
            actor: actor.clone(),
        };
        let planned = match self.inner.sign_ins.submit(self, &job).await {
            Some(planned) => planned,
            None => self.register_alone(&job).await,
        }?;
        Ok(self.after_sign_in(planned))
    }

    /// Records a sign-in in a transaction of its own.
    pub(super) async fn register_alone(&self, job: &SignIn) -> Result<Planned, ServiceError> {
        // A concurrent registration with the same request id for another account can win the
        // insert of the idempotency record; the retry then finds its record and answers as a
        // replay or a reuse.
        match self.try_register_alone(job).await {
            Err(ServiceError::Store(StoreError::Conflict)) => self.try_register_alone(job).await,
            other => other,
        }
    }

    async fn try_register_alone(&self, job: &SignIn) -> Result<Planned, ServiceError> {
        let txn = self.inner.store.write().await?;
        let planned = self.plan_sign_in(&*txn, job).await?;
        write_sign_ins(&*txn, std::slice::from_ref(&planned)).await?;
        txn.commit().await?;
        Ok(planned)
    }

    /// Inside a write transaction: locks (or creates) the account and decides the sign-in:
    /// a replay of an earlier registration, or a new session with its event and idempotency
    /// record, which [`write_sign_ins`] writes. Evictions at the session limit are written here.
    pub(super) async fn plan_sign_in(
        &self,
        txn: &impl sea_orm::ConnectionTrait,
        job: &SignIn,
    ) -> Result<Planned, ServiceError> {
        // The account row lock orders this registration against a concurrent log-out of all
        // sessions and against duplicates of the same request id. The session is born in the
        // account's current log-out-of-all generation, read under that lock: a log-out of all
        // ordered before this registration cannot end it, one ordered after always does,
        // whatever the replicas' clocks say.
        let first_seen_at = self.inner.clock.now();
        let account = accounts::lock_or_create(txn, &job.request.account_id, first_seen_at).await?;
        self.plan_locked_sign_in(txn, job, &account, first_seen_at)
            .await
    }

    /// [`Self::plan_sign_in`] with the account already locked (or created at `first_seen_at`)
    /// in this transaction.
    pub(super) async fn plan_locked_sign_in(
        &self,
        txn: &impl sea_orm::ConnectionTrait,
        job: &SignIn,
        account: &Account,
        first_seen_at: crate::clock::Timestamp,
    ) -> Result<Planned, ServiceError> {
        let SignIn {
            scope,
            request,
            lifetime,
            actor,
        } = job;
        let (scope, lifetime) = (scope.as_str(), *lifetime);
        let fingerprint = request.fingerprint();
        let device = parse_user_agent(&request.user_agent);
        let location = request
            .ip
            .and_then(|ip| self.inner.geoip.as_ref()?.lookup(ip))
            .unwrap_or_default();

        // A disabled account (or one being deleted) signs in nowhere, not even by a replay.
        if account.is_disabled() {
            return Err(ServiceError::AccountDisabled);
        }
        let now = self.inner.clock.now();

        if let Some(request_id) = &request.request_id
            && let Some(record) = idempotency::find(txn, scope, request_id.as_str(), now).await?
        {
            if record.request_hash != fingerprint {
                return Err(ServiceError::RequestIdReused);
            }
            let session = sessions::find(txn, record.session_id)
                .await?
                .ok_or_else(|| StoreError::corrupt("idempotency_records", "session missing"))?;
            let binding = SealBinding {
                scope,
                request_id: request_id.as_str(),
                account_id: &session.account_id,
                session_id: session.session_id,
            };
            let Some(token) = self.inner.sealer.open(&binding, &record.sealed_token) else {
                tracing::warn!(
                    session_id = %session.session_id,
                    "a registration replay's token does not open under the token seal key"
                );
                return Err(ServiceError::SealedTokenUnavailable(session.session_id));
            };
            return Ok(Planned {
                registered: Registered {
                    session,
                    token,
                    replayed: true,
                },
                token_hash: None,
                record: None,
                event: None,
                evicted: Vec::new(),
            });
        }

        // An account created by this registration has no sessions to count or compare with.
        let new_account = account.created_at == first_seen_at;
        let evicted = if new_account {
            if request.client_kind.is_visible() {
                crate::telemetry::metrics::metrics().record_account_size(1);
            }
            Vec::new()
        } else if request.client_kind.is_visible() {
            self.make_room(
                txn,
                &request.account_id,
                account.revoked_generation,
                now,
                actor,
            )
            .await?
        } else {
            Vec::new()
        };
        let novelty = if new_account {
            Novelty {
                new_device: false,
                new_country: false,
            }
        } else {
            sign_in_novelty::novelty(
                txn,
                &request.account_id,
                &request.device_id,
                location.country_code.as_deref(),
            )
            .await?
        };
        let token = SessionToken::mint().map_err(|_| ServiceError::Entropy)?;
        let session = Session {
            session_id: SessionId::from_ulid(new_ulid(now)),
            account_id: request.account_id.clone(),
            product: request.product,
            client_kind: request.client_kind,
            device_id: request.device_id.clone(),
            user_agent: request.user_agent.clone(),
            device,
            ip_address: request.ip.map(|ip| ip.to_string()),
            location,
            auth_method: request.auth_method,
            status: if request.status_unavailable {
                SessionStatus::Unavailable
            } else {
                SessionStatus::Active
            },
            new_device: novelty.new_device,
            new_country: novelty.new_country,
            signed_in_at: now,
            last_active_at: now,
            expires_at: now.plus(lifetime),
            revoked_at: None,
            revocation_id: None,
            generation: account.revoked_generation,
        };
        let record = match &request.request_id {
            Some(request_id) => {
                let binding = SealBinding {
                    scope,
                    request_id: request_id.as_str(),
                    account_id: &session.account_id,
                    session_id: session.session_id,
                };
                let sealed_token = self
                    .inner
                    .sealer
                    .seal(&binding, &token)
                    .map_err(|_| ServiceError::Entropy)?;
                Some(PendingRecord {
                    scope: scope.to_owned(),
                    request_id: request_id.as_str().to_owned(),
                    record: IdempotencyRecord {
                        request_hash: fingerprint,
                        session_id: session.session_id,
                        sealed_token,
                        expires_at: now.plus(self.inner.settings.request_id_retention),
                    },
                    now,
                })
            }
            None => None,
        };
        // Hidden kinds are never shown to the owner, so their sign-ins stay out of the history.
        let event = session.client_kind.is_visible().then(|| {
            SecurityEvent::new(
                session.account_id.clone(),
                SecurityEventType::SignIn,
                now,
                actor,
            )
            .about_session(&session)
        });
        Ok(Planned {
            token_hash: Some(token.hash()),
            registered: Registered {
                session,
                token,
                replayed: false,
            },
            record,
            event,
            evicted,
        })
    }

    /// After commit: applies the evictions, counts and logs the sign-in.
    fn after_sign_in(&self, planned: Planned) -> Registered {
        let Planned {
            registered,
            evicted,
            ..
        } = planned;
        for revocation in &evicted {
            self.after_revocation(revocation);
            crate::telemetry::metrics::metrics().sessions_evicted.add(
                1,
                &crate::telemetry::metrics::attribute(
                    "product",
                    revocation.products.first().map_or("", |p| p.as_str()),
                ),
            );
            tracing::warn!(
                account_id = %revocation.account_id,
                revocation_id = %revocation.revocation_id,
                limit = self.inner.settings.max_sessions_per_account,
                "account at its session limit: oldest session ended"
            );
        }
        if registered.replayed {
            return registered;
        }
        let session = &registered.session;
        crate::telemetry::metrics::metrics()
            .sessions_registered
            .add(
                1,
                &crate::telemetry::metrics::attribute("product", session.product.as_str()),
            );
        tracing::info!(
            session_id = %session.session_id,
            account_id = %session.account_id,
            product = session.product.as_str(),
            client_kind = session.client_kind.as_str(),
            "session registered"
        );
        registered
    }
}

/// A sign-in to record: the request and who asked, owned, so that a batch can carry it.
#[derive(Debug, Clone)]
pub(super) struct SignIn {
    /// The caller's scope for request ids.
    pub scope: String,
    /// The validated request.
    pub request: NewSession,
    /// The session's lifetime.
    pub lifetime: Duration,
    /// Who signs in.
    pub actor: Actor,
}

/// An idempotency record to write once the session is.
#[derive(Debug)]
pub(super) struct PendingRecord {
    scope: String,
    request_id: String,
    record: IdempotencyRecord,
    now: crate::clock::Timestamp,
}

/// A sign-in decided under its account's lock, with what remains to write.
#[derive(Debug)]
pub(super) struct Planned {
    /// The answer.
    pub registered: Registered,
    /// The new session's token hash; `None` for a replay, which writes nothing.
    token_hash: Option<crate::domain::token::TokenHash>,
    record: Option<PendingRecord>,
    event: Option<SecurityEvent>,
    /// Sessions ended to make room, already written; applied after commit.
    evicted: Vec<Revocation>,
}

/// Writes the new sessions of `planned` (replays write nothing) in one statement, then their
/// idempotency records, then their sign-in events in one statement.
pub(super) async fn write_sign_ins(
    conn: &impl sea_orm::ConnectionTrait,
    planned: &[Planned],
) -> Result<(), ServiceError> {
    let new: Vec<(&Session, &crate::domain::token::TokenHash)> = planned
        .iter()
        .filter_map(|p| Some((&p.registered.session, p.token_hash.as_ref()?)))
        .collect();
    sessions::insert_many(conn, &new).await?;
    // The batch's earliest clock reading stamps the records and decides which expired records
    // they may replace.
    let records: Vec<idempotency::NewRecord<'_>> = planned
        .iter()
        .filter_map(|p| p.record.as_ref())
        .map(|pending| idempotency::NewRecord {
            scope: &pending.scope,
            request_id: &pending.request_id,
            record: &pending.record,
        })
        .collect();
    if let Some(now) = planned
        .iter()
        .filter_map(|p| p.record.as_ref())
        .map(|p| p.now)
        .min()
    {
        idempotency::insert_many(conn, &records, now).await?;
    }
    let events: Vec<&SecurityEvent> = planned.iter().filter_map(|p| p.event.as_ref()).collect();
    security_events::insert_many(conn, &events).await?;
    Ok(())
}

/// The most sessions one sign-in ends to bring an account back under its limit (more only when
/// the limit was lowered; later sign-ins continue).
const MAX_EVICTIONS_PER_SIGN_IN: u64 = 16;

impl Sessions {
    /// Inside a visible sign-in's transaction (the account lock held): counts the account's
    /// active visible sessions and, at the limit, ends the oldest so that the new one fits, each
    /// as a revocation of one session with reason SESSION_LIMIT and a history event. Returns
    /// the revocations, to apply after commit.
    async fn make_room(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
        account_id: &AccountId,
        cut_generation: i64,
        now: crate::clock::Timestamp,
        actor: &Actor,
    ) -> Result<Vec<Revocation>, ServiceError> {
        let active = self.active_at(now, cut_generation);
        let count = session_sets::count_active(conn, account_id, &active).await?;
        crate::telemetry::metrics::metrics().record_account_size(count + 1);
        let limit = self.inner.settings.max_sessions_per_account;
        if limit == 0 || count < limit {
            return Ok(Vec::new());
        }
        let over = (count + 1 - limit).min(MAX_EVICTIONS_PER_SIGN_IN);
        let mut revocations = Vec::new();
        for oldest in session_sets::oldest_active(conn, account_id, &active, over).await? {
            revocations.push(
                self.record_log_out(
                    conn,
                    &Covered::Session(oldest),
                    LogOut {
                        reason: RevocationReason::SessionLimit,
                        remove_trust: false,
                        actor,
                        now,
                    },
                )
                .await?,
            );
        }
        Ok(revocations)
    }
}

/// How often expired request ids are forgotten.
const REQUEST_ID_PURGE_INTERVAL: Duration = Duration::from_secs(3600);

impl Sessions {
    /// Forgets expired request ids every hour until `stop`.
    pub(super) async fn purge_request_ids_until(self, stop: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(REQUEST_ID_PURGE_INTERVAL) => {}
            }
            match idempotency::purge_expired(self.inner.store.reader(), self.inner.clock.now())
                .await
            {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "forgot expired registration request ids"),
                Err(err) => tracing::warn!(error = %err, "purging request ids failed"),
            }
        }
    }
}
