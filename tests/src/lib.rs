//! The end-to-end harness: each test gets the real server on a random loopback port, over a
//! fresh database of its own (a new SQLite file, or a new PostgreSQL database when
//! `ACTIVE_SESSIONS_TEST_POSTGRES_URL` is set), and talks to it over real gRPC through the
//! client crate. Time is a [`ManualClock`] the test moves.
//!
//! [`e2e!`] writes each test twice, `…::sqlite` and `…::postgres`. Without the PostgreSQL URL
//! the PostgreSQL half prints that it was skipped; under CI (`CI=true`) a missing URL fails it.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::{net::SocketAddr, sync::Arc};

use active_sessions_client::proto::{
    account_eligibility_client::AccountEligibilityClient,
    session_service_client::SessionServiceClient,
    trusted_device_service_client::TrustedDeviceServiceClient,
};
use active_sessions_server::{Application, clock::ManualClock, config::Config};
use sea_orm::{ConnectionTrait, Database};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::transport::Channel;

pub use active_sessions_client::proto as pb;

pub mod bench_support;
pub mod pg_cluster;
pub mod pki;
pub mod product;

/// The variable holding an administrative PostgreSQL URL (a database the tests may connect to in
/// order to create their own), e.g. `postgres://postgres@127.0.0.1:5432/postgres`.
pub const POSTGRES_URL_VAR: &str = "ACTIVE_SESSIONS_TEST_POSTGRES_URL";

/// Which database engine a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A fresh SQLite file.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

/// A database created for one test.
#[derive(Debug)]
enum TestDatabase {
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: String,
    },
    /// Another replica's database: used, never dropped.
    Shared { url: String },
}

impl TestDatabase {
    async fn create(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
                Some(Self::Sqlite { _dir: dir, url })
            }
            Backend::Postgres => {
                let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
                    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                        panic!("{POSTGRES_URL_VAR} must be set under CI");
                    }
                    eprintln!("skipped: PostgreSQL test ({POSTGRES_URL_VAR} is not set)");
                    return None;
                };
                let name = format!(
                    "as_test_{}",
                    ulid::Ulid::generate().to_string().to_lowercase()
                );
                let admin = Database::connect(&admin_url)
                    .await
                    .expect("connect to PostgreSQL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                let url = replace_database(&admin_url, &name);
                Some(Self::Postgres {
                    admin_url,
                    name,
                    url,
                })
            }
        }
    }

    fn url(&self) -> &str {
        match self {
            Self::Sqlite { url, .. } | Self::Postgres { url, .. } | Self::Shared { url } => url,
        }
    }

    async fn drop_database(&self) {
        if let Self::Postgres {
            admin_url, name, ..
        } = self
            && let Ok(admin) = Database::connect(admin_url).await
        {
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await
                .ok();
            admin.close().await.ok();
        }
    }
}

/// `postgres://u@h:p/old?x` -> `postgres://u@h:p/NAME?x`.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// A calling service a test server knows, with the token it authenticates with.
#[derive(Debug, Clone)]
pub struct TestCaller {
    /// Its name.
    pub name: String,
    /// Its roles (`product`, `settings`, `identity`, `operator`).
    pub roles: Vec<String>,
    /// Its products (`CHATGPT`, `CODEX`, `API_PLATFORM`).
    pub products: Vec<String>,
    /// Its bearer token.
    pub token: String,
}

impl TestCaller {
    /// A caller with a fresh random token.
    pub fn new(name: &str, roles: &[&str], products: &[&str]) -> Self {
        Self {
            name: name.into(),
            roles: roles.iter().map(|r| (*r).into()).collect(),
            products: products.iter().map(|p| (*p).into()).collect(),
            token: format!("test-token-{name}-{}", ulid::Ulid::generate()),
        }
    }
}

