//! Queries on `idempotency_records`: what a registration request id already produced.

use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

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

/// Stores a record, replacing an expired one with the same key.
#[tracing::instrument(name = "db.idempotency.insert", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn insert(
    conn: &impl ConnectionTrait,
    scope: &str,
    request_id: &str,
    record: &IdempotencyRecord,
    now: Timestamp,
) -> Result<(), StoreError> {
    idempotency_record::Entity::delete_many()
        .filter(idempotency_record::Column::Scope.eq(scope))
        .filter(idempotency_record::Column::RequestId.eq(request_id))
        .filter(idempotency_record::Column::ExpiresAt.lte(now.as_micros()))
        .exec(conn)
        .await?;
    idempotency_record::Entity::insert(idempotency_record::ActiveModel {
        scope: Set(scope.to_owned()),
        request_id: Set(request_id.to_owned()),
        request_hash: Set(record.request_hash.to_vec()),
        session_id: Set(record.session_id.to_string()),
        sealed_token: Set(record.sealed_token.clone()),
        created_at: Set(now.as_micros()),
        expires_at: Set(record.expires_at.as_micros()),
    })
    .exec(conn)
    .await?;
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
