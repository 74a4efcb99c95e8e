//! The client crate's validation cache against the transport: in one run, on one local server
//! (SQLite), calls per second for the gRPC health check (the transport's limit here), a
//! ValidateSession answered from the server's cache, and a validation answered by the client's
//! own revocation-fed cache without leaving the process. Medians of 3 windows of 2 s, 32 tasks.
//!
//! `cargo bench -p active-sessions-e2e --bench client_cache`

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use active_sessions_client::{Connection, ValidationCache, proto};
use active_sessions_e2e::{Backend, SignIn, TestApp};
use anyhow::{Context, Result};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const TASKS: usize = 32;
const WINDOW: Duration = Duration::from_secs(2);

/// Runs `call` from TASKS tasks for one window; returns calls per second.
async fn throughput<F, Fut>(call: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let call = Arc::new(call);
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (call, done, stop) = (call.clone(), done.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = task;
                while !stop.load(Ordering::Relaxed) {
                    call(i).await;
                    done.fetch_add(1, Ordering::Relaxed);
                    i += TASKS;
                    // A cache hit never waits on anything: yield, or spinning tasks starve the
                    // timer that ends the window.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    tokio::time::sleep(WINDOW).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.ok();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

async fn median_of_3<F, Fut>(call: F) -> f64
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(throughput(call.clone()).await);
    }
    runs.sort_by(f64::total_cmp);
    runs[1]
}

#[tokio::main]
async fn main() -> Result<()> {
    let app = TestApp::spawn(Backend::Sqlite)
        .await
        .context("server starts")?;
    let endpoint = format!("http://{}", app.addr);
    let connections: Vec<Connection> = {
        let mut connections = Vec::new();
        for _ in 0..4 {
            connections.push(Connection::builder(endpoint.clone()).connect().await?);
        }
        connections
    };
    let mut tokens = Vec::new();
    for i in 0..8 {
        tokens.push(
            app.sign_in(SignIn::browser("acct_bench", &format!("dev_{i}")))
                .await
                .1,
        );
    }
    let tokens = Arc::new(tokens);

    eprintln!(
        "server up at {endpoint}, {} sessions registered",
        tokens.len()
    );
    let health_connections = connections.clone();
    let health = median_of_3(move |i| {
        let mut client = HealthClient::new(health_connections[i % 4].channel());
        async move {
            client
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .ok();
        }
    })
    .await;

    let server_connections = connections.clone();
    let server_tokens = tokens.clone();
    let server_cached = median_of_3(move |i| {
        let mut client = server_connections[i % 4].session_service();
        let token = server_tokens[i % server_tokens.len()].clone();
        async move {
            let valid = client
                .validate_session(proto::ValidateSessionRequest {
                    session_token: token,
                })
                .await
                .map(|r| r.into_inner().valid);
            assert_eq!(valid.ok(), Some(true));
        }
    })
    .await;

    eprintln!(
        "transport {health:.0}/s, server cache {server_cached:.0}/s; starting the client cache"
    );
    let cache = ValidationCache::builder(connections[0].clone())
        .start()
        .await;
    cache.wait_live().await;
    eprintln!("client cache live");
    for token in tokens.iter() {
        cache.validate(token).await?;
    }
    let cache = Arc::new(cache);
    let client_tokens = tokens.clone();
    let client_cache = {
        let cache = cache.clone();
        median_of_3(move |i| {
            let cache = cache.clone();
            let token = client_tokens[i % client_tokens.len()].clone();
            async move {
                let valid = cache.validate(&token).await.map(|v| v.is_some());
                assert_eq!(valid.ok(), Some(true));
            }
        })
        .await
    };
    let stats = cache.stats();

    println!("client_cache bench: {TASKS} tasks, medians of 3 windows of {WINDOW:?}");
    println!("{:<52} {:>14} {:>9}", "measurement", "calls/s", "÷health");
    for (name, rate) in [
        ("gRPC Health/Check (transport baseline)", health),
        ("ValidateSession over gRPC, server cache hit", server_cached),
        ("ValidationCache::validate, client cache hit", client_cache),
    ] {
        println!("{name:<52} {rate:>14.0} {:>9.2}", rate / health);
    }
    println!("client cache stats: {stats:?}");
    drop(cache);
    app.stop().await;
    Ok(())
}
