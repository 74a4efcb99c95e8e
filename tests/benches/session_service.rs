//! Throughput and latency of the SessionService over real loopback gRPC, through the generated
//! client, against the real server started in-process the way the end-to-end harness starts it
//! (`Application::build`, `local_addr`, `run(shutdown)`), on SQLite and, when
//! `ACTIVE_SESSIONS_TEST_POSTGRES_URL` is set, on PostgreSQL. Every scenario gets a fresh server
//! over a fresh database (a new SQLite file, or a new PostgreSQL database dropped at the end).
//!
//! ```text
//! cargo bench -p active-sessions-e2e --bench session_service              # everything
//! cargo bench -p active-sessions-e2e --bench session_service -- validate  # a subset
//! cargo bench -p active-sessions-e2e --bench session_service -- --quick   # a smoke run
//! ```
//!
//! Filters match `BACKEND/SCENARIO` by substring (`sqlite/validate-db`, `postgres`, `list`, ...).
//! Scenarios: `validate-cached`, `validate-db`, `register`, `list`, `revoke-all`, `revoke-row`. Two
//! diagnostics run only when a filter names them (`-- nodelay`): `register+nodelay` and
//! `list+nodelay` repeat those two against the same server pieces (`connect_and_migrate`,
//! `Services::new`, `run`) on a listener that already has `TCP_NODELAY`, which Linux copies to
//! every accepted socket. They tell whether the server's own socket handling leaves Nagle's
//! algorithm on (then a response whose trailers go out in a second write waits for the client's
//! delayed ACK, about 40 ms per call).
//!
//! Every throughput window of a gRPC call alternates with a window of
//! `grpc.health.v1.Health/Check` at the same concurrency on the same server and connections:
//! the transport's limit on this machine, measured next to the call so that background load on
//! a shared machine moves both alike. The ratio reported is the median of the per-pair ratios.
//!
//! Rows marked "in-process" call the domain (`Application::services().sessions()`) directly,
//! without gRPC, to show how much of a call's cost is the transport.

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use active_sessions_client::proto as pb;
use active_sessions_e2e::{Backend, POSTGRES_URL_VAR, SignIn, by_account, by_token};
use active_sessions_server::{
    Application, Services,
    app::ServeError,
    clock::SystemClock,
    config::Config,
    domain::{subject::Subject, token::SessionToken},
    store::entity::session,
};
use anyhow::{Context, Result, anyhow, bail, ensure};
use futures::future::try_join_all;
use pb::session_service_client::SessionServiceClient;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, Database, DatabaseConnection, EntityTrait, IntoActiveModel,
    TransactionTrait,
};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// Sessions on the account that RevokeAllSessions logs out (full run).
const REVOKE_SESSIONS: usize = 100_000;
/// Rows per multi-row INSERT when seeding sessions directly (28 columns: under SQLite's 32,766
/// and PostgreSQL's 65,535 bind parameters).
const INSERT_CHUNK: usize = 1_000;
/// Sessions the server's sweep marks per transaction (`app::SWEEP_BATCH`).
const SWEEP_BATCH: usize = 5_000;

fn main() -> Result<()> {
    let options = Options::parse(std::env::args().skip(1))?;
    if options.help {
        println!("{}", Options::USAGE);
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(run(options))
}

// ---------------------------------------------------------------------------------------------
// Options

/// How a throughput is measured: warm-up, then consecutive windows, each giving one rate.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    warmup: Duration,
    window: Duration,
    windows: usize,
}

#[derive(Debug, Clone)]
struct Options {
    help: bool,
    quick: bool,
    filters: Vec<String>,
    /// In-flight calls during throughput runs.
    concurrency: usize,
    /// HTTP/2 connections the in-flight calls are spread over.
    connections: usize,
    /// The headline throughputs.
    schedule: Schedule,
    /// Diagnostic throughputs (in-process, TCP_NODELAY).
    short: Schedule,
    /// Sequential calls per latency measurement.
    latency_calls: usize,
    revoke_sessions: usize,
}

impl Options {
    const USAGE: &'static str = "\
usage: session_service [--quick] [--concurrency N] [--connections N] [FILTER ...]

  FILTER            run the scenarios whose BACKEND/SCENARIO contains it (e.g. validate,
                    sqlite/register, postgres); scenarios: validate-cached validate-db register
                    list revoke-all revoke-row; diagnostics, only when named: register+nodelay
                    list+nodelay
  --quick           short durations and 10,000 sessions for revoke-all (a smoke run)
  --concurrency N   in-flight calls during throughput runs (default 32)
  --connections N   HTTP/2 connections they are spread over (default 4)

PostgreSQL runs too when ACTIVE_SESSIONS_TEST_POSTGRES_URL is set.";

