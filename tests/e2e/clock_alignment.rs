//! Expiry decided on one time authority. Every replica keeps its clock on the database's
//! (`time_alignment`), so a replica whose wall clock is 300 s ahead or behind still decides
//! absolute expiry as the others do: a session registered on it is not born expired elsewhere,
//! and a session past its lifetime is refused by it as soon as by any other replica. Real server
//! processes on one PostgreSQL database, two of them under libfaketime.

use std::time::{Duration, Instant};

use active_sessions_e2e::{Backend, SignIn, TestApp, is_valid_on, pb};
use pb::session_service_client::SessionServiceClient;
use tonic::transport::Channel;

use crate::replica_process::{ServerProcess, faketime_available};

/// Registers a browser session with `lifetime` on the replica behind `client`.
async fn sign_in_for(
    client: &SessionServiceClient<Channel>,
    account: &str,
    lifetime: Duration,
) -> String {
    let mut request = SignIn::browser(account, "dev_1").request();
    request.lifetime = Some(prost_types::Duration {
        seconds: i64::try_from(lifetime.as_secs()).expect("seconds"),
        nanos: 0,
    });
    client
        .clone()
        .register_session(request)
        .await
        .unwrap_or_else(|status| panic!("registration failed: {status:?}"))
        .into_inner()
        .session_token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_300_s_apart_decide_expiry_alike() {
    if !faketime_available() {
        return;
    }
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let normal = ServerProcess::start(&app, None).await;
    let ahead = ServerProcess::start(&app, Some("+300s")).await;
    let behind = ServerProcess::start(&app, Some("-300s")).await;
    for (replica, expected_ms) in [(&ahead, -300_000), (&behind, 300_000)] {
        let offset_ms = replica.logged_clock_offset_ms().expect("logged offset");
        assert!(
            (offset_ms - expected_ms).abs() < 2_000,
            "libfaketime did not take effect: offset {offset_ms} ms, expected {expected_ms}"
        );
    }
    let replicas = [&normal.client, &ahead.client, &behind.client];

    // A two-minute session signed in on any replica is valid on every replica.
    for (i, origin) in replicas.iter().enumerate() {
        let token = sign_in_for(origin, &format!("acct_{i}"), Duration::from_secs(120)).await;
        for (j, replica) in replicas.iter().enumerate() {
            assert!(
                is_valid_on(replica, &token).await,
                "a session signed in on replica {i} is not valid on replica {j}"
            );
        }
    }

    // A one-second session: once the normal replica refuses it as expired, so do the others,
    // including the one 300 s behind that cached it as valid.
    let token = sign_in_for(&normal.client, "acct_short", Duration::from_secs(1)).await;
    for replica in replicas {
        assert!(
            is_valid_on(replica, &token).await,
            "not valid before its expiry"
        );
    }
    let started = Instant::now();
    while is_valid_on(&normal.client, &token).await {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the session never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Within the alignment's tolerance (the measurement's uncertainty, milliseconds here).
    tokio::time::sleep(Duration::from_millis(100)).await;
    for (j, replica) in replicas.iter().enumerate() {
        assert!(
            !is_valid_on(replica, &token).await,
            "replica {j} still validates a session past its lifetime"
        );
    }

    normal.stop().await;
    ahead.stop().await;
    behind.stop().await;
    app.stop().await;
}
