//! [`ValidationCache`]: an in-process cache of ValidateSession answers, kept honest by the
//! revocation stream.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    fmt,
    future::Future,
    hash::{BuildHasherDefault, Hash, Hasher},
    pin::Pin,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use sha2::{Digest, Sha256};
use tokio::{
    sync::{Notify, watch},
    task::JoinHandle,
};

use crate::{
    CacheHealth, ConnectError, Connection, Error, RetryPolicy, SessionClient, ValidSession,
    health::HealthSignal,
    proto::{Product, RevocationScope},
    retry::jitter,
    sessions::{RevocationBatch, RevocationEvent},
};

/// How long revocations are remembered to vet answers fetched around them.
const TOMBSTONE_RETENTION: Duration = Duration::from_secs(300);
/// The first delay before reopening a broken stream.
const RECONNECT_BASE: Duration = Duration::from_millis(50);
/// Why the stream ended when [`ValidationCache::reconnect`] asked: not a degradation.
const RECONNECT_REQUESTED: &str = "reconnect requested";

/// What a connector returns: a connection, or why none could be opened.
pub type ConnectFuture = Pin<Box<dyn Future<Output = Result<Connection, ConnectError>> + Send>>;

type Connector = Arc<dyn Fn() -> ConnectFuture + Send + Sync>;

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

/// Settings of a [`ValidationCache`], from [`ValidationCache::builder`].
pub struct ValidationCacheBuilder {
    connector: Connector,
    settings: Settings,
}

impl fmt::Debug for ValidationCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidationCacheBuilder")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct Settings {
    products: Vec<Product>,
    max_entries: usize,
    max_age: Duration,
    stream_timeout: Duration,
    max_reconnect_delay: Duration,
    retry: Option<RetryPolicy>,
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
        ValidationCacheBuilder {
            connector: Arc::new(move || Box::pin(connect())),
            settings: Settings {
                products: Vec::new(),
                max_entries: 10_000,
                max_age: Duration::from_secs(60),
                stream_timeout: Duration::from_secs(30),
                max_reconnect_delay: Duration::from_secs(2),
                retry: None,
            },
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
        let session = state.lookup(&key)?;
        self.shared.hits.fetch_add(1, Ordering::Relaxed);
        Some(session)
    }

    /// Whether `token` is signed in: from memory when the stream is live and the session is
    /// cached, otherwise from the server (and then cached when it is valid).
    pub async fn validate(&self, token: &str) -> Result<Option<ValidSession>, Error> {
        let key = Key::of(token);
        let shared = &self.shared;
        let start = {
            let mut state = shared.state();
            if state.live {
                if let Some(session) = state.lookup(&key) {
                    shared.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(session));
                }
                shared.misses.fetch_add(1, Ordering::Relaxed);
                Some((state.applied, state.generation))
            } else {
                shared.bypassed.fetch_add(1, Ordering::Relaxed);
                None
            }
        };
        let client = shared.client().await?;
        let answer = client.validate(token).await?;
        if let (Some(session), Some((applied, generation))) = (&answer, start) {
            shared
                .state()
                .insert(key, session, applied, generation, &shared.settings);
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
            entries: state.entries.len(),
            revocations_applied: state.applied,
            streams_opened: state.streams_opened,
            live: state.live,
        }
    }

    /// Sessions cached now.
    pub fn len(&self) -> usize {
        self.shared.state().entries.len()
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
        self.shared.state().clear_entries();
    }
}

impl ValidationCacheBuilder {
    /// Watch only these products' revocations, and cache only their sessions. By default the
    /// stream carries every product the caller may see, and every answer is cached.
    pub fn products(mut self, products: impl IntoIterator<Item = Product>) -> Self {
        self.settings.products = products.into_iter().collect();
        self
    }

    /// At most this many sessions cached (default 10 000); the oldest go first.
    pub fn max_entries(mut self, max_entries: usize) -> Self {
        self.settings.max_entries = max_entries;
        self
    }