    fn parse(args: impl Iterator<Item = String>) -> Result<Self> {
        let mut options = Self {
            help: false,
            quick: false,
            filters: Vec::new(),
            concurrency: 32,
            connections: 4,
            schedule: Schedule {
                warmup: Duration::from_millis(500),
                window: Duration::from_secs(2),
                windows: 5,
            },
            short: Schedule {
                warmup: Duration::from_millis(300),
                window: Duration::from_secs(1),
                windows: 3,
            },
            latency_calls: 200,
            revoke_sessions: REVOKE_SESSIONS,
        };
        // Cargo passes `--bench` under `cargo bench`; without it (`cargo test --benches`) the
        // binary only smoke-runs.
        let mut bench = false;
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--bench" => bench = true,
                "--quick" => options.quick = true,
                "-h" | "--help" => options.help = true,
                "--concurrency" | "--connections" => {
                    let value: usize = args
                        .next()
                        .with_context(|| format!("{arg} needs a value"))?
                        .parse()
                        .with_context(|| format!("{arg} needs a positive number"))?;
                    ensure!(value > 0, "{arg} needs a positive number");
                    if arg == "--concurrency" {
                        options.concurrency = value;
                    } else {
                        options.connections = value;
                    }
                }
                flag if flag.starts_with('-') => bail!("unknown flag {flag}\n\n{}", Self::USAGE),
                filter => options.filters.push(filter.to_owned()),
            }
        }
        if options.quick || !bench {
            options.quick = true;
            options.schedule = Schedule {
                warmup: Duration::from_millis(200),
                window: Duration::from_millis(500),
                windows: 3,
            };
            options.short = Schedule {
                warmup: Duration::from_millis(100),
                window: Duration::from_millis(300),
                windows: 2,
            };
            options.latency_calls = 20;
            options.revoke_sessions = 10_000;
        }
        Ok(options)
    }

    fn selects(&self, scenario: Scenario, id: &str) -> bool {
        if scenario.is_nodelay_diagnostic() {
            return self
                .filters
                .iter()
                .any(|filter| filter.contains("nodelay") && id.contains(filter.as_str()));
        }
        self.filters.is_empty()
            || self
                .filters
                .iter()
                .any(|filter| id.contains(filter.as_str()))
    }
}

// ---------------------------------------------------------------------------------------------
// The run

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    ValidateCached,
    ValidateDb,
    Register,
    List,
    RevokeAll,
    /// RevokeSession of one device with many sessions.
    RevokeRow,
    RegisterNodelay,
    ListNodelay,
}

impl Scenario {
    const ALL: [Self; 8] = [
        Self::ValidateCached,
        Self::ValidateDb,
        Self::Register,
        Self::List,
        Self::RevokeAll,
        Self::RevokeRow,
        Self::RegisterNodelay,
        Self::ListNodelay,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::ValidateCached => "validate-cached",
            Self::ValidateDb => "validate-db",
            Self::Register => "register",
            Self::List => "list",
            Self::RevokeAll => "revoke-all",
            Self::RevokeRow => "revoke-row",
            Self::RegisterNodelay => "register+nodelay",
            Self::ListNodelay => "list+nodelay",
        }
    }

    fn is_nodelay_diagnostic(self) -> bool {
        matches!(self, Self::RegisterNodelay | Self::ListNodelay)
    }
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

async fn run(options: Options) -> Result<()> {
    let mut backends = vec![Backend::Sqlite];
    if std::env::var(POSTGRES_URL_VAR).is_ok() {
        backends.push(Backend::Postgres);
    } else {
        eprintln!("PostgreSQL skipped: {POSTGRES_URL_VAR} is not set");
    }
    println!(
        "session_service bench: {} cores, load average {} at start{}",
        std::thread::available_parallelism().map_or(0, usize::from),
        load_average(),
        if options.quick { " (--quick)" } else { "" },
    );
    let started = Instant::now();
    let mut rows = Vec::new();
    for backend in backends {
        let selected: Vec<Scenario> = Scenario::ALL
            .into_iter()
            .filter(|s| options.selects(*s, &format!("{}/{}", backend_name(backend), s.name())))
            .collect();
        for scenario in selected {
            eprintln!("== {}/{}", backend_name(backend), scenario.name());
            let scenario_started = Instant::now();
            let new_rows = run_scenario(backend, scenario, &options)
                .await
                .with_context(|| format!("{}/{}", backend_name(backend), scenario.name()))?;
            for row in &new_rows {
                eprintln!("   {}", row.render_inline());
            }
            eprintln!("   ({:.1} s)", scenario_started.elapsed().as_secs_f64());
            rows.extend(new_rows);
        }
    }
    print_table(&rows, &options);
    println!(
        "total bench time {:.1} s, load average {} at end",
        started.elapsed().as_secs_f64(),
        load_average()
    );
    Ok(())
}

