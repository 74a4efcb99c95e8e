//! Start-up and the serving loop: connect and migrate the store, build every service, bind the
//! listener, and serve until a shutdown signal. [`run`] is the one seam that `main` and the
//! end-to-end tests share; [`Application`] binds first so that a test can ask for port 0 and
//! learn the real address.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use active_sessions::{
    FILE_DESCRIPTOR_SET, service_names,
    v1::{
        account_eligibility_server::AccountEligibilityServer,
        session_service_server::SessionServiceServer,
        trusted_device_service_server::TrustedDeviceServiceServer,
    },
};
use opentelemetry_semantic_conventions as semconv;
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tonic::{
    service::interceptor::InterceptedService,
    transport::{Certificate, Identity, Server, ServerTlsConfig, server::TcpIncoming},
};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    auth::{Authenticator, CallerRegistry},
    clock::{AlignedClock, Clock},
    config::{Config, SecurityConfig},
    domain::{
        eligibility::EligibilityService,
        retention::{Pruner, RetentionSettings},
        session::Lifetimes,
        sessions::{SessionSettings, Sessions},
        subject::SubjectResolver,
        token_seal::TokenSealer,
        trust::{TrustPolicy, TrustService},
    },
    enrich::GeoIp,
    grpc::{
        eligibility::AccountEligibilityApi, sessions::SessionApi, trusted_devices::TrustedDeviceApi,
    },
    limits::ShedLayer,
    oversize::OversizeLayer,
    store::{Store, StoreError},
    telemetry::RpcLayer,
};

/// Sessions marked per transaction by the log-out-of-all sweep.
const SWEEP_BATCH: u64 = 5_000;

/// `db.client.connection.pool.name` of the server's one database pool.
const DB_POOL_NAME: &str = "active-sessions";

