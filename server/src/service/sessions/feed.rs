//! The revocation feed: one task per server follows the revocation log (woken at once by local
//! revocations, polling for other replicas' ones), forgets the cached validations each
//! revocation covers, and fans batches out to every WatchRevocations stream. A stream first
//! catches up from the log after its cursor, then follows the live batches, skipping what it
//! has already sent; if it falls behind the fan-out it catches up from the log again. Nothing is
//! missed and nothing is sent twice, in commit order.
//!
//! The feed also says how fresh it is: the instant its last complete read of the log began
//! (every revocation committed before it has been applied to the cache). The cache answers
//! only while that instant is younger than [`RevocationFeed::max_staleness`]; past it, a
//! replica that cannot hear revocations stops vouching from memory (fail closed), and health
//! reports NOT_SERVING.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::Sessions;
use crate::service::ServiceError;
use crate::{
    domain::{
        revocation::{Revocation, RevocationScope},
        session::Product,
    },
    store::{Store, StoreError, revocations},
};

/// Revocations read from the log per query.
const READ_BATCH: u64 = 500;
/// A stream with nothing to say sends its cursor this often, so clients know it is alive.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// The documented freshness bound: the cache answers from memory only while the feed's last
/// complete read of the log began less than this long ago (or twice the poll interval, if that
/// is longer). It bounds how long after a revocation committed on another replica this one can
/// still answer "valid" from memory.
pub const MAX_FEED_STALENESS: Duration = Duration::from_millis(500);

/// A batch of revocations fanned out to streams.
pub type RevocationBatch = Arc<Vec<Revocation>>;

/// What a WatchRevocations stream sends: revocations (possibly none, as a keep-alive) and the
/// cursor after them.
#[derive(Debug, Clone)]
pub struct WatchBatch {
    /// Revocations in commit order.
    pub events: Vec<Revocation>,
    /// The log position after them.
    pub cursor: i64,
}

/// The per-server follower of the revocation log.
#[derive(Debug)]
pub struct RevocationFeed {
    batches: broadcast::Sender<RevocationBatch>,
    head: watch::Sender<i64>,
    wake: Notify,
    /// When the feed was created; `caught_up_micros` counts from here.
    origin: Instant,
    /// Microseconds from `origin` to the start of the latest complete read (0: none yet).
    caught_up_micros: AtomicU64,
    max_staleness: Duration,
}

impl RevocationFeed {
    /// Starts following from the log's current end. With `poll_interval` the freshness bound
    /// is [`MAX_FEED_STALENESS`] or twice the interval, whichever is longer.
    pub(super) async fn start(store: &Store, poll_interval: Duration) -> Result<Self, StoreError> {
        let origin = Instant::now();
        let head = revocations::head(store.reader()).await?;
        let feed = Self {
            batches: broadcast::channel(256).0,
            head: watch::channel(head).0,
            wake: Notify::new(),
            origin,
            caught_up_micros: AtomicU64::new(0),
            max_staleness: MAX_FEED_STALENESS.max(poll_interval.saturating_mul(2)),
        };
        feed.caught_up_since(origin);
        Ok(feed)
    }

