//! Start-up and the serving loop: connect and migrate the store, build every service, bind the
//! listener, and serve until a shutdown signal. [`run`] is the one seam that `main` and the
//! end-to-end tests share; [`Application`] binds first so that a test can ask for port 0 and
//! learn the real address.
//!
//! `serve.rs` holds the serving loop and its drain; `background.rs` the work that runs beside
//! it (health, observers, callers-file reloads).

mod background;
mod coalesced_writes;
mod serve;

pub use serve::{ServeError, run};

use background::register_observers;

use std::{net::SocketAddr, sync::Arc};

use tokio::net::TcpListener;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::{
    auth::{Authenticator, CallerRegistry},
    clock::{AlignedClock, Clock},
    config::{Config, SecurityConfig},
    domain::{
        retention::RetentionSettings, session::Lifetimes, token_seal::TokenSealer,
        trust::TrustPolicy,
    },
    enrich::GeoIp,
    service::{
        eligibility::EligibilityService,
        retention::Pruner,
        sessions::{SessionSettings, Sessions},
        subject::SubjectResolver,
        trust::TrustService,
    },
    store::{Store, StoreError},
};

/// Sessions marked per transaction by the log-out-of-all sweep.
const SWEEP_BATCH: u64 = 5_000;

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
