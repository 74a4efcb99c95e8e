//! Migrating is safe under concurrency: eight `active-sessions migrate` processes started at once
//! on a fresh PostgreSQL database all succeed and leave the whole schema, and so do eight
//! `active-sessions serve` processes (as the pods of a rollout do). Without the advisory lock
//! around migrating, racers fail creating the same tables.
//!
//! Needs `ACTIVE_SESSIONS_TEST_POSTGRES_URL` (an administrative URL); skipped without it, and a
//! failure under CI (`CI=true`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use active_sessions_server::store::migration::Migrator;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use sea_orm_migration::MigratorTrait;

const PROCESSES: usize = 8;

/// A fresh database on the test server: (admin URL, database URL, name), or `None` to skip.
async fn fresh_database() -> Option<(String, String, String)> {
    let Ok(admin_url) = std::env::var("ACTIVE_SESSIONS_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").map_or(true, |ci| ci != "true"),
            "ACTIVE_SESSIONS_TEST_POSTGRES_URL must be set under CI"
        );
        eprintln!("skipped: ACTIVE_SESSIONS_TEST_POSTGRES_URL is not set");
        return None;
    };
    let name = format!(
        "as_migrate_{}",
        ulid::Ulid::generate().to_string().to_lowercase()
    );
    let admin = Database::connect(&admin_url).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    admin.close().await.unwrap();
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    Some((admin_url.clone(), format!("{base}/{name}"), name))
}

async fn drop_database(admin_url: &str, name: &str) {
    let admin = Database::connect(admin_url).await.unwrap();
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();
    admin.close().await.unwrap();
}

/// Every migration is recorded as applied exactly once, and the tables exist.
async fn assert_schema_is_whole(url: &str) {
    let db = Database::connect(url).await.unwrap();
    let applied = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT COUNT(*) AS n, COUNT(DISTINCT version) AS d FROM seaql_migrations",
        ))
        .await
        .unwrap()
        .unwrap();
    let (count, distinct): (i64, i64) = (
        applied.try_get("", "n").unwrap(),
        applied.try_get("", "d").unwrap(),
    );
    assert_eq!(
        count,
        Migrator::migrations().len() as i64,
        "every migration applied"
    );
    assert_eq!(count, distinct, "no migration applied twice");
    assert!(
        Migrator::get_pending_migrations(&db)
            .await
            .unwrap()
            .is_empty()
    );
    db.execute_unprepared("SELECT 1 FROM sessions, accounts, revocations LIMIT 1")
        .await
        .unwrap();
    db.close().await.unwrap();
}

fn server(args: &[&str], url: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_active-sessions"))
        .args(args)
        .env("ACTIVE_SESSIONS_DATABASE_URL", url)
        .env("ACTIVE_SESSIONS_LOG_FORMAT", "text")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server binary")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_migrate_processes_at_once_all_succeed_on_a_fresh_database() {
    let Some((admin_url, url, name)) = fresh_database().await else {
        return;
    };
    let children: Vec<Child> = (0..PROCESSES).map(|_| server(&["migrate"], &url)).collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "a concurrent migrate failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_schema_is_whole(&url).await;
    drop_database(&admin_url, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_servers_starting_at_once_on_a_fresh_database_all_serve() {
    let Some((admin_url, url, name)) = fresh_database().await else {
        return;
    };
    let mut children: Vec<Child> = (0..PROCESSES)
        .map(|_| server(&["--listen", "127.0.0.1:0", "serve"], &url))
        .collect();
    // Each either logs that it listens or exits; the log goes to stdout or stderr.
    let (tx, rx) = mpsc::channel();
    for (index, child) in children.iter_mut().enumerate() {
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if line.contains("active-sessions listening") {
                        tx.send(index).ok();
                    }
                }
            });
        }
    }
    let mut listening = std::collections::BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while listening.len() < PROCESSES {
        if let Ok(index) = rx.recv_timeout(Duration::from_millis(200)) {
            listening.insert(index);
            continue;
        }
        let exited: Vec<String> = children
            .iter_mut()
            .filter_map(|child| child.try_wait().unwrap().map(|s| s.to_string()))
            .collect();
        assert!(
            exited.is_empty() && std::time::Instant::now() < deadline,
            "only {listening:?} listen; exited: {exited:?}"
        );
    }
    for child in &children {
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
    }
    for mut child in children {
        let status = child.wait().unwrap();
        assert!(status.success(), "a server stopped with {status}");
    }
    assert_schema_is_whole(&url).await;
    drop_database(&admin_url, &name).await;
}