async fn run_scenario(backend: Backend, scenario: Scenario, options: &Options) -> Result<Vec<Row>> {
    let cache_off = scenario == Scenario::ValidateDb;
    let nodelay = scenario.is_nodelay_diagnostic();
    let server = BenchServer::start(backend, nodelay, |config| {
        if cache_off {
            config.sessions.validation_cache_entries = 0;
        }
        if scenario == Scenario::RevokeRow {
            config.sessions.max_sessions_per_account = 0;
        }
    })
    .await?;
    let result = match scenario {
        Scenario::ValidateCached => bench_validate(&server, options, true).await,
        Scenario::ValidateDb => bench_validate(&server, options, false).await,
        Scenario::Register => bench_register(&server, options, options.schedule).await,
        Scenario::RegisterNodelay => bench_register(&server, options, options.short).await,
        Scenario::List => bench_list(&server, options, true).await,
        Scenario::ListNodelay => bench_list(&server, options, false).await,
        Scenario::RevokeAll => bench_revoke_all(&server, options).await,
        Scenario::RevokeRow => bench_revoke_row(&server, options).await,
    };
    let stopped = server.stop().await;
    let rows = result?;
    stopped?;
    Ok(rows)
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/// Waits until the database watcher has reported SERVING (shortly after start).
async fn wait_until_serving(channel: &Channel) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = HealthClient::new(channel.clone())
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map(|r| r.into_inner().status);
        if status
            .as_ref()
            .is_ok_and(|s| *s == ServingStatus::Serving as i32)
        {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "health never became SERVING: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One `grpc.health.v1.Health/Check`: the transport baseline.
async fn health_call(channel: Channel, _worker: usize, _i: usize) -> Result<()> {
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?
        .into_inner()
        .status;
    ensure!(
        status == ServingStatus::Serving as i32,
        "health status {status}"
    );
    Ok(())
}

async fn bench_validate(server: &BenchServer, options: &Options, cached: bool) -> Result<Vec<Row>> {
    let channels = server.channels(options.connections).await?;
    // A few tokens validated over and over (cache hits), or many (each call reads the database).
    let count = if cached { 8 } else { 1_000 };
    let tokens: Arc<Vec<String>> = Arc::new(
        register_many(&channels, count, 16, |i| {
            SignIn::browser(&format!("validate-{}", i % 100), &format!("device-{i}"))
        })
        .await?
        .into_iter()
        .map(|(_, token)| token)
        .collect(),
    );
    let sessions = server.services.sessions().clone();
    let before = sessions.cache_stats();
    wait_until_serving(&channels[0]).await?;
    let rates = paired_throughput(&channels, options.concurrency, options.schedule, {
        let tokens = tokens.clone();
        move |channel, worker, i| {
            let token = tokens[(worker * 37 + i) % tokens.len()].clone();
            async move {
                let valid = SessionServiceClient::new(channel)
                    .validate_session(pb::ValidateSessionRequest {
                        session_token: token,
                    })
                    .await?
                    .into_inner()
                    .valid;
                ensure!(valid, "a registered session did not validate");
                Ok(())
            }
        }
    })
    .await?;
    let after = sessions.cache_stats();
    let (hits, misses) = (after.hits - before.hits, after.misses - before.misses);
    let hit_ratio = hits as f64 / (hits + misses).max(1) as f64;

    // The same validations in-process: the domain call alone, no gRPC.
    let parsed: Arc<Vec<SessionToken>> = Arc::new(
        tokens
            .iter()
            .map(|t| SessionToken::parse(t))
            .collect::<Result<_, _>>()?,
    );
    let in_process = throughput(&channels, options.concurrency, options.short, {
        move |_, worker, i| {
            let sessions = sessions.clone();
            let parsed = parsed.clone();
            async move {
                let valid = sessions
                    .validate(&parsed[(worker * 37 + i) % parsed.len()])
                    .await?;
                ensure!(valid.is_some(), "a registered session did not validate");
                Ok(())
            }
        }
    })
    .await?;
    Ok(if cached {
        vec![
            server.paired(
                "ValidateSession, cached hit",
                rates,
                &format!(
                    "{count} tokens; {:.2}% answered from the cache",
                    hit_ratio * 100.0
                ),
            ),
            server.rate(
                "  in-process Sessions::validate, cached",
                in_process,
                "no gRPC: the domain call alone",
            ),
        ]
    } else {
        vec![
            server.paired(
                "ValidateSession, DB read (cache off)",
                rates,
                &format!(
                    "{count} tokens; validation_cache_entries=0; {:.2}% read the DB",
                    (1.0 - hit_ratio) * 100.0
                ),
            ),
            server.rate(
                "  in-process Sessions::validate, DB read",
                in_process,
                "no gRPC: the domain call alone",
            ),
        ]
    })
}

async fn bench_register(
    server: &BenchServer,
    options: &Options,
    schedule: Schedule,
) -> Result<Vec<Row>> {
    let channels = server.channels(options.connections).await?;
    let counter = Arc::new(AtomicU64::new(0));
    wait_until_serving(&channels[0]).await?;
    let rates = paired_throughput(
        &channels,
        options.concurrency,
        schedule,
        move |channel, _, _| {
            // Sign-ins spread over 1,000 accounts, each on a new device.
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let request =
                SignIn::browser(&format!("register-{}", n % 1_000), &format!("device-{n}"))
                    .request();
            async move {
                let response = SessionServiceClient::new(channel)
                    .register_session(request)
                    .await?
                    .into_inner();
                ensure!(!response.session_token.is_empty(), "no token");
                Ok(())
            }
        },
    )
    .await?;
    let client = SessionServiceClient::new(channels[0].clone());
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
    Ok(vec![
        server.paired(
            "RegisterSession",
            rates,
            "1,000 accounts, a new device each, no request_id",
        ),
        server.latency(
            "RegisterSession, 1 in flight",
            sequential,
            "sequential calls, one account",
        ),
    ])
}

async fn bench_list(server: &BenchServer, options: &Options, full: bool) -> Result<Vec<Row>> {
    const SESSIONS: usize = 1_000;
    const DEVICES: usize = 200;
    const PAGE: i32 = 100;
    let channels = server.channels(1).await?;
    let channel = channels[0].clone();
    let account = "list-account";
    let setup = Instant::now();
    let registered = register_many(&channels, SESSIONS, 16, |i| {
        SignIn::browser(account, &format!("device-{:03}", i % DEVICES))
    })
    .await?;
    let setup = setup.elapsed();
    let (_, token) = registered.first().context("no session registered")?.clone();

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
        first.rows.len() == PAGE as usize,
        "first page has {} rows",
        first.rows.len()
    );
    ensure!(!first.next_page_token.is_empty(), "no second page");
    let first_bytes = prost::Message::encoded_len(&first);

    let budget = Duration::from_secs(12);
    let first_page = latencies(options.latency_calls, budget, || async {
        let page = list(String::new()).await?;
        ensure!(page.rows.len() == PAGE as usize);
        Ok(())
    })
    .await?;
    let mut rows = vec![server.latency(
        "ListActiveSessions, first page (100 rows)",
        first_page,
        &format!(
            "{SESSIONS} sessions on {DEVICES} devices, subject = session token; \
             response {} KiB",
            first_bytes / 1024
        ),
    )];
    if !full {
        return Ok(rows);
    }
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
    rows.push(server.latency("ListActiveSessions, all pages (2 calls)", all_pages, ""));

    // The first page in-process: domain and database only, no encoding, no gRPC.
    let sessions = server.services.sessions().clone();
    let subject = Subject::SessionToken(SessionToken::parse(&token)?);
    let domain = latencies(options.latency_calls, budget, || async {
        let page = sessions.list_rows(&subject, None, 100, None).await?;
        ensure!(page.rows.len() == PAGE as usize);
        Ok(())
    })
    .await?;
    rows.push(server.latency(
        "  in-process Sessions::list_rows, first page",
        domain,
        "no gRPC, no protobuf: the domain call alone",
    ));
    rows.push(server.single(
        "  setup: RegisterSession x1,000, one account",
        setup,
        &format!(
            "{:.0} calls/s at 16 in flight",
            SESSIONS as f64 / setup.as_secs_f64()
        ),
    ));
    Ok(rows)
}

async fn bench_revoke_all(server: &BenchServer, options: &Options) -> Result<Vec<Row>> {
    let sessions = options.revoke_sessions;
    let channels = server.channels(1).await?;
    let mut client = SessionServiceClient::new(channels[0].clone());
    let db = server.connect_database().await?;
    let account = "revoke-all";
    // One session through the API (it creates the account row), the rest straight into the
    // table as copies of it on other devices and earlier sign-in times.
    let registered =
        register_many(&channels, 1, 1, |_| SignIn::browser(account, "device-0")).await?;
    let (session_id, token) = registered.first().context("no session registered")?.clone();
    let template = session::Entity::find_by_id(session_id)
        .one(&db)
        .await?
        .context("registered session not in the table")?;
    let insert_started = Instant::now();
    insert_copies(&db, &template, sessions - 1, |i| {
        format!("device-{}", i % 1_000)
    })
    .await?;
    let insert = insert_started.elapsed();
    db.close().await.ok();

    // Context: the first page of this account's rows (100 devices of 100 sessions each).
    let mut big_list = Vec::new();
    let mut big_note = String::new();
    for _ in 0..20 {
        let started = Instant::now();
        let listed = client
            .list_active_sessions(pb::ListActiveSessionsRequest {
                subject: Some(by_account(account)),
                page_size: 100,
                page_token: String::new(),
                product: 0,
            })
            .await;
        big_list.push(started.elapsed());
        big_note = match listed {
            Ok(page) => {
                let page = page.into_inner();
                format!(
                    "{} rows, {} sessions, response {} KiB",
                    page.rows.len(),
                    page.rows.iter().map(|r| r.sessions.len()).sum::<usize>(),
                    prost::Message::encoded_len(&page) / 1024
                )
            }
            Err(status) => format!("FAILED: {:?} {}", status.code(), status.message()),
        };
    }

    let call_started = Instant::now();
    let revocation = client
        .revoke_all_sessions(pb::RevokeAllSessionsRequest {
            subject: Some(by_account(account)),
            validate_only: false,
            remove_trusted_devices: false,
            ..Default::default()
        })
        .await?
        .into_inner()
        .revocation
        .context("no revocation")?;
    let call = call_started.elapsed();
    // Poll GetRevocation until the background sweep has marked every session.
    let mut polls = 0;
    let done = loop {
        let current = client
            .get_revocation(pb::GetRevocationRequest {
                subject: Some(by_account(account)),
                revocation_id: revocation.revocation_id.clone(),
            })
            .await?
            .into_inner()
            .revocation
            .context("no revocation")?;
        polls += 1;
        if current.complete {
            break current;
        }
        ensure!(
            call_started.elapsed() < Duration::from_secs(300),
            "sweep not done after 5 min"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let complete = call_started.elapsed();
    ensure!(
        usize::try_from(done.sessions_revoked) == Ok(sessions),
        "the revocation reports {} sessions revoked, expected {sessions}",
        done.sessions_revoked,
    );
    let still_valid = client
        .validate_session(pb::ValidateSessionRequest {
            session_token: token,
        })
        .await?
        .into_inner()
        .valid;
    ensure!(
        !still_valid,
        "a session still validates after log-out of all"
    );
    let n = thousands(sessions as f64);
    Ok(vec![
        server.single(
            &format!("RevokeAllSessions on {n} sessions: the call"),
            call,
            "operator subject (account id); writes the cut-off, counts the sessions",
        ),
        server.single(
            &format!("RevokeAllSessions on {n} sessions: until complete"),
            complete,
            &format!(
                "from the call's start to GetRevocation complete=true ({polls} polls, 5 ms \
                 apart); background sweep of {} batches, {} sessions/s",
                sessions.div_ceil(SWEEP_BATCH),
                thousands(sessions as f64 / (complete - call).as_secs_f64()),
            ),
        ),
        server.latency(
            &format!("  ListActiveSessions first page, {n} sessions / 1,000 devices"),
            big_list,
            &format!("operator subject, 20 calls; {big_note}"),
        ),
        server.single(
            &format!(
                "  setup: INSERT {} sessions (sea-orm)",
                thousands((sessions - 1) as f64)
            ),
            insert,
            &format!("own connection; multi-row INSERT of {INSERT_CHUNK}, one transaction"),
        ),
    ])
}

/// One device with `revoke_sessions` sessions (a flooded browser): the first page of rows (p99
/// over 20 calls), a device's sessions page, and RevokeSession of the row.
async fn bench_revoke_row(server: &BenchServer, options: &Options) -> Result<Vec<Row>> {
    let sessions = options.revoke_sessions;
    let channels = server.channels(1).await?;
    let mut client = SessionServiceClient::new(channels[0].clone());
    let db = server.connect_database().await?;
    let account = "revoke-row";
    let registered = register_many(&channels, 1, 1, |_| SignIn::browser(account, "bot")).await?;
    let (session_id, token) = registered.first().context("no session registered")?.clone();
    let template = session::Entity::find_by_id(session_id)
        .one(&db)
        .await?
        .context("registered session not in the table")?;
    insert_copies(&db, &template, sessions - 1, |_| "bot".into()).await?;
    db.close().await.ok();

    let mut list = Vec::new();
    let mut note = String::new();
    for _ in 0..20 {
        let started = Instant::now();
        let page = client
            .list_active_sessions(pb::ListActiveSessionsRequest {
                subject: Some(by_account(account)),
                page_size: 100,
                page_token: String::new(),
                product: 0,
            })
            .await?
            .into_inner();
        list.push(started.elapsed());
        note = format!(
            "{} row of {} sessions carrying {}, response {} bytes",
            page.rows.len(),
            page.rows.first().map_or(0, |r| r.session_count),
            page.rows.first().map_or(0, |r| r.sessions.len()),
            prost::Message::encoded_len(&page)
        );
    }
    let mut device_page = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        client
            .list_device_sessions(pb::ListDeviceSessionsRequest {
                subject: Some(by_account(account)),
                device_id: "bot".into(),
                page_size: 100,
                ..Default::default()
            })
            .await?;
        device_page.push(started.elapsed());
    }
    let started = Instant::now();
    let result = client
        .revoke_session(pb::RevokeSessionRequest {
            subject: Some(by_account(account)),
            target: Some(pb::revoke_session_request::Target::DeviceId("bot".into())),
            validate_only: false,
        })
        .await?
        .into_inner();
    let revoke = started.elapsed();
    ensure!(
        usize::try_from(result.session_count) == Ok(sessions),
        "RevokeSession reports {} sessions, expected {sessions}",
        result.session_count
    );
    let still_valid = client
        .validate_session(pb::ValidateSessionRequest {
            session_token: token,
        })
        .await?
        .into_inner()
        .valid;
    ensure!(
        !still_valid,
        "a session still validates after the row log-out"
    );
    let n = thousands(sessions as f64);
    Ok(vec![
        server.latency(
            &format!("ListActiveSessions first page, {n} sessions on one device"),
            list,
            &format!("operator subject, 20 calls; {note}"),
        ),
        server.latency(
            &format!("ListDeviceSessions first page, {n} sessions on one device"),
            device_page,
            "operator subject, 20 calls, 100 sessions a page",
        ),
        server.single(
            &format!("RevokeSession of a row of {n} sessions"),
            revoke,
            &format!(
                "one transaction: summary, then marked in keyset batches of 5,000 (PostgreSQL) \
                 or one statement (SQLite); response {} bytes",
                prost::Message::encoded_len(&result)
            ),
        ),
    ])
}

/// Inserts `count` copies of `template` with new ids, token hashes, devices (`device(i)`),
/// and sign-ins spread over the preceding days, one every 3 s, all before now.
async fn insert_copies(
    db: &DatabaseConnection,
    template: &session::Model,
    count: usize,
    device: impl Fn(usize) -> String,
) -> Result<()> {
    let now = template.signed_in_at;
    // Random bits shared by this batch's ids; the index makes each one unique.
    let nonce = ulid::Ulid::generate().random() & u128::from(u32::MAX);
    let txn = db.begin().await?;
    for start in (0..count).step_by(INSERT_CHUNK) {
        let end = (start + INSERT_CHUNK).min(count);
        let models = (start..end).map(|i| {
            let age_micros = i64::try_from(count - i).unwrap_or(i64::MAX / 4) * 3_000_000;
            let signed_in_at = now - age_micros;
            let millis = u64::try_from(signed_in_at / 1_000).unwrap_or(0);
            let id = ulid::Ulid::from_parts(millis, (nonce << 40) | i as u128);
            let mut token_hash = [0u8; 32];
            token_hash[..16].copy_from_slice(&id.0.to_be_bytes());
            token_hash[16..24].copy_from_slice(&nonce.to_le_bytes()[..8]);
            token_hash[24..].copy_from_slice(&(i as u64).to_be_bytes());
            let mut model = template.clone();
            model.session_id = id.to_string();
            model.token_hash = token_hash.to_vec();
            model.device_id = device(i);
            model.signed_in_at = signed_in_at;
            model.last_active_at = signed_in_at;
            model.expires_at = template.expires_at - age_micros;
            model.new_device = false;
            model.into_active_model().reset_all()
        });
        session::Entity::insert_many(models)
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Measurement

/// Throughput windows of a call, each paired with a Health/Check window just before it.
#[derive(Debug, Default)]
struct Paired {
    rates: Vec<f64>,
    health: Vec<f64>,
}

/// Load before a window after switching between the call and Health/Check.
const SWITCH_WARMUP: Duration = Duration::from_millis(200);

/// `schedule.windows` times: a window of Health/Check, then a window of `call`, each from
/// `concurrency` workers over the same connections.
async fn paired_throughput<F, Fut>(
    channels: &[Channel],
    concurrency: usize,
    schedule: Schedule,
    call: F,
) -> Result<Paired>
where
    F: Fn(Channel, usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let call = Arc::new(call);
    let health = Arc::new(health_call);
    let mut paired = Paired::default();
    for window in 0..schedule.windows {
        let warmup = if window == 0 {
            schedule.warmup
        } else {
            SWITCH_WARMUP
        };
        let health = load(channels, concurrency, warmup, schedule.window, 1, &health).await?;
        let rates = load(
            channels,
            concurrency,
            SWITCH_WARMUP,
            schedule.window,
            1,
            &call,
        )
        .await?;
        paired.health.extend(health);
        paired.rates.extend(rates);
    }
    Ok(paired)
}

/// Consecutive windows of `call` after one warm-up (for in-process calls, which have no
/// transport to compare with).
async fn throughput<F, Fut>(
    channels: &[Channel],
    concurrency: usize,
    schedule: Schedule,
    call: F,
) -> Result<Vec<f64>>
where
    F: Fn(Channel, usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let call = Arc::new(call);
    load(
        channels,
        concurrency,
        schedule.warmup,
        schedule.window,
        schedule.windows,
        &call,
    )
    .await
}

/// Runs `call` from `concurrency` workers (worker `w` on connection `w % connections`) without
/// pause, and returns the completed calls per second of each of `windows` consecutive windows
/// after `warmup`.
async fn load<F, Fut>(
    channels: &[Channel],
    concurrency: usize,
    warmup: Duration,
    window: Duration,
    windows: usize,
    call: &Arc<F>,
) -> Result<Vec<f64>>
where
    F: Fn(Channel, usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let workers: Vec<JoinHandle<Result<()>>> = (0..concurrency)
        .map(|worker| {
            let (call, stop, done) = (call.clone(), stop.clone(), done.clone());
            let channel = channels[worker % channels.len()].clone();
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    if let Err(err) = call(channel.clone(), worker, i).await {
                        stop.store(true, Ordering::Relaxed);
                        return Err(err);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                    // A call that completes without waiting (an in-process cache hit) must
                    // still let the runtime's other tasks and timers run.
                    tokio::task::consume_budget().await;
                }
                Ok(())
            })
        })
        .collect();
    tokio::time::sleep(warmup).await;
    let mut rates = Vec::with_capacity(windows);
    for _ in 0..windows {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let (start_count, start) = (done.load(Ordering::Relaxed), Instant::now());
        tokio::time::sleep(window).await;
        let (end_count, end) = (done.load(Ordering::Relaxed), Instant::now());
        rates.push((end_count - start_count) as f64 / (end - start).as_secs_f64());
    }
    stop.store(true, Ordering::Relaxed);
    for worker in try_join_all(workers).await? {
        worker?;
    }
    Ok(rates)
}

/// Times up to `calls` sequential runs of `call` (after three warm-up runs), stopping early
/// once `budget` is spent.
async fn latencies<F, Fut>(calls: usize, budget: Duration, mut call: F) -> Result<Vec<Duration>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    for _ in 0..3 {
        call().await?;
    }
    let started = Instant::now();
    let mut times = Vec::with_capacity(calls);
    while times.len() < calls.max(1) && (times.is_empty() || started.elapsed() < budget) {
        let start = Instant::now();
        call().await?;
        times.push(start.elapsed());
    }
    Ok(times)
}

/// Registers `count` sessions with `concurrency` calls in flight; returns (session id, token).
async fn register_many(
    channels: &[Channel],
    count: usize,
    concurrency: usize,
    sign_in: impl Fn(usize) -> SignIn,
) -> Result<Vec<(String, String)>> {
    use futures::{StreamExt, TryStreamExt};
    let requests: Vec<_> = (0..count).map(|i| (i, sign_in(i).request())).collect();
    futures::stream::iter(requests)
        .map(|(i, request)| {
            let mut client = SessionServiceClient::new(channels[i % channels.len()].clone());
            async move {
                let response = client.register_session(request).await?.into_inner();
                let session = response.session.context("no session")?;
                Ok::<_, anyhow::Error>((session.session_id, response.session_token))
            }
        })
        .buffered(concurrency)
        .try_collect()
        .await
}

// ---------------------------------------------------------------------------------------------
// Results

#[derive(Debug)]
enum Value {
    /// Calls per second of each window, and of the Health/Check window paired with each.
    Rate(Vec<f64>, Vec<f64>),
    /// Each call's latency.
    Latency(Vec<Duration>),
}

#[derive(Debug)]
struct Row {
    backend: Backend,
    nodelay: bool,
    name: String,
    value: Value,
    note: String,
}

impl Row {
    fn server(&self) -> String {
        let name = backend_name(self.backend);
        if self.nodelay {
            format!("{name}+nodelay")
        } else {
            name.to_owned()
        }
    }

    /// The median Health/Check rate of the paired windows, and the median of the pairs'
    /// ratios.
    fn health(&self) -> Option<(f64, f64)> {
        match &self.value {
            Value::Rate(rates, health) if !health.is_empty() => {
                let ratios: Vec<f64> = rates.iter().zip(health).map(|(r, h)| r / h).collect();
                Some((percentile(health, 0.5), percentile(&ratios, 0.5)))
            }
            Value::Rate(..) | Value::Latency(_) => None,
        }
    }

    /// The (result, spread) columns.
    fn cells(&self) -> (String, String) {
        match &self.value {
            Value::Rate(rates, _) => {
                let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
                let max = rates.iter().copied().fold(0.0, f64::max);
                (
                    format!("{} /s", thousands(percentile(rates, 0.5))),
                    format!(
                        "min {} max {} (n={})",
                        thousands(min),
                        thousands(max),
                        rates.len()
                    ),
                )
            }
            Value::Latency(times) if times.len() == 1 => (duration(times[0]), String::new()),
            Value::Latency(times) => {
                let secs: Vec<f64> = times.iter().map(Duration::as_secs_f64).collect();
                let max = secs.iter().copied().fold(0.0, f64::max);
                let at = |p| duration(Duration::from_secs_f64(percentile(&secs, p)));
                (
                    format!("p50 {}", at(0.5)),
                    format!(
                        "p99 {} max {} (n={})",
                        at(0.99),
                        duration(Duration::from_secs_f64(max)),
                        secs.len()
                    ),
                )
            }
        }
    }

    fn render_inline(&self) -> String {
        let (result, spread) = self.cells();
        format!("{}: {result}  {spread}", self.name)
    }
}

/// Nearest-rank percentile.
fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 1.0 {
        format!("{secs:.2} s")
    } else if secs >= 0.001 {
        format!("{:.2} ms", secs * 1e3)
    } else {
        format!("{:.0} µs", secs * 1e6)
    }
}

