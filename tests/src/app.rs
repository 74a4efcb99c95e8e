//! Server start-up for a test: [`TestApp`] builds the real `Application` over a fresh database
//! of its own, with a [`ManualClock`] the test moves, on a random loopback port, and runs it on
//! the test's runtime until told to stop. The same database can serve replicas, restarts and
//! pauses; stopping the app drops the database. The calls a test makes through it are in
//! [`crate::calls`].

use std::{net::SocketAddr, sync::Arc};

use active_sessions_server::{Application, clock::ManualClock, config::Config};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::transport::Channel;

use crate::{Backend, TestCaller, TestDatabase, callers_file, random_key_hex};

/// A running server over its own database.
#[derive(Debug)]
pub struct TestApp {
    /// The engine.
    pub backend: Backend,
    /// The bound address.
    pub addr: SocketAddr,
    /// The server's clock.
    pub clock: Arc<ManualClock>,
    /// A channel to the server.
    pub channel: Channel,
    config: Config,
    database: TestDatabase,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    services: Option<active_sessions_server::Services>,
    pub(crate) callers: Vec<TestCaller>,
    scratch: tempfile::TempDir,
    keys: tempfile::TempDir,
}

/// Where a server asks the system for a port.
fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

impl TestApp {
    /// Starts a server on a fresh database, or `None` when the backend is not configured.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, |_| {}).await
    }

    /// As [`spawn`](Self::spawn), adjusting the configuration first.
    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Option<Self> {
        let database = TestDatabase::for_test(backend).await?;
        let keys = tempfile::tempdir().expect("key directory");
        let mut config = Config::new(any_port(), database.url());
        config.database.max_connections = Some(8);
        // SQLite generates its token seal key beside the database file; PostgreSQL needs one
        // given (as a production deployment would).
        if backend == Backend::Postgres {
            let path = keys.path().join("token-seal.key");
            std::fs::write(&path, random_key_hex()).expect("write token seal key");
            config.security.token_seal_key_file = Some(path);
        }
        config.geoip_database =
            Some(concat!(env!("CARGO_MANIFEST_DIR"), "/data/GeoIP2-City-Test.mmdb").into());
        adjust(&mut config);
        let clock = Arc::new(ManualClock::starting_now());
        let mut app = Self::unstarted(backend, clock, config, database, keys);
        app.start().await;
        Some(app)
    }

    /// Starts another server (a replica) on this one's database, with the same configuration
    /// and clock. Stopping it leaves the database alone.
    pub async fn replica(&self) -> Self {
        self.replica_with(self.clock.clone(), |_| {}).await
    }

    /// Starts another server on this one's database with its own clock (replicas whose clocks
    /// disagree), its configuration adjusted by `adjust` (for example a database URL that goes
    /// through a proxy the test can cut). Stopping it leaves the database alone.
    pub async fn replica_with(
        &self,
        clock: Arc<ManualClock>,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = self.config.clone();
        config.listen = any_port();
        adjust(&mut config);
        let database = TestDatabase::shared(self.database.url());
        let keys = tempfile::tempdir().expect("key directory");
        let mut replica = Self::unstarted(self.backend, clock, config, database, keys);
        replica.callers = self.callers.clone();
        replica.start().await;
        replica
    }

    /// Starts a server that authenticates `callers` through a callers file.
    pub async fn spawn_with_callers(backend: Backend, callers: Vec<TestCaller>) -> Option<Self> {
        let scratch = tempfile::tempdir().expect("scratch directory");
        let path = scratch.path().join("callers.toml");
        std::fs::write(&path, callers_file(&callers)).expect("write callers file");
        let mut app = Self::spawn_with(backend, |config| {
            config.security.callers_file = Some(path);
        })
        .await?;
        app.scratch = scratch;
        app.callers = callers;
        Some(app)
    }

    /// The callers file of a server started with [`spawn_with_callers`](Self::spawn_with_callers).
    pub fn callers_file_path(&self) -> std::path::PathBuf {
        self.scratch.path().join("callers.toml")
    }

    /// A server not started yet: no address, a channel that goes nowhere until
    /// [`start`](Self::start).
    fn unstarted(
        backend: Backend,
        clock: Arc<ManualClock>,
        config: Config,
        database: TestDatabase,
        keys: tempfile::TempDir,
    ) -> Self {
        Self {
            backend,
            addr: any_port(),
            clock,
            channel: Channel::from_static("http://127.0.0.1:1").connect_lazy(),
            config,
            database,
            shutdown: None,
            server: None,
            services: None,
            callers: Vec::new(),
            scratch: tempfile::tempdir().expect("scratch directory"),
            keys,
        }
    }

    async fn start(&mut self) {
        let application = Application::build_with_clock(self.config.clone(), self.clock.clone())
            .await
            .expect("server starts");
        self.addr = application.local_addr().expect("bound address");
        self.services = Some(application.services().clone());
        let (tx, rx) = oneshot::channel();
        self.server = Some(tokio::spawn(async move {
            application
                .run(async {
                    rx.await.ok();
                })
                .await
                .expect("server runs");
        }));
        self.shutdown = Some(tx);
        self.channel = active_sessions_client::connect(format!("http://{}", self.addr))
            .await
            .expect("client connects");
    }

    /// Stops serving: the address refuses connections until [`resume`](Self::resume).
    pub async fn pause(&mut self) {
        self.stop_server().await;
    }

    /// Serves again on the same address (and database and clock) after
    /// [`pause`](Self::pause), so clients that keep the endpoint reconnect by themselves.
    pub async fn resume(&mut self) {
        self.config.listen = self.addr;
        self.start().await;
    }

    /// Stops the server and starts a new one on the same database (and clock).
    pub async fn restart(&mut self) {
        self.restart_with(|_| {}).await;
    }

    /// As [`restart`](Self::restart), adjusting the configuration first.
    pub async fn restart_with(&mut self, adjust: impl FnOnce(&mut Config)) {
        self.stop_server().await;
        self.config.listen = any_port();
        adjust(&mut self.config);
        self.start().await;
    }

    /// Asks the server to shut down and waits for it to stop; returns how long it took.
    pub async fn shut_down(&mut self) -> std::time::Duration {
        let started = std::time::Instant::now();
        self.stop_server().await;
        started.elapsed()
    }

    /// Starts the server again after [`shut_down`](Self::shut_down).
    pub async fn start_again(&mut self) {
        self.config.listen = any_port();
        self.start().await;
    }

    /// A directory that lives as long as this test app, for key files a test writes.
    pub fn key_dir(&self) -> &std::path::Path {
        self.keys.path()
    }

    async fn stop_server(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            tx.send(()).ok();
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task ends cleanly");
        }
    }

    /// The server's session commands, for driving background work (sweeps, flushes) at a
    /// moment the test chooses instead of waiting for it.
    pub fn services(&self) -> &active_sessions_server::Services {
        self.services.as_ref().expect("server running")
    }

    /// The URL of this test's database, for looking at what the server stored.
    pub fn database_url(&self) -> &str {
        self.database.url()
    }

    /// A connection of the test's own to the server's database, for looking at what the
    /// server stored or seeding rows.
    pub async fn connect_database(&self) -> sea_orm::DatabaseConnection {
        sea_orm::Database::connect(self.database.url())
            .await
            .expect("connect to the test database")
    }

    /// The server's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Stops the server and removes its database.
    pub async fn stop(mut self) {
        self.stop_server().await;
        self.database.drop_database().await.ok();
    }
}
