//! Queries on `idempotency_records`: what a registration request id already produced.

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait as _, OnConflict},
};

use super::{StoreError, entity::idempotency_record};
use crate::{clock::Timestamp, domain::ids::SessionId};

/// A remembered registration.
#[derive(Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// SHA-256 of the request's canonical form.
    pub request_hash: [u8; 32],
    /// The session it created.
    pub session_id: SessionId,
    /// The session token, sealed (see `domain::token_seal`); empty once invalidated.
    pub sealed_token: Vec<u8>,
    /// When it may be forgotten.
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for IdempotencyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdempotencyRecord")
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

/// Finds the record of `(scope, request_id)` that has not expired.
#[tracing::instrument(name = "db.idempotency.find", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn find(
    conn: &impl ConnectionTrait,
    scope: &str,
    request_id: &str,
    now: Timestamp,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    let Some(model) =
        idempotency_record::Entity::find_by_id((scope.to_owned(), request_id.to_owned()))
            .one(conn)
            .await?
    else {
        return Ok(None);
    };
    if model.expires_at <= now.as_micros() {
        return Ok(None);
    }
    let corrupt = |what: &str| StoreError::corrupt("idempotency_records", what.to_owned());
    Ok(Some(IdempotencyRecord {
        request_hash: model
            .request_hash
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("request_hash"))?,
        session_id: SessionId::parse(&model.session_id).map_err(|_| corrupt("session_id"))?,
        sealed_token: model.sealed_token,
        expires_at: Timestamp::from_micros(model.expires_at),
    }))
}

/// A record to store, under its caller's scope and request id.
#[derive(Debug, Clone, Copy)]
pub struct NewRecord<'a> {
    /// The caller's scope.
    pub scope: &'a str,
    /// The caller's request id.
    pub request_id: &'a str,
    /// What the request produced.
    pub record: &'a IdempotencyRecord,
}

/// Stores records in one statement, each replacing an expired one with the same key.
/// [`StoreError::Conflict`] when a key still holds a live record (a concurrent registration with
/// the same request id stored it first).
#[tracing::instrument(name = "db.idempotency.insert", skip_all, fields(otel.kind = "client", rows = records.len(), { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn insert_many(
    conn: &impl ConnectionTrait,
    records: &[NewRecord<'_>],
    now: Timestamp,
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    use idempotency_record::{Column, Entity};
    let rows = records.iter().map(|new| idempotency_record::ActiveModel {
        scope: Set(new.scope.to_owned()),
        request_id: Set(new.request_id.to_owned()),
        request_hash: Set(new.record.request_hash.to_vec()),
        session_id: Set(new.record.session_id.to_string()),
        sealed_token: Set(new.record.sealed_token.clone()),
        created_at: Set(now.as_micros()),
        expires_at: Set(new.record.expires_at.as_micros()),
    });
    // Replace only an expired record; a live one is left alone, and not counted.
    let written = Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([Column::Scope, Column::RequestId])
                .update_columns([
                    Column::RequestHash,
                    Column::SessionId,
                    Column::SealedToken,
                    Column::CreatedAt,
                    Column::ExpiresAt,
                ])
                .action_and_where(Expr::col((Entity, Column::ExpiresAt)).lte(now.as_micros()))
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    if written < records.len() as u64 {
        return Err(StoreError::Conflict);
    }
    Ok(())
}

/// Forgets expired records; returns how many.
#[tracing::instrument(name = "db.idempotency.purge_expired", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn purge_expired(conn: &impl ConnectionTrait, now: Timestamp) -> Result<u64, StoreError> {
    Ok(idempotency_record::Entity::delete_many()
        .filter(idempotency_record::Column::ExpiresAt.lte(now.as_micros()))
        .exec(conn)
        .await?
        .rows_affected)
}