    /// An entry is dropped this long after it was fetched (default 60 s), or at the session's
    /// expiry if sooner.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.settings.max_age = max_age;
        self
    }

    /// A stream silent for this long is taken as broken and reopened (default 30 s; the server
    /// sends a keep-alive every 10 s).
    pub fn stream_timeout(mut self, timeout: Duration) -> Self {
        self.settings.stream_timeout = timeout;
        self
    }

    /// The longest wait between attempts to reopen the stream (default 2 s).
    pub fn max_reconnect_delay(mut self, delay: Duration) -> Self {
        self.settings.max_reconnect_delay = delay.max(RECONNECT_BASE);
        self
    }

    /// How validations sent to the server are retried (default: the connection's policy).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.settings.retry = Some(policy);
        self
    }

    /// Starts the cache and its revocation stream (on the current Tokio runtime). It answers
    /// from the server until the stream is live; see [`ValidationCache::wait_live`].
    pub async fn start(self) -> ValidationCache {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            live: watch::channel(false).0,
            connector: self.connector,
            connection: Mutex::new(None),
            settings: self.settings,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            bypassed: AtomicU64::new(0),
            reconnect: Notify::new(),
            health: HealthSignal::new(),
        });
        let task = tokio::spawn(follow(shared.clone()));
        ValidationCache {
            shared,
            _task: Arc::new(TaskGuard(task)),
        }
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
                let connection = (self.connector)().await?;
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
                state.generation += 1;
            }
            self.live.send_replace(live);
        }
    }
}

/// Follows the revocation stream for as long as the cache exists.
async fn follow(shared: Arc<Shared>) {
    let settings = &shared.settings;
    let mut failures: u32 = 0;
    loop {
        if failures > 0 {
            let ceiling = RECONNECT_BASE
                .saturating_mul(2_u32.saturating_pow(failures - 1))
                .min(settings.max_reconnect_delay);
            tokio::time::sleep(ceiling / 2 + jitter(ceiling / 2)).await;
        }
        failures = failures.saturating_add(1);

        let connection = match (shared.connector)().await {
            Ok(connection) => connection,
            Err(err) => {
                shared.refused(err.to_string());
                continue;
            }
        };
        *shared.connection_slot() = Some(connection.clone());
        let client = SessionClient::new(&connection)
            .with_retry_policy(RetryPolicy::no_retries().deadline(settings.stream_timeout));
        let cursor = shared.state().cursor.clone();
        let opened = tokio::select! {
            opened = tokio::time::timeout(
                settings.stream_timeout,
                client.watch_revocations(cursor.as_deref(), &settings.products),
            ) => opened,
            () = shared.reconnect.notified() => continue,
        };
        let mut stream = match opened {
            Err(_) => {
                shared.refused("opening the stream timed out".into());
                continue;
            }
            Ok(Ok(stream)) => stream,
            Ok(Err(Error::CursorExpired)) => {
                // The server no longer has our position: nothing cached can be vetted.
                let mut state = shared.state();
                state.clear_entries();
                state.cursor = None;
                state.generation += 1;
                state.last_error = Some(Error::CursorExpired.to_string());
                failures = 0;
                continue;
            }
            Ok(Err(err)) => {
                shared.refused(err.to_string());
                continue;
            }
        };
        shared.state().streams_opened += 1;

        let ended = loop {
            let next = tokio::select! {
                next = tokio::time::timeout(settings.stream_timeout, stream.next()) => next,
                () = shared.reconnect.notified() => break RECONNECT_REQUESTED.to_owned(),
            };
            match next {
                Ok(Ok(Some(batch))) => {
                    let mut state = shared.state();
                    let caught_up = state.apply(batch);
                    if caught_up {
                        shared.set_live(&mut state, true);
                        // A later break reopens after a short pause, never in a tight loop.
                        failures = 1;
                    }
                }
                Ok(Ok(None)) => break "the server ended the stream".to_owned(),
                Ok(Err(err)) => break err.to_string(),
                Err(_) => break "the stream was silent for too long".to_owned(),
            }
        };
        let mut state = shared.state();
        state.last_error = Some(ended);
        shared.set_live(&mut state, false);
    }
}

