//! What runs beside the serving loop: health kept in step with the database and the
//! revocation feed, the observable metrics, and callers-file reloads on SIGHUP.

use std::{sync::Arc, time::Duration};

use active_sessions::service_names;
use opentelemetry_semantic_conventions as semconv;
use tokio_util::sync::CancellationToken;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{auth::CallerRegistry, service::sessions::Sessions, store::Store};

/// `db.client.connection.pool.name` of the server's one database pool.
const DB_POOL_NAME: &str = "active-sessions";

/// How often the background health check pings the database.
const HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// How long a health ping may take before the database counts as unreachable.
const HEALTH_PING_TIMEOUT: Duration = Duration::from_secs(1);
/// How often health looks at the revocation feed's freshness.
const HEALTH_FEED_INTERVAL: Duration = Duration::from_millis(100);

/// Observable metrics read on each collection: validation cache hits and misses, and the
/// database pool's connections in use and idle. The callbacks live as long as the meter
/// provider (instruments built without an exporter are no-ops).
pub(super) fn register_observers(store: &Store, sessions: &Sessions) {
    use opentelemetry::KeyValue;
    let meter = crate::telemetry::metrics::meter();
    let cache = sessions.clone();
    meter
        .u64_observable_counter("active_sessions.validation_cache.lookups")
        .with_description("Validation cache lookups, by result (hit or miss)")
        .with_callback(move |observer| {
            let stats = cache.cache_stats();
            observer.observe(stats.hits, &[KeyValue::new("result", "hit")]);
            observer.observe(stats.misses, &[KeyValue::new("result", "miss")]);
        })
        .build();
    let staleness = sessions.clone();
    let fresh = sessions.clone();
    crate::telemetry::metrics::observe_revocation_feed(
        move || staleness.feed_staleness(),
        move || fresh.feed_is_fresh(),
    );
    let pool = store.clone();
    meter
        .i64_observable_up_down_counter(semconv::metric::DB_CLIENT_CONNECTION_COUNT)
        .with_unit("{connection}")
        .with_description("Database pool connections, by state (used or idle)")
        .with_callback(move |observer| {
            let (size, idle) = pool.pool_stats();
            let idle = i64::try_from(idle).unwrap_or(i64::MAX);
            let used = i64::from(size).saturating_sub(idle).max(0);
            for (state, count) in [("used", used), ("idle", idle)] {
                observer.observe(
                    count,
                    &[
                        KeyValue::new(semconv::attribute::DB_CLIENT_CONNECTION_STATE, state),
                        KeyValue::new(
                            semconv::attribute::DB_CLIENT_CONNECTION_POOL_NAME,
                            DB_POOL_NAME,
                        ),
                    ],
                );
            }
        })
        .build();
}

/// Re-reads the callers file on SIGHUP; a bad file is reported and the old callers stay.
pub(super) async fn reload_callers_on_hangup(
    registry: Arc<CallerRegistry>,
    stop: CancellationToken,
) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGHUP; the callers file will not be reloaded");
                return;
            }
        };
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                received = hangups.recv() => if received.is_none() { return },
            }
            match registry.reload() {
                Ok(count) => {
                    tracing::info!(path = %registry.path().display(), callers = count, "callers file reloaded")
                }
                Err(err) => {
                    tracing::error!(error = %err, "callers file refused; keeping the callers already loaded")
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = registry;
        stop.cancelled().await;
    }
}

/// Sets the status of every service and of the server as a whole (service name "").
pub(super) async fn set_health(health: &HealthReporter, status: ServingStatus) {
    for name in service_names::ALL.into_iter().chain([""]) {
        health.set_service_status(name, status).await;
    }
}

/// Keeps every service's health in step with the database and the revocation feed: SERVING
/// while the database answers and the feed is within its freshness bound, NOT_SERVING
/// otherwise (a replica that cannot hear revocations must not be sent traffic). Checked in the
/// background, never per request: the feed every 100 ms, the database every 2 s.
pub(super) async fn watch_database_health(
    store: Store,
    sessions: Sessions,
    health: HealthReporter,
    stop: CancellationToken,
) {
    let mut last: Option<ServingStatus> = None;
    let mut database_up = false;
    let mut next_ping = tokio::time::Instant::now();
    loop {
        if tokio::time::Instant::now() >= next_ping {
            let pinged = tokio::time::timeout(HEALTH_PING_TIMEOUT, store.ping()).await;
            database_up = match pinged {
                Ok(Ok(())) => true,
                Ok(Err(err)) => {
                    if database_up || last.is_none() {
                        tracing::warn!(error = %err, "database unreachable: reporting NOT_SERVING");
                    }
                    false
                }
                Err(_) => {
                    if database_up || last.is_none() {
                        tracing::warn!("database ping timed out: reporting NOT_SERVING");
                    }
                    false
                }
            };
            next_ping = tokio::time::Instant::now() + HEALTH_CHECK_INTERVAL;
        }
        let feed_fresh = sessions.feed_is_fresh();
        if !feed_fresh && last == Some(ServingStatus::Serving) {
            tracing::warn!(
                staleness_ms = sessions.feed_staleness().as_millis() as u64,
                "revocation feed stale: reporting NOT_SERVING"
            );
        }
        let status = if database_up && feed_fresh {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        if last != Some(status) {
            if stop.is_cancelled() {
                return;
            }
            set_health(&health, status).await;
            last = Some(status);
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(HEALTH_FEED_INTERVAL) => {}
        }
    }
}
