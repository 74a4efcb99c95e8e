//! The revocation log: append in commit order, read by id, read after a position, and record
//! the sweep's progress.

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait},
};

use super::{
    StoreError,
    entity::{revocation, revocation_log_head},
    query::{all_into, one_into},
};
use crate::domain::stored::StoredEnum as _;
use crate::{
    clock::Timestamp,
    domain::{
        ids::{AccountId, DeviceId, RevocationId, SessionId},
        revocation::{Revocation, RevocationScope},
        session::{Product, RevocationReason},
    },
};

/// Takes the next log position. Must run inside the revoking transaction: the update locks the
/// single head row until commit, so positions are handed out in commit order.
#[tracing::instrument(name = "db.revocations.next_seq", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn next_seq(conn: &impl ConnectionTrait) -> Result<i64, StoreError> {
    revocation_log_head::Entity::update_many()
        .col_expr(
            revocation_log_head::Column::LastSeq,
            Expr::col(revocation_log_head::Column::LastSeq).add(1),
        )
        .filter(revocation_log_head::Column::Id.eq(1))
        .exec(conn)
        .await?;
    head(conn).await
}

/// The latest position handed out.
pub async fn head(conn: &impl ConnectionTrait) -> Result<i64, StoreError> {
    Ok(head_row(conn).await?.last_seq)
}

/// The log position up to which the pruner deleted the log (0 when never pruned): a stream
/// cursor below it cannot resume.
pub async fn pruned_through(conn: &impl ConnectionTrait) -> Result<i64, StoreError> {
    Ok(head_row(conn).await?.pruned_through)
}

/// The single `revocation_log_head` row.
async fn head_row(conn: &impl ConnectionTrait) -> Result<revocation_log_head::Model, StoreError> {
    revocation_log_head::Entity::find_by_id(1)
        .one(conn)
        .await?
        .ok_or_else(|| StoreError::corrupt("revocation_log_head", "missing row"))
}

/// The PostgreSQL channel on which committed revocations are announced to every replica.
pub const NOTIFY_CHANNEL: &str = "active_sessions_revocations";

/// Appends a revocation (its `seq` from [`next_seq`] in the same transaction). On PostgreSQL
/// the same transaction queues a NOTIFY, delivered to every listening replica at commit.
#[tracing::instrument(name = "db.revocations.insert", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn insert(
    conn: &impl ConnectionTrait,
    revocation: &Revocation,
) -> Result<(), StoreError> {
    revocation::Entity::insert(revocation::ActiveModel {
        revocation_id: Set(revocation.revocation_id.to_string()),
        seq: Set(revocation.seq),
        account_id: Set(revocation.account_id.to_string()),
        scope: Set(revocation.scope.as_str().to_owned()),
        reason: Set(revocation.reason.as_str().to_owned()),
        device_id: Set(revocation.device_id.as_ref().map(ToString::to_string)),
        session_ids: Set(join(revocation.session_ids.iter())),
        products: Set(join(revocation.products.iter().map(|p| p.as_str()))),
        effective_at: Set(revocation.effective_at.as_micros()),
        revoked_before: Set(revocation.revoked_before.map(Timestamp::as_micros)),
        cut_generation: Set(revocation.cut_generation),
        trust_removed: Set(revocation.trust_removed),
        sessions_revoked: Set(revocation.sessions_revoked),
        completed_at: Set(revocation.completed_at.map(Timestamp::as_micros)),
        actor: Set(revocation.actor.clone()),
        includes_hidden_kinds: Set(revocation.includes_hidden_kinds),
        kept_session_id: Set(revocation.kept_session_id.map(|id| id.to_string())),
    })
    .exec(conn)
    .await?;
    if conn.get_database_backend() == sea_orm::DbBackend::Postgres {
        conn.execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [NOTIFY_CHANNEL.into(), revocation.seq.to_string().into()],
        ))
        .await?;
    }
    Ok(())
}

/// Reads one revocation.
#[tracing::instrument(name = "db.revocations.find", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn find(
    conn: &impl ConnectionTrait,
    revocation_id: RevocationId,
) -> Result<Option<Revocation>, StoreError> {
    let select = revocation::Entity::find_by_id(revocation_id.to_string());
    one_into(conn, select, into_domain).await
}