fn print_table(rows: &[Row], options: &Options) {
    // Each server's Health/Check windows, all together, before its first row.
    let mut lines: Vec<[String; 7]> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for row in rows {
        if !seen.contains(&row.server()) {
            seen.push(row.server());
            let health: Vec<f64> = rows
                .iter()
                .filter(|r| r.server() == row.server())
                .filter_map(|r| match &r.value {
                    Value::Rate(_, health) => Some(health.iter().copied()),
                    Value::Latency(_) => None,
                })
                .flatten()
                .collect();
            if !health.is_empty() {
                let summary = Row {
                    backend: row.backend,
                    nodelay: row.nodelay,
                    name: "Health/Check: transport baseline".into(),
                    value: Value::Rate(health, Vec::new()),
                    note: "every Health/Check window paired with the rows below".into(),
                };
                let (result, spread) = summary.cells();
                lines.push([
                    summary.server(),
                    summary.name,
                    result,
                    spread,
                    String::new(),
                    "1.00".into(),
                    summary.note,
                ]);
            }
        }
        let (result, spread) = row.cells();
        let (health, ratio) = row
            .health()
            .map_or((String::new(), String::new()), |(h, r)| {
                (format!("{} /s", thousands(h)), format!("{r:.2}"))
            });
        lines.push([
            row.server(),
            row.name.clone(),
            result,
            spread,
            health,
            ratio,
            row.note.clone(),
        ]);
    }
    let header = [
        "server",
        "measurement",
        "median / p50",
        "spread",
        "health",
        "÷health",
        "notes",
    ]
    .map(str::to_owned);
    let mut widths = header.clone().map(|h| h.chars().count());
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let render = |cells: &[String]| {
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            let pad = " ".repeat(width - cell.chars().count());
            if matches!(i, 2 | 4 | 5) {
                out.push_str(&pad);
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&pad);
            }
            out.push_str("  ");
        }
        out.trim_end().to_owned()
    };
    let (main, short) = (options.schedule, options.short);
    println!();
    println!(
        "Results{}.\n\
         Throughput: {} calls in flight over {} HTTP/2 connection(s); median (min, max) of {} \
         windows of {:?}, each right after a {:?} window of Health/Check on the same server and \
         connections (health = its median; ÷health = median of the per-pair ratios); {:?} \
         warm-up first, {:?} after each switch. In-process and +nodelay rows: {} x {:?}.\n\
         Latency: sequential calls, one in flight, after 3 unmeasured calls.",
        if options.quick { " (--quick)" } else { "" },
        options.concurrency,
        options.connections,
        main.windows,
        main.window,
        main.window,
        main.warmup,
        SWITCH_WARMUP,
        short.windows,
        short.window,
    );
    let head = render(&header);
    println!("{head}");
    println!("{}", "-".repeat(head.chars().count()));
    let mut previous: Option<&str> = None;
    for line in &lines {
        let backend = line[0].split('+').next().unwrap_or_default();
        if previous.is_some_and(|b| b != backend) {
            println!();
        }
        previous = Some(backend);
        println!("{}", render(line));
    }
    println!();
}

