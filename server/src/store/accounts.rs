//! Queries on `accounts`. An account row is created on first sight (by a registration or the
//! identity system); reads of an unknown account return `None` rather than creating it.

use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, QuerySelect};

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
    account::Entity::insert(account::ActiveModel {
        account_id: Set(account_id.as_str().to_owned()),
        workspace_type: Set(WorkspaceType::Unknown.as_str().to_owned()),
        sso_protocol: Set(None),
        sso_organization_id: Set(None),
        sso_linked_at: Set(None),
        revoked_before: Set(None),
        revoked_generation: Set(0),
        created_at: Set(now.as_micros()),
        updated_at: Set(now.as_micros()),
    })
    .on_conflict_do_nothing()
    .exec(conn)
    .await?;
    let model = account::Entity::find_by_id(account_id.as_str())
        .lock_exclusive()
        .one(conn)
        .await?
        .ok_or_else(|| StoreError::corrupt("accounts", "row vanished after insert"))?;
    into_domain(model)
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
        created_at: Timestamp::from_micros(model.created_at),
        updated_at: Timestamp::from_micros(model.updated_at),
    })
}
