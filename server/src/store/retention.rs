//! The retention pruner's queries: each deletes at most `batch` rows that are past their
//! retention, picked through an index in key order, and returns how many it deleted; the
//! caller commits each batch on its own. Session rows are picked with `FOR UPDATE SKIP LOCKED`
//! on PostgreSQL, so the pruner never waits on a row a log-out, a sweep or a heartbeat holds
//! (and so can never be part of a deadlock); the revocation log is pruned as a prefix, never
//! past a log-out of all whose sweep is unfinished, and records how far it went.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
    sea_query::{Expr, LockBehavior, LockType},
};

use super::{
    StoreError,
    entity::{idempotency_record, revocation, revocation_log_head, security_event, session},
};
use crate::clock::Timestamp;

/// The PostgreSQL advisory lock key held (per transaction) by the replica that prunes
/// ("ac_prune" as a big-endian i64).
pub const PRUNER_LOCK_KEY: i64 = 0x6163_5f70_7275_6e65;

/// Takes the pruner's lock for the rest of the transaction: true when this replica may prune
/// now, false when another one is pruning (PostgreSQL; SQLite has one writer anyway).
pub async fn try_lock_pruner(conn: &impl ConnectionTrait) -> Result<bool, StoreError> {
    if conn.get_database_backend() != DbBackend::Postgres {
        return Ok(true);
    }
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_try_advisory_xact_lock($1) AS locked",
            [PRUNER_LOCK_KEY.into()],
        ))
        .await?;
    Ok(match row {
        Some(row) => row.try_get::<bool>("", "locked")?,
        None => false,
    })
}

/// Which ended sessions a pass deletes.
#[derive(Debug, Clone, Copy)]
pub enum Ended {
    /// Revoked before the cut-off.
    RevokedBefore,
    /// Past their absolute expiry before the cut-off (an idle session ends there at the latest).
    ExpiredBefore,
}

/// Deletes up to `batch` sessions that ended before `cutoff`, with the idempotency records
/// that point at them. An active session is never among them: a revoked or expired session
/// never becomes active again.
#[tracing::instrument(name = "db.retention.sessions", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn prune_sessions(
    conn: &impl ConnectionTrait,
    ended: Ended,
    cutoff: Timestamp,
    batch: u64,
) -> Result<u64, StoreError> {
    let column = match ended {
        Ended::RevokedBefore => session::Column::RevokedAt,
        Ended::ExpiredBefore => session::Column::ExpiresAt,
    };
    let ids: Vec<String> = session::Entity::find()
        .select_only()
        .column(session::Column::SessionId)
        .filter(column.lt(cutoff.as_micros()))
        .order_by_asc(column)
        .limit(batch.max(1))
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .into_tuple::<String>()
        .all(conn)
        .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    idempotency_record::Entity::delete_many()
        .filter(idempotency_record::Column::SessionId.is_in(ids.iter().map(String::as_str)))
        .exec(conn)
        .await?;
    Ok(session::Entity::delete_many()
        .filter(session::Column::SessionId.is_in(ids.iter().map(String::as_str)))
        .exec(conn)
        .await?
        .rows_affected)
}

/// How many sessions ended (revoked or expired) before `cutoff`.
pub async fn count_ended_sessions(
    conn: &impl ConnectionTrait,
    cutoff: Timestamp,
) -> Result<u64, StoreError> {
    Ok(session::Entity::find()
        .filter(
            sea_orm::Condition::any()
                .add(session::Column::RevokedAt.lt(cutoff.as_micros()))
                .add(session::Column::ExpiresAt.lt(cutoff.as_micros())),
        )
        .count(conn)
        .await?)
}

/// Deletes up to `batch` security events that occurred before `cutoff`, oldest first (index
/// `security_events_occurred_at_idx`).
#[tracing::instrument(name = "db.retention.security_events", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn prune_security_events(
    conn: &impl ConnectionTrait,
    cutoff: Timestamp,
    batch: u64,
) -> Result<u64, StoreError> {
    let ids: Vec<String> = security_event::Entity::find()
        .select_only()
        .column(security_event::Column::EventId)
        .filter(security_event::Column::OccurredAt.lt(cutoff.as_micros()))
        .order_by_asc(security_event::Column::OccurredAt)
        .limit(batch.max(1))
        .into_tuple::<String>()
        .all(conn)
        .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(security_event::Entity::delete_many()
        .filter(security_event::Column::EventId.is_in(ids.iter().map(String::as_str)))
        .exec(conn)
        .await?
        .rows_affected)
}

/// How many security events occurred before `cutoff`.
pub async fn count_security_events(
    conn: &impl ConnectionTrait,
    cutoff: Timestamp,
) -> Result<u64, StoreError> {
    Ok(security_event::Entity::find()
        .filter(security_event::Column::OccurredAt.lt(cutoff.as_micros()))
        .count(conn)
        .await?)
}

/// Deletes up to `batch` revocations from the start of the log: those that took effect before
/// `cutoff` and are complete, stopping at the first that is not; then records the position
/// reached in `revocation_log_head.pruned_through`.
#[tracing::instrument(name = "db.retention.revocations", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn prune_revocation_log(
    conn: &impl ConnectionTrait,
    cutoff: Timestamp,
    batch: u64,
) -> Result<u64, StoreError> {
    let oldest: Vec<(i64, i64, Option<i64>)> = revocation::Entity::find()
        .select_only()
        .column(revocation::Column::Seq)
        .column(revocation::Column::EffectiveAt)
        .column(revocation::Column::CompletedAt)
        .order_by_asc(revocation::Column::Seq)
        .limit(batch.max(1))
        .into_tuple()
        .all(conn)
        .await?;
    let Some(through) = oldest
        .iter()
        .take_while(|(_, effective_at, completed_at)| {
            *effective_at < cutoff.as_micros() && completed_at.is_some()
        })
        .map(|(seq, _, _)| *seq)
        .last()
    else {
        return Ok(0);
    };
    let deleted = revocation::Entity::delete_many()
        .filter(revocation::Column::Seq.lte(through))
        .exec(conn)
        .await?
        .rows_affected;
    revocation_log_head::Entity::update_many()
        .col_expr(
            revocation_log_head::Column::PrunedThrough,
            Expr::value(through),
        )
        .filter(revocation_log_head::Column::Id.eq(1))
        .filter(revocation_log_head::Column::PrunedThrough.lt(through))
        .exec(conn)
        .await?;
    Ok(deleted)
}

/// How many revocations took effect before `cutoff` (an upper bound of what pruning the log
/// would delete: it stops at an unfinished sweep).
pub async fn count_revocations(
    conn: &impl ConnectionTrait,
    cutoff: Timestamp,
) -> Result<u64, StoreError> {
    Ok(revocation::Entity::find()
        .filter(revocation::Column::EffectiveAt.lt(cutoff.as_micros()))
        .count(conn)
        .await?)
}