// ---------------------------------------------------------------------------------------------
// The server under test, over its own database (as the e2e harness does it)

#[derive(Debug)]
enum BenchDatabase {
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: String,
    },
}

impl BenchDatabase {
    async fn create(backend: Backend) -> Result<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
                Ok(Self::Sqlite { _dir: dir, url })
            }
            Backend::Postgres => {
                let admin_url = std::env::var(POSTGRES_URL_VAR)?;
                let name = format!(
                    "as_bench_{}",
                    ulid::Ulid::generate().to_string().to_lowercase()
                );
                let admin = Database::connect(&admin_url)
                    .await
                    .context("connect to PostgreSQL")?;
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await?;
                admin.close().await.ok();
                let url = replace_database(&admin_url, &name);
                Ok(Self::Postgres {
                    admin_url,
                    name,
                    url,
                })
            }
        }
    }

    fn url(&self) -> &str {
        match self {
            Self::Sqlite { url, .. } | Self::Postgres { url, .. } => url,
        }
    }

    async fn drop_database(&self) -> Result<()> {
        if let Self::Postgres {
            admin_url, name, ..
        } = self
        {
            let admin = Database::connect(admin_url).await?;
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await?;
            admin.close().await.ok();
        }
        Ok(())
    }
}

/// `postgres://u@h:p/old?x` -> `postgres://u@h:p/NAME?x` (as in the e2e harness).
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

