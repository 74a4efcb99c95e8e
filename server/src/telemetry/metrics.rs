//! The service's metric instruments, created from the global meter provider the first time
//! they are used (after [`Telemetry::install`](super::Telemetry::install)); without an exporter
//! they are no-ops. Names follow the OpenTelemetry semantic conventions where one exists
//! (`rpc.server.call.duration`), and `active_sessions.*` otherwise.

use std::sync::{
    OnceLock,
    atomic::{AtomicU64, Ordering},
};

use opentelemetry::{
    KeyValue, global,
    metrics::{Counter, Gauge, Histogram, Meter},
};

/// Every instrument the server records on.
#[derive(Debug)]
pub struct Metrics {
    /// Server RPC latency in seconds, by service, method and gRPC status code (its count is
    /// the RPC count).
    pub rpc_duration: Histogram<f64>,
    /// Sessions registered, by product.
    pub sessions_registered: Counter<u64>,
    /// Sessions logged out, by revocation scope (for scope ALL, counted as the sweep marks them).
    pub sessions_revoked: Counter<u64>,
    /// Seconds from a revocation taking effect to this server reading it from the log.
    pub revocation_propagation_lag: Histogram<f64>,
    /// Sessions ended because their account reached its session limit, by product.
    pub sessions_evicted: Counter<u64>,
    /// Rows deleted by the retention pruner, by table.
    pub rows_pruned: Counter<u64>,
    /// Sign-ins committed together, per batch that carried more than one (group commit).
    sign_in_batch_size: Histogram<u64>,
    /// The most active visible sessions one account has been seen with by this server (counted
    /// at sign-in): an account being flooded shows here first.
    largest_account: Gauge<u64>,
    largest_account_seen: AtomicU64,
    /// The database's clock minus this host's, in seconds, as last measured.
    clock_offset: Gauge<f64>,
}

impl Metrics {
    /// Records that an account was seen with `sessions` active visible sessions.
    pub fn record_account_size(&self, sessions: u64) {
        let before = self
            .largest_account_seen
            .fetch_max(sessions, Ordering::Relaxed);
        if sessions > before {
            self.largest_account.record(sessions, &[]);
        }
    }

    /// Records a group commit of `sign_ins` sign-ins.
    pub fn record_sign_in_batch(&self, sign_ins: usize) {
        self.sign_in_batch_size
            .record(u64::try_from(sign_ins).unwrap_or(u64::MAX), &[]);
    }

    /// Records the measured offset of the database's clock from this host's.
    pub fn record_clock_offset(&self, micros: i64) {
        self.clock_offset.record(micros as f64 / 1e6, &[]);
    }

    /// The most active visible sessions one account has been seen with.
    pub fn largest_account_seen(&self) -> u64 {
        self.largest_account_seen.load(Ordering::Relaxed)
    }
}

/// The meter every instrument comes from.
pub fn meter() -> Meter {
    global::meter("active-sessions")
}

/// The instruments.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let meter = meter();
        Metrics {
            rpc_duration: meter
                .f64_histogram("rpc.server.call.duration")
                .with_unit("s")
                .with_description("Duration of server RPCs")
                .with_boundaries(vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .build(),
            sessions_registered: meter
                .u64_counter("active_sessions.sessions.registered")
                .with_description("Sessions registered")
                .build(),
            sessions_revoked: meter
                .u64_counter("active_sessions.sessions.revoked")
                .with_description("Sessions logged out")
                .build(),
            revocation_propagation_lag: meter
                .f64_histogram("active_sessions.revocation.propagation_lag")
                .with_unit("s")
                .with_description("Time from a revocation taking effect to this server reading it")
                .with_boundaries(vec![
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .build(),
            sessions_evicted: meter
                .u64_counter("active_sessions.sessions.evicted")
                .with_description("Sessions ended because their account reached its session limit")
                .build(),
            rows_pruned: meter
                .u64_counter("active_sessions.retention.rows_pruned")
                .with_description("Rows deleted by the retention pruner, by table")
                .build(),
            sign_in_batch_size: meter
                .u64_histogram("active_sessions.sign_ins.batch_size")
                .with_description("Sign-ins committed in one transaction (group commit)")
                .with_boundaries(vec![2.0, 4.0, 8.0, 16.0, 32.0, 64.0])
                .build(),
            largest_account: meter
                .u64_gauge("active_sessions.accounts.largest_session_count")
                .with_description(
                    "Most active visible sessions one account has been seen with (at sign-in)",
                )
                .build(),
            largest_account_seen: AtomicU64::new(0),
            clock_offset: meter
                .f64_gauge("active_sessions.clock.offset")
                .with_unit("s")
                .with_description(
                    "The database's clock minus this host's, as last measured (time decisions \
                     are corrected by it)",
                )
                .build(),
        }
    })
}

/// A single attribute.
pub fn attribute(key: &'static str, value: impl Into<opentelemetry::Value>) -> [KeyValue; 1] {
    [KeyValue::new(key, value)]
}

/// Exports `active_sessions.revocation_feed.staleness` (seconds since the revocation feed's
/// latest complete read of the log began) and `active_sessions.revocation_feed.fresh` (1 while
/// the feed is within its bound and the cache may answer from memory, 0 otherwise), read from
/// `staleness` and `fresh` at each collection.
pub fn observe_revocation_feed(
    staleness: impl Fn() -> std::time::Duration + Send + Sync + 'static,
    fresh: impl Fn() -> bool + Send + Sync + 'static,
) {
    let meter = meter();
    meter
        .f64_observable_gauge("active_sessions.revocation_feed.staleness")
        .with_unit("s")
        .with_description(
            "Seconds since the revocation feed's latest complete read of the revocation log began",
        )
        .with_callback(move |observer| {
            let staleness = staleness();
            let seconds = if staleness == std::time::Duration::MAX {
                f64::INFINITY
            } else {
                staleness.as_secs_f64()
            };
            observer.observe(seconds, &[]);
        })
        .build();
    meter
        .u64_observable_gauge("active_sessions.revocation_feed.fresh")
        .with_description("1 while the revocation feed is within its bound (the cache may answer)")
        .with_callback(move |observer| observer.observe(u64::from(fresh()), &[]))
        .build();
}
