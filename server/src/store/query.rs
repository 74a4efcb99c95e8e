//! The tails the store's queries share: run a select and read its rows into domain values with
//! the table's `into_domain`. They only execute what the caller built, so each query's SQL is
//! the caller's.

use sea_orm::{ConnectionTrait, EntityTrait, Select};

use super::StoreError;

/// Runs `select` and reads every row it returns with `into_domain`.
pub(super) async fn all_into<E: EntityTrait, T>(
    conn: &impl ConnectionTrait,
    select: Select<E>,
    into_domain: impl Fn(E::Model) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    select
        .all(conn)
        .await?
        .into_iter()
        .map(into_domain)
        .collect()
}

/// Runs `select` for one row and reads it, if there is one, with `into_domain`.
pub(super) async fn one_into<E: EntityTrait, T>(
    conn: &impl ConnectionTrait,
    select: Select<E>,
    into_domain: impl Fn(E::Model) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    select.one(conn).await?.map(into_domain).transpose()
}
