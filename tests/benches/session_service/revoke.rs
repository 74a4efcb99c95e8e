//! Log-outs of many sessions at once, seeded in bulk: RevokeAllSessions of an account with
//! 100,000 sessions on 1,000 devices (the call, then until GetRevocation reports the sweep
//! complete), and RevokeSession of one device with 100,000 sessions (a flooded browser), with
//! the list pages of each account beside them.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use active_sessions_client::proto as pb;
use active_sessions_e2e::{
    bench_support::{TokenSeries, insert_rows},
    by_account,
};
use anyhow::{Context, Result, ensure};
use pb::session_service_client::SessionServiceClient;
use sea_orm::{ConnectionTrait as _, DbBackend};
use tonic::transport::Channel;

use crate::{
    Outcome,
    calls::register_template,
    load::latencies,
    options::Options,
    report::{Row, thousands},
    server::BenchServer,
    targets::Check,
};

const REVOKE_CALL: Duration = Duration::from_millis(20);
const REVOKE_COMPLETE: Duration = Duration::from_secs(5);
/// Sessions the server's sweep marks per transaction (`app::SWEEP_BATCH`).
const SWEEP_BATCH: usize = 5_000;
/// How often GetRevocation is asked whether the sweep is complete: often enough to time a sweep
/// of seconds to a percent, rarely enough that the polls take little of the CPU the sweep uses.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

pub async fn revoke_all(server: &BenchServer, options: &Options) -> Result<Outcome> {
    let sessions = options.revoke_sessions;
    let account = "revoke-all";
    let (channel, token, insert) = seed(server, account, sessions, |i| {
        format!("device-{}", i % 1_000)
    })
    .await?;
    let mut client = SessionServiceClient::new(channel.clone());
    let (big_list, big_note) = first_pages(&channel, account).await?;

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
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    let complete = call_started.elapsed();
    ensure!(
        usize::try_from(done.sessions_revoked) == Ok(sessions),
        "the revocation reports {} sessions revoked, expected {sessions}",
        done.sessions_revoked,
    );
    ensure!(
        !validates(&channel, token).await?,
        "a session still validates after log-out of all"
    );
    let (label, n) = (server.label(), thousands(sessions as f64));
    let checks = vec![
        Check::time(
            &label,
            &format!("RevokeAllSessions on {n} sessions: the call"),
            Some(call),
            REVOKE_CALL,
            true,
        ),
        Check::time(
            &label,
            &format!("RevokeAllSessions on {n} sessions: every session marked"),
            Some(complete),
            REVOKE_COMPLETE,
            true,
        ),
    ];
    let rows = vec![
        Row::single(
            &label,
            &format!("RevokeAllSessions on {n} sessions: the call"),
            call,
            "operator subject (account id); writes the cut-off and the revocation; the sweep counts the sessions",
        ),
        Row::single(
            &label,
            &format!("RevokeAllSessions on {n} sessions: until complete"),
            complete,
            &format!(
                "from the call's start to GetRevocation complete=true ({polls} polls, {} ms \
                 apart); background sweep of {} batches, {} sessions/s",
                POLL_INTERVAL.as_millis(),
                sessions.div_ceil(SWEEP_BATCH),
                thousands(sessions as f64 / (complete - call).as_secs_f64()),
            ),
        ),
        Row::latency(
            &label,
            &format!("  ListActiveSessions first page, {n} sessions / 1,000 devices"),
            big_list,
            &format!("operator subject; {big_note}"),
        ),
        insert_row(&label, sessions, insert),
    ];
    Ok(Outcome { rows, checks })
}

