//! The floor under RegisterSession's figures: the rows a registration of a new account writes
//! (the account, the session and the session's sign-in event), written straight through one
//! sea-orm connection in transactions of [`BATCH`], one multi-row INSERT per table, which is
//! how the server's group commit writes a full batch, and nothing else: no reads, no decision
//! under the account's lock, no enrichment, no token, no gRPC. It runs alone (the server idle),
//! in windows as long as the bench's. On SQLite, whose one writer the server's batches take in
//! turn, its rate bounds the server's at 32 calls in flight; on PostgreSQL, where batches of
//! several connections commit side by side, only its CPU is a floor. Its CPU per registration is
//! the whole bench process (statement building and binding on the calling thread, sqlx's
//! worker, SQLite itself), since nothing else runs; PostgreSQL's backends are read apart, as for
//! the server.

use std::time::{Duration, Instant};

use active_sessions_e2e::bench_support::TokenSeries;
use active_sessions_server::store::entity::{account, security_event, session};
use anyhow::{Context, Result};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter, TransactionTrait,
};
use tonic::transport::Channel;

use crate::{
    calls::register_template,
    load::Window,
    options::Schedule,
    probe::{Cpu, Probe, process_cpu},
    server::BenchServer,
};

/// Registrations per transaction: the bench's 32 calls in flight, all in one batch, the best
/// case of the server's group commit.
pub const BATCH: usize = 32;

/// One registration's rows, copied from those a real registration wrote.
struct Templates {
    account: account::Model,
    session: session::Model,
    event: security_event::Model,
    series: TokenSeries,
}

impl Templates {
    async fn read(channel: &Channel, db: &DatabaseConnection) -> Result<Self> {
        let (session, _) = register_template(channel, db, "floor-template", "floor-device").await?;
        let account = account::Entity::find_by_id(session.account_id.clone())
            .one(db)
            .await?
            .context("the template's account row")?;
        let event = security_event::Entity::find()
            .filter(security_event::Column::SessionId.eq(session.session_id.clone()))
            .one(db)
            .await?
            .context("the template's sign-in event")?;
        Ok(Self {
            account,
            session,
            event,
            series: TokenSeries::new(),
        })
    }

    /// Event `i`'s id: a ULID of the template's instant whose randomness is `i` with its top
    /// bit set, a different id for every `i`.
    fn event_id(&self, i: u64) -> String {
        let millis = u64::try_from(self.event.occurred_at / 1_000).unwrap_or(0);
        ulid::Ulid::from_parts(millis, (1 << 79) | u128::from(i)).to_string()
    }

    /// Writes registrations `first..first + BATCH` in one transaction.
    async fn write_batch(&self, db: &DatabaseConnection, first: u64) -> Result<()> {
        let mut accounts = Vec::with_capacity(BATCH);
        let mut sessions = Vec::with_capacity(BATCH);
        let mut events = Vec::with_capacity(BATCH);
        for i in first..first + BATCH as u64 {
            let account_id = format!("floor-{i}");
            let session = self.series.session(
                &self.session,
                i,
                account_id.clone(),
                format!("device-{i}"),
                self.session.signed_in_at,
            );
            events.push(
                security_event::Model {
                    event_id: self.event_id(i),
                    account_id: account_id.clone(),
                    session_id: Some(session.session_id.clone()),
                    device_id: Some(session.device_id.clone()),
                    ..self.event.clone()
                }
                .into_active_model(),
            );
            sessions.push(session.into_active_model());
            accounts.push(
                account::Model {
                    account_id,
                    ..self.account.clone()
                }
                .into_active_model(),
            );
        }
        let txn = db.begin().await?;
        account::Entity::insert_many(accounts)
            .exec_without_returning(&txn)
            .await?;
        session::Entity::insert_many(sessions)
            .exec_without_returning(&txn)
            .await?;
        security_event::Entity::insert_many(events)
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Writes batches from registration `next` on until `length` has passed; returns how many
    /// registrations it wrote.
    async fn write_for(
        &self,
        db: &DatabaseConnection,
        next: &mut u64,
        length: Duration,
    ) -> Result<u64> {
        let started = Instant::now();
        let mut written = 0;
        while started.elapsed() < length {
            self.write_batch(db, *next).await?;
            *next += BATCH as u64;
            written += BATCH as u64;
        }
        Ok(written)
    }
}

/// The windows of writing registrations' rows alone, after a warm-up, on a connection of its
/// own (closed at the end).
pub async fn rows_alone(
    server: &BenchServer,
    channel: &Channel,
    schedule: Schedule,
    probe: &Probe,
) -> Result<Vec<Window>> {
    let db = server.connect_database().await?;
    let templates = Templates::read(channel, &db).await?;
    let mut next = 0;
    templates.write_for(&db, &mut next, schedule.warmup).await?;
    let mut windows = Vec::with_capacity(schedule.windows);
    for _ in 0..schedule.windows {
        let (cpu_before, database_before) = (process_cpu(), probe.sample());
        let started = Instant::now();
        let calls = templates.write_for(&db, &mut next, schedule.window).await?;
        let elapsed = started.elapsed();
        let database = probe.sample().since(&database_before);
        windows.push(Window {
            calls,
            elapsed,
            cpu: Cpu {
                server: process_cpu().saturating_sub(cpu_before),
                ..database
            },
            ..Window::default()
        });
    }
    db.close().await.ok();
    Ok(windows)
}
