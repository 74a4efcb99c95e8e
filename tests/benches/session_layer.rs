//! `SessionLayer` in an axum product app: in one run, on one local server (SQLite), requests per
//! second of the `axum_product` example's `GET /me` behind the layer (validation cache on)
//! against the same app without it (a handler answering the same JSON without validating), in
//! interleaved rounds so drift affects both alike, medians of 5 windows of 2 s, 32 keep-alive
//! HTTP/1 connections. Then the log-out latency as the app sees it: a session is logged out
//! through the settings path and the app is polled every millisecond until it answers 401;
//! 200 log-outs, p50 / p99 / max.
//!
//! `cargo bench -p active-sessions-e2e --bench session_layer`

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use active_sessions_client::{
    Connection, Owner, Registration, SessionLayer, ValidSession, ValidationCache,
};
use active_sessions_e2e::{Backend, TestApp, product::HttpClient};
use anyhow::{Context, Result};
use axum::{Json, Router, routing::get};
use serde_json::{Value, json};

const CONNECTIONS: usize = 32;
const WINDOW: Duration = Duration::from_secs(2);
const ROUNDS: usize = 5;
const LOG_OUTS: usize = 200;

async fn me(session: ValidSession) -> Json<Value> {
    Json(json!({
        "account_id": session.account_id,
        "session_id": session.session_id,
        "product": session.product.as_str_name(),
    }))
}

/// The same answer without a session: the app without the layer.
async fn me_unchecked() -> Json<Value> {
    Json(json!({
        "account_id": "acct_bench_0",
        "session_id": "01KBENCH0000000000000000000",
        "product": "PRODUCT_CHATGPT",
    }))
}

async fn serve(app: Router) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    Ok(addr)
}

/// Requests per second over one window, `CONNECTIONS` connections each sending `GET /me` with
/// a bearer token, one request at a time.
async fn throughput(addr: SocketAddr, tokens: Arc<Vec<String>>) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        clients.push(HttpClient::connect(addr).await);
    }
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut client)| {
            let (done, stop) = (done.clone(), stop.clone());
            let header = format!("Bearer {}", tokens[i % tokens.len()]);
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let answer = client.get("/me", &[("authorization", &header)]).await;
                    assert_eq!(answer.status, 200, "{answer:?}");
                    done.fetch_add(1, Ordering::Relaxed);
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

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

#[tokio::main]
async fn main() -> Result<()> {
    let app = TestApp::spawn(Backend::Sqlite)
        .await
        .context("server starts")?;
    let connection = Connection::builder(format!("http://{}", app.addr))
        .connect()
        .await?;
    let sessions = connection.sessions();
    let mut tokens = Vec::new();
    for i in 0..CONNECTIONS {
        let registered = sessions
            .register(Registration::chatgpt_browser(
                format!("acct_bench_{i}"),
                format!("browser_{i}"),
            ))
            .await?;
        tokens.push(registered.token);
    }
    let tokens = Arc::new(tokens);
    let cache = ValidationCache::builder(connection.clone()).start().await;
    tokio::time::timeout(Duration::from_secs(10), cache.wait_live())
        .await
        .context("the cache goes live")?;

    let layered = serve(
        Router::new()
            .route("/me", get(me))
            .layer(SessionLayer::new(cache.clone())),
    )
    .await?;
    let plain = serve(Router::new().route("/me", get(me_unchecked))).await?;
    eprintln!(
        "server up at {}; apps at {layered} (layer) and {plain} (none)",
        app.addr
    );
    // Warm both (and the cache) before measuring.
    throughput(layered, tokens.clone()).await;
    throughput(plain, tokens.clone()).await;

    let (mut with_layer, mut without) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        // Alternate which goes first, so neither always follows the other.
        if round % 2 == 0 {
            with_layer.push(throughput(layered, tokens.clone()).await);
            without.push(throughput(plain, tokens.clone()).await);
        } else {
            without.push(throughput(plain, tokens.clone()).await);
            with_layer.push(throughput(layered, tokens.clone()).await);
        }
        eprintln!(
            "round {round}: layer {:.0}/s, none {:.0}/s",
            with_layer[round], without[round]
        );
    }
    let stats = cache.stats();
    let (with_layer, without) = (median(with_layer), median(without));

    // Log-out to 401, as the app sees it.
    let (_, laptop) = {
        let registered = sessions
            .register(Registration::chatgpt_browser("acct_logout", "laptop"))
            .await?;
        (registered.session.session_id, registered.token)
    };
    let mut client = HttpClient::connect(layered).await;
    let mut latencies = Vec::with_capacity(LOG_OUTS);
    for i in 0..LOG_OUTS {
        let device = format!("phone_{i}");
        let phone = sessions
            .register(Registration::chatgpt_browser("acct_logout", &device))
            .await?
            .token;
        let header = format!("Bearer {phone}");
        for _ in 0..2 {
            let answer = client.get("/me", &[("authorization", &header)]).await;
            anyhow::ensure!(answer.status == 200, "not signed in: {answer:?}");
        }
        let started = Instant::now();
        sessions
            .revoke_row(Owner::token(&laptop), &device, true)
            .await?;
        loop {
            let answer = client.get("/me", &[("authorization", &header)]).await;
            if answer.status == 401 {
                break;
            }
            anyhow::ensure!(started.elapsed() < Duration::from_secs(5), "never refused");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(started.elapsed());
    }
    latencies.sort();

    println!(
        "session_layer bench: {CONNECTIONS} keep-alive connections, medians of {ROUNDS} \
         interleaved windows of {WINDOW:?}"
    );
    println!("{:<44} {:>12}", "measurement", "requests/s");
    println!("{:<44} {without:>12.0}", "GET /me without the layer");
    println!(
        "{:<44} {with_layer:>12.0}",
        "GET /me behind SessionLayer (cache on)"
    );
    println!(
        "layer cost: {:.1}% (target: at most 10%)",
        (1.0 - with_layer / without) * 100.0
    );
    println!("cache stats after the rounds: {stats:?}");
    println!(
        "log-out (settings path) to 401 through the app, {LOG_OUTS} log-outs: p50 {:?}, p99 \
         {:?}, max {:?} (includes the RevokeRow call itself)",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1],
    );
    drop(cache);
    app.stop().await;
    Ok(())
}