/// How often the background health check pings the database.
const HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// How long a health ping may take before the database counts as unreachable.
const HEALTH_PING_TIMEOUT: Duration = Duration::from_secs(1);
/// How often health looks at the revocation feed's freshness.
const HEALTH_FEED_INTERVAL: Duration = Duration::from_millis(100);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("database {url}: {source}")]
    Store {
        /// The URL, password redacted.
        url: String,
        /// The failure.
        source: StoreError,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The failure.
        source: std::io::Error,
    },
    /// The callers file was refused.
    #[error("callers file {0}")]
    Callers(#[from] crate::auth::CallersFileError),
    /// Local development mode (no callers file) asked to listen beyond loopback.
    #[error(
        "refusing to listen on {0} without a callers file: every caller would be trusted. \
         Pass --callers-file, or listen on a loopback address such as 127.0.0.1"
    )]
    UnauthenticatedPublicListen(SocketAddr),
    /// A TLS certificate, key or CA file could not be read.
    #[error("TLS file {path}: {source}")]
    Tls {
        /// The file.
        path: String,
        /// The failure.
        source: std::io::Error,
    },
    /// The token seal key could not be read or generated, or is missing where it is required.
    #[error("{0}")]
    SealKey(#[from] crate::seal_key::SealKeyError),
    /// The GeoIP database could not be opened.
    #[error("{0}")]
    GeoIp(#[from] crate::enrich::GeoIpError),
    /// Reflection could not be built from the descriptor sets (a build problem).
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// A server that has bound its listener and is ready to [`run`](Application::run).
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    services: Services,
}

/// Everything a running server holds. Cloning is cheap: handles only.
#[derive(Debug, Clone)]
pub struct Services {
    store: Store,
    config: Config,
    eligibility: EligibilityService,
    subjects: SubjectResolver,
    sessions: Sessions,
    pruner: Pruner,
    trust: TrustService,
    authenticator: Authenticator,
    tls: Option<ServerTlsConfig>,
    /// The clock kept on the database's, when this server keeps one (see `time_alignment`).
    aligned_clock: Option<Arc<AlignedClock>>,
}

impl Services {
    /// Builds every service over a connected, migrated store.
    pub async fn new(
        store: Store,
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let policy = &config.sessions;
        let lifetimes = Lifetimes {
            default_lifetime: policy.default_lifetime,
            max_lifetime: policy.max_lifetime,
            idle_timeout: policy.idle_timeout,
        };
        let geoip = match &config.geoip_database {
            Some(path) => {
                let geoip = GeoIp::open(path)?;
                tracing::info!(path = %path.display(), database = geoip.database_type(), "GeoIP database loaded");
                Some(geoip)
            }
            None => None,
        };
        let settings = SessionSettings {
            lifetimes,
            request_id_retention: policy.request_id_retention,
            touch_flush_interval: policy.touch_flush_interval,
            cache_entries: policy.validation_cache_entries,
            cache_max_age: policy.validation_cache_ttl,
            feed_poll_interval: policy.revocation_poll_interval,
            sweep_batch: SWEEP_BATCH,
            max_sessions_per_account: policy.max_sessions_per_account,
        };
        let sealer = TokenSealer::new(&crate::seal_key::load(&config)?);
        let sessions = Sessions::new(store.clone(), clock.clone(), settings, geoip, sealer)
            .await
            .map_err(|source| StartError::Store {
                url: config.database.url.redacted(),
                source,
            })?;
        let trust = TrustService::new(
            store.clone(),
            clock.clone(),
            sessions.clone(),
            TrustPolicy {
                default_duration: policy.trust_duration,
                max_duration: policy.trust_max_duration,
            },
        );
        let authenticator = match &config.security.callers_file {
            Some(path) => {
                let rate = Some(config.security.caller_rate_limit).filter(|rate| *rate > 0);
                let registry = CallerRegistry::load(path, rate)?;
                tracing::info!(path = %path.display(), callers = registry.current().len(), "callers loaded");
                Authenticator::Enforced(Arc::new(registry))
            }
            None => Authenticator::local(),
        };
        let tls = tls_config(&config.security)?;
        register_observers(&store, &sessions);
        let retention = &config.retention;
        let pruner = Pruner::new(
            store.clone(),
            clock.clone(),
            RetentionSettings {
                revoked_session: retention.revoked_session,
                security_event: retention.security_event,
                revocation_log: retention.revocation_log,
                interval: retention.interval,
                batch: retention.batch,
            },
            sessions.clone(),
        );
        Ok(Self {
            pruner,
            authenticator,
            tls,
            trust,
            eligibility: EligibilityService::new(store.clone(), clock.clone()),
            subjects: SubjectResolver::new(store.clone(), clock, lifetimes),
            sessions,
            store,
            config,
            aligned_clock: None,
        })
    }

    /// The callers file in force, when there is one (reloaded on SIGHUP).
    pub fn callers(&self) -> Option<&Arc<CallerRegistry>> {
        match &self.authenticator {
            Authenticator::Enforced(registry) => Some(registry),
            Authenticator::Local(_) => None,
        }
    }

    /// The session commands (benchmarks and tests drive them directly).
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// The retention pruner (the `prune` subcommand and tests drive it directly).
    pub fn pruner(&self) -> &Pruner {
        &self.pruner
    }
}

impl Application {
    /// Opens and migrates the database, then binds `config.listen`, with the system clock kept
    /// on the database's (measured before serving and every 30 s after: see `time_alignment`).
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let clock = Arc::new(AlignedClock::new());
        Self::build_inner(config, clock.clone(), Some(clock)).await
    }

    /// As [`build`](Self::build), with an injected clock (tests move time with it), used as it
    /// reads.
    pub async fn build_with_clock(
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        Self::build_inner(config, clock, None).await
    }

    async fn build_inner(
        config: Config,
        clock: Arc<dyn Clock>,
        aligned_clock: Option<Arc<AlignedClock>>,
    ) -> Result<Self, StartError> {
        if config.security.callers_file.is_none() {
            if !config.listen.ip().is_loopback() {
                return Err(StartError::UnauthenticatedPublicListen(config.listen));
            }
            tracing::warn!(
                listen = %config.listen,
                "LOCAL DEVELOPMENT MODE: no callers file, so every call is allowed. \
                 Do not expose this server; pass --callers-file in production."
            );
        }
        let store = connect_and_migrate(&config).await?;
        if let Some(aligned) = &aligned_clock {
            crate::time_alignment::align(&store, aligned).await;
        }
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let mut services = Services::new(store, config, clock).await?;
        services.aligned_clock = aligned_clock;
        Ok(Self { listener, services })
    }

    /// The address actually bound (the real port when the configuration asked for port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The services this server runs (shared handles).
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Serves until `shutdown` completes, then drains.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
        run(self.listener, self.services, shutdown).await
    }
}

