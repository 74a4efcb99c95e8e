//! Queries on `trusted_devices`: one row per (account, device); trust counts only until
//! `trusted_until`.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

use super::{StoreError, entity::trusted_device};
use crate::{
    clock::Timestamp,
    domain::ids::{AccountId, DeviceId},
};

/// The devices among `devices` that the account trusts at `now`.
pub async fn trusted_among(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    devices: &[DeviceId],
    now: Timestamp,
) -> Result<Vec<DeviceId>, StoreError> {
    if devices.is_empty() {
        return Ok(Vec::new());
    }
    Ok(trusted_device::Entity::find()
        .select_only()
        .column(trusted_device::Column::DeviceId)
        .filter(trusted_device::Column::AccountId.eq(account_id.as_str()))
        .filter(trusted_device::Column::DeviceId.is_in(devices.iter().map(DeviceId::as_str)))
        .filter(trusted_device::Column::TrustedUntil.gt(now.as_micros()))
        .into_tuple::<String>()
        .all(conn)
        .await?
        .into_iter()
        .map(DeviceId::from_stored)
        .collect())
}

/// Removes the account's trust in one device; true when a trust in force was removed.
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
pub async fn remove_all(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    now: Timestamp,
) -> Result<Vec<DeviceId>, StoreError> {
    let in_force: Vec<DeviceId> = trusted_device::Entity::find()
        .select_only()
        .column(trusted_device::Column::DeviceId)
        .filter(trusted_device::Column::AccountId.eq(account_id.as_str()))
        .filter(trusted_device::Column::TrustedUntil.gt(now.as_micros()))
        .into_tuple::<String>()
        .all(conn)
        .await?
        .into_iter()
        .map(DeviceId::from_stored)
        .collect();
    trusted_device::Entity::delete_many()
        .filter(trusted_device::Column::AccountId.eq(account_id.as_str()))
        .exec(conn)
        .await?;
    Ok(in_force)
}
