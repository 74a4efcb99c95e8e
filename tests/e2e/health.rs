//! Health that tells the truth: every service is NOT_SERVING while the database is unreachable
//! (checked in the background) and SERVING again when it returns, without a restart; calls fail
//! fast with UNAVAILABLE meanwhile; nothing acknowledged is lost; and a drain turns health
//! NOT_SERVING at once. The `liveness` name follows only the process: it stays SERVING through
//! a database outage.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use active_sessions_e2e::{Backend, POSTGRES_URL_VAR, SignIn, TestApp, pb};
use futures::StreamExt;
use sea_orm::{ConnectionTrait, Database};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

async fn wait_for(
    stream: &mut tonic::Streaming<tonic_health::pb::HealthCheckResponse>,
    wanted: ServingStatus,
) -> Duration {
    let started = Instant::now();
    loop {
        let status = tokio::time::timeout(Duration::from_secs(15), stream.next())
            .await
            .expect("a health change in time")
            .expect("stream open")
            .expect("health status")
            .status();
        if status == wanted {
            return started.elapsed();
        }
    }
}

async fn check(
    health: &mut HealthClient<tonic::transport::Channel>,
    service: &str,
) -> ServingStatus {
    health
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health answers")
        .into_inner()
        .status()
}

async fn set_connections(allowed: bool, database: &str) {
    let admin = Database::connect(std::env::var(POSTGRES_URL_VAR).unwrap())
        .await
        .unwrap();
    admin
        .execute_unprepared(&format!(
            "ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS {allowed}"
        ))
        .await
        .unwrap();
    if !allowed {
        admin
            .execute_unprepared(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
            ))
            .await
            .unwrap();
    }
    admin.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_the_database_and_calls_fail_fast_while_it_is_away() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let database = app.database_url().rsplit('/').next().unwrap().to_owned();
    let mut health = HealthClient::new(app.channel.clone());
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "activesessions.v1.SessionService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    wait_for(&mut watch, ServingStatus::Serving).await;

    // Load: registrations keep arriving throughout; remember what was acknowledged.
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let refusals = Arc::new(Mutex::new(Vec::new()));
    let load = {
        let (acknowledged, refusals) = (acknowledged.clone(), refusals.clone());
        let mut sessions = app.sessions();
        tokio::spawn(async move {
            for i in 0..400 {
                let started = Instant::now();
                match sessions
                    .register_session(SignIn::browser("acct", &format!("dev_{i}")).request())
                    .await
                {
                    Ok(response) => acknowledged
                        .lock()
                        .unwrap()
                        .push(response.into_inner().session.unwrap().session_id),
                    Err(status) => refusals
                        .lock()
                        .unwrap()
                        .push((status.code(), started.elapsed())),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    tokio::time::sleep(Duration::from_millis(500)).await;
    set_connections(false, &database).await;
    let down_after = wait_for(&mut watch, ServingStatus::NotServing).await;
    // Liveness follows the process, not the database: a failover must not restart replicas.
    assert_eq!(check(&mut health, "liveness").await, ServingStatus::Serving);
    assert_eq!(check(&mut health, "").await, ServingStatus::NotServing);
    tokio::time::sleep(Duration::from_secs(1)).await;
    set_connections(true, &database).await;
    let up_after = wait_for(&mut watch, ServingStatus::Serving).await;
    load.await.unwrap();
    eprintln!(
        "NOT_SERVING {down_after:?} after the database went away; SERVING {up_after:?} after it returned"
    );

    let refusals = refusals.lock().unwrap().clone();
    assert!(!refusals.is_empty(), "the outage was noticed by callers");
    for (code, took) in &refusals {
        assert_eq!(*code, tonic::Code::Unavailable, "refusals are UNAVAILABLE");
        assert!(
            *took < Duration::from_secs(4),
            "refusals are quick, not hung: {took:?}"
        );
    }
    // Every acknowledged registration is there.
    let acknowledged = acknowledged.lock().unwrap().clone();
    let listed = app.session_ids_for_account("acct").await;
    for id in &acknowledged {
        assert!(listed.contains(id), "acknowledged session {id} was lost");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_reports_not_serving_at_once_and_lets_calls_finish() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.shutdown_grace = Duration::from_secs(2);
    })
    .await
    else {
        return;
    };
    let (_, token) = app.sign_in(SignIn::browser("acct", "dev")).await;
    let mut watch = HealthClient::new(app.channel.clone())
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    wait_for(&mut watch, ServingStatus::Serving).await;
    let mut sessions = app.sessions();
    let stopping = tokio::spawn(app.stop());
    let drained_after = wait_for(&mut watch, ServingStatus::NotServing).await;
    assert!(
        drained_after < Duration::from_secs(1),
        "NOT_SERVING took {drained_after:?}"
    );
    // A call on the established connection during the drain still completes or is refused
    // cleanly, never hangs.
    let during = tokio::time::timeout(
        Duration::from_secs(3),
        sessions.validate_session(pb::ValidateSessionRequest {
            session_token: token,
        }),
    )
    .await;
    assert!(during.is_ok(), "a call during the drain hung");
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .unwrap()
        .unwrap();
}