    /// Records that every revocation committed before `started` has been applied.
    fn caught_up_since(&self, started: Instant) {
        let micros = u64::try_from(started.duration_since(self.origin).as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.caught_up_micros.fetch_max(micros, Ordering::SeqCst);
    }

    /// How long ago the latest complete read of the log began.
    pub fn staleness(&self) -> Duration {
        let micros = self.caught_up_micros.load(Ordering::SeqCst);
        if micros == 0 {
            return Duration::MAX;
        }
        let caught_up = self.origin + Duration::from_micros(micros);
        Instant::now().saturating_duration_since(caught_up)
    }

    /// The freshness bound in force.
    pub fn max_staleness(&self) -> Duration {
        self.max_staleness
    }

    /// True while the feed is fresh enough for the cache to answer from memory.
    pub fn is_fresh(&self) -> bool {
        self.staleness() < self.max_staleness
    }

    /// Asks the follower to read the log now (a revocation was just committed here).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The last log position the follower has published.
    pub fn head(&self) -> i64 {
        *self.head.borrow()
    }
}

impl Sessions {
    /// Wakes the feed whenever PostgreSQL announces a revocation committed by any replica, so
    /// propagation does not wait for the poll. Reconnects after a failure; polling covers the
    /// gap.
    pub(super) async fn listen_for_revocations_until(self, stop: CancellationToken) {
        loop {
            let mut listener = match self.inner.store.revocation_listener().await {
                Ok(Some(listener)) => listener,
                Ok(None) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot LISTEN for revocations; polling meanwhile");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    received = listener.recv() => match received {
                        Ok(_) => self.inner.feed.wake(),
                        Err(err) => {
                            tracing::warn!(error = %err, "revocation LISTEN connection lost; reconnecting");
                            break;
                        }
                    },
                }
            }
        }
    }

    /// Follows the revocation log until `stop`.
    pub(super) async fn follow_feed_until(self, stop: CancellationToken) {
        let feed = &self.inner.feed;
        let mut last = feed.head();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = feed.wake.notified() => {}
                () = tokio::time::sleep(self.inner.settings.feed_poll_interval) => {}
            }
            // Everything committed before this instant is in what the reads below return.
            let started = Instant::now();
            let mut retried = false;
            loop {
                let batch = match revocations::after(self.inner.store.reader(), last, READ_BATCH)
                    .await
                {
                    Ok(batch) => batch,
                    // The read did nothing; the pool now checks a connection before the retry,
                    // so a broken connection does not cost the feed a poll interval.
                    Err(err) if err.is_connection_broken() && !retried => {
                        retried = true;
                        continue;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "reading the revocation log failed; will retry");
                        break;
                    }
                };
                let Some(newest) = batch.last().map(|r| r.seq) else {
                    // Caught up: every revocation committed before `started` is applied.
                    feed.caught_up_since(started);
                    break;
                };
                let now = self.inner.clock.now();
                for revocation in &batch {
                    let lag = now
                        .as_micros()
                        .saturating_sub(revocation.effective_at.as_micros());
                    crate::telemetry::metrics::metrics()
                        .revocation_propagation_lag
                        .record(lag.max(0) as f64 / 1e6, &[]);
                    self.inner.cache.apply(revocation);
                }
                last = newest;
                feed.head.send_replace(last);
                // No receivers is fine: nobody is watching.
                let _ = feed.batches.send(Arc::new(batch));
            }
        }
    }

    /// Opens a revocation stream after `cursor` (or from now), for revocations touching
    /// `products` (all when empty). OUT_OF_RANGE when the cursor is ahead of the log.
    pub async fn watch_revocations(
        &self,
        cursor: Option<i64>,
        products: Vec<Product>,
        stop: CancellationToken,
    ) -> Result<mpsc::Receiver<Result<WatchBatch, ServiceError>>, ServiceError> {
        // Subscribe before reading the log, so nothing committed in between is missed.
        let live = self.inner.feed.batches.subscribe();
        let head = revocations::head(self.inner.store.reader()).await?;
        let pruned_through = revocations::pruned_through(self.inner.store.reader()).await?;
        let start = match cursor {
            // Ahead of the log (not issued here), or behind what the log still keeps.
            Some(cursor) if cursor > head || cursor < pruned_through || cursor < 0 => {
                return Err(ServiceError::CursorExpired);
            }
            Some(cursor) => cursor,
            None => head,
        };
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(
            self.clone()
                .stream_revocations(tx, live, start, products, stop),
        );
        Ok(rx)
    }

    async fn stream_revocations(
        self,
        tx: mpsc::Sender<Result<WatchBatch, ServiceError>>,
        mut live: broadcast::Receiver<RevocationBatch>,
        mut position: i64,
        products: Vec<Product>,
        stop: CancellationToken,
    ) {
        let filter = |revocations: &[Revocation], position: &mut i64| -> Vec<Revocation> {
            let fresh: Vec<&Revocation> =
                revocations.iter().filter(|r| r.seq > *position).collect();
            if let Some(last) = fresh.last() {
                *position = last.seq;
            }
            fresh
                .into_iter()
                .filter(|r| {
                    // A log-out of all is written before its sessions are counted: it concerns
                    // every product.
                    products.is_empty()
                        || r.scope == RevocationScope::All
                        || r.products.iter().any(|p| products.contains(p))
                })
                .cloned()
                .collect()
        };
        // Catch up from the log, then announce the starting cursor.
        if !self.catch_up(&tx, &mut position, &filter).await {
            return;
        }
        if tx
            .send(Ok(WatchBatch {
                events: Vec::new(),
                cursor: position,
            }))
            .await
            .is_err()
        {
            return;
        }
        // One timer, reset only when something is sent: filtered-out batches advance the
        // position but must not postpone the keep-alive that tells the client the new cursor.
        let keepalive = tokio::time::sleep(KEEPALIVE_INTERVAL);
        tokio::pin!(keepalive);
        loop {
            let batch = tokio::select! {
                () = stop.cancelled() => return,
                () = tx.closed() => return,
                received = live.recv() => match received {
                    Ok(batch) => {
                        let events = filter(&batch, &mut position);
                        if events.is_empty() {
                            continue;
                        }
                        WatchBatch { events, cursor: position }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if !self.catch_up(&tx, &mut position, &filter).await {
                            return;
                        }
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                () = &mut keepalive => {
                    // A replica that cannot hear the log must not tell clients their cache is
                    // up to date: no keep-alive while the feed is stale, so their stream
                    // timeout takes them off their caches.
                    if !self.inner.feed.is_fresh() {
                        keepalive
                            .as_mut()
                            .reset(tokio::time::Instant::now() + KEEPALIVE_INTERVAL);
                        continue;
                    }
                    WatchBatch { events: Vec::new(), cursor: position }
                }
            };
            if tx.send(Ok(batch)).await.is_err() {
                return;
            }
            keepalive
                .as_mut()
                .reset(tokio::time::Instant::now() + KEEPALIVE_INTERVAL);
        }
    }

    /// Sends everything in the log after `position`. False when the stream is gone or failed.
    async fn catch_up(
        &self,
        tx: &mpsc::Sender<Result<WatchBatch, ServiceError>>,
        position: &mut i64,
        filter: &impl Fn(&[Revocation], &mut i64) -> Vec<Revocation>,
    ) -> bool {
        loop {
            let batch =
                match revocations::after(self.inner.store.reader(), *position, READ_BATCH).await {
                    Ok(batch) => batch,
                    Err(err) => {
                        let _ = tx.send(Err(err.into())).await;
                        return false;
                    }
                };
            // The pruner may have deleted rows past this position since the stream opened: then
            // the batch skipped them, and the client must resynchronise.
            match revocations::pruned_through(self.inner.store.reader()).await {
                Ok(pruned) if pruned > *position => {
                    let _ = tx.send(Err(ServiceError::CursorExpired)).await;
                    return false;
                }
                Ok(_) => {}
                Err(err) => {
                    let _ = tx.send(Err(err.into())).await;
                    return false;
                }
            }
            if batch.is_empty() {
                return true;
            }
            let events = filter(&batch, position);
            if !events.is_empty()
                && tx
                    .send(Ok(WatchBatch {
                        events,
                        cursor: *position,
                    }))
                    .await
                    .is_err()
            {
                return false;
            }
        }
    }
}
