//! A fleet-shaped load: sessions five to an account (1,000,000 over 200,000 accounts at the
//! last stage) inserted in bulk straight into the database the server migrated, then
//! ValidateSession of tokens drawn from a Zipf distribution (exponent [`EXPONENT`]) over every
//! session seeded so far, with the server's default validation cache (100,000 entries, 60 s).
//! On PostgreSQL each stage's rows are vacuumed and checkpointed before the load, as a fleet's
//! long-lived rows are (the seeding time includes it).
//! Each stage grows the fleet (10,000, 100,000, 1,000,000 sessions) and reports the cache's
//! hit ratio, throughput, p50/p99, server CPU per call, and the process's resident set idle
//! and under the load. The resident set is the whole process's (server, load generator and,
//! on SQLite, the database's page cache); the scenario runs in a process of its own (see
//! `child`), and the row gives the process's resident set before the server started too.
//! The seeded tokens come from a `TokenSeries`, hashed by the server's own `SessionToken`, so
//! any of them can be presented without keeping a million strings.

use std::time::Instant;

use active_sessions_e2e::bench_support::{TokenSeries, insert_rows};
use active_sessions_server::store::entity::account;
use anyhow::{Context, Result};
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait};

use crate::{
    Outcome,
    calls::{register_template, validate, wait_until_serving},
    load::load,
    options::Options,
    probe::resident_bytes,
    report::{Row, duration, latency_percentiles, mebibytes, median_rate, server_cpu, thousands},
    server::BenchServer,
    targets::Check,
    validate::hit_share,
    zipf::{SplitMix, Zipf, spread},
};

/// Sessions per account.
const PER_ACCOUNT: usize = 5;
/// Zipf's exponent: a few sessions very hot, a long tail.
pub const EXPONENT: f64 = 1.0;
/// Seeded sign-ins are spread over the last ten days (idle timeout: 14).
const SPREAD_SECONDS: u64 = 10 * 86_400;

/// `before_server`: the process's resident set before the server started.
pub async fn fleet(server: &BenchServer, options: &Options, before_server: u64) -> Result<Outcome> {
    let idle_empty = resident_bytes();
    let driver = server.driver(options.connections).await?;
    wait_until_serving(&driver.channels[0]).await?;
    let db = server.connect_database().await?;
    let (template, _) = register_template(
        &driver.channels[0],
        &db,
        "fleet-template",
        "device-template",
    )
    .await?;
    let template_account = account::Entity::find_by_id("fleet-template".to_owned())
        .one(&db)
        .await?
        .context("the template's account row")?;
    db.close().await.ok();

    let series = TokenSeries::new();
    let label = server.label();
    let mut outcome = Outcome::default();
    let mut seeded: usize = 0;
    for (stage, &size) in options.fleet_stages.iter().enumerate() {
        // Seed sessions seeded..size and the accounts they open, on a connection closed
        // before the load (its SQLite threads would count as the server's).
        let started = Instant::now();
        let db = server.connect_database().await?;
        let accounts = seeded.div_ceil(PER_ACCOUNT)..size.div_ceil(PER_ACCOUNT);
        insert_rows(
            &db,
            accounts.map(|a| account::Model {
                account_id: fleet_account(a),
                ..template_account.clone()
            }),
        )
        .await?;
        let sessions = (seeded..size).map(|i| {
            let age = (i as u64 * 7_919) % SPREAD_SECONDS;
            series.session(
                &template,
                i as u64,
                fleet_account(i / PER_ACCOUNT),
                format!("device-{i}"),
                template.signed_in_at - i64::try_from(age * 1_000_000).unwrap_or(0),
            )
        });
        insert_rows(&db, sessions).await?;
        if db.get_database_backend() == DbBackend::Postgres {
            // A fleet's rows are long vacuumed and checkpointed: without this the stage would
            // pay every row's first-touch hint-bit write, and race the autovacuum and the
            // checkpoint that a bulk insert of up to 900,000 rows sets off.
            db.execute_unprepared("VACUUM (ANALYZE) sessions, accounts")
                .await?;
            db.execute_unprepared("CHECKPOINT").await?;
        }
        db.close().await.ok();
        let insert = started.elapsed();
        seeded = size;

        let idle = resident_bytes();
        let zipf = Zipf::new(size, EXPONENT);
        let tokens = series.clone();
        let seed = stage as u64 + 1;
        let call = validate(move |worker, i| {
            let rank = zipf.sample(&mut SplitMix::at(seed, worker, i));
            tokens.token(spread(rank, size)).expose()
        });
        let schedule = options.schedule;
        let windows = load(
            &driver,
            options.concurrency,
            options.fleet_warmup,
            schedule.window,
            schedule.windows,
            &call,
        )
        .await?;
        let peak = windows.iter().map(|w| w.resident).max().unwrap_or(0);
        let n = thousands(size as f64);
        let hits = hit_share(&windows);
        let (p50, p99) = latency_percentiles(&windows);
        let show = |d: Option<std::time::Duration>| d.map_or_else(|| "?".into(), duration);
        outcome.checks.push(Check::report(
            &label,
            &format!("fleet, Zipf over {n} sessions"),
            format!(
                "hits {hits}, {} /s, p50 {} p99 {}, cpu {}/call; RSS {} idle, {} under load \
                 (process; {} before the server)",
                thousands(median_rate(&windows)),
                show(p50),
                show(p99),
                show(server_cpu(&windows)),
                mebibytes(idle),
                mebibytes(peak),
                mebibytes(before_server),
            ),
        ));
        outcome.rows.push(Row::rate(
            &label,
            &format!("ValidateSession, Zipf over {n} sessions"),
            windows,
            &format!(
                "{} accounts; {hits} from the cache (default size); seeded in {}; {:?} warm-up; \
                 RSS {} before the server, {} idle with no sessions, {} idle, {} under load",
                thousands(size.div_ceil(PER_ACCOUNT) as f64),
                duration(insert),
                options.fleet_warmup,
                mebibytes(before_server),
                mebibytes(idle_empty),
                mebibytes(idle),
                mebibytes(peak),
            ),
        ));
    }
    Ok(outcome)
}

fn fleet_account(index: usize) -> String {
    format!("fleet-{index:06}")
}
