//! The revocation feed: one task per server follows the revocation log (woken at once by local
//! revocations, polling for other replicas' ones), forgets the cached validations each
//! revocation covers, and fans batches out to every WatchRevocations stream. A stream first
//! catches up from the log after its cursor, then follows the live batches, skipping what it
//! has already sent; if it falls behind the fan-out it catches up from the log again. Nothing is
//! missed and nothing is sent twice, in commit order.

use std::{sync::Arc, time::Duration};

use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::Sessions;
use crate::{
    domain::{DomainError, revocation::Revocation, session::Product},
    store::{Store, StoreError, revocations},
};

/// Revocations read from the log per query.
const READ_BATCH: u64 = 500;
/// A stream with nothing to say sends its cursor this often, so clients know it is alive.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

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
}

impl RevocationFeed {
    /// Starts following from the log's current end.
    pub(super) async fn start(store: &Store) -> Result<Self, StoreError> {
        let head = revocations::head(store.reader()).await?;
        Ok(Self {
            batches: broadcast::channel(256).0,
            head: watch::channel(head).0,
            wake: Notify::new(),
        })
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
            loop {
                let batch = match revocations::after(self.inner.store.reader(), last, READ_BATCH)
                    .await
                {
                    Ok(batch) => batch,
                    Err(err) => {
                        tracing::warn!(error = %err, "reading the revocation log failed; will retry");
                        break;
                    }
                };
                let Some(newest) = batch.last().map(|r| r.seq) else {
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
    ) -> Result<mpsc::Receiver<Result<WatchBatch, DomainError>>, DomainError> {
        // Subscribe before reading the log, so nothing committed in between is missed.
        let live = self.inner.feed.batches.subscribe();
        let head = revocations::head(self.inner.store.reader()).await?;
        let start = match cursor {
            Some(cursor) if cursor > head || cursor < 0 => return Err(DomainError::CursorExpired),
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
        tx: mpsc::Sender<Result<WatchBatch, DomainError>>,
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
                .filter(|r| products.is_empty() || r.products.iter().any(|p| products.contains(p)))
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
                () = &mut keepalive => WatchBatch { events: Vec::new(), cursor: position },
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
        tx: &mpsc::Sender<Result<WatchBatch, DomainError>>,
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
