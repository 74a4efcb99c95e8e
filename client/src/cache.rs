//! [`ValidationCache`]: an in-process cache of ValidateSession answers, kept honest by the
//! revocation stream. This module is the stream protocol: follow `WatchRevocations` from the
//! cursor, resume from it after a break (or start afresh, dropping everything, when the server
//! no longer knows it), take the first empty batch as caught up and later ones as keep-alives,
//! treat a stream silent past its timeout as broken, and answer from memory only while live:
//! otherwise every validation goes to the server (fail closed). What is stored, and what a
//! revocation drops, is `store`'s.

mod builder;
mod revoked;
mod store;

use std::{
    fmt,
    future::Future,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    sync::{Notify, watch},
    task::JoinHandle,
};

pub use builder::{ConnectFuture, ValidationCacheBuilder};

use self::{
    builder::{Connector, Settings},
    store::{Key, Store, Ticket},
};
use crate::{
    CacheHealth, ConnectError, Connection, Error, RetryPolicy, RevocationBatch, RevocationStream,
    SessionClient, ValidSession, health::HealthSignal, retry::jitter,
};

/// The first delay before reopening a broken stream.
const RECONNECT_BASE: Duration = Duration::from_millis(50);
/// Why the stream ended when [`ValidationCache::reconnect`] asked: not a degradation.
const RECONNECT_REQUESTED: &str = "reconnect requested";

/// An in-process cache of session validations for a product backend, fed by the revocation
/// stream.
///
/// # Guarantees
///
/// * Only answers the server gave are cached, and only positive ones (a token that is not valid
///   never becomes valid).
/// * The cache answers from memory only while its `WatchRevocations` stream is *live*: opened,
///   caught up from the cursor (the server's first empty batch says so), and not silent for
///   longer than the stream timeout. Otherwise every validation goes to the server.
/// * Every revocation on the stream drops what it covers before the next answer from memory:
///   scope `SESSION` by session id, scope `DEVICE` every cached session of the account on the
///   device signed in at or before `revoked_before` (so a device log-out is one bounded event
///   however many sessions it ends), scope `ALL` every cached session of the account born in a
///   generation below the event's `cut_generation` (the order the server took under the
///   account's lock, so no clock is compared; events from servers that predate generations fall
///   back to `revoked_before`). A revoked session is therefore never
///   answered valid from memory once its revocation has reached the stream, which happens
///   within a second of the log-out in normal operation.
/// * When the stream breaks it is reopened *from its cursor*, so revocations committed while it
///   was down are applied before the cache answers from memory again. If the server no longer
///   knows the cursor, everything cached is dropped and the stream starts afresh.
/// * An answer fetched while a revocation covering it was being applied is not cached: recent
///   revocations are remembered for a while and checked against every new entry, and an
///   answer fetched across a stream break is not cached at all.
/// * Entries are bounded in number (oldest dropped first) and in age, and never outlive the
///   session's `expires_at` or `idle_expires_at`.
///
/// Tokens are kept only as SHA-256 hashes.
///
/// Cheap to clone; clones share the cache. The background stream stops when the last clone is
/// dropped.
///
/// ```no_run
/// # async fn example() -> Result<(), active_sessions_client::Error> {
/// use std::time::Duration;
/// use active_sessions_client::{Connection, ValidationCache};
///
/// let connection = Connection::builder("http://127.0.0.1:50051").connect().await?;
/// let cache = ValidationCache::builder(connection)
///     .max_entries(100_000)
///     .max_age(Duration::from_secs(60))
///     .start()
///     .await;
/// # let token = "";
/// if let Some(session) = cache.validate(token).await? {
///     println!("signed in as {}", session.account_id);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ValidationCache {
    shared: Arc<Shared>,
    _task: Arc<TaskGuard>,
}

/// Counters of a [`ValidationCache`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Validations answered from memory.
    pub hits: u64,
    /// Validations sent to the server while the stream was live (not cached, or expired).
    pub misses: u64,
    /// Validations sent to the server because the stream was not live.
    pub bypassed: u64,
    /// Sessions cached now.
    pub entries: usize,
    /// Revocation events applied since the cache started.
    pub revocations_applied: u64,
    /// Times the revocation stream was opened.
    pub streams_opened: u64,
    /// True when the cache answers from memory now.
    pub live: bool,
}

impl ValidationCache {
    /// A cache over `connection` (its channel reconnects to the same endpoint by itself).
    pub fn builder(connection: Connection) -> ValidationCacheBuilder {
        Self::builder_with_connector(move || {
            let connection = connection.clone();
            async move { Ok(connection) }
        })
    }

    /// A cache that asks `connect` for a connection whenever it (re)opens its stream, and
    /// validates over the latest one: for endpoints that move (service discovery, or a test
    /// server restarted on a new port).
    pub fn builder_with_connector<F, Fut>(connect: F) -> ValidationCacheBuilder
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Connection, ConnectError>> + Send + 'static,
    {
        ValidationCacheBuilder::new(connect)
    }