/// Up to `limit` revocations after position `after`, in log order.
#[tracing::instrument(name = "db.revocations.after", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn after(
    conn: &impl ConnectionTrait,
    after: i64,
    limit: u64,
) -> Result<Vec<Revocation>, StoreError> {
    let select = revocation::Entity::find()
        .filter(revocation::Column::Seq.gt(after))
        .order_by_asc(revocation::Column::Seq)
        .limit(limit);
    all_into(conn, select, into_domain).await
}

/// Log-out-of-all revocations whose sweep has not finished, oldest first.
#[tracing::instrument(name = "db.revocations.unswept", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn unswept(conn: &impl ConnectionTrait) -> Result<Vec<Revocation>, StoreError> {
    let select = revocation::Entity::find()
        .filter(revocation::Column::Scope.eq(RevocationScope::All.as_str()))
        .filter(revocation::Column::CompletedAt.is_null())
        .order_by_asc(revocation::Column::Seq);
    all_into(conn, select, into_domain).await
}

/// Adds `swept` to the revocation's count, and marks it complete when `completed_at` is given;
/// returns the count so far.
#[tracing::instrument(name = "db.revocations.record_sweep", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn record_sweep(
    conn: &impl ConnectionTrait,
    revocation_id: RevocationId,
    swept: u64,
    completed_at: Option<Timestamp>,
) -> Result<i64, StoreError> {
    let swept = i64::try_from(swept).unwrap_or(i64::MAX);
    let mut update = revocation::Entity::update_many().col_expr(
        revocation::Column::SessionsRevoked,
        Expr::col(revocation::Column::SessionsRevoked).add(swept),
    );
    if let Some(at) = completed_at {
        update = update.col_expr(revocation::Column::CompletedAt, Expr::value(at.as_micros()));
    }
    update
        .filter(revocation::Column::RevocationId.eq(revocation_id.to_string()))
        .exec(conn)
        .await?;
    let total: Option<i64> = revocation::Entity::find_by_id(revocation_id.to_string())
        .select_only()
        .column(revocation::Column::SessionsRevoked)
        .into_tuple()
        .one(conn)
        .await?;
    Ok(total.unwrap_or(swept))
}

fn join<T: ToString>(items: impl Iterator<Item = T>) -> String {
    items
        .map(|item| item.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

fn into_domain(model: revocation::Model) -> Result<Revocation, StoreError> {
    let corrupt = |what: &str| {
        StoreError::corrupt("revocations", format!("{what} in {}", model.revocation_id))
    };
    Ok(Revocation {
        revocation_id: RevocationId::parse(&model.revocation_id)
            .map_err(|_| corrupt("revocation_id"))?,
        scope: RevocationScope::from_stored(&model.scope).ok_or_else(|| corrupt("scope"))?,
        reason: RevocationReason::from_stored(&model.reason).ok_or_else(|| corrupt("reason"))?,
        session_ids: model
            .session_ids
            .split_whitespace()
            .map(SessionId::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| corrupt("session_ids"))?,
        products: model
            .products
            .split_whitespace()
            .map(|p| Product::from_stored(p).ok_or_else(|| corrupt("products")))
            .collect::<Result<_, _>>()?,
        seq: model.seq,
        account_id: AccountId::from_stored(model.account_id),
        device_id: model.device_id.map(DeviceId::from_stored),
        effective_at: Timestamp::from_micros(model.effective_at),
        revoked_before: model.revoked_before.map(Timestamp::from_micros),
        cut_generation: model.cut_generation,
        trust_removed: model.trust_removed,
        sessions_revoked: model.sessions_revoked,
        completed_at: model.completed_at.map(Timestamp::from_micros),
        includes_hidden_kinds: model.includes_hidden_kinds,
        kept_session_id: model
            .kept_session_id
            .as_deref()
            .map(SessionId::parse)
            .transpose()
            .map_err(|_| corrupt("kept_session_id"))?,
        actor: model.actor,
    })
}
