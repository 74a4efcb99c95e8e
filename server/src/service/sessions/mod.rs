//! The SessionService's commands over one shared context: registration, validation, activity,
//! the Active sessions rows, log-outs (one row, one session, everything, all but one), the
//! identity system's account lifecycle (disable, enable, delete), the revocation feed, and the
//! security history. Each command lives in its own file as an `impl Sessions` block.

mod activity;
mod cache;
mod coalesce;
mod feed;
mod history;
mod lifecycle;
mod log_out_all;
mod miss_batch;
mod register;
mod revoke;
mod rows;
mod sign_in_batch;
mod sweep;
mod validate;

use std::{sync::Arc, time::Duration};

use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use activity::ActivityBuffer;
pub use cache::{CacheStats, CachedSession, ValidationCache};
pub use feed::{MAX_FEED_STALENESS, RevocationBatch, RevocationFeed, WatchBatch};
pub use lifecycle::{DELETION_GRACE, Erasure};
pub use log_out_all::LogOutAllRequest;
pub use register::{NewSession, Registered};
pub(crate) use revoke::{Covered, LogOut, reason_for};
pub use revoke::{MAX_SESSION_IDS, RevokeOutcome, RevokeResult, RevokeTarget};
pub use rows::{
    DeviceSessionsPage, LogOutAction, MAX_ROW_SESSIONS, NoLogOutReason, RowsPage, SessionRow,
};
pub use validate::ValidSession;

use super::{ServiceError, eligibility::EligibilityService, subject::SubjectResolver};
use crate::{
    clock::Clock,
    domain::{
        page_token::PageTokens,
        session::Lifetimes,
        subject::{Owner, Subject},
        token_seal::TokenSealer,
    },
    enrich::GeoIp,
    store::{Store, StoreError, settings},
};

/// Tuning of the session service beyond the lifetimes.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Session lifetimes.
    pub lifetimes: Lifetimes,
    /// How long a registration request id is remembered.
    pub request_id_retention: Duration,
    /// How often heartbeats are flushed.
    pub touch_flush_interval: Duration,
    /// Validation cache size (0 disables it).
    pub cache_entries: usize,
    /// Longest a validation stays cached.
    pub cache_max_age: Duration,
    /// How often the revocation feed reads the log when nothing local woke it.
    pub feed_poll_interval: Duration,
    /// Sessions marked per transaction by the log-out-of-all sweep.
    pub sweep_batch: u64,
    /// Most active visible sessions an account may hold (0: no limit); at the limit a sign-in
    /// ends the oldest.
    pub max_sessions_per_account: u64,
}

/// The session commands. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct Sessions {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    clock: Arc<dyn Clock>,
    settings: SessionSettings,
    geoip: Option<GeoIp>,
    subjects: SubjectResolver,
    page_tokens: PageTokens,
    sealer: TokenSealer,
    cache: ValidationCache,
    in_flight: coalesce::InFlightReads,
    misses: miss_batch::MissBatcher,
    sign_ins: sign_in_batch::SignInBatcher,
    activity: ActivityBuffer,
    feed: RevocationFeed,
    sweep_wake: tokio::sync::Notify,
}

impl Sessions {
    /// Builds the service, reading (or creating) the page token key every replica shares.
    /// `sealer` holds the token seal key, which never enters the database.
    pub async fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        settings: SessionSettings,
        geoip: Option<GeoIp>,
        sealer: TokenSealer,
    ) -> Result<Self, StoreError> {
        let now = clock.now();
        let page_key = settings::key(store.reader(), "page_token_key", now).await?;
        let feed = RevocationFeed::start(&store, settings.feed_poll_interval).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                subjects: SubjectResolver::new(store.clone(), clock.clone(), settings.lifetimes),
                cache: ValidationCache::new(settings.cache_entries, settings.cache_max_age),
                in_flight: coalesce::InFlightReads::default(),
                misses: miss_batch::MissBatcher::new(store.validation_readers()),
                sign_ins: sign_in_batch::SignInBatcher::new(store.sign_in_writers()),
                page_tokens: PageTokens::new(page_key),
                sealer,
                activity: ActivityBuffer::default(),
                feed,
                sweep_wake: tokio::sync::Notify::new(),
                store,
                clock,
                settings,
                geoip,
            }),
        })
    }

    /// Starts the background work: heartbeat flushing, the log-out-of-all sweep, the revocation
    /// feed (with PostgreSQL LISTEN to hear other replicas at once), and forgetting expired
    /// request ids. Each stops when `stop` is cancelled (heartbeats
    /// are flushed one last time).
    pub fn spawn_background(&self, tasks: &TaskTracker, stop: &CancellationToken) {
        tasks.spawn(self.clone().flush_activity_until(stop.clone()));
        tasks.spawn(self.clone().sweep_until(stop.clone()));
        tasks.spawn(self.clone().follow_feed_until(stop.clone()));
        tasks.spawn(self.clone().listen_for_revocations_until(stop.clone()));
        tasks.spawn(self.clone().purge_request_ids_until(stop.clone()));
    }

    /// Validation cache counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.inner.cache.stats()
    }

    /// How long ago the revocation feed's latest complete read of the log began.
    pub fn feed_staleness(&self) -> Duration {
        self.inner.feed.staleness()
    }

    /// True while the revocation feed is fresh enough for the cache to answer from memory
    /// (and for this replica to report itself healthy).
    pub fn feed_is_fresh(&self) -> bool {
        self.inner.feed.is_fresh()
    }

    /// Resolves an owner-facing subject and refuses accounts linked to organisation SSO when the
    /// owner acts through a session token (S7). An account named by id is an operator's
    /// break-glass (only operators may name accounts: `Caller::authorize_owner_call`), allowed
    /// on any account and recorded in its history as the operator.
    pub(crate) async fn eligible_owner(&self, subject: &Subject) -> Result<Owner, ServiceError> {
        let owner = self.inner.subjects.resolve(subject).await?;
        if matches!(subject, Subject::SessionToken(_)) {
            EligibilityService::ensure_eligible(owner.account.as_ref())?;
        }
        Ok(owner)
    }

    pub(crate) fn idle_timeout(&self) -> Duration {
        self.inner.settings.lifetimes.idle_timeout
    }

    /// The signer of page tokens, shared with the other listings.
    pub(crate) fn page_tokens(&self) -> &PageTokens {
        &self.inner.page_tokens
    }
}
