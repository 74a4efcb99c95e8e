//! Keeps a replica's clock on the database's. Every time decision (expiry, idle timeout, trust
//! expiry, the sign-in and log-out times shown on the page) reads the server's clock; on
//! PostgreSQL several replicas share one database, so each measures how far its own wall clock
//! is from the database server's (`clock_timestamp()`) and corrects by that offset
//! ([`AlignedClock`]). The database is then the one time authority: two replicas agree on "now"
//! to within the measurement's uncertainty (half the round trip of the best sample, a few
//! milliseconds) plus the drift between measurements, however far apart their own clocks are.
//! SQLite's clock is this host's, so nothing is measured there.
//!
//! The offset is measured before the server starts serving (best of [`SAMPLES`] round trips)
//! and again every [`REMEASURE_EVERY`]; a measurement whose best round trip is slower than
//! [`MAX_ROUND_TRIP`] is discarded and the previous offset kept. A replica whose clock is more
//! than [`WARN_OFFSET`] off logs it at warn: its host's NTP needs looking at, but its answers
//! stay correct.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use crate::{
    clock::{AlignedClock, Clock, SystemClock},
    store::{Store, StoreError},
};

/// Round trips per measurement; the one with the shortest round trip wins.
pub const SAMPLES: usize = 5;
/// How often the offset is measured again.
pub const REMEASURE_EVERY: Duration = Duration::from_secs(30);
/// A measurement slower than this says little about the offset and is discarded.
pub const MAX_ROUND_TRIP: Duration = Duration::from_millis(100);
/// An offset beyond this is logged at warn.
pub const WARN_OFFSET: Duration = Duration::from_secs(1);

/// One measurement of the database's clock against this host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offset {
    /// The database's clock minus this host's, in microseconds.
    pub micros: i64,
    /// Half the round trip of the sample it comes from: the most it can be wrong by.
    pub uncertainty_micros: i64,
}

/// Measures the offset: the best of `SAMPLES` round trips. `None` on engines without a clock
/// of their own, or when every sample was slower than `MAX_ROUND_TRIP`.
pub async fn measure(store: &Store) -> Result<Option<Offset>, StoreError> {
    let mut best: Option<Offset> = None;
    for _ in 0..SAMPLES {
        let sent = SystemClock.now().as_micros();
        let Some(database) = store.database_clock_micros().await? else {
            return Ok(None);
        };
        let received = SystemClock.now().as_micros();
        let round_trip = received.saturating_sub(sent).max(0);
        if round_trip > i64::try_from(MAX_ROUND_TRIP.as_micros()).unwrap_or(i64::MAX) {
            continue;
        }
        let sample = Offset {
            micros: database.saturating_sub(sent.saturating_add(round_trip / 2)),
            uncertainty_micros: round_trip / 2,
        };
        if best.is_none_or(|best| sample.uncertainty_micros < best.uncertainty_micros) {
            best = Some(sample);
        }
    }
    Ok(best)
}

/// Measures once and applies the result to `clock`; logs a large offset. A failed or
/// inconclusive measurement leaves the clock as it was.
pub async fn align(store: &Store, clock: &AlignedClock) {
    match measure(store).await {
        Ok(Some(offset)) => {
            clock.set_offset_micros(offset.micros);
            crate::telemetry::metrics::metrics().record_clock_offset(offset.micros);
            let off_by = Duration::from_micros(offset.micros.unsigned_abs());
            if off_by > WARN_OFFSET {
                tracing::warn!(
                    offset_ms = offset.micros / 1_000,
                    uncertainty_ms = offset.uncertainty_micros / 1_000,
                    "this host's clock is off the database's; time decisions use the database's"
                );
            } else {
                tracing::debug!(
                    offset_ms = offset.micros / 1_000,
                    uncertainty_ms = offset.uncertainty_micros / 1_000,
                    "clock aligned on the database's"
                );
            }
        }
        Ok(None) => {}
        Err(error) => {
            tracing::warn!(%error, "could not read the database's clock; keeping the last offset");
        }
    }
}

/// Re-measures every `REMEASURE_EVERY` until `cancel`.
pub async fn keep_aligned(store: Store, clock: Arc<AlignedClock>, cancel: CancellationToken) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(REMEASURE_EVERY) => align(&store, &clock).await,
        }
    }
}
