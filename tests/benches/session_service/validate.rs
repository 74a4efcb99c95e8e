//! ValidateSession from the cache (a few tokens over and over) and from the database (the
//! cache off: every call is a miss). Each is measured in rounds with Health/Check (the
//! transport's limit); the miss also at 8 and 256 in flight (CPU per call should not grow
//! with queueing) and, on PostgreSQL, beside `pgbench -S -M prepared -c 8` on the same
//! database server.

use std::time::Duration;

use active_sessions_e2e::{Backend, SignIn};
use anyhow::Result;

use crate::{
    Outcome,
    calls::{register_tokens, validate_each, validate_in_process, wait_until_serving},
    load::{Arm, Driver, Window, per_arm, rounds, throughput},
    options::Options,
    pgbench::{self, Pgbench},
    report::{Row, percentile},
    server::BenchServer,
    targets::{Bound, Check, server_cpu_check},
};

/// Server CPU a cache-miss validation may take.
const MISS_CPU_SQLITE: Duration = Duration::from_micros(30);
const MISS_CPU_POSTGRES: Duration = Duration::from_micros(40);
/// Cache-miss throughput against pgbench's on the same PostgreSQL.
const PGBENCH_FLOOR: f64 = 0.4;
/// CPU per SQLite miss at 256 in flight against at 8.
const QUEUEING_CEILING: f64 = 1.5;
/// Cached validation throughput against Health/Check's.
const CACHED_FLOOR: f64 = 0.88;

pub async fn cached(server: &BenchServer, options: &Options) -> Result<Outcome> {
    let driver = server.driver(options.connections).await?;
    let tokens = register_tokens(&driver.channels, 8, |i| {
        SignIn::browser(&format!("validate-{i}"), &format!("device-{i}"))
    })
    .await?;
    wait_until_serving(&driver.channels[0]).await?;
    let arms = [
        Arm::health(&driver, options.concurrency),
        Arm::calls(&driver, options.concurrency, validate_each(&tokens)),
    ];
    let [health, calls] = per_arm(rounds(options.schedule, &arms).await?)?;
    let in_process = in_process(server, &driver, options, &tokens).await?;
    let label = server.label();
    let note = format!("8 tokens; {} answered from the cache", hit_share(&calls));
    let row = Row::paired(
        &label,
        "ValidateSession, cached hit",
        calls,
        ("health", health),
        &note,
    );
    let checks = vec![Check::ratio(
        &label,
        "cached ValidateSession ÷ Health/Check",
        row.ratio(),
        Bound::AtLeast(CACHED_FLOOR),
        "same server, connections and concurrency, rounds alternated",
    )];
    let rows = vec![
        row,
        Row::rate(
            &label,
            "  in-process Sessions::validate, cached",
            in_process,
            "no gRPC: the domain call alone, on the server's runtime",
        ),
    ];
    Ok(Outcome { rows, checks })
}

