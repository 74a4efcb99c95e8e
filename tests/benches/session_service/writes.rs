//! RegisterSession (each call a new account, so no account's lock serialises them) in rounds
//! with Health/Check, and ListActiveSessions of an account with 1,000 sessions on 200 devices,
//! in a table that also holds other accounts' sessions, as a fleet's does. Both also run as the
//! nodelay diagnostic.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use active_sessions_client::proto as pb;
use active_sessions_e2e::{
    SignIn,
    bench_support::{TokenSeries, insert_rows},
    by_token,
};
use active_sessions_server::{
    domain::{subject::Subject, token::SessionToken},
    store::entity::account,
};
use anyhow::{Context, Result, ensure};
use pb::session_service_client::SessionServiceClient;
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait};

use crate::{
    Outcome,
    calls::{register_many, register_template, wait_until_serving},
    load::{Arm, Window, call, latencies, per_arm, rounds},
    options::{Options, Schedule},
    register_floor,
    report::{Row, database_cpu, duration, median_rate, server_cpu, thousands},
    server::BenchServer,
    targets::{Check, server_cpu_check},
};

const REGISTER_FLOOR: f64 = 5_000.0;
const REGISTER_CPU: Duration = Duration::from_micros(150);
const LIST_P99: Duration = Duration::from_millis(10);
/// Other accounts' sessions in the table the listed account lives in, and how many each has.
const NEIGHBOUR_SESSIONS: usize = 20_000;
const NEIGHBOUR_PER_ACCOUNT: usize = 5;

pub async fn register(
    server: &BenchServer,
    options: &Options,
    schedule: Schedule,
) -> Result<Outcome> {
    let driver = server.driver(options.connections).await?;
    let counter = Arc::new(AtomicU64::new(0));
    wait_until_serving(&driver.channels[0]).await?;
    let register = call(move |channel, _, _| {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let request = SignIn::browser(&format!("register-{n}"), &format!("device-{n}")).request();
        async move {
            let response = SessionServiceClient::new(channel)
                .register_session(request)
                .await?
                .into_inner();
            ensure!(!response.session_token.is_empty(), "no token");
            Ok(())
        }
    });
    let arms = [
        Arm::health(&driver, options.concurrency),
        Arm::calls(&driver, options.concurrency, register),
    ];
    let [health, calls] = per_arm(rounds(schedule, &arms).await?)?;
    let client = SessionServiceClient::new(driver.channels[0].clone());
    let mut n = 0;
    let sequential = latencies(
        (options.latency_calls / 4).max(5),
        Duration::from_secs(5),
        || {
            n += 1;
            let request = SignIn::browser("register-latency", &format!("device-{n}")).request();
            let mut client = client.clone();
            async move {
                client.register_session(request).await?;
                Ok(())
            }
        },
    )
    .await?;
    let rows_alone =
        register_floor::rows_alone(server, &driver.channels[0], schedule, &driver.probe).await?;
    let label = server.label();
    let checks = vec![
        Check::rate(
            &label,
            &format!(
                "RegisterSession, distinct accounts, {} in flight",
                options.concurrency
            ),
            median_rate(&calls),
            REGISTER_FLOOR,
        ),
        server_cpu_check(
            &label,
            "RegisterSession: server CPU per registration",
            &calls,
            REGISTER_CPU,
        ),
        Check::report(
            &label,
            &format!(
                "  floor: the same rows written alone, {} a transaction",
                register_floor::BATCH
            ),
            floor_figure(&rows_alone),
        ),
    ];
    let rows = vec![
        Row::paired(
            &label,
            "RegisterSession",
            calls,
            ("health", health),
            "a new account and device each, no request_id",
        ),
        Row::rate(
            &label,
            &format!(
                "  its rows written alone, {} a transaction",
                register_floor::BATCH
            ),
            rows_alone,
            "floor: an account, a session and its event per registration, multi-row INSERTs \
             on one connection, no gRPC, no reads; cpu/call: the whole process",
        ),
        Row::latency(
            &label,
            "RegisterSession, 1 in flight",
            sequential,
            "sequential calls, one account",
        ),
    ];
    Ok(Outcome { rows, checks })
}

/// The rows-alone floor as one figure: its rate, and its CPU per registration (the whole
/// process, and PostgreSQL's backends).
fn floor_figure(windows: &[Window]) -> String {
    let cpu = |d: Option<Duration>| d.map_or_else(|| "not measured".into(), duration);
    let mut figure = format!(
        "{} /s, {} CPU per registration",
        thousands(median_rate(windows)),
        cpu(server_cpu(windows))
    );
    if let Some(database) = database_cpu(windows) {
        figure += &format!(" + db {}", duration(database));
    }
    figure
}

