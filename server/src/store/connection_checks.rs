//! When a pooled connection is checked (one round trip to the database) before a statement
//! uses it. sqlx checks every connection it hands out, which costs a round trip on every call:
//! to PostgreSQL, or to SQLite's worker thread. Here a connection is checked only when it has
//! sat idle for `--database-check-idle-after`, the connections a database or a proxy most
//! often ends, or when it has sat idle since some call found a connection broken: a database
//! that ends one connection (a restart, a failover, `pg_terminate_backend`) usually ends them
//! all, so after the first call to meet a broken connection the others are checked and
//! replaced before use rather than each failing a call of its own.
//!
//! A broken connection is noticed where the store classifies errors (`error.rs`), which has no
//! store at hand, so the instant of the last one is process-wide. Another store in the same
//! process (tests run several) then checks its idle connections once more than it needed to,
//! which costs a round trip and nothing else.

use std::{
    sync::{
        LazyLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use sea_orm::{ConnectOptions, sqlx};

/// The instant the process's connection checks count from.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// When a call last found a connection broken, in microseconds after [`EPOCH`] (0: never).
static LAST_BROKEN: AtomicU64 = AtomicU64::new(0);

fn micros_since_epoch() -> u64 {
    u64::try_from(EPOCH.elapsed().as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Records that a call found a connection broken: every connection idle since then is
/// checked before its next use.
pub(crate) fn record_broken_connection() {
    LAST_BROKEN.fetch_max(micros_since_epoch(), Ordering::Relaxed);
}

/// Whether a connection that has sat idle for `idle_for` is checked before use, at `now`
/// (microseconds after [`EPOCH`]) with the last breakage at `last_broken` (0: none).
fn needs_check(idle_for: Duration, check_idle_after: Duration, now: u64, last_broken: u64) -> bool {
    if idle_for >= check_idle_after {
        return true;
    }
    if last_broken == 0 {
        return false;
    }
    // Returned to the pool at or before the last breakage: it may be broken too.
    let returned_at = now.saturating_sub(u64::try_from(idle_for.as_micros()).unwrap_or(u64::MAX));
    returned_at <= last_broken
}

/// Installs the checks on both engines' pools (sqlx's check of every connection is off).
pub(crate) fn install(options: &mut ConnectOptions, check_idle_after: Duration) {
    LazyLock::force(&EPOCH);
    options
        .test_before_acquire(false)
        .map_sqlx_postgres_before_acquire(move |conn, meta| {
            check(conn, meta.idle_for, check_idle_after)
        })
        .map_sqlx_sqlite_before_acquire(move |conn, meta| {
            check(conn, meta.idle_for, check_idle_after)
        });
}

/// The check: a ping when [`needs_check`] says so. An error makes sqlx close the connection and
/// hand out another (or open a new one).
fn check<C: sqlx::Connection>(
    conn: &mut C,
    idle_for: Duration,
    check_idle_after: Duration,
) -> BoxFuture<'_, Result<bool, sqlx::Error>> {
    Box::pin(async move {
        let (now, last_broken) = (micros_since_epoch(), LAST_BROKEN.load(Ordering::Relaxed));
        if needs_check(idle_for, check_idle_after, now, last_broken) {
            conn.ping().await?;
        }
        Ok(true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const AFTER: Duration = Duration::from_millis(500);

    #[test]
    fn a_connection_idle_past_the_threshold_is_checked() {
        assert!(needs_check(AFTER, AFTER, 10_000_000, 0));
        assert!(needs_check(Duration::from_secs(60), AFTER, 90_000_000, 0));
        assert!(!needs_check(
            Duration::from_millis(499),
            AFTER,
            10_000_000,
            0
        ));
        assert!(needs_check(Duration::ZERO, Duration::ZERO, 10_000_000, 0));
    }

    #[test]
    fn a_connection_idle_since_a_breakage_is_checked_and_a_later_one_is_not() {
        // Now is 10 s; a connection was found broken at 9.9 s.
        let (now, broken) = (10_000_000, 9_900_000);
        // Returned at 9.8 s (idle 200 ms): it sat in the pool through the breakage.
        assert!(needs_check(Duration::from_millis(200), AFTER, now, broken));
        // Returned at 9.9 s exactly: checked too.
        assert!(needs_check(Duration::from_millis(100), AFTER, now, broken));
        // Returned at 9.95 s, after the breakage was seen: it was in use since, not checked.
        assert!(!needs_check(Duration::from_millis(50), AFTER, now, broken));
    }

    #[test]
    fn recording_a_breakage_marks_every_connection_idle_before_it() {
        record_broken_connection();
        let broken = LAST_BROKEN.load(Ordering::Relaxed);
        assert!(broken > 0);
        let now = micros_since_epoch();
        let idle_since_before = Duration::from_micros(now - broken + 1);
        assert!(needs_check(
            idle_since_before,
            Duration::from_secs(3600),
            now,
            broken
        ));
    }
}
