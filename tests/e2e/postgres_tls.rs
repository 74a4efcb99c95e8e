//! TLS to PostgreSQL, as a managed database (RDS with `rds.force_ssl`, Cloud SQL, Azure) enforces
//! it: a throwaway cluster with `ssl = on` and only `hostssl` lines, its certificate signed by a
//! CA made here. The server honours libpq's URL parameters: it connects with
//! `sslmode=verify-full` and the CA in `sslrootcert`, authenticates with a client certificate
//! (`sslcert`/`sslkey`), refuses a server certificate from another CA, and never falls back to
//! plaintext when `sslmode=require`.
//!
//! Under CI the cluster must be creatable; elsewhere the test skips when `initdb` is absent.

use std::{io::Read, net::TcpListener, path::Path, time::Duration};

use active_sessions_e2e::{
    SignIn,
    pg_cluster::{ClusterSettings, ThrowawayPostgres},
    pki::TestCa,
};
use active_sessions_server::{Application, app::StartError, config::Config};
use rcgen::ExtendedKeyUsagePurpose;

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|ci| ci == "true")
}

/// The server's configuration for this database URL, with short timeouts.
fn config_for(url: &str) -> Config {
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), url);
    config.database.max_connections = Some(4);
    config.database.connect_timeout = Duration::from_secs(5);
    config.database.acquire_timeout = Duration::from_secs(5);
    config
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().unwrap().to_owned()
}

/// Starts the whole server on `url`, registers and validates one session through the client.
async fn serve_one_session(url: &str) {
    let application = Application::build(config_for(url))
        .await
        .unwrap_or_else(|err| panic!("the server starts over TLS: {err}"));
    let addr = application.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(application.run(async {
        stopped.await.ok();
    }));
    let connection = active_sessions_client::Connection::builder(format!("http://{addr}"))
        .connect()
        .await
        .unwrap();
    let mut sessions = connection.session_service();
    let registered = sessions
        .register_session(SignIn::browser("acct-tls", "laptop").request())
        .await
        .unwrap()
        .into_inner();
    let validated = sessions
        .validate_session(active_sessions_e2e::pb::ValidateSessionRequest {
            session_token: registered.session_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(validated.valid);
    stop.send(()).ok();
    server.await.unwrap().unwrap();
}

async fn refused(url: &str) -> String {
    match Application::build(config_for(url)).await {
        Ok(_) => panic!("the server started on {url}"),
        Err(err @ StartError::Store { .. }) => err.to_string(),
        Err(other) => panic!("unexpected start error: {other}"),
    }
}

#[tokio::test]
async fn server_connects_with_verify_full_and_client_certificates_and_refuses_a_wrong_ca_or_plaintext()
 {
    let ca = TestCa::new("managed PostgreSQL CA");
    let server_cert = ca.issue(
        "127.0.0.1",
        &["127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let client_cert = ca.issue("certuser", &[], ExtendedKeyUsagePurpose::ClientAuth);
    let rogue_ca = TestCa::new("someone else's CA");
    let settings = ClusterSettings {
        postgresql_conf: vec![
            "ssl = on".into(),
            "ssl_cert_file = '{dir}/server.crt'".into(),
            "ssl_key_file = '{dir}/server.key'".into(),
            "ssl_ca_file = '{dir}/root.crt'".into(),
        ],
        // TCP only over TLS: a client certificate for certuser, trust for the others.
        pg_hba: vec![
            "hostssl all certuser 127.0.0.1/32 cert".into(),
            "hostssl all all 127.0.0.1/32 trust".into(),
        ],
        files: vec![
            ("server.crt".into(), server_cert.cert.clone()),
            ("server.key".into(), server_cert.key.clone()),
            ("root.crt".into(), ca.pem.clone()),
            ("rogue.crt".into(), rogue_ca.pem.clone()),
            ("client.crt".into(), client_cert.cert.clone()),
            ("client.key".into(), client_cert.key.clone()),
        ],
    };
    let Some(cluster) = ThrowawayPostgres::start(settings) else {
        assert!(
            !under_ci(),
            "initdb (pg_config --bindir) must be installed under CI"
        );
        eprintln!("skipped: PostgreSQL's initdb is not installed");
        return;
    };
    cluster.psql("CREATE ROLE certuser LOGIN");
    cluster.psql("CREATE DATABASE tls_trust");
    cluster.psql("CREATE DATABASE tls_cert OWNER certuser");
    let dir = cluster.dir();
    let port = cluster.port;
    let root = path(dir, "root.crt");

    // verify-full with the CA: the whole server works (migrations, a registration, a validation).
    serve_one_session(&format!(
        "postgres://postgres@127.0.0.1:{port}/tls_trust?sslmode=verify-full&sslrootcert={root}"
    ))
    .await;

    // A client certificate as the credential (pg_hba `cert`): sslcert and sslkey.
    serve_one_session(&format!(
        "postgres://certuser@127.0.0.1:{port}/tls_cert?sslmode=verify-full&sslrootcert={root}\
         &sslcert={}&sslkey={}",
        path(dir, "client.crt"),
        path(dir, "client.key"),
    ))
    .await;

    // A server certificate from a CA the URL does not name is refused.
    let error = refused(&format!(
        "postgres://postgres@127.0.0.1:{port}/tls_trust?sslmode=verify-full&sslrootcert={}",
        path(dir, "rogue.crt")
    ))
    .await;
    assert!(
        error.to_lowercase().contains("certificate") || error.to_lowercase().contains("tls"),
        "{error}"
    );

    // verify-full also checks the name: the certificate is for 127.0.0.1, not localhost.
    let error = refused(&format!(
        "postgres://postgres@localhost:{port}/tls_trust?sslmode=verify-full&sslrootcert={root}"
    ))
    .await;
    assert!(!error.is_empty());

    // Plaintext is refused by the database (only hostssl lines)...
    refused(&format!(
        "postgres://postgres@127.0.0.1:{port}/tls_trust?sslmode=disable"
    ))
    .await;
    // ...and is never sent by the server when sslmode=require: against a database that declines
    // TLS, it gives up instead of sending its start-up message (user, database) in plaintext.
    let declining = TcpListener::bind("127.0.0.1:0").unwrap();
    let declining_port = declining.local_addr().unwrap().port();
    let spy = std::thread::spawn(move || {
        let (mut socket, _) = declining.accept().unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut ssl_request = [0u8; 8];
        socket.read_exact(&mut ssl_request).unwrap();
        std::io::Write::write_all(&mut socket, b"N").unwrap();
        let mut after = Vec::new();
        let _ = socket.read_to_end(&mut after);
        (ssl_request, after)
    });
    let error = refused(&format!(
        "postgres://postgres@127.0.0.1:{declining_port}/tls_trust?sslmode=require"
    ))
    .await;
    let (ssl_request, after) = spy.join().unwrap();
    // SSLRequest: length 8, code 80877103.
    assert_eq!(
        ssl_request,
        [0, 0, 0, 8, 4, 210, 22, 47],
        "the first bytes ask for TLS"
    );
    assert!(
        after.is_empty(),
        "nothing was sent in plaintext after the refusal: {after:?}"
    );
    assert!(!error.is_empty());
}