    /// Starts following the stream (from [`ValidationCacheBuilder::start`]).
    fn start(connector: Connector, settings: Settings) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(Store::new(settings.limits.clone()))),
            live: watch::channel(false).0,
            connector,
            connection: Mutex::new(None),
            settings,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            bypassed: AtomicU64::new(0),
            reconnect: Notify::new(),
            health: HealthSignal::new(),
        });
        let task = tokio::spawn(follow(shared.clone()));
        Self {
            shared,
            _task: Arc::new(TaskGuard(task)),
        }
    }

    /// `token`'s session when the stream is live and the session is cached and fresh, without
    /// waiting (counted as a hit); `None` when [`validate`](Self::validate) must answer (and
    /// count the miss or the bypass).
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn cached(&self, token: &str) -> Option<ValidSession> {
        let key = Key::of(token);
        let mut state = self.shared.state();
        if !state.live {
            return None;
        }
        let session = state.store.lookup(&key)?;
        self.shared.hits.fetch_add(1, Ordering::Relaxed);
        Some(session)
    }

    /// Whether `token` is signed in: from memory when the stream is live and the session is
    /// cached, otherwise from the server (and then cached when it is valid).
    pub async fn validate(&self, token: &str) -> Result<Option<ValidSession>, Error> {
        let key = Key::of(token);
        let shared = &self.shared;
        let ticket = {
            let mut state = shared.state();
            if state.live {
                if let Some(session) = state.store.lookup(&key) {
                    shared.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(session));
                }
                shared.misses.fetch_add(1, Ordering::Relaxed);
                Some(state.store.ticket())
            } else {
                shared.bypassed.fetch_add(1, Ordering::Relaxed);
                None
            }
        };
        let client = shared.client().await?;
        let answer = client.validate(token).await?;
        if let (Some(session), Some(ticket)) = (&answer, ticket) {
            shared.state().keep(key, session, ticket);
        }
        Ok(answer)
    }

    /// True when the stream is live and the cache answers from memory.
    pub fn is_live(&self) -> bool {
        self.shared.state().live
    }

    /// Waits until the stream is live (opened and caught up). Bound it with a timeout.
    pub async fn wait_live(&self) {
        let mut live = self.shared.live.subscribe();
        // The sender lives as long as `self`, so this only ends when live.
        let _ = live.wait_for(|live| *live).await;
    }

    /// Waits until the stream is not live (broken, or reconnecting).
    pub async fn wait_not_live(&self) {
        let mut live = self.shared.live.subscribe();
        let _ = live.wait_for(|live| !*live).await;
    }

    /// The counters.
    pub fn stats(&self) -> CacheStats {
        let state = self.shared.state();
        CacheStats {
            hits: self.shared.hits.load(Ordering::Relaxed),
            misses: self.shared.misses.load(Ordering::Relaxed),
            bypassed: self.shared.bypassed.load(Ordering::Relaxed),
            entries: state.store.len(),
            revocations_applied: state.store.applied(),
            streams_opened: state.streams_opened,
            live: state.live,
        }
    }

    /// Sessions cached now.
    pub fn len(&self) -> usize {
        self.shared.state().store.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stream's latest cursor, from which it resumes after a break.
    pub fn cursor(&self) -> Option<String> {
        self.shared.state().cursor.clone()
    }

    /// Whether the cache answers from memory ([`CacheHealth::Live`]) or is degraded to the
    /// server because its revocation stream is refused or down. A degraded cache never answers
    /// from memory; it warns once when it goes down and once when it is back.
    pub fn health(&self) -> CacheHealth {
        self.shared.health.get()
    }

    /// Why the stream last failed to open or broke, if it did.
    pub fn last_stream_error(&self) -> Option<String> {
        self.shared.state().last_error.clone()
    }

    /// Drops the stream and reopens it from its cursor (the cache stops answering from memory
    /// until it has caught up). Also picks up a new connection from the connector.
    pub fn reconnect(&self) {
        self.shared.reconnect.notify_one();
    }

    /// Forgets every cached session.
    pub fn clear(&self) {
        self.shared.state().store.clear();
    }
}

