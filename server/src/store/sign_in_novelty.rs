//! What is new about a sign-in for its account: whether the account had sessions before, and
//! whether this device and this country were seen on it. One statement answers all three (the
//! Active sessions page marks a new device or country), a constant per engine.

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use super::StoreError;
use crate::domain::ids::{AccountId, DeviceId};

/// What is new about a sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Novelty {
    /// The account had sessions before, and none on this device.
    pub new_device: bool,
    /// The account had sessions before, and none from this country (false when the country is
    /// unknown).
    pub new_country: bool,
}

macro_rules! novelty_sql {
    ($account:literal, $device:literal, $country:literal) => {
        concat!(
            "SELECT EXISTS (SELECT 1 FROM sessions WHERE account_id = ",
            $account,
            "), EXISTS (SELECT 1 FROM sessions WHERE account_id = ",
            $account,
            " AND device_id = ",
            $device,
            "), EXISTS (SELECT 1 FROM sessions WHERE account_id = ",
            $account,
            " AND country_code = ",
            $country,
            ")"
        )
    };
}

/// Reads what is new about a sign-in of `device_id` from `country_code` on the account.
#[tracing::instrument(name = "db.sessions.sign_in_novelty", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn novelty(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    device_id: &DeviceId,
    country_code: Option<&str>,
) -> Result<Novelty, StoreError> {
    let backend = conn.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => novelty_sql!("$1", "$2", "$3"),
        _ => novelty_sql!("?1", "?2", "?3"),
    };
    let statement = Statement::from_sql_and_values(
        backend,
        sql,
        [
            account_id.as_str().into(),
            device_id.as_str().into(),
            country_code.map(str::to_owned).into(),
        ],
    );
    let Some(row) = conn.query_one_raw(statement).await? else {
        return Err(StoreError::corrupt("sessions", "EXISTS returned no row"));
    };
    let earlier = row.try_get_by_index::<bool>(0)?;
    Ok(Novelty {
        new_device: earlier && !row.try_get_by_index::<bool>(1)?,
        new_country: earlier && country_code.is_some() && !row.try_get_by_index::<bool>(2)?,
    })
}
