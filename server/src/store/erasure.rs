//! Erasing one account's rows for DeleteAccount, in bounded batches: each function deletes at
//! most `batch` rows of one table in key order (picked, locked in that order, then deleted by
//! key range, so no statement binds a parameter per row) and returns how many it deleted; the
//! caller commits each batch on its own, so no transaction holds the whole account.

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Query,
};

use super::{
    StoreError,
    entity::{idempotency_record, revocation, security_event, session, trusted_device},
};
use crate::domain::ids::{AccountId, RevocationId};
use crate::domain::stored::StoredEnum as _;

/// The first and last key of the account's next batch of up to `batch` rows of `E`, in key
/// order, locked (where the engine locks rows) when `lock`; `None` when none are left.
async fn next_key_range<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    (account, key): (E::Column, E::Column),
    account_id: &AccountId,
    batch: u64,
    lock: bool,
) -> Result<Option<(String, String)>, StoreError> {
    let mut pick = E::find()
        .select_only()
        .column(key)
        .filter(account.eq(account_id.as_str()))
        .order_by_asc(key)
        .limit(batch.max(1));
    if lock {
        pick = pick.lock_exclusive();
    }
    let keys: Vec<String> = pick.into_tuple::<String>().all(conn).await?;
    Ok(keys.first().cloned().zip(keys.last().cloned()))
}

/// Deletes the account's rows of `E` whose key is in `first..=last`.
async fn delete_key_range<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    (account, key): (E::Column, E::Column),
    account_id: &AccountId,
    (first, last): (String, String),
) -> Result<u64, StoreError> {
    Ok(E::delete_many()
        .filter(account.eq(account_id.as_str()))
        .filter(key.gte(first))
        .filter(key.lte(last))
        .exec(conn)
        .await?
        .rows_affected)
}

/// Deletes up to `batch` of the account's sessions, lowest ids first, with the idempotency
/// records that point at them.
#[tracing::instrument(name = "db.erasure.sessions", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn sessions(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    batch: u64,
) -> Result<u64, StoreError> {
    let columns = (session::Column::AccountId, session::Column::SessionId);
    let Some((first, last)) =
        next_key_range::<session::Entity>(conn, columns, account_id, batch, true).await?
    else {
        return Ok(0);
    };
    let in_range = || {
        Condition::all()
            .add(session::Column::AccountId.eq(account_id.as_str()))
            .add(session::Column::SessionId.gte(first.as_str()))
            .add(session::Column::SessionId.lte(last.as_str()))
    };
    idempotency_record::Entity::delete_many()
        .filter(
            idempotency_record::Column::SessionId.in_subquery(
                Query::select()
                    .column(session::Column::SessionId)
                    .from(session::Entity)
                    .cond_where(in_range())
                    .to_owned(),
            ),
        )
        .exec(conn)
        .await?;
    Ok(session::Entity::delete_many()
        .filter(in_range())
        .exec(conn)
        .await?
        .rows_affected)
}

/// Deletes up to `batch` of the account's trusted devices, in device-id order.
#[tracing::instrument(name = "db.erasure.trusted_devices", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn trusted_devices(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    batch: u64,
) -> Result<u64, StoreError> {
    let columns = (
        trusted_device::Column::AccountId,
        trusted_device::Column::DeviceId,
    );
    match next_key_range::<trusted_device::Entity>(conn, columns, account_id, batch, true).await? {
        Some(range) => {
            delete_key_range::<trusted_device::Entity>(conn, columns, account_id, range).await
        }
        None => Ok(0),
    }
}

/// Deletes up to `batch` of the account's security events, oldest first.
#[tracing::instrument(name = "db.erasure.security_events", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn security_events(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    batch: u64,
) -> Result<u64, StoreError> {
    let columns = (
        security_event::Column::AccountId,
        security_event::Column::EventId,
    );
    match next_key_range::<security_event::Entity>(conn, columns, account_id, batch, false).await? {
        Some(range) => {
            delete_key_range::<security_event::Entity>(conn, columns, account_id, range).await
        }
        None => Ok(0),
    }
}

/// Deletes up to `batch` of the account's revocations other than `keep` (the deletion's own,
/// which stays on the stream), in log order. A stream that had not read them yet loses
/// nothing: the kept revocation comes later in the log and covers every session they did.
#[tracing::instrument(name = "db.erasure.revocations", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn revocations(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    keep: Option<RevocationId>,
    batch: u64,
) -> Result<u64, StoreError> {
    let keep = keep.map(|id| id.to_string()).unwrap_or_default();
    let seqs: Vec<i64> = revocation::Entity::find()
        .select_only()
        .column(revocation::Column::Seq)
        .filter(revocation::Column::AccountId.eq(account_id.as_str()))
        .filter(revocation::Column::RevocationId.ne(keep.as_str()))
        .order_by_asc(revocation::Column::Seq)
        .limit(batch.max(1))
        .into_tuple::<i64>()
        .all(conn)
        .await?;
    let (Some(first), Some(last)) = (seqs.first(), seqs.last()) else {
        return Ok(0);
    };
    Ok(revocation::Entity::delete_many()
        .filter(revocation::Column::AccountId.eq(account_id.as_str()))
        .filter(revocation::Column::RevocationId.ne(keep.as_str()))
        .filter(revocation::Column::Seq.gte(*first))
        .filter(revocation::Column::Seq.lte(*last))
        .exec(conn)
        .await?
        .rows_affected)
}

/// The account's latest revocation with reason ACCOUNT_DELETED: the one a resumed deletion
/// leaves on the stream.
pub async fn deletion_revocation(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
) -> Result<Option<RevocationId>, StoreError> {
    let id: Option<String> = revocation::Entity::find()
        .select_only()
        .column(revocation::Column::RevocationId)
        .filter(revocation::Column::AccountId.eq(account_id.as_str()))
        .filter(
            revocation::Column::Reason
                .eq(crate::domain::session::RevocationReason::AccountDeleted.as_str()),
        )
        .order_by_desc(revocation::Column::Seq)
        .limit(1)
        .into_tuple::<String>()
        .one(conn)
        .await?;
    id.map(|id| {
        RevocationId::parse(&id)
            .map_err(|_| StoreError::corrupt("revocations", format!("revocation_id {id:?}")))
    })
    .transpose()
}