pub async fn list(server: &BenchServer, options: &Options, full: bool) -> Result<Outcome> {
    const SESSIONS: usize = 1_000;
    const DEVICES: usize = 200;
    const PAGE: i32 = 100;
    let channels = server.channels(1).await?;
    let channel = channels[0].clone();
    let neighbours = seed_neighbours(server, &channel).await?;
    let setup = Instant::now();
    let registered = register_many(&channels, SESSIONS, 16, |i| {
        SignIn::browser("list-account", &format!("device-{:03}", i % DEVICES))
    })
    .await?;
    let setup = setup.elapsed();
    let (_, token) = registered.first().context("no session registered")?.clone();
    analyze(server).await?;

    let list = |page_token: String| {
        let channel = channel.clone();
        let subject = by_token(&token);
        async move {
            Ok::<_, anyhow::Error>(
                SessionServiceClient::new(channel)
                    .list_active_sessions(pb::ListActiveSessionsRequest {
                        subject: Some(subject),
                        page_size: PAGE,
                        page_token,
                        product: 0,
                    })
                    .await?
                    .into_inner(),
            )
        }
    };
    // Check the shape once: 200 rows of 5 sessions, two pages of 100 rows.
    let first = list(String::new()).await?;
    ensure!(
        first.rows.len() == PAGE as usize && !first.next_page_token.is_empty(),
        "first page has {} rows, then {:?}",
        first.rows.len(),
        first.next_page_token
    );
    let first_bytes = prost::Message::encoded_len(&first);

    let budget = Duration::from_secs(12);
    let first_page = latencies(options.latency_calls, budget, || async {
        let page = list(String::new()).await?;
        ensure!(page.rows.len() == PAGE as usize);
        Ok(())
    })
    .await?;
    let label = server.label();
    let p99 = percentile_duration(&first_page, 0.99);
    let mut outcome = Outcome {
        rows: vec![Row::latency(
            &label,
            "ListActiveSessions, first page (100 rows)",
            first_page,
            &format!(
                "{SESSIONS} sessions on {DEVICES} devices, subject = session token; \
                 response {} KiB",
                first_bytes / 1024
            ),
        )],
        checks: Vec::new(),
    };
    if !full {
        return Ok(outcome);
    }
    outcome.checks.push(Check::time(
        &label,
        "ListActiveSessions of 1,000 sessions (first page): p99",
        p99,
        LIST_P99,
        true,
    ));
    let all_pages = latencies(options.latency_calls / 2, budget, || async {
        let (mut rows, mut sessions, mut pages) = (0, 0, 0);
        let mut page_token = String::new();
        loop {
            let page = list(page_token).await?;
            pages += 1;
            rows += page.rows.len();
            sessions += page.rows.iter().map(|r| r.sessions.len()).sum::<usize>();
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        ensure!(
            rows == DEVICES && sessions == SESSIONS && pages == 2,
            "listed {rows} rows, {sessions} sessions, {pages} pages"
        );
        Ok(())
    })
    .await?;
    // The first page in-process: domain and database only, no encoding, no gRPC.
    let sessions = server.services.sessions().clone();
    let subject = Subject::SessionToken(SessionToken::parse(&token)?);
    let domain = latencies(options.latency_calls, budget, || async {
        let page = sessions.list_rows(&subject, None, 100, None).await?;
        ensure!(page.rows.len() == PAGE as usize);
        Ok(())
    })
    .await?;
    outcome.rows.extend([
        Row::latency(
            &label,
            "ListActiveSessions, all pages (2 calls)",
            all_pages,
            "",
        ),
        Row::latency(
            &label,
            "  in-process Sessions::list_rows, first page",
            domain,
            "no gRPC, no protobuf: the domain call alone",
        ),
        Row::single(
            &label,
            "  setup: INSERT 20,000 sessions of 4,000 other accounts",
            neighbours,
            "own connection; multi-row INSERTs (bench_support::insert_rows)",
        ),
        Row::single(
            &label,
            "  setup: RegisterSession x1,000, one account",
            setup,
            &format!(
                "{:.0} calls/s at 16 in flight",
                SESSIONS as f64 / setup.as_secs_f64()
            ),
        ),
    ]);
    Ok(outcome)
}

/// Inserts [`NEIGHBOUR_SESSIONS`] sessions of other accounts (and their account rows) straight
/// into the table: a fleet's table never holds one account alone, and PostgreSQL's generic
/// plans weigh `account_id = $1` by how many accounts the table holds.
async fn seed_neighbours(
    server: &BenchServer,
    channel: &tonic::transport::Channel,
) -> Result<Duration> {
    let db = server.connect_database().await?;
    let (template, _) =
        register_template(channel, &db, "neighbour-template", "device-template").await?;
    let template_account = account::Entity::find_by_id("neighbour-template".to_owned())
        .one(&db)
        .await?
        .context("the template's account row")?;
    let started = Instant::now();
    let neighbour = |a: usize| format!("neighbour-{a:05}");
    insert_rows(
        &db,
        (0..NEIGHBOUR_SESSIONS / NEIGHBOUR_PER_ACCOUNT).map(|a| account::Model {
            account_id: neighbour(a),
            ..template_account.clone()
        }),
    )
    .await?;
    let series = TokenSeries::new();
    let sessions = (0..NEIGHBOUR_SESSIONS).map(|i| {
        series.session(
            &template,
            i as u64,
            neighbour(i / NEIGHBOUR_PER_ACCOUNT),
            format!("device-{:03}", i % NEIGHBOUR_PER_ACCOUNT),
            template.signed_in_at - i64::try_from(i).unwrap_or(0) * 1_000_000,
        )
    });
    insert_rows(&db, sessions).await?;
    db.close().await.ok();
    Ok(started.elapsed())
}

/// On PostgreSQL, brings the planner's statistics up to date after the seeding, as autovacuum
/// would within a minute of such a change. (SQLite plans from the statistics the server writes
/// at start; see `planner_stats`.)
async fn analyze(server: &BenchServer) -> Result<()> {
    let db = server.connect_database().await?;
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute_unprepared("ANALYZE sessions").await?;
    }
    db.close().await.ok();
    Ok(())
}

/// The nearest-rank percentile of some latencies.
pub fn percentile_duration(times: &[Duration], p: f64) -> Option<Duration> {
    let secs: Vec<f64> = times.iter().map(Duration::as_secs_f64).collect();
    (!secs.is_empty()).then(|| Duration::from_secs_f64(crate::report::percentile(&secs, p)))
}
