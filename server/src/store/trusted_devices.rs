//! Queries on `trusted_devices`: one row per (account, device); trust counts only until
//! `trusted_until`.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Select};

use super::{StoreError, entity::trusted_device};
use crate::{
    clock::Timestamp,
    domain::ids::{AccountId, DeviceId},
};

/// The devices among `devices` that the account trusts at `now`.
#[tracing::instrument(name = "db.trusted_devices.trusted_among", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn trusted_among(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    devices: &[DeviceId],
    now: Timestamp,
) -> Result<Vec<DeviceId>, StoreError> {
    if devices.is_empty() {
        return Ok(Vec::new());
    }
    let select = trusted_device::Entity::find()
        .filter(trusted_device::Column::AccountId.eq(account_id.as_str()))
        .filter(trusted_device::Column::DeviceId.is_in(devices.iter().map(DeviceId::as_str)))
        .filter(trusted_device::Column::TrustedUntil.gt(now.as_micros()));
    device_ids(conn, select).await
}

/// The devices of the trust records `select` finds.
async fn device_ids(
    conn: &impl ConnectionTrait,
    select: Select<trusted_device::Entity>,
) -> Result<Vec<DeviceId>, StoreError> {
    Ok(select
        .select_only()
        .column(trusted_device::Column::DeviceId)
        .into_tuple::<String>()
        .all(conn)
        .await?
        .into_iter()
        .map(DeviceId::from_stored)
        .collect())
}

/// Removes the account's trust in one device; true when a trust in force was removed.
#[tracing::instrument(name = "db.trusted_devices.remove", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn remove(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    device_id: &DeviceId,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let in_force = !trusted_among(conn, account_id, std::slice::from_ref(device_id), now)
        .await?
        .is_empty();
    trusted_device::Entity::delete_many()
        .filter(trusted_device::Column::AccountId.eq(account_id.as_str()))
        .filter(trusted_device::Column::DeviceId.eq(device_id.as_str()))
        .exec(conn)
        .await?;
    Ok(in_force)
}

/// Removes every trusted device of the account; returns the devices whose trust was in force.
#[tracing::instrument(name = "db.trusted_devices.remove_all", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn remove_all(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    now: Timestamp,
) -> Result<Vec<DeviceId>, StoreError> {
    let in_force = trusted_device::Entity::find()
        .filter(trusted_device::Column::AccountId.eq(account_id.as_str()))
        .filter(trusted_device::Column::TrustedUntil.gt(now.as_micros()));
    let in_force = device_ids(conn, in_force).await?;
    trusted_device::Entity::delete_many()
        .filter(trusted_device::Column::AccountId.eq(account_id.as_str()))
        .exec(conn)
        .await?;
    Ok(in_force)
}

/// A stored trust record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustRecord {
    /// The account.
    pub account_id: AccountId,
    /// The device.
    pub device_id: DeviceId,
    /// How it was verified (stored form).
    pub method: String,
    /// Through which product (stored form).
    pub product: String,
    /// First trusted (kept across renewals).
    pub trusted_since: Timestamp,
    /// Last renewed.
    pub renewed_at: Timestamp,
    /// Expiry.
    pub trusted_until: Timestamp,
}

fn record(model: trusted_device::Model) -> TrustRecord {
    TrustRecord {
        account_id: AccountId::from_stored(model.account_id),
        device_id: DeviceId::from_stored(model.device_id),
        method: model.method,
        product: model.product,
        trusted_since: Timestamp::from_micros(model.trusted_since),
        renewed_at: Timestamp::from_micros(model.renewed_at),
        trusted_until: Timestamp::from_micros(model.trusted_until),
    }
}

/// The trust record of one device, expired or not: one primary-key read.
#[tracing::instrument(name = "db.trusted_devices.find", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn find(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    device_id: &DeviceId,
) -> Result<Option<TrustRecord>, StoreError> {
    Ok(trusted_device::Entity::find_by_id((
        account_id.as_str().to_owned(),
        device_id.as_str().to_owned(),
    ))
    .one(conn)
    .await?
    .map(record))
}

/// Writes a trust record, replacing the device's previous one.
#[tracing::instrument(name = "db.trusted_devices.save", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn save(conn: &impl ConnectionTrait, trust: &TrustRecord) -> Result<(), StoreError> {
    use sea_orm::ActiveValue::Set;
    trusted_device::Entity::delete_many()
        .filter(trusted_device::Column::AccountId.eq(trust.account_id.as_str()))
        .filter(trusted_device::Column::DeviceId.eq(trust.device_id.as_str()))
        .exec(conn)
        .await?;
    trusted_device::Entity::insert(trusted_device::ActiveModel {
        account_id: Set(trust.account_id.as_str().to_owned()),
        device_id: Set(trust.device_id.as_str().to_owned()),
        method: Set(trust.method.clone()),
        product: Set(trust.product.clone()),
        trusted_since: Set(trust.trusted_since.as_micros()),
        renewed_at: Set(trust.renewed_at.as_micros()),
        trusted_until: Set(trust.trusted_until.as_micros()),
    })
    .exec(conn)
    .await?;
    Ok(())
}

/// Up to `limit` trust records in force at `now`, most recently trusted first (ties by device
/// id), after the keyset position `after`.
#[tracing::instrument(name = "db.trusted_devices.list_in_force", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn list_in_force(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    now: Timestamp,
    after: Option<(i64, String)>,
    limit: u64,
) -> Result<Vec<TrustRecord>, StoreError> {
    use sea_orm::{Condition, QueryOrder};
    let mut query = trusted_device::Entity::find()
        .filter(trusted_device::Column::AccountId.eq(account_id.as_str()))
        .filter(trusted_device::Column::TrustedUntil.gt(now.as_micros()));
    if let Some((since, device)) = after {
        query = query.filter(
            Condition::any()
                .add(trusted_device::Column::TrustedSince.lt(since))
                .add(
                    Condition::all()
                        .add(trusted_device::Column::TrustedSince.eq(since))
                        .add(trusted_device::Column::DeviceId.gt(device)),
                ),
        );
    }
    Ok(query
        .order_by_desc(trusted_device::Column::TrustedSince)
        .order_by_asc(trusted_device::Column::DeviceId)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(record)
        .collect())
}