/// Connects to the configured database and brings its schema up to date.
pub async fn connect_and_migrate(config: &Config) -> Result<Store, StartError> {
    let store_error = |source| StartError::Store {
        url: config.database.url.redacted(),
        source,
    };
    let store = Store::connect(&config.database)
        .await
        .map_err(store_error)?;
    store.migrate().await.map_err(store_error)?;
    Ok(store)
}

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The transport failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Reflection could not be built.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// How long each last step of a shutdown (closing connections, stopping background work,
/// closing the pool) may take after the drain: together at most 0.7 s beyond the grace period.
const CLOSE_STEP: Duration = Duration::from_millis(300);
const BACKGROUND_STEP: Duration = Duration::from_millis(200);

/// Serves every service on `listener` until `shutdown` completes, then drains: health turns
/// NOT_SERVING at once (answered on connections already open), the listener closes, new calls
/// are refused (UNAVAILABLE, retry elsewhere), and calls in flight get the configured grace
/// period to finish. After it, the calls still in flight are abandoned (their transactions
/// rolled back) and the server returns within a second whatever the database does.
pub async fn run(
    listener: TcpListener,
    services: Services,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    set_health(&health, ServingStatus::NotServing).await;
    // The process is up: liveness stays SERVING until it exits (see `service_names::LIVENESS`).
    health
        .set_service_status(service_names::LIVENESS, ServingStatus::Serving)
        .await;
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    let background = CancellationToken::new();
    let tasks = TaskTracker::new();
    tasks.spawn(watch_database_health(
        services.store.clone(),
        services.sessions.clone(),
        health.clone(),
        background.clone(),
    ));
    services.sessions.spawn_background(&tasks, &background);
    if let Some(clock) = &services.aligned_clock {
        tasks.spawn(crate::time_alignment::keep_aligned(
            services.store.clone(),
            clock.clone(),
            background.clone(),
        ));
    }
    tasks.spawn(services.pruner.clone().run_until(background.clone()));

    if let Some(registry) = services.callers() {
        tasks.spawn(reload_callers_on_hangup(
            registry.clone(),
            background.clone(),
        ));
    }

    let security = &services.config.security;
    let max_message = security.max_message_bytes;
    let auth = services.authenticator.clone();
    let eligibility = AccountEligibilityServer::new(AccountEligibilityApi::new(
        services.eligibility.clone(),
        services.subjects.clone(),
        services.sessions.clone(),
    ))
    .max_decoding_message_size(max_message);
    let sessions = SessionServiceServer::new(SessionApi::new(
        services.sessions.clone(),
        background.clone(),
    ))
    .max_decoding_message_size(max_message);
    let trusted_devices =
        TrustedDeviceServiceServer::new(TrustedDeviceApi::new(services.trust.clone()))
            .max_decoding_message_size(max_message);
    let shed = ShedLayer::new(security.max_concurrent_calls);
    let drain = shed.drain();
    let mut builder = Server::builder()
        .timeout(security.request_timeout)
        .tcp_nodelay(true)
        .max_connection_age(services.config.max_connection_age)
        .max_connection_age_grace(services.config.max_connection_age_grace);
    if let Some(tls) = services.tls.clone() {
        builder = builder.tls_config(tls)?;
    }
    let router = builder
        .layer(RpcLayer)
        .layer(shed)
        .layer(OversizeLayer::new(max_message))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(InterceptedService::new(eligibility, auth.clone()))
        .add_service(InterceptedService::new(sessions, auth.clone()))
        .add_service(InterceptedService::new(trusted_devices, auth));

    // Accepted sockets get TCP_NODELAY here: the builder's setting applies only to listeners
    // tonic binds itself, and with Nagle's algorithm on a small response waits for the
    // client's delayed ACK (about 40 ms).
    let draining = CancellationToken::new();
    let incoming = StopAccepting::new(
        TcpIncoming::from(listener)
            .with_nodelay(Some(true))
            .with_keepalive(Some(Duration::from_secs(60))),
        draining.clone(),
    );
    // The transport's own graceful shutdown (GOAWAY on every connection) comes only after the
    // drain, so that connections already open still get answers (health: NOT_SERVING) during it.
    let close_connections = CancellationToken::new();
    let serve =
        router.serve_with_incoming_shutdown(incoming, close_connections.clone().cancelled_owned());
    tokio::pin!(serve);
    tokio::pin!(shutdown);

    let failed = tokio::select! {
        result = &mut serve => Some(result),
        () = &mut shutdown => None,
    };
    let result = match failed {
        Some(result) => result,
        None => {
            let grace = services.config.shutdown_grace;
            tracing::info!(
                grace_secs = grace.as_secs_f64(),
                "shutting down: draining in-flight calls"
            );
            set_health(&health, ServingStatus::NotServing).await;
            background.cancel();
            draining.cancel();
            if tokio::time::timeout(grace, drain.calls_finished())
                .await
                .is_err()
            {
                tracing::warn!(
                    grace_secs = grace.as_secs_f64(),
                    "grace period over; abandoning the calls still in flight"
                );
                drain.abandon_calls();
            }
            close_connections.cancel();
            match tokio::time::timeout(CLOSE_STEP, &mut serve).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!("connections still open after the drain; closing them");
                    Ok(())
                }
            }
        }
    };
    background.cancel();
    tasks.close();
    if tokio::time::timeout(BACKGROUND_STEP, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("background work still running at shutdown; abandoning it");
    }
    if tokio::time::timeout(BACKGROUND_STEP, services.store.clone().close())
        .await
        .is_err()
    {
        tracing::warn!("database connections still busy at shutdown; abandoning them");
    }
    result.map_err(ServeError::from)
}

