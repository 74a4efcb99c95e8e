//! TLS and mTLS: the server serves clients that trust its CA and refuses plaintext and
//! untrusting clients; under mTLS a caller is known by its client certificate's subject, and a
//! missing or foreign certificate is refused.

use std::time::Duration;

use super::{CallersFile, assert_caller_unauthenticated, product_caller, register};
use active_sessions_client::{Connection, ConnectionBuilder};
use active_sessions_e2e::{
    Backend, TestApp, by_account, callers_file, pb,
    pki::{Pem, TestCa},
};
use active_sessions_server::config::Config;
use rcgen::ExtendedKeyUsagePurpose;

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