/// A cache key: the SHA-256 of the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key([u8; 32]);

impl Key {
    fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }
}

impl Hash for Key {
    /// The digest's first eight bytes: already uniformly spread.
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut head = [0; 8];
        head.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(head));
    }
}

/// Hashes a [`Key`] as the number it writes, without rehashing it: a SHA-256 digest needs no
/// keyed hash against collisions, and only sessions the server validated are ever stored.
#[derive(Debug, Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

type ByKey<V> = HashMap<Key, V, BuildHasherDefault<KeyHasher>>;

#[derive(Debug)]
struct Entry {
    id: u64,
    session: ValidSession,
    expires: Instant,
}

/// What one revocation covers.
#[derive(Debug)]
enum Covered {
    Sessions(Vec<String>),
    /// Every session of the account on the device signed in at or before the instant.
    Device(String, String, SystemTime),
    /// Every session of the account the cut ends.
    Account(String, Cut),
}

/// What a log-out of all sessions ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Every session of the account (an event the cache cannot read precisely).
    Everything,
    /// Every session born in a generation below this one.
    Generation(i64),
    /// Every session signed in at or before this instant (servers without generations).
    Before(SystemTime),
}

impl Cut {
    fn of(event: &RevocationEvent) -> Self {
        if event.cut_generation > 0 {
            Self::Generation(event.cut_generation)
        } else {
            event.revoked_before.map_or(Self::Everything, Self::Before)
        }
    }

    fn ends(self, session: &ValidSession) -> bool {
        match self {
            Self::Everything => true,
            Self::Generation(cut) => session.generation < cut,
            Self::Before(before) => session.signed_in_at <= before,
        }
    }

    /// The cut covering both; cuts only grow.
    fn merge(self, other: Self) -> Self {
        match (self, other) {
            (Self::Generation(a), Self::Generation(b)) => Self::Generation(a.max(b)),
            (Self::Before(a), Self::Before(b)) => Self::Before(a.max(b)),
            _ => Self::Everything,
        }
    }
}

#[derive(Debug)]
struct Tombstone {
    seq: u64,
    at: Instant,
    covered: Covered,
}

#[derive(Debug, Default)]
struct State {
    entries: ByKey<Entry>,
    by_session: HashMap<String, Key>,
    by_account: HashMap<String, HashSet<Key>>,
    /// Keys in insertion order, with the entry id they were inserted as (stale ones skipped).
    order: VecDeque<(Key, u64)>,
    next_id: u64,
    /// Revocation events applied so far; also the sequence number of the latest.
    applied: u64,
    /// Recent revocations, oldest first, and what they cover by session and by account.
    tombstones: VecDeque<Tombstone>,
    revoked_sessions: HashMap<String, u64>,
    cut_offs: HashMap<String, (Cut, u64)>,
    /// Per (account, device): the latest device log-out's cut-off and its sequence number.
    device_cut_offs: HashMap<(String, String), (SystemTime, u64)>,
    /// Revocations up to this sequence number have been forgotten.
    tombstone_floor: u64,
    live: bool,
    /// Bumped whenever the stream stops being live or the cache is reset.
    generation: u64,
    cursor: Option<String>,
    streams_opened: u64,
    last_error: Option<String>,
}

impl State {
    /// A cached session that is still fresh.
    fn lookup(&mut self, key: &Key) -> Option<ValidSession> {
        let entry = self.entries.get(key)?;
        if Instant::now() < entry.expires {
            return Some(entry.session.clone());
        }
        self.remove(key);
        None
    }