/// The callers file text for `callers`.
pub fn callers_file(callers: &[TestCaller]) -> String {
    use sha2::{Digest, Sha256};
    let quoted = |items: &[String]| {
        items
            .iter()
            .map(|i| format!("{i:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    callers
        .iter()
        .map(|caller| {
            let hash: String = Sha256::digest(caller.token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
            format!(
                "[[callers]]\nname = {:?}\nroles = [{}]\nproducts = [{}]\ntoken_sha256 = \"{hash}\"\n\n",
                caller.name,
                quoted(&caller.roles),
                quoted(&caller.products),
            )
        })
        .collect()
}

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
    callers: Vec<TestCaller>,
    scratch: tempfile::TempDir,
    keys: tempfile::TempDir,
}

impl TestApp {
    /// Starts a server on a fresh database, or `None` when the backend is not configured.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, |_| {}).await
    }

    /// As [`spawn`](Self::spawn), adjusting the configuration first.
    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Option<Self> {
        let database = TestDatabase::create(backend).await?;
        let keys = tempfile::tempdir().expect("key directory");
        let mut config = Config::new("127.0.0.1:0".parse().unwrap(), database.url());
        config.database.max_connections = 8;
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
        let mut app = Self {
            backend,
            addr: "127.0.0.1:0".parse().unwrap(),
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
        };
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
        let mut replica = Self {
            backend: self.backend,
            addr: "127.0.0.1:0".parse().unwrap(),
            clock,
            channel: Channel::from_static("http://127.0.0.1:1").connect_lazy(),
            config: self.config.clone(),
            database: TestDatabase::Shared {
                url: self.database.url().to_owned(),
            },
            shutdown: None,
            server: None,
            services: None,
            callers: self.callers.clone(),
            scratch: tempfile::tempdir().expect("scratch directory"),
            keys: tempfile::tempdir().expect("key directory"),
        };
        replica.config.listen = "127.0.0.1:0".parse().unwrap();
        adjust(&mut replica.config);
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

    /// A connection that authenticates as the named caller.
    pub async fn connect_as(&self, name: &str) -> active_sessions_client::Connection {
        let caller = self
            .callers
            .iter()
            .find(|caller| caller.name == name)
            .unwrap_or_else(|| panic!("no caller {name}"));
        active_sessions_client::Connection::builder(format!("http://{}", self.addr))
            .bearer_token(caller.token.clone())
            .connect()
            .await
            .expect("connect")
    }

    /// A connection with this bearer token (or none).
    pub async fn connect_with_token(
        &self,
        token: Option<&str>,
    ) -> active_sessions_client::Connection {
        let mut builder =
            active_sessions_client::Connection::builder(format!("http://{}", self.addr));
        if let Some(token) = token {
            builder = builder.bearer_token(token);
        }
        builder.connect().await.expect("connect")
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
        self.config.listen = "127.0.0.1:0".parse().unwrap();
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
        self.config.listen = "127.0.0.1:0".parse().unwrap();
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

    /// The server's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Stops the server and removes its database.
    pub async fn stop(mut self) {
        self.stop_server().await;
        self.database.drop_database().await;
    }

    /// An AccountEligibility client.
    pub fn eligibility(&self) -> AccountEligibilityClient<Channel> {
        AccountEligibilityClient::new(self.channel.clone())
    }

    /// A SessionService client.
    pub fn sessions(&self) -> SessionServiceClient<Channel> {
        SessionServiceClient::new(self.channel.clone())
    }

    /// A TrustedDeviceService client.
    pub fn trusted_devices(&self) -> TrustedDeviceServiceClient<Channel> {
        TrustedDeviceServiceClient::new(self.channel.clone())
    }

    /// Trusts a device for an account (TOTP, through ChatGPT, default duration).
    pub async fn trust(&self, account_id: &str, device_id: &str) -> pb::TrustDeviceResponse {
        self.trusted_devices()
            .trust_device(pb::TrustDeviceRequest {
                account_id: account_id.into(),
                device_id: device_id.into(),
                method: pb::TrustMethod::Totp as i32,
                duration: None,
                product: pb::Product::Chatgpt as i32,
            })
            .await
            .unwrap_or_else(|status| panic!("trust failed: {status:?}"))
            .into_inner()
    }

    /// Whether the device is trusted for the account now.
    pub async fn is_trusted(&self, account_id: &str, device_id: &str) -> bool {
        self.trusted_devices()
            .check_device_trust(pb::CheckDeviceTrustRequest {
                account_id: account_id.into(),
                device_id: device_id.into(),
            })
            .await
            .unwrap_or_else(|status| panic!("check failed: {status:?}"))
            .into_inner()
            .trusted
    }

    /// Registers a sign-in and returns the session and its token.
    pub async fn sign_in(&self, sign_in: SignIn) -> (pb::Session, String) {
        let response = self
            .sessions()
            .register_session(sign_in.request())
            .await
            .unwrap_or_else(|status| panic!("registration failed: {status:?}"))
            .into_inner();
        (response.session.expect("session"), response.session_token)
    }

    /// The rows the owner of `token` sees (every page).
    pub async fn rows_for_token(&self, token: &str) -> Vec<pb::SessionRow> {
        self.all_rows(by_token(token)).await
    }

    /// The rows an operator sees for `account_id` (every page).
    pub async fn rows_for_account(&self, account_id: &str) -> Vec<pb::SessionRow> {
        self.all_rows(by_account(account_id)).await
    }

    async fn all_rows(&self, subject: pb::Subject) -> Vec<pb::SessionRow> {
        let mut rows = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .sessions()
                .list_active_sessions(pb::ListActiveSessionsRequest {
                    subject: Some(subject.clone()),
                    page_size: 100,
                    page_token: page_token.clone(),
                    product: 0,
                })
                .await
                .unwrap_or_else(|status| panic!("listing failed: {status:?}"))
                .into_inner();
            rows.extend(page.rows);
            if page.next_page_token.is_empty() {
                return rows;
            }
            page_token = page.next_page_token;
        }
    }

    /// Whether a token validates now.
    pub async fn is_valid(&self, token: &str) -> bool {
        self.sessions()
            .validate_session(pb::ValidateSessionRequest {
                session_token: token.into(),
            })
            .await
            .unwrap_or_else(|status| panic!("validation failed: {status:?}"))
            .into_inner()
            .valid
    }
}

/// 32 random bytes as 64 hexadecimal characters: a token seal key file's content.
pub fn random_key_hex() -> String {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("random key");
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// A `Subject` naming the owner by session token.
pub fn by_token(token: &str) -> pb::Subject {
    pb::Subject {
        subject: Some(pb::subject::Subject::SessionToken(token.into())),
    }
}

/// A `Subject` naming an account (operators).
pub fn by_account(account_id: &str) -> pb::Subject {
    pb::Subject {
        subject: Some(pb::subject::Subject::AccountId(account_id.into())),
    }
}

/// Real user agents.
pub mod user_agents {
    /// Chrome on macOS.
    pub const CHROME_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36";
    /// Safari on an iPhone.
    pub const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
    /// Firefox on Windows.
    pub const FIREFOX_WINDOWS: &str =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0";
    /// The Codex desktop app on macOS.
    pub const CODEX_MAC_APP: &str = "Codex/0.9.1 (Mac OS X 14.5; arm64)";
}

/// A sign-in to register: sensible defaults, adjusted per test.
#[derive(Debug, Clone)]
pub struct SignIn {
    /// Account.
    pub account_id: String,
    /// Product.
    pub product: pb::Product,
    /// Client kind.
    pub client_kind: pb::ClientKind,
    /// Device id.
    pub device_id: String,
    /// User agent.
    pub user_agent: String,
    /// IP address.
    pub ip_address: String,
    /// Auth method.
    pub auth_method: pb::AuthMethod,
    /// Idempotency key.
    pub request_id: String,
    /// Lifetime.
    pub lifetime: Option<std::time::Duration>,
    /// Legacy import with unknown status.
    pub status_unavailable: bool,
}

impl SignIn {
    /// A ChatGPT browser sign-in by password from London, on `device_id`.
    pub fn browser(account_id: &str, device_id: &str) -> Self {
        Self {
            account_id: account_id.into(),
            product: pb::Product::Chatgpt,
            client_kind: pb::ClientKind::Browser,
            device_id: device_id.into(),
            user_agent: user_agents::CHROME_MAC.into(),
            ip_address: "81.2.69.142".into(),
            auth_method: pb::AuthMethod::Password,
            request_id: String::new(),
            lifetime: None,
            status_unavailable: false,
        }
    }

    /// The same sign-in in another product.
    pub fn product(mut self, product: pb::Product) -> Self {
        self.product = product;
        self
    }

    /// The same sign-in with another client kind.
    pub fn kind(mut self, kind: pb::ClientKind) -> Self {
        self.client_kind = kind;
        self
    }

    /// The same sign-in from another IP.
    pub fn ip(mut self, ip: &str) -> Self {
        self.ip_address = ip.into();
        self
    }

    /// The same sign-in with a request id.
    pub fn request_id(mut self, request_id: &str) -> Self {
        self.request_id = request_id.into();
        self
    }

    /// The request message.
    pub fn request(&self) -> pb::RegisterSessionRequest {
        pb::RegisterSessionRequest {
            request_id: self.request_id.clone(),
            account_id: self.account_id.clone(),
            product: self.product as i32,
            client_kind: self.client_kind as i32,
            device_id: self.device_id.clone(),
            user_agent: self.user_agent.clone(),
            ip_address: self.ip_address.clone(),
            auth_method: self.auth_method as i32,
            lifetime: self
                .lifetime
                .map(|d| prost_types::Duration::try_from(d).expect("duration")),
            status_unavailable: self.status_unavailable,
        }
    }
}

/// Writes an end-to-end test twice: `NAME::sqlite` and `NAME::postgres`. The body sees the
/// running server as `app` (mutable, so it can restart it).
#[macro_export]
macro_rules! e2e {
    // With the configuration adjusted first: `async fn name(app) with |config| { ... } { body }`.
    ($(#[$meta:meta])* async fn $name:ident($app:ident) with $adjust:expr, $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                #[allow(unused_mut)]
                let Some(mut $app) = $crate::TestApp::spawn_with($crate::Backend::Sqlite, $adjust).await else {
                    return;
                };
                $body
                $app.stop().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                #[allow(unused_mut)]
                let Some(mut $app) = $crate::TestApp::spawn_with($crate::Backend::Postgres, $adjust).await else {
                    return;
                };
                $body
                $app.stop().await;
            }
        }
    };
    ($(#[$meta:meta])* async fn $name:ident($app:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                #[allow(unused_mut)]
                let Some(mut $app) = $crate::TestApp::spawn($crate::Backend::Sqlite).await else {
                    return;
                };
                $body
                $app.stop().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                #[allow(unused_mut)]
                let Some(mut $app) = $crate::TestApp::spawn($crate::Backend::Postgres).await else {
                    return;
                };
                $body
                $app.stop().await;
            }
        }
    };
}

/// Writes a test twice, `NAME::sqlite` and `NAME::postgres`, for tests that start their server
/// themselves (with callers or limits). The body gets the backend and returns early when the
/// backend is not configured.
#[macro_export]
macro_rules! on_each_database {
    ($(#[$meta:meta])* async fn $name:ident($backend:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($backend: $crate::Backend) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run($crate::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run($crate::Backend::Postgres).await;
            }
        }
    };
}

/// Asserts a status code and, when given, the `ErrorInfo` reason and the fields of the
/// `BadRequest` violations.
pub fn assert_status(status: &tonic::Status, code: tonic::Code, reason: Option<&str>) {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), code, "unexpected status: {status:?}");
    if let Some(reason) = reason {
        let info = status
            .get_details_error_info()
            .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
        assert_eq!(info.reason, reason);
        assert_eq!(info.domain, active_sessions_client::ERROR_DOMAIN);
    }
}

