//! Queries on `accounts`. An account row is created on first sight (by a registration or the
//! identity system); reads of an unknown account return `None` rather than creating it.

use std::collections::HashMap;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::OnConflict,
};

use super::{StoreError, entity::account};
use crate::{
    clock::Timestamp,
    domain::{
        account::{Account, SsoLink, SsoProtocol, WorkspaceType},
        ids::{AccountId, OrganizationId},
    },
};

/// Reads an account.
#[tracing::instrument(name = "db.accounts.find", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn find(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
) -> Result<Option<Account>, StoreError> {
    account::Entity::find_by_id(account_id.as_str())
        .one(conn)
        .await?
        .map(into_domain)
        .transpose()
}

/// Reads and locks an existing account inside a write transaction (PostgreSQL row lock).
#[tracing::instrument(name = "db.accounts.lock", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn lock(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
) -> Result<Option<Account>, StoreError> {
    account::Entity::find_by_id(account_id.as_str())
        .lock_exclusive()
        .one(conn)
        .await?
        .map(into_domain)
        .transpose()
}

/// Reads an account inside a write transaction, creating it if it does not exist, and locks its
/// row until the transaction ends (PostgreSQL; SQLite has a single writer anyway). Commands that
/// change an account's sessions take this lock first, so that they serialise per account.
#[tracing::instrument(name = "db.accounts.lock_or_create", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn lock_or_create(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    now: Timestamp,
) -> Result<Account, StoreError> {
    // One statement creates the row or, when it exists, locks it (a conflict's no-op update
    // takes the row lock) and returns it as committed: a round trip fewer than insert-then-lock
    // on every registration.
    let model = account::Entity::insert(new_row(account_id, now))
        .on_conflict(lock_on_conflict())
        .exec_with_returning(conn)
        .await?;
    into_domain(model)
}

/// [`lock_or_create`] for several accounts in one statement (no account twice), locking them
/// in the order given. Returns them by id.
#[tracing::instrument(name = "db.accounts.lock_or_create", skip_all, fields(otel.kind = "client", rows = account_ids.len(), { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn lock_or_create_many(
    conn: &impl ConnectionTrait,
    account_ids: &[&AccountId],
    now: Timestamp,
) -> Result<HashMap<AccountId, Account>, StoreError> {
    if account_ids.is_empty() {
        return Ok(HashMap::new());
    }
    account::Entity::insert_many(account_ids.iter().map(|id| new_row(id, now)))
        .on_conflict(lock_on_conflict())
        .exec_with_returning(conn)
        .await?
        .into_iter()
        .map(|model| into_domain(model).map(|account| (account.account_id.clone(), account)))
        .collect()
}

/// A new account's row: unknown workspace, never logged out of all.
fn new_row(account_id: &AccountId, now: Timestamp) -> account::ActiveModel {
    account::ActiveModel {
        account_id: Set(account_id.as_str().to_owned()),
        workspace_type: Set(WorkspaceType::Unknown.as_str().to_owned()),
        sso_protocol: Set(None),
        sso_organization_id: Set(None),
        sso_linked_at: Set(None),
        revoked_before: Set(None),
        revoked_generation: Set(0),
        disabled_at: Set(None),
        deleted_at: Set(None),
        hidden_cut_generation: Set(0),
        created_at: Set(now.as_micros()),
        updated_at: Set(now.as_micros()),
    }
}

/// On an existing account, a no-op update: it takes the row lock and returns the row.
fn lock_on_conflict() -> OnConflict {
    OnConflict::column(account::Column::AccountId)
        .update_column(account::Column::AccountId)
        .to_owned()
}

/// Writes every field of an account that already exists.
#[tracing::instrument(name = "db.accounts.update", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn update(conn: &impl ConnectionTrait, account: &Account) -> Result<(), StoreError> {
    let link = account.sso_link.as_ref();
    account::Entity::update(account::ActiveModel {
        account_id: Set(account.account_id.as_str().to_owned()),
        workspace_type: Set(account.workspace_type.as_str().to_owned()),
        sso_protocol: Set(link.map(|link| link.protocol.as_str().to_owned())),
        sso_organization_id: Set(link.map(|link| link.organization_id.as_str().to_owned())),
        sso_linked_at: Set(link.map(|link| link.linked_at.as_micros())),
        revoked_before: Set(account.revoked_before.map(Timestamp::as_micros)),
        revoked_generation: Set(account.revoked_generation),
        disabled_at: Set(account.disabled_at.map(Timestamp::as_micros)),
        deleted_at: Set(account.deleted_at.map(Timestamp::as_micros)),
        hidden_cut_generation: Set(account.hidden_cut_generation),
        created_at: Set(account.created_at.as_micros()),
        updated_at: Set(account.updated_at.as_micros()),
    })
    .exec(conn)
    .await?;
    Ok(())
}

fn into_domain(model: account::Model) -> Result<Account, StoreError> {
    let workspace_type = WorkspaceType::from_stored(&model.workspace_type).ok_or_else(|| {
        StoreError::corrupt(
            "accounts",
            format!("workspace_type {}", model.workspace_type),
        )
    })?;
    let sso_link = match (model.sso_protocol, model.sso_organization_id) {
        (Some(protocol), Some(organization_id)) => Some(SsoLink {
            protocol: SsoProtocol::from_stored(&protocol).ok_or_else(|| {
                StoreError::corrupt("accounts", format!("sso_protocol {protocol}"))
            })?,
            organization_id: OrganizationId::from_stored(organization_id),
            linked_at: Timestamp::from_micros(model.sso_linked_at.unwrap_or(model.updated_at)),
        }),
        _ => None,
    };
    Ok(Account {
        account_id: AccountId::from_stored(model.account_id),
        workspace_type,
        sso_link,
        revoked_before: model.revoked_before.map(Timestamp::from_micros),
        revoked_generation: model.revoked_generation,
        hidden_cut_generation: model.hidden_cut_generation,
        disabled_at: model.disabled_at.map(Timestamp::from_micros),
        deleted_at: model.deleted_at.map(Timestamp::from_micros),
        created_at: Timestamp::from_micros(model.created_at),
        updated_at: Timestamp::from_micros(model.updated_at),
    })
}

/// Deletes the account row (the last step of a deletion). Returns whether a row was deleted.
#[tracing::instrument(name = "db.accounts.delete", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn delete(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
) -> Result<bool, StoreError> {
    Ok(account::Entity::delete_by_id(account_id.as_str())
        .exec(conn)
        .await?
        .rows_affected
        > 0)
}

/// Up to `limit` accounts whose deletion began before `begun_before` and has not finished
/// (interrupted deletions to resume), oldest first.
#[tracing::instrument(name = "db.accounts.pending_deletions", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn pending_deletions(
    conn: &impl ConnectionTrait,
    begun_before: Timestamp,
    limit: u64,
) -> Result<Vec<AccountId>, StoreError> {
    let ids: Vec<String> = account::Entity::find()
        .select_only()
        .column(account::Column::AccountId)
        .filter(account::Column::DeletedAt.lt(begun_before.as_micros()))
        .order_by_asc(account::Column::DeletedAt)
        .limit(limit)
        .into_tuple::<String>()
        .all(conn)
        .await?;
    Ok(ids.into_iter().map(AccountId::from_stored).collect())
}