/// Stops the stream task when the last cache handle is dropped.
#[derive(Debug)]
struct TaskGuard(JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where the stream stands, and the store it keeps honest.
#[derive(Debug)]
struct State {
    store: Store,
    /// Opened and caught up: the cache answers from memory.
    live: bool,
    cursor: Option<String>,
    streams_opened: u64,
    last_error: Option<String>,
}

impl State {
    fn new(store: Store) -> Self {
        Self {
            store,
            live: false,
            cursor: None,
            streams_opened: 0,
            last_error: None,
        }
    }

    /// Caches an answer fetched with `ticket`, only while live: a stream that is down vets
    /// nothing.
    fn keep(&mut self, key: Key, session: &ValidSession, ticket: Ticket) {
        if self.live {
            self.store.insert(key, session, ticket);
        }
    }

    /// Applies a batch from the stream. True when it is an empty batch: the stream has caught
    /// up (the first after opening) or is alive (a keep-alive).
    fn apply(&mut self, batch: RevocationBatch) -> bool {
        let caught_up = batch.events.is_empty();
        for event in batch.events {
            self.store.revoke(event);
        }
        self.cursor = Some(batch.cursor);
        caught_up
    }
}

struct Shared {
    state: Mutex<State>,
    live: watch::Sender<bool>,
    connector: Connector,
    connection: Mutex<Option<Connection>>,
    settings: Settings,
    hits: AtomicU64,
    misses: AtomicU64,
    bypassed: AtomicU64,
    reconnect: Notify,
    health: HealthSignal,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("settings", &self.settings)
            .field("live", &*self.live.borrow())
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn connection_slot(&self) -> MutexGuard<'_, Option<Connection>> {
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A client over the latest connection, opening one if there is none yet.
    async fn client(&self) -> Result<SessionClient, Error> {
        let existing = self.connection_slot().clone();
        let connection = match existing {
            Some(connection) => connection,
            None => {
                let connection = self.connector.connect().await?;
                self.connection_slot().get_or_insert(connection).clone()
            }
        };
        let client = SessionClient::new(&connection);
        Ok(match self.settings.retry {
            Some(policy) => client.with_retry_policy(policy),
            None => client,
        })
    }

    /// The stream could not be opened: remembered, and the cache is degraded.
    fn refused(&self, reason: String) {
        let mut state = self.state();
        state.last_error = Some(reason);
        self.set_live(&mut state, false);
    }

    fn set_live(&self, state: &mut State, live: bool) {
        if live {
            self.health.live();
        } else if let Some(reason) = state
            .last_error
            .as_deref()
            .filter(|reason| *reason != RECONNECT_REQUESTED)
        {
            self.health.down(reason);
        }
        if state.live != live {
            state.live = live;
            if !live {
                // Answers fetched while live are not cached once it is not.
                state.store.new_epoch();
            }
            self.live.send_replace(live);
        }
    }
}

/// Follows the revocation stream for as long as the cache exists: opens it from the cursor,
/// follows it until it breaks, and reopens it after a jittered, growing pause.
async fn follow(shared: Arc<Shared>) {
    let mut failures: u32 = 0;
    loop {
        if failures > 0 {
            let ceiling = RECONNECT_BASE
                .saturating_mul(2_u32.saturating_pow(failures - 1))
                .min(shared.settings.max_reconnect_delay);
            tokio::time::sleep(ceiling / 2 + jitter(ceiling / 2)).await;
        }
        failures = failures.saturating_add(1);
        let Some(stream) = open(&shared, &mut failures).await else {
            continue;
        };
        shared.state().streams_opened += 1;
        let ended = follow_stream(&shared, stream, &mut failures).await;
        let mut state = shared.state();
        state.last_error = Some(ended);
        shared.set_live(&mut state, false);
    }
}

/// Opens the stream from the cursor over a fresh connection; `None` when it could not be
/// opened (the cache is degraded), or when a reconnect was asked for meanwhile.
async fn open(shared: &Shared, failures: &mut u32) -> Option<RevocationStream> {
    let settings = &shared.settings;
    let connection = match shared.connector.connect().await {
        Ok(connection) => connection,
        Err(err) => {
            shared.refused(err.to_string());
            return None;
        }
    };
    *shared.connection_slot() = Some(connection.clone());
    let client = SessionClient::new(&connection)
        .with_retry_policy(RetryPolicy::no_retries().deadline(settings.stream_timeout));
    let cursor = shared.state().cursor.clone();
    let opened = tokio::select! {
        opened = tokio::time::timeout(
            settings.stream_timeout,
            client.watch_revocations(cursor.as_deref(), &settings.limits.products),
        ) => opened,
        () = shared.reconnect.notified() => return None,
    };
    match opened {
        Err(_) => shared.refused("opening the stream timed out".into()),
        Ok(Ok(stream)) => return Some(stream),
        Ok(Err(Error::CursorExpired)) => {
            // The server no longer has our position: nothing cached can be vetted.
            let mut state = shared.state();
            state.store.clear();
            state.store.new_epoch();
            state.cursor = None;
            state.last_error = Some(Error::CursorExpired.to_string());
            *failures = 0;
        }
        Ok(Err(err)) => shared.refused(err.to_string()),
    }
    None
}

/// Applies the stream's batches until it breaks; returns why it ended. The first empty batch
/// makes the cache live; every batch, keep-alives included, resets the silence timeout.
async fn follow_stream(
    shared: &Shared,
    mut stream: RevocationStream,
    failures: &mut u32,
) -> String {
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(shared.settings.stream_timeout, stream.next()) => next,
            () = shared.reconnect.notified() => return RECONNECT_REQUESTED.to_owned(),
        };
        match next {
            Ok(Ok(Some(batch))) => {
                let mut state = shared.state();
                if state.apply(batch) {
                    shared.set_live(&mut state, true);
                    // A later break reopens after a short pause, never in a tight loop.
                    *failures = 1;
                }
            }
            Ok(Ok(None)) => return "the server ended the stream".to_owned(),
            Ok(Err(err)) => return err.to_string(),
            Err(_) => return "the stream was silent for too long".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests;