/// The fields named by a status's `BadRequest` details.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            replace_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(replace_database("postgres://h", "x"), "postgres://h/x");
    }
}

/// Sends raw bytes as the request body of a unary call, for requests no well-behaved client
/// would build (bytes that do not decode).
pub async fn raw_unary(
    app: &TestApp,
    path: &'static str,
    body: Vec<u8>,
) -> Result<Vec<u8>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(app.channel.clone());
    grpc.ready()
        .await
        .map_err(|err| tonic::Status::unavailable(err.to_string()))?;
    grpc.unary(
        tonic::Request::new(body),
        http::uri::PathAndQuery::from_static(path),
        raw::RawCodec,
    )
    .await
    .map(tonic::Response::into_inner)
}

mod raw {
    //! A codec that passes bytes through untouched.
    use bytes::{Buf, BufMut};
    use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

    #[derive(Debug, Default, Clone)]
    pub struct RawCodec;

    impl Codec for RawCodec {
        type Encode = Vec<u8>;
        type Decode = Vec<u8>;
        type Encoder = RawCodec;
        type Decoder = RawCodec;
        fn encoder(&mut self) -> Self::Encoder {
            RawCodec
        }
        fn decoder(&mut self) -> Self::Decoder {
            RawCodec
        }
    }

    impl Encoder for RawCodec {
        type Item = Vec<u8>;
        type Error = tonic::Status;
        fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
            dst.put_slice(&item);
            Ok(())
        }
    }

    impl Decoder for RawCodec {
        type Item = Vec<u8>;
        type Error = tonic::Status;
        fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Self::Error> {
            let mut out = vec![0; src.remaining()];
            src.copy_to_slice(&mut out);
            Ok(Some(out))
        }
    }
}
