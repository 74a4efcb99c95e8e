//! Performance of the storage hot path: the SessionService over real loopback gRPC, through the
//! generated client, against the real server started in-process (`Application::build`,
//! `local_addr`, `run(shutdown)`), on SQLite and, when `ACTIVE_SESSIONS_TEST_POSTGRES_URL` is
//! set, on PostgreSQL. Every scenario gets a fresh server over a fresh database of the
//! harness's (a new SQLite file, or a new PostgreSQL database dropped at the end).
//!
//! ```text
//! cargo bench -p active-sessions-e2e --bench session_service              # everything
//! cargo bench -p active-sessions-e2e --bench session_service -- validate  # a subset
//! cargo bench -p active-sessions-e2e --bench session_service -- --quick   # a smoke run
//! ```
//!
//! Filters match `BACKEND/SCENARIO` by substring (`sqlite/validate-db`, `postgres`, `fleet`).
//! Scenarios: `validate-cached`, `validate-db` (cache off: every call a miss), `register`,
//! `list`, `revoke-all`, `revoke-row`, `fleet` (`fleet`). Two diagnostics run only when named
//! (`-- nodelay`): `register+nodelay` and `list+nodelay` repeat those two on a listener with
//! `TCP_NODELAY`, to tell whether the server leaves Nagle's algorithm on.
//!
//! The machine is noisy, so every figure sits beside its floor measured in the same run:
//! throughput is measured in rounds that alternate the call with a baseline
//! (`grpc.health.v1.Health/Check` at the same concurrency on the same connections; on
//! PostgreSQL also `pgbench -S -M prepared -c 8` against the same PostgreSQL, see `pgbench`),
//! and a ratio is the median of the per-round ratios. RegisterSession also gets the floor of its
//! database work: the same rows written alone, as the server's group commit writes them at best
//! (see `register_floor`).
//!
//! Server CPU per call: the server runs on a tokio runtime of its own whose threads are named
//! `as-server` (workers and blocking pool); sqlx's SQLite workers are `sqlx-sqlite-worker-N`.
//! The load generator runs on another runtime (`bench-load`). Around every window the bench
//! sums utime + stime of the server's threads from `/proc/self/task/*/stat` and divides by the
//! calls the window completed (PostgreSQL's backends for the bench's database are summed
//! apart, as "db"); a row shows the median over windows. Memory is the process's `VmRSS`.
//!
//! The fleet runs in a child process of its own (see `child`), so that its resident set is not
//! the heap earlier scenarios left behind.
//!
//! The output ends with the targets: one line each, the figure, its floor or target, and
//! whether it is met.

mod calls;
mod child;
mod fleet;
mod histogram;
mod load;
mod options;
mod pgbench;
mod probe;
mod register_floor;
mod report;
mod revoke;
mod server;
mod targets;
mod validate;
mod writes;
mod zipf;

use std::time::Instant;

use active_sessions_e2e::{Backend, POSTGRES_URL_VAR};
use anyhow::{Context, Result};

use crate::{
    options::{Options, Scenario},
    probe::{LOAD_THREAD, load_average, resident_bytes, thread_census},
    report::{Row, print_table},
    server::{BenchServer, backend_name},
    targets::{Check, print_summary},
};

/// What a scenario measured: rows for the table, checks for the targets.
#[derive(Debug, Default)]
pub struct Outcome {
    pub rows: Vec<Row>,
    pub checks: Vec<Check>,
}

fn main() -> Result<()> {
    let options = Options::parse(std::env::args().skip(1))?;
    if options.help {
        println!("{}", Options::USAGE);
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name(LOAD_THREAD)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(run(options))
}

async fn run(options: Options) -> Result<()> {
    let mut backends = vec![Backend::Sqlite];
    if std::env::var(POSTGRES_URL_VAR).is_ok() {
        backends.push(Backend::Postgres);
    } else {
        eprintln!("PostgreSQL skipped: {POSTGRES_URL_VAR} is not set");
    }
    if !options.child {
        println!(
            "session_service bench: {} cores, load average {} at start{}",
            std::thread::available_parallelism().map_or(0, usize::from),
            load_average(),
            if options.quick { " (--quick)" } else { "" },
        );
    }
    let started = Instant::now();
    let mut all = Outcome::default();
    for backend in backends {
        let selected: Vec<Scenario> = Scenario::ALL
            .into_iter()
            .filter(|s| options.selects(*s, &format!("{}/{}", backend_name(backend), s.name())))
            .collect();
        for scenario in selected {
            let in_child = scenario == Scenario::Fleet && !options.child;
            let id = format!("{}/{}", backend_name(backend), scenario.name());
            let scenario_started = Instant::now();
            let outcome = if in_child {
                eprintln!("== {id} (in a process of its own)");
                child::run(backend, scenario, &options).await
            } else {
                if !options.child {
                    eprintln!("== {id}");
                }
                run_scenario(backend, scenario, &options).await
            };
            let outcome = outcome.with_context(|| id.clone())?;
            if !in_child {
                for row in &outcome.rows {
                    eprintln!("   {}", row.render_inline());
                }
            }
            if !options.child {
                eprintln!("   ({:.1} s)", scenario_started.elapsed().as_secs_f64());
            }
            all.rows.extend(outcome.rows);
            if !scenario.is_nodelay_diagnostic() {
                all.checks.extend(outcome.checks);
            }
        }
    }
    if options.child {
        child::emit(&all);
        return Ok(());
    }
    print_table(&all.rows, &options);
    print_summary(&all.checks, options.quick);
    println!(
        "total bench time {:.1} s, load average {} at end",
        started.elapsed().as_secs_f64(),
        load_average()
    );
    Ok(())
}

async fn run_scenario(backend: Backend, scenario: Scenario, options: &Options) -> Result<Outcome> {
    let before_server = resident_bytes();
    let server = BenchServer::start(backend, scenario.is_nodelay_diagnostic(), |config| {
        if scenario == Scenario::ValidateDb {
            config.sessions.validation_cache_entries = 0;
        }
        if scenario == Scenario::RevokeRow {
            config.sessions.max_sessions_per_account = 0;
        }
    })
    .await?;
    eprintln!("   threads: {}", thread_census());
    let result = match scenario {
        Scenario::ValidateCached => validate::cached(&server, options).await,
        Scenario::ValidateDb => validate::miss(&server, options).await,
        Scenario::Register => writes::register(&server, options, options.schedule).await,
        Scenario::RegisterNodelay => writes::register(&server, options, options.short).await,
        Scenario::List => writes::list(&server, options, true).await,
        Scenario::ListNodelay => writes::list(&server, options, false).await,
        Scenario::RevokeAll => revoke::revoke_all(&server, options).await,
        Scenario::RevokeRow => revoke::revoke_row(&server, options).await,
        Scenario::Fleet => fleet::fleet(&server, options, before_server).await,
    };
    let stopped = server.stop().await;
    let outcome = result?;
    stopped?;
    Ok(outcome)
}
