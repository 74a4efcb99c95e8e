//! Security at the edge: who may call (bearer tokens, client certificates), how the callers file
//! is reloaded and refused, TLS and mTLS, and what protects the server from too much: load
//! shedding, per-caller rate limits, the message-size limit and deadlines.
//!
//! Certificates are made at run time with rcgen; every server listens on loopback only.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use active_sessions_client::{Connection, ConnectionBuilder};
use active_sessions_e2e::{
    Backend, SignIn, TestApp, TestCaller, assert_status, by_account, callers_file, e2e, pb,
    violated_fields,
};
use active_sessions_server::{Application, app::StartError, config::Config};
use futures::future::join_all;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use tokio::task::JoinHandle;
use tonic::{Code, Status, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1 as reflection;
use tonic_types::StatusExt;

const SESSION_SERVICE: &str = "activesessions.v1.SessionService";
const REGISTER_SESSION: &str = "/activesessions.v1.SessionService/RegisterSession";

/// Writes a test twice, `NAME::sqlite` and `NAME::postgres`, for tests that start their server
/// themselves (with callers or limits). The body gets the backend and returns early when the
/// backend is not configured.
macro_rules! on_each_database {
    ($(#[$meta:meta])* async fn $name:ident($backend:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($backend: Backend) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run(Backend::Postgres).await;
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The `RetryInfo` delay of a status.
fn retry_delay(status: &Status) -> Option<Duration> {
    status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
}

fn product_caller(name: &str) -> TestCaller {
    TestCaller::new(name, &["product"], &["CHATGPT"])
}

/// A ValidateSession request for a well-formed token no session has.
fn unknown_token_validation() -> pb::ValidateSessionRequest {
    pb::ValidateSessionRequest {
        session_token: format!("ast_{}", "A".repeat(43)),
    }
}

/// Registers a sign-in through `connection` and returns its token.
async fn register(connection: &Connection, account: &str, device: &str) -> Result<String, Status> {
    connection
        .session_service()
        .register_session(SignIn::browser(account, device).request())
        .await
        .map(|response| response.into_inner().session_token)
}

/// Asserts that the call was refused UNAUTHENTICATED with reason CALLER_UNAUTHENTICATED.
fn assert_caller_unauthenticated(result: Result<impl std::fmt::Debug, Status>) {
    let status = result.expect_err("the call must be refused");
    assert_status(
        &status,
        Code::Unauthenticated,
        Some("CALLER_UNAUTHENTICATED"),
    );
}

/// Waits (bounded) until health reports `service` SERVING.
async fn wait_until_serving(channel: Channel, service: &str) {
    let mut health = HealthClient::new(channel);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health answers without a credential")
            .into_inner()
            .status();
        if status == ServingStatus::Serving {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{service:?} never became SERVING"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts a unary RegisterSession call whose request message never arrives: the server has the
/// call's headers (so it holds an in-flight slot) and waits for a body that does not come.
/// Aborting the task resets the stream.
fn stalled_registration(
    channel: Channel,
    timeout: Option<Duration>,
) -> JoinHandle<Result<pb::RegisterSessionResponse, Status>> {
    tokio::spawn(async move {
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready()
            .await
            .map_err(|err| Status::unavailable(err.to_string()))?;
        let mut request =
            tonic::Request::new(futures::stream::pending::<pb::RegisterSessionRequest>());
        if let Some(timeout) = timeout {
            request.set_timeout(timeout);
        }
        grpc.client_streaming(
            request,
            http::uri::PathAndQuery::from_static(REGISTER_SESSION),
            tonic_prost::ProstCodec::<pb::RegisterSessionRequest, pb::RegisterSessionResponse>::default(),
        )
        .await
        .map(tonic::Response::into_inner)
    })
}

/// True for a status the client made from a transport failure (no answer from the server).
fn is_client_transport_error(status: &Status) -> bool {
    status.code() == Code::Unknown
        && std::error::Error::source(status)
            .is_some_and(|source| source.downcast_ref::<tonic::transport::Error>().is_some())
}

/// A callers file written to a temporary directory.
struct CallersFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl CallersFile {
    fn new(text: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("callers.toml");
        std::fs::write(&path, text).expect("write callers file");
        Self { _dir: dir, path }
    }
}

/// The callers-file entry of `caller` with extra `key = value` lines.
fn entry_with(caller: &TestCaller, extra: &str) -> String {
    format!(
        "{}\n{extra}\n\n",
        callers_file(std::slice::from_ref(caller)).trim_end()
    )
}

/// A callers file whose third line names an unknown role.
fn callers_file_with_unknown_role_on_line_3(rest: &[TestCaller]) -> String {
    let wizard = TestCaller::new("wizard", &["wizard"], &[]);
    let text = format!("{}{}", callers_file(&[wizard]), callers_file(rest));
    assert!(
        text.lines()
            .nth(2)
            .is_some_and(|line| line.contains("wizard")),
        "{text}"
    );
    text
}

// ---------------------------------------------------------------------------------------------
// 1. Credentials
// ---------------------------------------------------------------------------------------------

on_each_database! {
    async fn calls_without_a_known_bearer_token_are_unauthenticated_while_health_and_reflection_need_none(backend) {
        let web = product_caller("web");
        let Some(app) = TestApp::spawn_with_callers(backend, vec![web.clone()]).await else {
            return;
        };

        // The right token works.
        register(&app.connect_as("web").await, "acct-auth", "device-1")
            .await
            .expect("a known caller registers");

        // No credential at all.
        let anonymous = app.connect_with_token(None).await;
        assert_caller_unauthenticated(
            anonymous.session_service().validate_session(unknown_token_validation()).await,
        );
        assert_caller_unauthenticated(register(&anonymous, "acct-auth", "device-2").await);

        // A token nobody has.
        let stranger = app.connect_with_token(Some("not-a-token-of-any-caller")).await;
        assert_caller_unauthenticated(
            stranger.session_service().validate_session(unknown_token_validation()).await,
        );

        // Malformed authorization metadata, including another scheme around a valid token.
        for header in ["Basic x".to_owned(), format!("Token {}", web.token), web.token.clone(), "Bearer".into()] {
            let mut request = tonic::Request::new(unknown_token_validation());
            request
                .metadata_mut()
                .insert("authorization", header.parse().expect("ASCII metadata"));
            let status = app
                .sessions()
                .validate_session(request)
                .await
                .expect_err(&format!("{header:?} must be refused"));
            assert_status(&status, Code::Unauthenticated, Some("CALLER_UNAUTHENTICATED"));
        }

        // Health and reflection answer without any credential.
        wait_until_serving(app.channel.clone(), SESSION_SERVICE).await;
        wait_until_serving(app.channel.clone(), "").await;
        let mut reflection_client =
            reflection::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
        let request = reflection::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(reflection::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            )),
        };
        let mut responses = reflection_client
            .server_reflection_info(futures::stream::iter([request]))
            .await
            .expect("reflection answers without a credential")
            .into_inner();
        let response = responses
            .message()
            .await
            .expect("a reflection response")
            .expect("one message");
        let Some(reflection::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
            response.message_response
        else {
            panic!("not a list response: {response:?}");
        };
        assert!(list.service.iter().any(|service| service.name == SESSION_SERVICE), "{list:?}");

        app.stop().await;
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Reloading the callers file
// ---------------------------------------------------------------------------------------------

on_each_database! {
    async fn reloading_the_callers_file_adds_and_removes_callers_and_a_bad_file_keeps_the_old_ones(backend) {
        let a = product_caller("caller-a");
        let b = product_caller("caller-b");
        let Some(app) = TestApp::spawn_with_callers(backend, vec![a.clone()]).await else {
            return;
        };
        let path = app.callers_file_path();
        let registry = app.services().callers().expect("callers file in force").clone();
        let conn_a = app.connect_with_token(Some(&a.token)).await;
        let conn_b = app.connect_with_token(Some(&b.token)).await;

        register(&conn_a, "acct-reload", "device-a").await.expect("A calls");
        assert_caller_unauthenticated(register(&conn_b, "acct-reload", "device-b").await);

        // Adding B.
        std::fs::write(&path, callers_file(&[a.clone(), b.clone()])).unwrap();
        assert_eq!(registry.reload().expect("a good file reloads"), 2);
        register(&conn_b, "acct-reload", "device-b").await.expect("B calls after the reload");

        // A malformed file is refused with its path and line; A and B keep working.
        std::fs::write(&path, callers_file_with_unknown_role_on_line_3(std::slice::from_ref(&a))).unwrap();
        let err = registry.reload().expect_err("a malformed file is refused");
        assert_eq!(err.path, path);
        assert_eq!(err.line, Some(3), "{err}");
        let message = err.to_string();
        assert!(message.starts_with(&format!("{}:3: ", path.display())), "{message}");
        assert!(message.contains("unknown role"), "{message}");
        register(&conn_a, "acct-reload", "device-a2").await.expect("A still calls");
        register(&conn_b, "acct-reload", "device-b2").await.expect("B still calls");

        // A file that cannot be read is refused too, naming it; the callers stay.
        std::fs::remove_file(&path).unwrap();
        let err = registry.reload().expect_err("a missing file is refused");
        assert!(err.to_string().starts_with(&path.display().to_string()), "{err}");
        register(&conn_b, "acct-reload", "device-b3").await.expect("B still calls");

        // Removing B: its token, even on its already-open connection, is refused from now on.
        std::fs::write(&path, callers_file(std::slice::from_ref(&a))).unwrap();
        assert_eq!(registry.reload().expect("a good file reloads"), 1);
        assert_caller_unauthenticated(register(&conn_b, "acct-reload", "device-b4").await);
        assert_caller_unauthenticated(
            app.connect_with_token(Some(&b.token))
                .await
                .session_service()
                .validate_session(unknown_token_validation())
                .await,
        );
        register(&conn_a, "acct-reload", "device-a3").await.expect("A still calls");

        app.stop().await;
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Start-up refusals
// ---------------------------------------------------------------------------------------------

fn sqlite_config(dir: &Path, listen: &str) -> Config {
    Config::new(
        listen.parse().unwrap(),
        format!("sqlite://{}", dir.join("sessions.db").display()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_refuses_a_public_listen_address_without_a_callers_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = Application::build(sqlite_config(dir.path(), "0.0.0.0:0"))
        .await
        .expect_err("no callers file on a public address");
    assert!(
        matches!(err, StartError::UnauthenticatedPublicListen(addr) if addr.ip().is_unspecified()),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("without a callers file"), "{message}");
    assert!(message.contains("0.0.0.0"), "{message}");
    assert!(message.contains("--callers-file"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_refuses_a_malformed_or_missing_callers_file_naming_the_path_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = CallersFile::new(&callers_file_with_unknown_role_on_line_3(&[
        product_caller("web"),
    ]));
    let mut config = sqlite_config(dir.path(), "127.0.0.1:0");
    config.security.callers_file = Some(file.path.clone());
    let err = Application::build(config)
        .await
        .expect_err("a malformed callers file");
    let StartError::Callers(ref callers) = err else {
        panic!("not a callers-file error: {err:?}");
    };
    assert_eq!(callers.line, Some(3), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&format!("{}:3: ", file.path.display())),
        "{message}"
    );
    assert!(message.contains("unknown role \"wizard\""), "{message}");

    let missing = dir.path().join("no-such-callers.toml");
    let mut config = sqlite_config(dir.path(), "127.0.0.1:0");
    config.security.callers_file = Some(missing.clone());
    let err = Application::build(config)
        .await
        .expect_err("a missing callers file");
    assert!(matches!(err, StartError::Callers(_)), "{err:?}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. TLS and mTLS
// ---------------------------------------------------------------------------------------------

/// A certificate and its key, PEM.
#[derive(Clone)]
struct Pem {
    cert: String,
    key: String,
}

/// A CA for tests.
struct TestCa {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf certificate whose subject is only `CN=<common_name>`.
    fn issue(&self, common_name: &str, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Pem {
        let mut params = CertificateParams::new(
            names
                .iter()
                .map(|name| (*name).to_owned())
                .collect::<Vec<_>>(),
        )
        .unwrap();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// Every certificate the TLS tests need, written to a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
    ca: String,
    /// `CN=ops`, signed by the CA.
    ops: Pem,
    /// `CN=stranger`, signed by the CA, in no callers-file entry.
    stranger: Pem,
    /// A second, unrelated CA.
    rogue_ca: String,
    /// `CN=ops`, signed by the unrelated CA.
    rogue_ops: Pem,
}

impl Pki {
    fn new() -> Self {
        let ca = TestCa::new("active-sessions test CA");
        let server = ca.issue(
            "localhost",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let ops = ca.issue("ops", &[], ExtendedKeyUsagePurpose::ClientAuth);
        let stranger = ca.issue("stranger", &[], ExtendedKeyUsagePurpose::ClientAuth);
        let rogue = TestCa::new("unrelated CA");
        let rogue_ops = rogue.issue("ops", &[], ExtendedKeyUsagePurpose::ClientAuth);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
        std::fs::write(dir.path().join("server.pem"), &server.cert).unwrap();
        std::fs::write(dir.path().join("server.key"), &server.key).unwrap();
        Self {
            dir,
            ca: ca.pem,
            ops,
            stranger,
            rogue_ca: rogue.pem,
            rogue_ops,
        }
    }

    /// Serve TLS with the server certificate; with `client_ca`, require client certificates.
    fn configure(&self, config: &mut Config, client_ca: bool) {
        config.security.tls_cert = Some(self.dir.path().join("server.pem"));
        config.security.tls_key = Some(self.dir.path().join("server.key"));
        if client_ca {
            config.security.tls_client_ca = Some(self.dir.path().join("ca.pem"));
        }
    }
}

/// A TLS connection builder to the app, verifying the server against `ca` as `localhost`.
fn tls_builder(app: &TestApp, ca: &str) -> ConnectionBuilder {
    Connection::builder(format!("https://127.0.0.1:{}", app.addr.port()))
        .tls_ca(ca, "localhost")
        .connect_timeout(Duration::from_secs(3))
}

/// Connects and registers one sign-in; `Err` says how it failed.
async fn try_register(builder: ConnectionBuilder, device: &str) -> Result<(), String> {
    let attempt = async {
        let connection = builder
            .connect()
            .await
            .map_err(|err| format!("connect failed: {err}"))?;
        register(&connection, "acct-tls", device)
            .await
            .map(drop)
            .map_err(|status| format!("call failed: {:?}: {}", status.code(), status.message()))
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_clients_that_trust_its_ca_and_refuses_plaintext_and_untrusting_clients() {
    let pki = Pki::new();
    let web = product_caller("web");
    let callers = CallersFile::new(&callers_file(std::slice::from_ref(&web)));
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.security.callers_file = Some(callers.path.clone());
        pki.configure(config, false);
    })
    .await
    else {
        return;
    };

    try_register(
        tls_builder(&app, &pki.ca).bearer_token(&web.token),
        "device-1",
    )
    .await
    .expect("a client trusting the CA calls over TLS");

    let plaintext = Connection::builder(format!("http://127.0.0.1:{}", app.addr.port()))
        .bearer_token(&web.token)
        .connect_timeout(Duration::from_secs(3));
    let failure = try_register(plaintext, "device-2")
        .await
        .expect_err("plaintext must not reach a TLS server");
    eprintln!("plaintext client against TLS: {failure}");

    let untrusting = tls_builder(&app, &pki.rogue_ca).bearer_token(&web.token);
    let failure = try_register(untrusting, "device-3")
        .await
        .expect_err("a client that does not trust the server's CA must not connect");
    eprintln!("client trusting another CA: {failure}");

    // Without a bearer token, TLS alone authenticates nobody.
    let failure = try_register(tls_builder(&app, &pki.ca), "device-4")
        .await
        .expect_err("no credential");
    assert!(failure.contains("Unauthenticated"), "{failure}");

    // Failed handshakes did not hurt the server.
    try_register(
        tls_builder(&app, &pki.ca).bearer_token(&web.token),
        "device-5",
    )
    .await
    .expect("the server still serves TLS clients");

    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_authenticates_a_caller_by_client_certificate_subject_and_refuses_missing_or_foreign_certificates()
 {
    let pki = Pki::new();
    let web = product_caller("web");
    // x509-parser renders a subject that is only a common name as "CN=ops".
    let text = format!(
        "{}[[callers]]\nname = \"ops\"\nroles = [\"operator\"]\nclient_certificate_subject = \"CN=ops\"\n",
        callers_file(std::slice::from_ref(&web))
    );
    let callers = CallersFile::new(&text);
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.security.callers_file = Some(callers.path.clone());
        pki.configure(config, true);
    })
    .await
    else {
        return;
    };
    let ops = || tls_builder(&app, &pki.ca).tls_client_identity(&pki.ops.cert, &pki.ops.key);

    // The ops certificate alone authenticates the operator.
    try_register(ops(), "device-1")
        .await
        .expect("a client certificate from the CA with a known subject calls without a token");
    let connection = ops().connect().await.unwrap();
    let listed = connection
        .session_service()
        .list_active_sessions(pb::ListActiveSessionsRequest {
            subject: Some(by_account("acct-tls")),
            page_size: 100,
            page_token: String::new(),
            product: 0,
        })
        .await
        .expect("an operator lists any account")
        .into_inner();
    assert_eq!(listed.rows.len(), 1);

    // No client certificate: the handshake is refused, whatever the token.
    let failure = try_register(
        tls_builder(&app, &pki.ca).bearer_token(&web.token),
        "device-2",
    )
    .await
    .expect_err("mTLS requires a client certificate");
    eprintln!("mTLS without a client certificate: {failure}");
    assert!(
        !failure.contains("Unauthenticated"),
        "refused by TLS, not by the callers file: {failure}"
    );

    // A certificate with the right subject from another CA.
    let rogue =
        tls_builder(&app, &pki.ca).tls_client_identity(&pki.rogue_ops.cert, &pki.rogue_ops.key);
    let failure = try_register(rogue, "device-3")
        .await
        .expect_err("a client certificate from another CA must be refused");
    eprintln!("mTLS with a certificate from another CA: {failure}");

    // A certificate from the CA whose subject no caller has: UNAUTHENTICATED by the server.
    let stranger =
        tls_builder(&app, &pki.ca).tls_client_identity(&pki.stranger.cert, &pki.stranger.key);
    let connection = stranger.connect().await.expect("the handshake succeeds");
    assert_caller_unauthenticated(register(&connection, "acct-tls", "device-4").await);

    // A bearer token over mTLS identifies its own caller.
    let web_over_mtls = tls_builder(&app, &pki.ca)
        .tls_client_identity(&pki.stranger.cert, &pki.stranger.key)
        .bearer_token(&web.token);
    try_register(web_over_mtls, "device-5")
        .await
        .expect("the token's caller calls");

    // Refused handshakes did not hurt the server.
    try_register(ops(), "device-6")
        .await
        .expect("the server still serves mTLS clients");

    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 5. Load shedding
// ---------------------------------------------------------------------------------------------

/// Starts `slots` stalled calls and waits (bounded) until they hold every slot: until a cheap
/// call is shed. A stalled call that was itself shed (it raced a probe) is started again.
async fn hold_every_slot(
    app: &TestApp,
    slots: usize,
) -> Vec<JoinHandle<Result<pb::RegisterSessionResponse, Status>>> {
    let mut holders: Vec<_> = (0..slots)
        .map(|_| stalled_registration(app.channel.clone(), None))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        for holder in &mut holders {
            if holder.is_finished() {
                let status = (&mut *holder)
                    .await
                    .expect("task")
                    .expect_err("a stalled call cannot succeed");
                assert_overloaded(&status);
                *holder = stalled_registration(app.channel.clone(), None);
            }
        }
        match app
            .sessions()
            .validate_session(unknown_token_validation())
            .await
        {
            Err(status) if status.code() == Code::Unavailable => {
                assert_overloaded(&status);
                if holders.iter().all(|holder| !holder.is_finished()) {
                    return holders;
                }
            }
            other => assert!(Instant::now() < deadline, "never shed: {other:?}"),
        }
    }
}

/// Waits (bounded) until a cheap call succeeds again.
async fn wait_until_not_shedding(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match app
            .sessions()
            .validate_session(unknown_token_validation())
            .await
        {
            Ok(_) => return,
            other => assert!(Instant::now() < deadline, "still shedding: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn assert_overloaded(status: &Status) {
    assert_status(status, Code::Unavailable, Some("OVERLOADED"));
    let delay = retry_delay(status).unwrap_or_else(|| panic!("no RetryInfo in {status:?}"));
    assert!(
        delay > Duration::ZERO && delay <= Duration::from_secs(5),
        "{delay:?}"
    );
}

/// Fires `count` registrations at once, each on its own device of `account`.
async fn register_burst(app: &TestApp, account: &str, count: usize) -> Vec<Result<String, Status>> {
    let calls = (0..count).map(|i| {
        let mut client = app.sessions();
        let request = SignIn::browser(account, &format!("device-{i}")).request();
        tokio::spawn(async move {
            client
                .register_session(request)
                .await
                .map(|response| response.into_inner().session_token)
        })
    });
    join_all(calls)
        .await
        .into_iter()
        .map(|joined| joined.expect("task panicked"))
        .collect()
}

on_each_database! {
    async fn calls_over_the_in_flight_limit_are_shed_as_overloaded_while_health_still_answers(backend) {
        let Some(app) = TestApp::spawn_with(backend, |config| {
            config.security.max_concurrent_calls = 2;
        })
        .await
        else {
            return;
        };
        wait_until_serving(app.channel.clone(), SESSION_SERVICE).await;

        // Two calls whose request never arrives hold both slots.
        let holders = hold_every_slot(&app, 2).await;

        // A burst while the slots are held: every call is shed at once, nothing stored.
        let started = Instant::now();
        let burst = register_burst(&app, "acct-shed", 50);
        let (results, health) = tokio::join!(burst, async {
            HealthClient::new(app.channel.clone())
                .check(HealthCheckRequest { service: SESSION_SERVICE.into() })
                .await
        });
        assert!(started.elapsed() < Duration::from_secs(5), "shedding must not queue");
        for result in &results {
            assert_overloaded(result.as_ref().expect_err("every call is shed"));
        }
        assert_eq!(
            health.expect("health is exempt from shedding").into_inner().status(),
            ServingStatus::Serving
        );

        // Releasing the slots ends the shedding.
        for holder in &holders {
            holder.abort();
        }
        wait_until_not_shedding(&app).await;
        assert!(app.rows_for_account("acct-shed").await.is_empty(), "shed calls stored nothing");

        // A free-running burst: each call either succeeds or is shed cleanly, never INTERNAL;
        // what succeeded is exactly what was stored.
        let results = register_burst(&app, "acct-burst", 50).await;
        let mut ok = 0;
        let mut shed = 0;
        for result in &results {
            match result {
                Ok(_) => ok += 1,
                Err(status) => {
                    assert_overloaded(status);
                    shed += 1;
                }
            }
        }
        eprintln!("free-running burst of 50 with 2 slots: {ok} OK, {shed} OVERLOADED");
        assert!(ok >= 1);
        assert_eq!(app.rows_for_account("acct-burst").await.len(), ok);

        app.stop().await;
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Per-caller rate limits
// ---------------------------------------------------------------------------------------------

on_each_database! {
    async fn a_caller_over_its_rate_limit_is_refused_with_retry_info_while_other_callers_are_not(backend) {
        let brute = product_caller("brute");
        let other = product_caller("other");
        let text = format!(
            "{}{}",
            entry_with(&brute, "rate_limit_per_second = 5"),
            callers_file(std::slice::from_ref(&other))
        );
        let callers = CallersFile::new(&text);
        let Some(app) = TestApp::spawn_with(backend, |config| {
            config.security.callers_file = Some(callers.path.clone());
        })
        .await
        else {
            return;
        };
        let brute_conn = app.connect_with_token(Some(&brute.token)).await;
        let other_conn = app.connect_with_token(Some(&other.token)).await;
        let token = register(&other_conn, "acct-rate", "device-1").await.expect("register");
        let validate = |connection: &Connection| {
            let mut client = connection.session_service();
            let request = pb::ValidateSessionRequest { session_token: token.clone() };
            tokio::spawn(async move { client.validate_session(request).await.map(|r| r.into_inner().valid) })
        };

        let started = Instant::now();
        let brute_calls = join_all((0..50).map(|_| validate(&brute_conn)));
        let other_calls = join_all((0..20).map(|_| validate(&other_conn)));
        let (brute_results, other_results) = tokio::join!(brute_calls, other_calls);
        let elapsed = started.elapsed();

        let mut allowed = 0;
        let mut limited = 0;
        for result in brute_results {
            match result.expect("task") {
                Ok(valid) => {
                    assert!(valid);
                    allowed += 1;
                }
                Err(status) => {
                    assert_status(&status, Code::ResourceExhausted, Some("RATE_LIMITED"));
                    let delay = retry_delay(&status).unwrap_or_else(|| panic!("no RetryInfo in {status:?}"));
                    assert!(delay > Duration::ZERO && delay <= Duration::from_secs(1), "{delay:?}");
                    limited += 1;
                }
            }
        }
        eprintln!("brute: {allowed} allowed, {limited} rate limited in {elapsed:?}");
        // A burst of 5, then one more every 200 ms.
        let most_allowed = 5 + usize::try_from(elapsed.as_millis() / 200).unwrap() + 1;
        assert!(allowed >= 1 && allowed <= most_allowed, "{allowed} allowed in {elapsed:?}");
        assert!(limited >= 50 - most_allowed, "{limited}");
        assert!(elapsed < Duration::from_secs(3), "refusals must be quick: {elapsed:?}");
        for result in other_results {
            assert!(result.expect("task").expect("the other caller is not limited"));
        }

        // After the RetryInfo delay the caller may call again.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(brute_conn
            .session_service()
            .validate_session(pb::ValidateSessionRequest { session_token: token.clone() })
            .await
            .expect("allowed again after waiting")
            .into_inner()
            .valid);

        app.stop().await;
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Oversized input
// ---------------------------------------------------------------------------------------------

e2e! {
    async fn a_request_over_the_message_size_limit_is_out_of_range_and_an_overlong_user_agent_is_invalid(app) {
        let limit = app.config().security.max_message_bytes;
        assert_eq!(limit, 64 * 1024);

        // 200 KB: refused by the message-size limit before the handler sees it. tonic answers
        // OUT_OF_RANGE ("decoded message length too large").
        let mut huge = SignIn::browser("acct-big", "device-1");
        huge.user_agent = "a".repeat(200 * 1024);
        let status = app
            .sessions()
            .register_session(huge.request())
            .await
            .expect_err("a 200 KB request must be refused");
        assert_status(&status, Code::OutOfRange, None);
        assert!(status.message().contains("too large"), "{status:?}");
        assert!(status.message().contains(&limit.to_string()), "{status:?}");

        // Over the 1024-character field limit but under the byte limit.
        let mut long = SignIn::browser("acct-big", "device-2");
        long.user_agent = "a".repeat(2000);
        let status = app
            .sessions()
            .register_session(long.request())
            .await
            .expect_err("a 2000-character user agent must be refused");
        assert_status(&status, Code::InvalidArgument, None);
        assert_eq!(violated_fields(&status), ["user_agent"]);

        assert!(app.rows_for_account("acct-big").await.is_empty(), "nothing was stored");

        // The limit is in characters: 1024 two-byte characters are accepted.
        let mut widest = SignIn::browser("acct-big", "device-3");
        widest.user_agent = "é".repeat(1024);
        app.sign_in(widest).await;
        let rows = app.rows_for_account("acct-big").await;
        assert_eq!(rows.len(), 1);
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Deadlines
// ---------------------------------------------------------------------------------------------

e2e! {
    async fn calls_past_a_one_millisecond_client_deadline_end_deadline_exceeded_or_cancelled(app) {
        let is_deadline = |status: &Status| {
            matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled)
        };

        // A call that cannot finish in time (its request never arrives) with a 1 ms deadline.
        let status = stalled_registration(app.channel.clone(), Some(Duration::from_millis(1)))
            .await
            .expect("task")
            .expect_err("the deadline passes");
        assert!(is_deadline(&status), "{status:?}");

        // Ordinary registrations, one after another, on a connection whose every call has 1 ms:
        // each finishes in time or ends at its deadline.
        let hurried = Connection::builder(format!("http://{}", app.addr))
            .request_timeout(Duration::from_millis(1))
            .connect()
            .await
            .unwrap();
        let mut client = hurried.session_service();
        let mut expired = 0;
        let mut broken = 0;
        for i in 0..20 {
            let request = SignIn::browser("acct-deadline", &format!("device-{i}")).request();
            if let Err(status) = client.register_session(request).await {
                if is_deadline(&status) {
                    expired += 1;
                } else {
                    // The server also enforces the deadline it was sent: when it answers while
                    // the client is still writing the request, hyper's client may report the
                    // broken request stream (UNKNOWN "transport error", made on the client)
                    // instead of the answer. Anything else, INTERNAL above all, is a failure.
                    assert!(is_client_transport_error(&status), "{status:?}");
                    broken += 1;
                }
            }
        }
        eprintln!(
            "1 ms client deadline: {expired} of 20 registrations expired, {broken} broken streams"
        );

        // The server is unharmed.
        app.sign_in(SignIn::browser("acct-deadline", "device-after")).await;
    }
}

on_each_database! {
    async fn the_server_request_timeout_ends_a_stalled_call_and_frees_its_slot_whatever_the_client_deadline(backend) {
        let Some(app) = TestApp::spawn_with(backend, |config| {
            config.security.request_timeout = Duration::from_millis(300);
            config.security.max_concurrent_calls = 1;
        })
        .await
        else {
            return;
        };

        // The client allows 10 s; the server allows 300 ms.
        let started = Instant::now();
        let status = stalled_registration(app.channel.clone(), Some(Duration::from_secs(10)))
            .await
            .expect("task")
            .expect_err("a call whose request never arrives must end");
        let elapsed = started.elapsed();
        assert!(
            matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
            "{status:?}"
        );
        eprintln!("server timeout: {:?} {:?} after {elapsed:?}", status.code(), status.message());
        assert!(elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(5), "{elapsed:?}");

        // A short client deadline on the same kind of call ends it sooner.
        let started = Instant::now();
        let status = stalled_registration(app.channel.clone(), Some(Duration::from_millis(50)))
            .await
            .expect("task")
            .expect_err("the deadline passes");
        assert!(
            matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
            "{status:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(300), "{:?}", started.elapsed());

        // The only slot is free again.
        wait_until_not_shedding(&app).await;
        app.sign_in(SignIn::browser("acct-timeout", "device-1")).await;

        app.stop().await;
    }
}
