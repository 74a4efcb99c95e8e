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

/// Ends every connection the server holds to `database` (new ones are still allowed). Returns
/// how many it ended.
async fn end_connections(database: &str) -> i64 {
    let admin = Database::connect(std::env::var(POSTGRES_URL_VAR).unwrap())
        .await
        .unwrap();
    let ended = admin
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS ended \
                 FROM pg_stat_activity WHERE datname = '{database}' AND pid <> pg_backend_pid()"
            ),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "ended")
        .unwrap();
    admin.close().await.unwrap();
    ended
}

/// A server on PostgreSQL with `check_idle_after`, its database's name, an account with four
/// sessions, and their tokens.
async fn app_with_sessions(
    check_idle_after: Duration,
    cache_entries: usize,
) -> Option<(TestApp, String, Vec<String>)> {
    let app = TestApp::spawn_with(Backend::Postgres, |config| {
        config.database.check_idle_after = check_idle_after;
        config.sessions.validation_cache_entries = cache_entries;
    })
    .await?;
    let database = app.database_url().rsplit('/').next().unwrap().to_owned();
    let mut tokens = Vec::new();
    for device in 0..4 {
        let (_, token) = app
            .sign_in(SignIn::browser("acct", &format!("dev_{device}")))
            .await;
        tokens.push(token);
    }
    // Calls at once, so that the pool holds many connections for the database to end: more
    // than the server's background reads could run into and replace by themselves.
    let lists = (0..32).map(|_| {
        let mut sessions = app.sessions();
        async move {
            sessions
                .list_active_sessions(pb::ListActiveSessionsRequest {
                    subject: Some(active_sessions_e2e::by_account("acct")),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .rows
                .len()
        }
    });
    assert!(
        futures::future::join_all(lists)
            .await
            .iter()
            .all(|&rows| rows == 4)
    );
    Some((app, database, tokens))
}

/// Lists the account's sessions `calls` times; every call must succeed.
async fn list_repeatedly(app: &TestApp, calls: usize) {
    let mut sessions = app.sessions();
    for call in 0..calls {
        let listed = sessions
            .list_active_sessions(pb::ListActiveSessionsRequest {
                subject: Some(active_sessions_e2e::by_account("acct")),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|status| panic!("call {call} after the connections ended: {status:?}"));
        assert_eq!(listed.into_inner().rows.len(), 4);
    }
}

/// A pooled connection is not checked before every call (that would be a second round trip on
/// each), only once it has sat idle for `check_idle_after`: one the database ended meanwhile is
/// then found out and replaced, and no call fails for it. The wait is real time because the
/// pool's idle timer is sqlx's own `Instant`, which no injected clock reaches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_database_ended_while_idle_is_replaced_before_a_call_uses_it() {
    const CHECK_IDLE_AFTER: Duration = Duration::from_millis(100);
    let Some((app, database, _)) = app_with_sessions(CHECK_IDLE_AFTER, 100_000).await else {
        return;
    };
    let ended = end_connections(&database).await;
    assert!(ended >= 4, "the server held {ended} connections");
    tokio::time::sleep(CHECK_IDLE_AFTER * 3).await;
    list_repeatedly(&app, 20).await;
    app.stop().await;
}

/// Connections in steady use are not checked before use, but once a call meets a connection
/// the database ended, the pool checks every connection idle since then before handing it
/// out, and the validation read that met it reads again: with the idle threshold out of reach,
/// no validation fails, and no call after it either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_one_broken_connection_the_pool_checks_the_others_and_validation_reads_again() {
    // No cache: every validation reads the database.
    let Some((app, database, tokens)) = app_with_sessions(Duration::from_secs(3600), 0).await
    else {
        return;
    };
    let ended = end_connections(&database).await;
    assert!(ended >= 4, "the server held {ended} connections");
    for token in &tokens {
        let answer = app
            .sessions()
            .validate_session(pb::ValidateSessionRequest {
                session_token: token.clone(),
            })
            .await
            .unwrap_or_else(|status| panic!("validation after the connections ended: {status:?}"));
        assert!(answer.into_inner().valid, "a signed-in session is valid");
    }
    list_repeatedly(&app, 20).await;
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