type Started = (SocketAddr, Services, JoinHandle<Result<(), ServeError>>);

#[derive(Debug)]
struct BenchServer {
    backend: Backend,
    nodelay: bool,
    addr: SocketAddr,
    services: Services,
    database: BenchDatabase,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<Result<(), ServeError>>,
}

impl BenchServer {
    /// Builds the server on a fresh database with the system clock and runs it until
    /// [`stop`](Self::stop). With `nodelay`, the listener has TCP_NODELAY (a diagnostic).
    async fn start(
        backend: Backend,
        nodelay: bool,
        adjust: impl FnOnce(&mut Config),
    ) -> Result<Self> {
        let database = BenchDatabase::create(backend).await?;
        let mut config = Config::new(SocketAddr::from(([127, 0, 0, 1], 0)), database.url());
        config.geoip_database =
            Some(concat!(env!("CARGO_MANIFEST_DIR"), "/data/GeoIP2-City-Test.mmdb").into());
        config.shutdown_grace = Duration::from_secs(2);
        adjust(&mut config);
        let (shutdown, signal) = oneshot::channel::<()>();
        let signal = async {
            signal.await.ok();
        };
        let started = if nodelay {
            Self::start_nodelay(config, signal).await
        } else {
            Self::start_as_harness(config, signal).await
        };
        match started {
            Ok((addr, services, server)) => Ok(Self {
                backend,
                nodelay,
                addr,
                services,
                database,
                shutdown,
                server,
            }),
            Err(err) => {
                database.drop_database().await.ok();
                Err(err.context("server starts"))
            }
        }
    }