    /// Caches `session`, fetched when `applied` events had been applied in `generation`, unless
    /// anything since could have made the answer stale.
    fn insert(
        &mut self,
        key: Key,
        session: &ValidSession,
        applied: u64,
        generation: u64,
        settings: &Settings,
    ) {
        self.prune_tombstones(settings);
        if !self.live
            || self.generation != generation
            || applied < self.tombstone_floor
            || settings.max_entries == 0
            || self.covered(session)
            || (!settings.products.is_empty() && !settings.products.contains(&session.product))
        {
            return;
        }
        let left = session
            .valid_until()
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        let ttl = left.min(settings.max_age);
        if ttl.is_zero() {
            return;
        }
        self.remove(&key);
        while self.entries.len() >= settings.max_entries {
            let Some((oldest, id)) = self.order.pop_front() else {
                break;
            };
            if self
                .entries
                .get(&oldest)
                .is_some_and(|entry| entry.id == id)
            {
                self.remove(&oldest);
            }
        }
        self.next_id += 1;
        let id = self.next_id;
        self.by_session.insert(session.session_id.clone(), key);
        self.by_account
            .entry(session.account_id.clone())
            .or_default()
            .insert(key);
        self.order.push_back((key, id));
        self.entries.insert(
            key,
            Entry {
                id,
                session: session.clone(),
                expires: Instant::now() + ttl,
            },
        );
        // Stale order records pile up as entries are revoked or replaced; compact now and then.
        if self.order.len() > settings.max_entries.saturating_mul(2).max(64) {
            let entries = &self.entries;
            self.order
                .retain(|(key, id)| entries.get(key).is_some_and(|entry| entry.id == *id));
        }
    }

    /// True when a remembered revocation covers `session`.
    fn covered(&self, session: &ValidSession) -> bool {
        self.revoked_sessions.contains_key(&session.session_id)
            || self
                .device_cut_offs
                .get(&(session.account_id.clone(), session.device_id.clone()))
                .is_some_and(|(before, _)| session.signed_in_at <= *before)
            || self
                .cut_offs
                .get(&session.account_id)
                .is_some_and(|(cut, _)| cut.ends(session))
    }

    fn remove(&mut self, key: &Key) {
        let Some(entry) = self.entries.remove(key) else {
            return;
        };
        self.by_session.remove(&entry.session.session_id);
        if let Some(keys) = self.by_account.get_mut(&entry.session.account_id) {
            keys.remove(key);
            if keys.is_empty() {
                self.by_account.remove(&entry.session.account_id);
            }
        }
    }

    fn clear_entries(&mut self) {
        self.entries.clear();
        self.by_session.clear();
        self.by_account.clear();
        self.order.clear();
    }

    /// Applies a batch from the stream. True when it is an empty batch: the stream has caught
    /// up (the first after opening) or is alive (a keep-alive).
    fn apply(&mut self, batch: RevocationBatch) -> bool {
        let caught_up = batch.events.is_empty();
        for event in batch.events {
            self.apply_event(event);
        }
        self.cursor = Some(batch.cursor);
        caught_up
    }

