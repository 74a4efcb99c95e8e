//! A bounded shutdown. With `--shutdown-grace 2s` and a call waiting on a database lock that
//! outlives the grace, the server stops within grace + 1 s whatever the database does, the
//! abandoned call's transaction is rolled back (nothing half-applied), and during the drain a
//! health check on a connection already open is answered NOT_SERVING rather than refused at the
//! connection level.

use std::time::Duration;

use active_sessions_e2e::{Backend, SignIn, TestApp, by_account, pb, revoke_all_request};
use sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const GRACE: Duration = Duration::from_secs(2);

/// Holds the account's row lock (PostgreSQL: `SELECT ... FOR UPDATE`; SQLite: the write lock)
/// in an open transaction until the transaction is dropped.
async fn hold_account_lock(
    app: &TestApp,
    account: &str,
) -> (DatabaseConnection, DatabaseTransaction) {
    let db = Database::connect(app.database_url()).await.unwrap();
    let txn = match app.backend {
        Backend::Postgres => {
            let txn = db.begin().await.unwrap();
            txn.execute_unprepared(&format!(
                "SELECT * FROM accounts WHERE account_id = '{account}' FOR UPDATE"
            ))
            .await
            .unwrap();
            txn
        }
        Backend::Sqlite => db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await
            .unwrap(),
    };
    (db, txn)
}

async fn shutdown_is_bounded_by_the_grace_period(backend: Backend) {
    let Some(mut app) = TestApp::spawn_with(backend, |config| config.shutdown_grace = GRACE).await
    else {
        return;
    };
    let (_, token) = app.sign_in(SignIn::browser("acct", "dev")).await;
    let (db, lock) = hold_account_lock(&app, "acct").await;
    let mut sessions = app.sessions();
    let blocked = tokio::spawn(async move {
        sessions
            .revoke_all_sessions(revoke_all_request(by_account("acct")))
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !blocked.is_finished(),
        "the log-out should be waiting on the lock"
    );

    let mut health = HealthClient::new(app.channel.clone());
    let (took, during_drain) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(15), app.shut_down()),
        async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            health
                .check(HealthCheckRequest {
                    service: "activesessions.v1.SessionService".into(),
                })
                .await
        }
    );
    let took = took.expect("the server stopped");
    eprintln!("{backend:?}: stopped {took:?} after the shutdown signal (grace {GRACE:?})");
    assert!(
        took < GRACE + Duration::from_secs(1),
        "stopped after {took:?}"
    );
    assert!(
        took >= GRACE,
        "the call in flight got its grace period ({took:?})"
    );
    let during_drain = during_drain
        .expect("health answered on the open connection")
        .into_inner();
    assert_eq!(during_drain.status(), ServingStatus::NotServing);
    let abandoned = blocked
        .await
        .unwrap()
        .expect_err("the abandoned call did not succeed");
    assert_ne!(abandoned.code(), tonic::Code::Ok);

    // The lock goes; the abandoned log-out never commits.
    lock.rollback().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    db.close().await.unwrap();
    app.start_again().await;
    assert!(
        app.is_valid(&token).await,
        "the abandoned log-out of all was rolled back"
    );
    let events = app.security_events("acct").await;
    assert!(
        events
            .iter()
            .all(|e| e.r#type() != pb::SecurityEventType::LogOutAll)
    );

    // With nothing in flight the server stops at once.
    let took = tokio::time::timeout(Duration::from_secs(5), app.shut_down())
        .await
        .expect("stopped");
    assert!(
        took < Duration::from_secs(1),
        "an idle server stopped after {took:?}"
    );
    app.start_again().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_bounded_by_the_grace_period_while_a_call_waits_on_a_lock_sqlite() {
    shutdown_is_bounded_by_the_grace_period(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_bounded_by_the_grace_period_while_a_call_waits_on_a_lock_postgres() {
    shutdown_is_bounded_by_the_grace_period(Backend::Postgres).await;
}