pub async fn miss(server: &BenchServer, options: &Options) -> Result<Outcome> {
    let driver = server.driver(options.connections).await?;
    let tokens = register_tokens(&driver.channels, 1_000, |i| {
        SignIn::browser(&format!("validate-{}", i % 100), &format!("device-{i}"))
    })
    .await?;
    wait_until_serving(&driver.channels[0]).await?;
    let call = validate_each(&tokens);
    let at = |concurrency| Arm::calls(&driver, concurrency, call.clone());
    let pgbench = match server.backend {
        Backend::Postgres => Some(Pgbench::prepare().await?),
        Backend::Sqlite => None,
    };
    let mut arms = vec![
        Arm::health(&driver, options.concurrency),
        at(options.concurrency),
        at(8),
        at(256),
    ];
    if let Some(Ok(pgbench)) = &pgbench {
        arms.push(Arm::Pgbench(pgbench));
    }
    let measured = rounds(options.schedule, &arms).await;
    drop(arms);
    // pgbench's scratch database goes whether or not the rounds succeeded.
    let unmeasured = match pgbench {
        Some(Ok(pgbench)) => {
            pgbench.finish().await;
            None
        }
        Some(Err(why)) => Some(why),
        None => None,
    };
    let mut windows = measured?;
    let pgbench_windows = (windows.len() > 4).then(|| windows.remove(4));
    let [health, calls, at_8, at_256] = per_arm(windows)?;
    let in_process = in_process(server, &driver, options, &tokens).await?;

    let label = server.label();
    let cpu_limit = match server.backend {
        Backend::Sqlite => MISS_CPU_SQLITE,
        Backend::Postgres => MISS_CPU_POSTGRES,
    };
    let queueing = per_round_cpu_ratio(&at_256, &at_8);
    let mut checks = vec![server_cpu_check(
        &label,
        "cache-miss ValidateSession: server CPU per call",
        &calls,
        cpu_limit,
    )];
    let mut rows = vec![Row::paired(
        &label,
        "ValidateSession, DB read (cache off)",
        calls.clone(),
        ("health", health.clone()),
        &format!(
            "1,000 tokens; validation_cache_entries=0; {} answered from the cache",
            hit_share(&calls)
        ),
    )];
    rows.push(Row::rate(
        &label,
        "  Health/Check in the same rounds",
        health,
        "the transport's floor: a call that does no work",
    ));
    if let Some(pgbench_windows) = pgbench_windows {
        let row = Row::paired(
            &label,
            "  the same ÷ pgbench",
            calls.clone(),
            ("pgbench", pgbench_windows),
            &format!(
                "pgbench -S -M prepared -c {} on the same PostgreSQL, rounds alternated",
                pgbench::CLIENTS
            ),
        );
        checks.push(Check::ratio(
            &label,
            "cache-miss ValidateSession ÷ pgbench -S -M prepared -c 8",
            row.ratio(),
            Bound::AtLeast(PGBENCH_FLOOR),
            "calls/s ÷ pgbench tps, per round",
        ));
        rows.push(row);
    } else if let Some(why) = unmeasured {
        checks.push(Check::ratio(
            &label,
            "cache-miss ValidateSession ÷ pgbench -S -M prepared -c 8",
            None,
            Bound::AtLeast(PGBENCH_FLOOR),
            &why,
        ));
    }
    let queueing_check = Check::ratio(
        &label,
        "cache-miss CPU per call at 256 in flight ÷ at 8",
        queueing,
        Bound::AtMost(QUEUEING_CEILING),
        "per round",
    );
    checks.push(match server.backend {
        Backend::Sqlite => queueing_check,
        Backend::Postgres => Check {
            goal: "(reported)".into(),
            met: None,
            ..queueing_check
        },
    });
    rows.push(Row::rate(&label, "  at 8 in flight", at_8, ""));
    rows.push(Row::rate(&label, "  at 256 in flight", at_256, ""));
    rows.push(Row::rate(
        &label,
        "  in-process Sessions::validate, DB read",
        in_process,
        "no gRPC: the domain call alone, on the server's runtime",
    ));
    Ok(Outcome { rows, checks })
}

/// The domain's validation of `tokens` in-process, on the server's runtime.
async fn in_process(
    server: &BenchServer,
    driver: &Driver,
    options: &Options,
    tokens: &[String],
) -> Result<Vec<Window>> {
    throughput(
        &server.in_process(driver)?,
        options.concurrency,
        options.short,
        &validate_in_process(server, tokens)?,
    )
    .await
}

/// The median over rounds of `a`'s server CPU per call divided by `b`'s.
fn per_round_cpu_ratio(a: &[Window], b: &[Window]) -> Option<f64> {
    let ratios: Vec<f64> = a
        .iter()
        .zip(b)
        .filter_map(|(a, b)| {
            Some(a.server_cpu_per_call()?.as_secs_f64() / b.server_cpu_per_call()?.as_secs_f64())
        })
        .collect();
    (!ratios.is_empty()).then(|| percentile(&ratios, 0.5))
}

/// The share of validations the cache answered over the windows.
pub fn hit_share(windows: &[Window]) -> String {
    let (hits, misses) = windows
        .iter()
        .filter_map(|w| w.cache)
        .fold((0, 0), |(h, m), (hits, misses)| (h + hits, m + misses));
    format!(
        "{:.1}%",
        100.0 * hits as f64 / (hits + misses).max(1) as f64
    )
}
