//! `SessionLayer` in an axum product app: in one run, on one local server (SQLite), requests per
//! second of the `axum_product` example's `GET /me` behind the layer (validation cache on)
//! against the same app without it (a handler answering the same JSON without validating), in
//! interleaved rounds so drift affects both alike: medians of 21 windows of 0.5 s, 32
//! keep-alive HTTP/1 connections, and the median of each round's own ratio. The apps run on a
//! runtime of their own (one thread), the load generator and the session server on the main
//! one, all in this process: the app threads' CPU time per request (from
//! `/proc/self/task/*/schedstat`) is reported beside the whole process's, since on a small
//! machine the load generator's share of the CPU dilutes the layer's cost in requests/s. Then
//! the log-out latency as the app sees it: a session is logged out through the settings path
//! and the app is polled every millisecond until it answers 401; 200 log-outs, p50 / p99 / max.
//!
//! `cargo bench -p active-sessions-e2e --bench session_layer` (`SESSION_LAYER_BENCH_ROUNDS`,
//! `SESSION_LAYER_BENCH_WINDOW_MS` and `SESSION_LAYER_BENCH_APP_THREADS` change the defaults)

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
/// A measurement window, unless `SESSION_LAYER_BENCH_WINDOW_MS` says.
const WINDOW: Duration = Duration::from_millis(500);
/// Rounds of one window each, unless `SESSION_LAYER_BENCH_ROUNDS` says.
const ROUNDS: usize = 21;
const LOG_OUTS: usize = 200;
/// The name of the product apps' runtime threads.
const APP_THREAD: &str = "product-app";
/// Worker threads of the product apps' runtime, unless `SESSION_LAYER_BENCH_APP_THREADS` says.
const APP_THREADS: usize = 1;

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

/// Serves `app` on a loopback port, on the product's own runtime.
async fn serve(runtime: &tokio::runtime::Runtime, app: Router) -> Result<SocketAddr> {
    let (bound, addr) = tokio::sync::oneshot::channel();
    runtime.spawn(async move {
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(listener) => listener,
            Err(err) => {
                bound.send(Err(err)).ok();
                return;
            }
        };
        bound.send(listener.local_addr()).ok();
        axum::serve(listener, app).await.ok();
    });
    Ok(addr.await??)
}

/// On-CPU time so far of this process's threads, all of them and those named `APP_THREAD`
/// (the product apps' runtime), from `/proc/self/task/*/schedstat` (nanoseconds; Linux).
fn cpu_times() -> Option<(Duration, Duration)> {
    let (mut all, mut app) = (0u64, 0u64);
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path();
        // A thread may end between the listing and the reads: skip it.
        let (Ok(schedstat), Ok(name)) = (
            std::fs::read_to_string(path.join("schedstat")),
            std::fs::read_to_string(path.join("comm")),
        ) else {
            continue;
        };
        let on_cpu: u64 = schedstat.split_whitespace().next()?.parse().ok()?;
        all += on_cpu;
        if name.trim_end() == APP_THREAD {
            app += on_cpu;
        }
    }
    Some((Duration::from_nanos(all), Duration::from_nanos(app)))
}

/// One measurement window: requests per second, and CPU per request of the product app's
/// threads and of the whole process (app, load generator, session server).
#[derive(Debug, Clone, Copy)]
struct Window {
    per_second: f64,
    app_cpu: Option<Duration>,
    process_cpu: Option<Duration>,
    /// The app threads' CPU time over the window's wall time, in cores.
    app_cores: Option<f64>,
}