    fn apply_event(&mut self, event: RevocationEvent) {
        let covered = match event.scope {
            RevocationScope::Device => match (event.device_id, event.revoked_before) {
                (Some(device), Some(before)) => Covered::Device(event.account_id, device, before),
                _ if !event.session_ids.is_empty() => Covered::Sessions(event.session_ids),
                _ => Covered::Account(event.account_id, Cut::Everything),
            },
            RevocationScope::Session if !event.session_ids.is_empty() => {
                Covered::Sessions(event.session_ids)
            }
            RevocationScope::All => {
                let cut = Cut::of(&event);
                Covered::Account(event.account_id, cut)
            }
            // Unknown scopes, or no session named: drop the whole account to be safe.
            _ => Covered::Account(event.account_id, Cut::Everything),
        };
        self.applied += 1;
        let seq = self.applied;
        match &covered {
            Covered::Sessions(ids) => {
                for id in ids {
                    if let Some(key) = self.by_session.get(id).copied() {
                        self.remove(&key);
                    }
                    self.revoked_sessions.insert(id.clone(), seq);
                }
            }
            Covered::Device(account, device, before) => {
                let keys: Vec<Key> = self
                    .by_account
                    .get(account)
                    .map(|keys| keys.iter().copied().collect())
                    .unwrap_or_default();
                for key in keys {
                    let ended = self.entries.get(&key).is_some_and(|entry| {
                        entry.session.device_id == *device && entry.session.signed_in_at <= *before
                    });
                    if ended {
                        self.remove(&key);
                    }
                }
                let slot = (account.clone(), device.clone());
                let merged = self
                    .device_cut_offs
                    .get(&slot)
                    .map_or(*before, |(old, _)| (*old).max(*before));
                self.device_cut_offs.insert(slot, (merged, seq));
            }
            Covered::Account(account, cut) => {
                let keys: Vec<Key> = self
                    .by_account
                    .get(account)
                    .map(|keys| keys.iter().copied().collect())
                    .unwrap_or_default();
                for key in keys {
                    let ended = self
                        .entries
                        .get(&key)
                        .is_some_and(|entry| cut.ends(&entry.session));
                    if ended {
                        self.remove(&key);
                    }
                }
                let merged = match self.cut_offs.get(account) {
                    Some((old, _)) => old.merge(*cut),
                    None => *cut,
                };
                self.cut_offs.insert(account.clone(), (merged, seq));
            }
        }
        self.tombstones.push_back(Tombstone {
            seq,
            at: Instant::now(),
            covered,
        });
    }

