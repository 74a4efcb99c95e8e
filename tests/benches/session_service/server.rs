//! The server under test: built as the end-to-end harness builds it (`Application::build`,
//! `local_addr`, `run(shutdown)`, the system clock) over a scratch database of the harness's,
//! but on a tokio runtime of its own whose threads are named [`SERVER_THREAD`], so that its
//! CPU can be told from the load generator's (see `probe`). The nodelay diagnostic starts the
//! same pieces (`connect_and_migrate`, `Services::new`, `run`) on a listener with TCP_NODELAY.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use active_sessions_e2e::{Backend, bench_support::ScratchDatabase, random_key_hex};
use active_sessions_server::{
    Application, Services, app::ServeError, clock::SystemClock, config::Config,
};
use anyhow::{Context, Result, anyhow};
use sea_orm::{Database, DatabaseConnection};
use tokio::{runtime::Runtime, sync::oneshot, task::JoinHandle};
use tonic::transport::Channel;

use crate::{
    load::{CacheCounter, Driver},
    probe::{Probe, SERVER_THREAD},
};

type Started = (SocketAddr, Services, JoinHandle<Result<(), ServeError>>);

#[derive(Debug)]
pub struct BenchServer {
    pub backend: Backend,
    pub nodelay: bool,
    pub addr: SocketAddr,
    pub services: Services,
    database: ScratchDatabase,
    runtime: Option<Runtime>,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<Result<(), ServeError>>,
    _keys: tempfile::TempDir,
}

impl BenchServer {
    /// Builds the server on a fresh database with the system clock and runs it until
    /// [`stop`](Self::stop). With `nodelay`, the listener has TCP_NODELAY (a diagnostic).
    pub async fn start(
        backend: Backend,
        nodelay: bool,
        adjust: impl FnOnce(&mut Config),
    ) -> Result<Self> {
        let database = ScratchDatabase::create(backend)
            .await
            .context("no database for this backend")?;
        let keys = tempfile::tempdir()?;
        let mut config = Config::new(SocketAddr::from(([127, 0, 0, 1], 0)), database.url());
        config.geoip_database =
            Some(concat!(env!("CARGO_MANIFEST_DIR"), "/data/GeoIP2-City-Test.mmdb").into());
        config.shutdown_grace = Duration::from_secs(2);
        if backend == Backend::Postgres {
            // As a deployment gives it (SQLite keeps a generated one beside its file).
            let path = keys.path().join("token-seal.key");
            std::fs::write(&path, random_key_hex())?;
            config.security.token_seal_key_file = Some(path);
        }
        adjust(&mut config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name(SERVER_THREAD)
            .enable_all()
            .build()
            .context("the server's runtime")?;
        let (shutdown, signal) = oneshot::channel::<()>();
        let signal = async {
            signal.await.ok();
        };
        let started = if nodelay {
            runtime.spawn(start_nodelay(config, signal)).await
        } else {
            runtime.spawn(start_as_harness(config, signal)).await
        };
        match started.map_err(anyhow::Error::from).and_then(|s| s) {
            Ok((addr, services, server)) => Ok(Self {
                backend,
                nodelay,
                addr,
                services,
                database,
                runtime: Some(runtime),
                shutdown,
                server,
                _keys: keys,
            }),
            Err(err) => {
                runtime.shutdown_background();
                database.drop_database().await;
                Err(err.context("server starts"))
            }
        }
    }

    /// How rows name this server: `sqlite`, `postgres`, `sqlite+nodelay`, ...
    pub fn label(&self) -> String {
        let name = backend_name(self.backend);
        if self.nodelay {
            format!("{name}+nodelay")
        } else {
            name.to_owned()
        }
    }

    /// `count` separate HTTP/2 connections to the server.
    pub async fn channels(&self, count: usize) -> Result<Vec<Channel>> {
        let url = format!("http://{}", self.addr);
        let mut channels = Vec::with_capacity(count);
        for _ in 0..count {
            channels.push(active_sessions_client::connect(url.clone()).await?);
        }
        Ok(channels)
    }

    /// A driver over `count` connections whose workers run on the calling (load) runtime.
    pub async fn driver(&self, count: usize) -> Result<Driver> {
        let sessions = self.services.sessions().clone();
        let cache: CacheCounter = Arc::new(move || {
            let stats = sessions.cache_stats();
            (stats.hits, stats.misses)
        });
        Ok(Driver {
            channels: self.channels(count).await?,
            runtime: tokio::runtime::Handle::current(),
            probe: Probe {
                database: self.database.postgres_name().map(str::to_owned),
            },
            cache: Some(cache),
        })
    }

    /// The same driver with its workers on the server's runtime (in-process calls).
    pub fn in_process(&self, driver: &Driver) -> Result<Driver> {
        let runtime = self.runtime.as_ref().context("server stopped")?;
        Ok(Driver {
            runtime: runtime.handle().clone(),
            ..driver.clone()
        })
    }

    /// A direct database connection (for seeding rows); close it before measuring.
    pub async fn connect_database(&self) -> Result<DatabaseConnection> {
        Ok(Database::connect(self.database.url()).await?)
    }

    pub async fn stop(mut self) -> Result<()> {
        self.shutdown.send(()).ok();
        let served = self.server.await;
        drop(self.services);
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        self.database.drop_database().await;
        served?.map_err(|err| anyhow!("server: {err}"))
    }
}

pub fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

/// As the e2e harness starts it.
async fn start_as_harness(
    config: Config,
    signal: impl Future<Output = ()> + Send + 'static,
) -> Result<Started> {
    let application = Application::build(config).await?;
    let addr = application.local_addr()?;
    let services = application.services().clone();
    Ok((addr, services, tokio::spawn(application.run(signal))))
}

/// The same pieces on a listener with TCP_NODELAY set, which Linux copies to every accepted
/// socket. For comparison only.
async fn start_nodelay(
    config: Config,
    signal: impl Future<Output = ()> + Send + 'static,
) -> Result<Started> {
    let store = active_sessions_server::app::connect_and_migrate(&config).await?;
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_nodelay(true)?;
    socket.bind(config.listen)?;
    let listener = socket.listen(1024)?;
    let addr = listener.local_addr()?;
    let services = Services::new(store, config, Arc::new(SystemClock)).await?;
    let server = tokio::spawn(active_sessions_server::run(
        listener,
        services.clone(),
        signal,
    ));
    Ok((addr, services, server))
}