/// One window of `CONNECTIONS` connections each sending `GET /me` with a bearer token, one
/// request at a time.
async fn throughput(addr: SocketAddr, tokens: Arc<Vec<String>>, window: Duration) -> Window {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        clients.push(HttpClient::connect(addr).await);
    }
    let cpu_before = cpu_times();
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
    tokio::time::sleep(window).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.ok();
    }
    let elapsed = started.elapsed();
    let cpu = cpu_before.zip(cpu_times());
    let requests = done.load(Ordering::Relaxed);
    let per_request = |spent: Duration| spent / u32::try_from(requests.max(1)).unwrap_or(u32::MAX);
    Window {
        per_second: requests as f64 / elapsed.as_secs_f64(),
        app_cpu: cpu.map(|((_, app0), (_, app1))| per_request(app1 - app0)),
        process_cpu: cpu.map(|((all0, _), (all1, _))| per_request(all1 - all0)),
        app_cores: cpu
            .map(|((_, app0), (_, app1))| (app1 - app0).as_secs_f64() / elapsed.as_secs_f64()),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The median of one figure of the windows, if measured.
fn median_of(windows: &[Window], figure: impl Fn(&Window) -> Option<f64>) -> Option<f64> {
    windows
        .iter()
        .map(figure)
        .collect::<Option<Vec<_>>>()
        .map(median)
}

fn micros(cpu: Option<Duration>) -> Option<f64> {
    cpu.map(|cpu| cpu.as_secs_f64() * 1e6)
}

fn show(figure: Option<f64>, decimals: usize) -> String {
    figure.map_or_else(|| "n/a".into(), |figure| format!("{figure:.decimals$}"))
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

    // The product apps run on their own runtime, as they would in their own process, so their
    // threads' CPU time can be told from the load generator's and the session server's.
    let app_threads = std::env::var("SESSION_LAYER_BENCH_APP_THREADS")
        .ok()
        .and_then(|threads| threads.parse().ok())
        .unwrap_or(APP_THREADS);
    let app_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(app_threads)
        .thread_name(APP_THREAD)
        .enable_all()
        .build()?;
    let layered = serve(
        &app_runtime,
        Router::new()
            .route("/me", get(me))
            .layer(SessionLayer::new(cache.clone())),
    )
    .await?;
    let plain = serve(&app_runtime, Router::new().route("/me", get(me_unchecked))).await?;
    eprintln!(
        "server up at {}; apps at {layered} (layer) and {plain} (none)",
        app.addr
    );
    let setting = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|value| value.parse::<u64>().ok())
    };
    let window = setting("SESSION_LAYER_BENCH_WINDOW_MS").map_or(WINDOW, Duration::from_millis);
    let rounds = setting("SESSION_LAYER_BENCH_ROUNDS")
        .and_then(|rounds| usize::try_from(rounds).ok())
        .unwrap_or(ROUNDS)
        .max(1);
    // Warm both (and the cache) before measuring.
    throughput(layered, tokens.clone(), window).await;
    throughput(plain, tokens.clone(), window).await;

    let (mut with_layer, mut without) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which goes first, so neither always follows the other.
        if round % 2 == 0 {
            with_layer.push(throughput(layered, tokens.clone(), window).await);
            without.push(throughput(plain, tokens.clone(), window).await);
        } else {
            without.push(throughput(plain, tokens.clone(), window).await);
            with_layer.push(throughput(layered, tokens.clone(), window).await);
        }
        let (layer, none): (&Window, &Window) = (&with_layer[round], &without[round]);
        eprintln!(
            "round {round}: layer {:.0}/s (app {} µs CPU/request, process {} µs, app on {} \
             cores), none {:.0}/s (app {} µs, process {} µs, app on {} cores)",
            layer.per_second,
            show(micros(layer.app_cpu), 1),
            show(micros(layer.process_cpu), 1),
            show(layer.app_cores, 2),
            none.per_second,
            show(micros(none.app_cpu), 1),
            show(micros(none.process_cpu), 1),
            show(none.app_cores, 2),
        );
    }
    let stats = cache.stats();
    let layer_cpu = median_of(&with_layer, |window| micros(window.app_cpu));
    let plain_cpu = median_of(&without, |window| micros(window.app_cpu));
    let layer_process_cpu = median_of(&with_layer, |window| micros(window.process_cpu));
    let plain_process_cpu = median_of(&without, |window| micros(window.process_cpu));
    let ratios: Vec<f64> = with_layer
        .iter()
        .zip(&without)
        .map(|(layer, none)| layer.per_second / none.per_second)
        .collect();
    let with_layer = median(with_layer.iter().map(|window| window.per_second).collect());
    let without = median(without.iter().map(|window| window.per_second).collect());

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
        "session_layer bench: {CONNECTIONS} keep-alive connections, medians of {rounds} \
         interleaved windows of {window:?}, the apps on {app_threads} thread(s) of their own, \
         {} CPU(s) in all",
        std::thread::available_parallelism().map_or(0, usize::from),
    );
    println!(
        "{:<40} {:>12} {:>18} {:>22}",
        "measurement", "requests/s", "app µs CPU/req", "process µs CPU/req"
    );
    println!(
        "{:<40} {without:>12.0} {:>18} {:>22}",
        "GET /me without the layer",
        show(plain_cpu, 1),
        show(plain_process_cpu, 1),
    );
    println!(
        "{:<40} {with_layer:>12.0} {:>18} {:>22}",
        "GET /me behind SessionLayer (cache on)",
        show(layer_cpu, 1),
        show(layer_process_cpu, 1),
    );
    println!(
        "layer cost: {:.1}% of requests/s (ratio of the medians; target: at most 10%), {:.1}% \
         (median of the rounds' own ratios); per round: {}",
        (1.0 - with_layer / without) * 100.0,
        (1.0 - median(ratios.clone())) * 100.0,
        ratios
            .iter()
            .map(|ratio| format!("{:.1}%", (1.0 - ratio) * 100.0))
            .collect::<Vec<_>>()
            .join(", "),
    );
    if let (Some(layer_cpu), Some(plain_cpu)) = (layer_cpu, plain_cpu) {
        println!(
            "app CPU per request: +{:.1} µs with the layer ({:.1}% more than without)",
            layer_cpu - plain_cpu,
            (layer_cpu / plain_cpu - 1.0) * 100.0,
        );
    }
    println!("cache stats after the rounds: {stats:?}");
    println!(
        "log-out (settings path) to 401 through the app, {LOG_OUTS} log-outs: p50 {:?}, p99 \
         {:?}, max {:?} (includes the RevokeRow call itself)",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1],
    );
    drop(cache);
    app_runtime.shutdown_background();
    app.stop().await;
    Ok(())
}