/// One device with `revoke_sessions` sessions (a flooded browser): the first page of rows, a
/// device's sessions page, and RevokeSession of the row.
pub async fn revoke_row(server: &BenchServer, options: &Options) -> Result<Outcome> {
    let sessions = options.revoke_sessions;
    let account = "revoke-row";
    let (channel, token, insert) = seed(server, account, sessions, |_| "bot".into()).await?;
    let mut client = SessionServiceClient::new(channel.clone());
    let (list, note) = first_pages(&channel, account).await?;
    let device_page = latencies(20, Duration::from_secs(10), || {
        let mut client = client.clone();
        async move {
            client
                .list_device_sessions(pb::ListDeviceSessionsRequest {
                    subject: Some(by_account(account)),
                    device_id: "bot".into(),
                    page_size: 100,
                    ..Default::default()
                })
                .await?;
            Ok(())
        }
    })
    .await?;
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
    ensure!(
        !validates(&channel, token).await?,
        "a session still validates after the row log-out"
    );
    let (label, n) = (server.label(), thousands(sessions as f64));
    let rows = vec![
        Row::latency(
            &label,
            &format!("ListActiveSessions first page, {n} sessions on one device"),
            list,
            &format!("operator subject; {note}"),
        ),
        Row::latency(
            &label,
            &format!("ListDeviceSessions first page, {n} sessions on one device"),
            device_page,
            "operator subject, 100 sessions a page",
        ),
        Row::single(
            &label,
            &format!("RevokeSession of a row of {n} sessions"),
            revoke,
            &format!(
                "one transaction: summary, then marked in keyset batches of 5,000 (PostgreSQL) \
                 or one statement (SQLite); response {} bytes",
                prost::Message::encoded_len(&result)
            ),
        ),
        insert_row(&label, sessions, insert),
    ];
    Ok(Outcome {
        rows,
        checks: Vec::new(),
    })
}

/// Registers one session of `account` through the API (which creates the account row), then
/// inserts `count - 1` more straight into the table, on `device(i)`, signed in 3 s apart
/// before it. Returns a connection, the registered session's token and the insert's time.
async fn seed(
    server: &BenchServer,
    account: &str,
    count: usize,
    device: impl Fn(usize) -> String,
) -> Result<(Channel, String, Duration)> {
    let channel = server.channels(1).await?.remove(0);
    let db = server.connect_database().await?;
    let (template, token) = register_template(&channel, &db, account, &device(0)).await?;
    let series = TokenSeries::new();
    let started = Instant::now();
    let copies = (1..count).map(|i| {
        let age = i64::try_from(count - i).unwrap_or(i64::MAX / 4_000_000) * 3_000_000;
        series.session(
            &template,
            i as u64,
            account.to_owned(),
            device(i),
            template.signed_in_at - age,
        )
    });
    insert_rows(&db, copies).await?;
    let insert = started.elapsed();
    if db.get_database_backend() == DbBackend::Postgres {
        // A fleet's rows are long vacuumed: without this the sweep would also pay every row's
        // first-touch hint-bit write, and race the autovacuum the bulk insert sets off.
        db.execute_unprepared("VACUUM (ANALYZE) sessions").await?;
    }
    db.close().await.ok();
    Ok((channel, token, insert))
}

fn insert_row(label: &str, sessions: usize, insert: Duration) -> Row {
    Row::single(
        label,
        &format!(
            "  setup: INSERT {} sessions",
            thousands((sessions - 1) as f64)
        ),
        insert,
        "own connection; multi-row INSERTs (bench_support::insert_rows)",
    )
}

/// 20 timings of the first page of `account`'s rows (operator subject), and what the last
/// page held.
async fn first_pages(channel: &Channel, account: &str) -> Result<(Vec<Duration>, String)> {
    let client = SessionServiceClient::new(channel.clone());
    let last = Mutex::new(String::new());
    let times = latencies(20, Duration::from_secs(30), || {
        let mut client = client.clone();
        let last = &last;
        async move {
            let page = client
                .list_active_sessions(pb::ListActiveSessionsRequest {
                    subject: Some(by_account(account)),
                    page_size: 100,
                    page_token: String::new(),
                    product: 0,
                })
                .await?
                .into_inner();
            *last.lock().map_err(|_| anyhow::anyhow!("poisoned"))? = format!(
                "{} rows, {} sessions shown of {}, response {} KiB",
                page.rows.len(),
                page.rows.iter().map(|r| r.sessions.len()).sum::<usize>(),
                page.rows.iter().map(|r| r.session_count).sum::<i64>(),
                prost::Message::encoded_len(&page) / 1024
            );
            Ok(())
        }
    })
    .await?;
    let note = last.into_inner().unwrap_or_default();
    Ok((times, note))
}

/// Whether `token` validates now.
async fn validates(channel: &Channel, token: String) -> Result<bool> {
    Ok(SessionServiceClient::new(channel.clone())
        .validate_session(pb::ValidateSessionRequest {
            session_token: token,
        })
        .await?
        .into_inner()
        .valid)
}