    /// As the e2e harness starts it.
    async fn start_as_harness(
        config: Config,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Started> {
        let application = Application::build(config).await?;
        let addr = application.local_addr()?;
        let services = application.services().clone();
        Ok((addr, services, tokio::spawn(application.run(signal))))
    }

    /// The same pieces (`connect_and_migrate`, `Services::new`, `run`), on a listener with
    /// TCP_NODELAY set, which Linux copies to every accepted socket. For comparison only.
    async fn start_nodelay(
        config: Config,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Started> {
        let store = active_sessions_server::app::connect_and_migrate(&config).await?;
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_nodelay(true)?;
        socket.bind(config.listen)?;
        let listener = socket.listen(1024)?;
        let addr = listener.local_addr()?;
        let services = Services::new(store, config, Arc::new(SystemClock)).await?;
        let server = tokio::spawn(active_sessions_server::run(
            listener,
            services.clone(),
            signal,
        ));
        Ok((addr, services, server))
    }

    /// `count` separate HTTP/2 connections to the server.
    async fn channels(&self, count: usize) -> Result<Vec<Channel>> {
        let url = format!("http://{}", self.addr);
        let mut channels = Vec::with_capacity(count);
        for _ in 0..count {
            channels.push(active_sessions_client::connect(url.clone()).await?);
        }
        Ok(channels)
    }

    /// A direct database connection (for seeding rows).
    async fn connect_database(&self) -> Result<DatabaseConnection> {
        Ok(Database::connect(self.database.url()).await?)
    }

    fn row(&self, name: &str, value: Value, note: &str) -> Row {
        Row {
            backend: self.backend,
            nodelay: self.nodelay,
            name: name.into(),
            value,
            note: note.into(),
        }
    }

    fn rate(&self, name: &str, rates: Vec<f64>, note: &str) -> Row {
        self.row(name, Value::Rate(rates, Vec::new()), note)
    }

    fn paired(&self, name: &str, paired: Paired, note: &str) -> Row {
        self.row(name, Value::Rate(paired.rates, paired.health), note)
    }

    fn latency(&self, name: &str, times: Vec<Duration>, note: &str) -> Row {
        self.row(name, Value::Latency(times), note)
    }

    fn single(&self, name: &str, time: Duration, note: &str) -> Row {
        self.row(name, Value::Latency(vec![time]), note)
    }

    async fn stop(self) -> Result<()> {
        self.shutdown.send(()).ok();
        let served = self.server.await;
        let dropped = self.database.drop_database().await;
        served?.map_err(|err| anyhow!("server: {err}"))?;
        dropped
    }
}