    /// Forgets revocations older than the retention, or beyond the count bound.
    fn prune_tombstones(&mut self, settings: &Settings) {
        let max = settings.max_entries.max(1_024);
        while let Some(oldest) = self.tombstones.front() {
            if self.tombstones.len() <= max && oldest.at.elapsed() < TOMBSTONE_RETENTION {
                break;
            }
            let Some(oldest) = self.tombstones.pop_front() else {
                break;
            };
            self.tombstone_floor = oldest.seq;
            match oldest.covered {
                Covered::Sessions(ids) => {
                    for id in ids {
                        if self.revoked_sessions.get(&id) == Some(&oldest.seq) {
                            self.revoked_sessions.remove(&id);
                        }
                    }
                }
                Covered::Device(account, device, _) => {
                    let slot = (account, device);
                    if self
                        .device_cut_offs
                        .get(&slot)
                        .is_some_and(|(_, seq)| *seq == oldest.seq)
                    {
                        self.device_cut_offs.remove(&slot);
                    }
                }
                Covered::Account(account, _) => {
                    if self
                        .cut_offs
                        .get(&account)
                        .is_some_and(|(_, seq)| *seq == oldest.seq)
                    {
                        self.cut_offs.remove(&account);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn settings(max_entries: usize) -> Settings {
        Settings {
            products: Vec::new(),
            max_entries,
            max_age: Duration::from_secs(60),
            stream_timeout: Duration::from_secs(30),
            max_reconnect_delay: Duration::from_secs(1),
            retry: None,
        }
    }

    fn session(id: &str, account: &str, signed_in_secs_ago: u64) -> ValidSession {
        let now = SystemTime::now();
        ValidSession {
            session_id: id.into(),
            account_id: account.into(),
            product: Product::Chatgpt,
            device_id: "d".into(),
            signed_in_at: now - Duration::from_secs(signed_in_secs_ago),
            expires_at: now + Duration::from_secs(3600),
            idle_expires_at: now + Duration::from_secs(3600),
            generation: 0,
        }
    }

    fn live_state() -> State {
        State {
            live: true,
            ..State::default()
        }
    }

    fn event(scope: RevocationScope, account: &str, ids: &[&str]) -> RevocationEvent {
        RevocationEvent {
            cursor: "1".into(),
            revocation_id: "r".into(),
            account_id: account.into(),
            scope,
            session_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
            products: vec![Product::Chatgpt],
            revoked_at: None,
            revoked_before: Some(SystemTime::now() - Duration::from_secs(5)),
            device_id: None,
            cut_generation: 0,
            includes_hidden_kinds: false,
            kept_session_id: None,
            reason: crate::proto::RevocationReason::UserLogOut,
        }
    }

    fn batch(events: Vec<RevocationEvent>) -> RevocationBatch {
        RevocationBatch {
            events,
            cursor: "9".into(),
        }
    }

    #[test]
    fn revocations_drop_what_they_cover() {
        let settings = settings(100);
        let mut state = live_state();
        state.insert(Key::of("a"), &session("s-a", "acct", 60), 0, 0, &settings);
        state.insert(Key::of("b"), &session("s-b", "acct", 60), 0, 0, &settings);
        state.insert(Key::of("c"), &session("s-c", "acct", 1), 0, 0, &settings);
        state.insert(Key::of("d"), &session("s-d", "other", 60), 0, 0, &settings);
        assert_eq!(state.entries.len(), 4);

        assert!(!state.apply(batch(vec![event(
            RevocationScope::Session,
            "acct",
            &["s-a"]
        )])));
        assert!(state.lookup(&Key::of("a")).is_none());
        assert!(state.lookup(&Key::of("b")).is_some());

        // Scope ALL: only what was signed in before the cut-off (5 s ago).
        state.apply(batch(vec![event(RevocationScope::All, "acct", &[])]));
        assert!(state.lookup(&Key::of("b")).is_none());
        assert!(state.lookup(&Key::of("c")).is_some());
        assert!(state.lookup(&Key::of("d")).is_some());
        assert_eq!(state.cursor.as_deref(), Some("9"));
        assert!(state.apply(batch(vec![])));
    }

    #[test]
    fn a_log_out_of_all_ends_sessions_by_generation_whatever_the_clocks() {
        let settings = settings(100);
        let mut state = live_state();
        // Born before the log-out, but stamped by a replica whose clock runs ahead.
        let mut ahead = session("s-ahead", "acct", 0);
        ahead.signed_in_at = SystemTime::now() + Duration::from_secs(300);
        // Born after the log-out, stamped by a replica whose clock runs behind.
        let mut behind = session("s-behind", "acct", 600);
        behind.generation = 1;
        state.insert(Key::of("ahead"), &ahead, 0, 0, &settings);
        state.insert(Key::of("behind"), &behind, 0, 0, &settings);
        let mut cut = event(RevocationScope::All, "acct", &[]);
        cut.cut_generation = 1;
        state.apply(batch(vec![cut]));
        assert!(state.lookup(&Key::of("ahead")).is_none());
        assert!(state.lookup(&Key::of("behind")).is_some());
        // A later answer for a session born before the cut is refused; one born after is kept.
        state.insert(Key::of("ahead"), &ahead, 1, 0, &settings);
        assert!(state.lookup(&Key::of("ahead")).is_none());
        let mut later = session("s-later", "acct", 900);
        later.generation = 1;
        state.insert(Key::of("later"), &later, 1, 0, &settings);
        assert!(state.lookup(&Key::of("later")).is_some());
        // An older cut arriving late never moves the remembered one back.
        let mut older = event(RevocationScope::All, "acct", &[]);
        older.cut_generation = 1;
        let mut newer = event(RevocationScope::All, "acct", &[]);
        newer.cut_generation = 2;
        state.apply(batch(vec![newer, older]));
        assert!(state.lookup(&Key::of("later")).is_none());
        assert_eq!(
            state.cut_offs.get("acct").map(|(cut, _)| *cut),
            Some(Cut::Generation(2))
        );
    }

    #[test]
    fn answers_fetched_around_a_revocation_are_not_cached() {
        let settings = settings(100);
        let mut state = live_state();
        state.apply(batch(vec![event(
            RevocationScope::Device,
            "acct",
            &["s-a"],
        )]));
        state.apply(batch(vec![event(RevocationScope::All, "acct2", &[])]));
        // Fetched before the revocations were applied (applied = 0), or after: both refused.
        state.insert(Key::of("a"), &session("s-a", "acct", 60), 0, 0, &settings);
        state.insert(Key::of("a"), &session("s-a", "acct", 60), 2, 0, &settings);
        state.insert(Key::of("b"), &session("s-b", "acct2", 60), 2, 0, &settings);
        assert!(state.entries.is_empty());
        // A session signed in after the cut-off is fine.
        state.insert(Key::of("c"), &session("s-c", "acct2", 0), 2, 0, &settings);
        assert_eq!(state.entries.len(), 1);
        // Not live, or a generation change: refused.
        state.live = false;
        state.insert(Key::of("d"), &session("s-d", "acct3", 60), 2, 0, &settings);
        state.live = true;
        state.generation = 1;
        state.insert(Key::of("d"), &session("s-d", "acct3", 60), 2, 0, &settings);
        assert_eq!(state.entries.len(), 1);
    }

    #[test]
    fn a_device_revocation_drops_the_device_by_its_cut_off_without_naming_sessions() {
        let settings = settings(100);
        let mut state = live_state();
        let on = |id: &str, device: &str, secs_ago: u64| ValidSession {
            device_id: device.into(),
            ..session(id, "acct", secs_ago)
        };
        state.insert(Key::of("a"), &on("s-a", "laptop", 60), 0, 0, &settings);
        state.insert(Key::of("b"), &on("s-b", "laptop", 1), 0, 0, &settings);
        state.insert(Key::of("c"), &on("s-c", "phone", 60), 0, 0, &settings);
        state.insert(
            Key::of("d"),
            &ValidSession {
                device_id: "laptop".into(),
                ..session("s-d", "other", 60)
            },
            0,
            0,
            &settings,
        );
        // 100,000 sessions logged out on the laptop: no ids, the device and the cut-off (5 s ago).
        let mut device = event(RevocationScope::Device, "acct", &[]);
        device.device_id = Some("laptop".into());
        state.apply(batch(vec![device]));
        assert!(
            state.lookup(&Key::of("a")).is_none(),
            "signed in before the cut-off"
        );
        assert!(state.lookup(&Key::of("b")).is_some(), "signed in after it");
        assert!(state.lookup(&Key::of("c")).is_some(), "another device");
        assert!(state.lookup(&Key::of("d")).is_some(), "another account");
        // An answer fetched around it is refused for the device, not for others.
        state.insert(Key::of("e"), &on("s-e", "laptop", 30), 0, 0, &settings);
        state.insert(Key::of("f"), &on("s-f", "phone", 30), 0, 0, &settings);
        assert!(state.lookup(&Key::of("e")).is_none());
        assert!(state.lookup(&Key::of("f")).is_some());
        // Without a device (an older server), no ids: the whole account goes.
        state.apply(batch(vec![event(RevocationScope::Device, "acct", &[])]));
        assert!(state.lookup(&Key::of("c")).is_none());
        assert!(state.lookup(&Key::of("d")).is_some());
    }

    #[test]
    fn size_and_age_are_bounded() {
        let settings = settings(2);
        let mut state = live_state();
        for (i, token) in ["a", "b", "c"].iter().enumerate() {
            state.insert(
                Key::of(token),
                &session(&format!("s{i}"), "acct", 60),
                0,
                0,
                &settings,
            );
        }
        assert_eq!(state.entries.len(), 2);
        assert!(
            state.lookup(&Key::of("a")).is_none(),
            "the oldest went first"
        );

        let mut expiring = session("s9", "acct", 60);
        expiring.idle_expires_at = SystemTime::now() - Duration::from_secs(1);
        state.insert(Key::of("z"), &expiring, 0, 0, &settings);
        assert!(
            state.lookup(&Key::of("z")).is_none(),
            "never past idle expiry"
        );

        let short = Settings {
            max_age: Duration::from_millis(1),
            ..settings
        };
        state.insert(Key::of("y"), &session("s8", "acct", 60), 0, 0, &short);
        std::thread::sleep(Duration::from_millis(5));
        assert!(state.lookup(&Key::of("y")).is_none(), "never past max age");
    }
}