/// The listener's connections until the drain starts; then the listening socket is closed at
/// once (new clients are refused and go elsewhere) while the connections already open are
/// served on.
struct StopAccepting<S> {
    inner: Option<S>,
    stop: std::pin::Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
}

impl<S> StopAccepting<S> {
    fn new(inner: S, stop: CancellationToken) -> Self {
        Self {
            inner: Some(inner),
            stop: Box::pin(stop.cancelled_owned()),
        }
    }
}

impl<S: futures::Stream + Unpin> futures::Stream for StopAccepting<S> {
    type Item = S::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.inner.is_some() && self.stop.as_mut().poll(cx).is_ready() {
            self.inner = None;
        }
        match self.inner.as_mut() {
            Some(inner) => std::pin::Pin::new(inner).poll_next(cx),
            // Not the end of the stream: that would make the transport close every connection.
            None => std::task::Poll::Pending,
        }
    }
}

/// Observable metrics read on each collection: validation cache hits and misses, and the
/// database pool's connections in use and idle. The callbacks live as long as the meter
/// provider (instruments built without an exporter are no-ops).
fn register_observers(store: &Store, sessions: &Sessions) {
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

/// Reads the TLS files the configuration names.
fn tls_config(security: &SecurityConfig) -> Result<Option<ServerTlsConfig>, StartError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| StartError::Tls {
            path: path.display().to_string(),
            source,
        })
    };
    let (Some(cert), Some(key)) = (&security.tls_cert, &security.tls_key) else {
        return Ok(None);
    };
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(read(cert)?, read(key)?));
    if let Some(ca) = &security.tls_client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(read(ca)?));
    }
    Ok(Some(tls))
}

/// Re-reads the callers file on SIGHUP; a bad file is reported and the old callers stay.
async fn reload_callers_on_hangup(registry: Arc<CallerRegistry>, stop: CancellationToken) {
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

/// Reflection over our services, health, and google.rpc's error details (so that grpcurl can
/// print the BadRequest, ErrorInfo and RetryInfo details of a refusal).
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
}

/// Sets the status of every service and of the server as a whole (service name "").
async fn set_health(health: &HealthReporter, status: ServingStatus) {
    for name in service_names::ALL.into_iter().chain([""]) {
        health.set_service_status(name, status).await;
    }
}

/// Keeps every service's health in step with the database and the revocation feed: SERVING
/// while the database answers and the feed is within its freshness bound, NOT_SERVING
/// otherwise (a replica that cannot hear revocations must not be sent traffic). Checked in the
/// background, never per request: the feed every 100 ms, the database every 2 s.
async fn watch_database_health(
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
