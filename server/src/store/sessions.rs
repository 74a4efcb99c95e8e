//! Queries on `sessions` through sea-orm's entity. Reads return domain [`Session`]s; the token
//! is only ever looked up by its hash through the unique index (see `validity`).

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, Select,
    sea_query::{Expr, ExprTrait, Func},
};

use super::{
    StoreError,
    entity::session,
    query::{all_into, one_into},
    row_samples::{ListedRow, into_listed},
};
use crate::domain::stored::StoredEnum as _;
use crate::{
    clock::Timestamp,
    domain::{
        ids::{AccountId, DeviceId, RevocationId, SessionId},
        session::{Product, RevocationReason, Session},
        token::TokenHash,
    },
    enrich::{DeviceType, GeoLocation},
};

/// Stores new sessions, each under its token hash, in one statement.
#[tracing::instrument(name = "db.sessions.insert", skip_all, fields(otel.kind = "client", rows = sessions.len(), { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn insert_many(
    conn: &impl ConnectionTrait,
    sessions: &[(&Session, &TokenHash)],
) -> Result<(), StoreError> {
    if sessions.is_empty() {
        return Ok(());
    }
    session::Entity::insert_many(
        sessions
            .iter()
            .map(|(session, token_hash)| new_row(session, token_hash)),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// A new session's row.
fn new_row(session: &Session, token_hash: &TokenHash) -> session::ActiveModel {
    session::ActiveModel {
        session_id: Set(session.session_id.to_string()),
        token_hash: Set(token_hash.as_bytes().to_vec()),
        account_id: Set(session.account_id.to_string()),
        product: Set(session.product.as_str().to_owned()),
        client_kind: Set(session.client_kind.as_str().to_owned()),
        visible: Set(session.client_kind.is_visible()),
        device_id: Set(session.device_id.to_string()),
        user_agent: Set(session.user_agent.clone()),
        browser: Set(session.device.browser.clone()),
        browser_version: Set(session.device.browser_version.clone()),
        os: Set(session.device.os.clone()),
        os_version: Set(session.device.os_version.clone()),
        device_type: Set(device_type_to_stored(session.device.device_type).to_owned()),
        ip_address: Set(session.ip_address.clone()),
        city: Set(session.location.city.clone()),
        region: Set(session.location.region.clone()),
        country_code: Set(session.location.country_code.clone()),
        country: Set(session.location.country.clone()),
        auth_method: Set(session.auth_method.as_str().to_owned()),
        status: Set(session.status.as_str().to_owned()),
        new_device: Set(session.new_device),
        new_country: Set(session.new_country),
        signed_in_at: Set(session.signed_in_at.as_micros()),
        last_active_at: Set(session.last_active_at.as_micros()),
        expires_at: Set(session.expires_at.as_micros()),
        revoked_at: Set(session.revoked_at.map(Timestamp::as_micros)),
        revoked_reason: Set(None),
        revocation_id: Set(session.revocation_id.map(|id| id.to_string())),
        generation: Set(session.generation),
    }
}

/// Reads one session by id.
#[tracing::instrument(name = "db.sessions.find", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn find(
    conn: &impl ConnectionTrait,
    session_id: SessionId,
) -> Result<Option<Session>, StoreError> {
    one_into(
        conn,
        session::Entity::find_by_id(session_id.to_string()),
        into_domain,
    )
    .await
}

/// True when the account has had any session before.
pub async fn any_for_account(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
) -> Result<bool, StoreError> {
    let of_account = session::Column::AccountId.eq(account_id.as_str());
    exists(conn, session::Entity::find().filter(of_account)).await
}

/// True when `select` finds a session: it reads one session id, no more.
pub(super) async fn exists(
    conn: &impl ConnectionTrait,
    select: Select<session::Entity>,
) -> Result<bool, StoreError> {
    Ok(select
        .select_only()
        .column(session::Column::SessionId)
        .limit(1)
        .into_tuple::<String>()
        .one(conn)
        .await?
        .is_some())
}

/// Narrows `select` to the sessions of `product`, when one is given.
pub(super) fn of_product(
    select: Select<session::Entity>,
    product: Option<Product>,
) -> Select<session::Entity> {
    match product {
        Some(product) => select.filter(session::Column::Product.eq(product.as_str())),
        None => select,
    }
}

/// The ordering key of one row of the Active sessions page.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct RowKey {
    /// The row's device.
    pub device_id: String,
    /// The latest sign-in among the row's sessions (as of the listing's snapshot).
    pub row_key: i64,
    /// How many sessions the row held as of the snapshot.
    pub sessions: i64,
}

/// Which rows a listing page reads: a snapshot instant and the keyset position after which the
/// page starts. Membership and order are computed as of `as_of`, from facts that later writes do
/// not change, so pages stay stable while sessions are added and revoked.
#[derive(Debug, Clone)]
pub struct RowQuery<'a> {
    /// The account.
    pub account_id: &'a AccountId,
    /// The snapshot instant.
    pub as_of: Timestamp,
    /// The account's log-out-of-all generation as of the first page: visible sessions born
    /// below it are cut off.
    pub cut_generation: i64,
    /// The idle timeout.
    pub idle_timeout: std::time::Duration,
    /// Only sessions of this product.
    pub product: Option<Product>,
    /// Start after this (row key, device id).
    pub after: Option<(i64, String)>,
    /// At most this many rows.
    pub limit: u64,
}

/// The row keys of one listing page, most recent sign-in first, device id breaking ties.
#[tracing::instrument(name = "db.sessions.row_keys", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn row_keys(
    conn: &impl ConnectionTrait,
    query: &RowQuery<'_>,
) -> Result<Vec<RowKey>, StoreError> {
    let as_of = query.as_of.as_micros();
    let mut select = session::Entity::find()
        .select_only()
        .column(session::Column::DeviceId)
        .column_as(session::Column::SignedInAt.max(), "row_key")
        .column_as(session::Column::SessionId.count(), "sessions")
        .filter(session::Column::AccountId.eq(query.account_id.as_str()))
        .filter(session::Column::Visible.eq(true))
        .filter(session::Column::SignedInAt.lte(as_of))
        .filter(
            Condition::any()
                .add(session::Column::RevokedAt.is_null())
                .add(session::Column::RevokedAt.gt(as_of)),
        )
        .filter(session::Column::ExpiresAt.gt(as_of))
        .filter(
            session::Column::LastActiveAt.gt(query.as_of.minus(query.idle_timeout).as_micros()),
        );
    if query.cut_generation > 0 {
        select = select.filter(session::Column::Generation.gte(query.cut_generation));
    }
    select = of_product(select, query.product).group_by(session::Column::DeviceId);
    if let Some((key, device)) = &query.after {
        let max = Expr::from(Func::max(Expr::col(session::Column::SignedInAt)));
        select = select.having(
            Condition::any().add(max.clone().lt(*key)).add(
                Condition::all()
                    .add(max.eq(*key))
                    .add(Expr::col(session::Column::DeviceId).gt(device.as_str())),
            ),
        );
    }
    Ok(select
        .order_by_desc(Expr::from(Func::max(Expr::col(
            session::Column::SignedInAt,
        ))))
        .order_by_asc(session::Column::DeviceId)
        .limit(query.limit)
        .into_model::<RowKey>()
        .all(conn)
        .await?)
}

/// Every visible session of the account on these devices that is not marked revoked (the
/// caller applies the full validity rule).
#[tracing::instrument(name = "db.sessions.unrevoked_on_devices", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn unrevoked_on_devices(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    devices: &[DeviceId],
    product: Option<Product>,
) -> Result<Vec<Session>, StoreError> {
    if devices.is_empty() {
        return Ok(Vec::new());
    }
    let select = session::Entity::find()
        .filter(session::Column::AccountId.eq(account_id.as_str()))
        .filter(session::Column::Visible.eq(true))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::DeviceId.is_in(devices.iter().map(DeviceId::as_str)));
    let select = of_product(select, product)
        .order_by_desc(session::Column::LastActiveAt)
        .order_by_asc(session::Column::SessionId);
    all_into(conn, select, into_domain).await
}

/// Every visible session the account ever had on this device, revoked or not.
#[tracing::instrument(name = "db.sessions.visible_on_device", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn visible_on_device(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    device_id: &DeviceId,
) -> Result<Vec<Session>, StoreError> {
    let select = session::Entity::find()
        .filter(session::Column::AccountId.eq(account_id.as_str()))
        .filter(session::Column::Visible.eq(true))
        .filter(session::Column::DeviceId.eq(device_id.as_str()))
        .order_by_asc(session::Column::SessionId);
    all_into(conn, select, into_domain).await
}

/// Marks a few sessions revoked, by id (those not already marked); returns how many changed.
/// Only for a handful of ids: many sessions are marked by `session_sets::revoke_on_device`.
#[tracing::instrument(name = "db.sessions.mark_revoked", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn mark_revoked(
    conn: &impl ConnectionTrait,
    session_ids: &[SessionId],
    at: Timestamp,
    reason: RevocationReason,
    revocation_id: RevocationId,
) -> Result<u64, StoreError> {
    if session_ids.is_empty() {
        return Ok(0);
    }
    lock_in_order(conn, session_ids).await?;
    Ok(session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(at.as_micros()))
        .col_expr(session::Column::RevokedReason, Expr::value(reason.as_str()))
        .col_expr(
            session::Column::RevocationId,
            Expr::value(revocation_id.to_string()),
        )
        .filter(session::Column::SessionId.is_in(session_ids.iter().map(ToString::to_string)))
        .filter(session::Column::RevokedAt.is_null())
        .exec(conn)
        .await?
        .rows_affected)
}

/// Locks the rows of these sessions in session-id order, the one order every multi-row writer
/// uses (a no-op on SQLite, whose writers are serialised anyway).
async fn lock_in_order(
    conn: &impl ConnectionTrait,
    session_ids: &[SessionId],
) -> Result<(), StoreError> {
    session::Entity::find()
        .select_only()
        .column(session::Column::SessionId)
        .filter(session::Column::SessionId.is_in(session_ids.iter().map(ToString::to_string)))
        .order_by_asc(session::Column::SessionId)
        .lock_exclusive()
        .into_tuple::<String>()
        .all(conn)
        .await?;
    Ok(())
}

/// Activity recorded for one session since the last flush.
#[derive(Debug, Clone)]
pub struct Activity {
    /// The session.
    pub session_id: SessionId,
    /// Latest activity.
    pub at: Timestamp,
    /// The IP address seen with it, if any, and its approximate location.
    pub ip: Option<(String, GeoLocation)>,
}

/// Writes coalesced activity: moves `last_active_at` forward (never back) and records the IP.
/// Rows are updated in session-id order, the order every multi-row writer locks them in, so
/// the flush cannot deadlock with a log-out or a sweep.
#[tracing::instrument(name = "db.sessions.apply_activity", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn apply_activity(
    conn: &impl ConnectionTrait,
    batch: &[Activity],
) -> Result<(), StoreError> {
    let mut ordered: Vec<&Activity> = batch.iter().collect();
    ordered.sort_by_key(|activity| activity.session_id);
    for activity in ordered {
        let mut update = session::Entity::update_many().col_expr(
            session::Column::LastActiveAt,
            Expr::value(activity.at.as_micros()),
        );
        if let Some((ip, location)) = &activity.ip {
            update = update
                .col_expr(session::Column::IpAddress, Expr::value(ip.clone()))
                .col_expr(session::Column::City, Expr::value(location.city.clone()))
                .col_expr(
                    session::Column::Region,
                    Expr::value(location.region.clone()),
                )
                .col_expr(
                    session::Column::CountryCode,
                    Expr::value(location.country_code.clone()),
                )
                .col_expr(
                    session::Column::Country,
                    Expr::value(location.country.clone()),
                );
        }
        update
            .filter(session::Column::SessionId.eq(activity.session_id.to_string()))
            .filter(session::Column::LastActiveAt.lt(activity.at.as_micros()))
            .filter(session::Column::RevokedAt.is_null())
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// Reads a stored row into the domain type.
pub(crate) fn into_domain(model: session::Model) -> Result<Session, StoreError> {
    let session::Model {
        session_id,
        token_hash: _,
        account_id,
        product,
        client_kind,
        visible: _,
        device_id,
        user_agent,
        browser,
        browser_version,
        os,
        os_version,
        device_type,
        ip_address,
        city,
        region,
        country_code,
        country,
        auth_method,
        status,
        new_device,
        new_country,
        signed_in_at,
        last_active_at,
        expires_at,
        revoked_at,
        revoked_reason: _,
        revocation_id,
        generation,
    } = model;
    let revocation_id = match revocation_id {
        Some(id) => Some(RevocationId::parse(&id).map_err(|_| {
            StoreError::corrupt("sessions", format!("revocation_id {id:?} in {session_id}"))
        })?),
        None => None,
    };
    let listed = into_listed(ListedRow {
        session_id,
        account_id,
        product,
        client_kind,
        device_id,
        browser,
        browser_version,
        os,
        os_version,
        device_type,
        city,
        region,
        country_code,
        country,
        auth_method,
        status,
        new_device,
        new_country,
        signed_in_at,
        last_active_at,
        expires_at,
    })?;
    Ok(Session {
        session_id: listed.session_id,
        account_id: listed.account_id,
        product: listed.product,
        client_kind: listed.client_kind,
        device_id: listed.device_id,
        user_agent,
        device: listed.device,
        ip_address,
        location: listed.location,
        auth_method: listed.auth_method,
        status: listed.status,
        new_device: listed.new_device,
        new_country: listed.new_country,
        signed_in_at: listed.signed_in_at,
        last_active_at: listed.last_active_at,
        expires_at: listed.expires_at,
        revoked_at: revoked_at.map(Timestamp::from_micros),
        revocation_id,
        generation,
    })
}

/// The stored form of a device type.
pub(crate) fn device_type_to_stored(device_type: DeviceType) -> &'static str {
    match device_type {
        DeviceType::Unknown => "UNKNOWN",
        DeviceType::Desktop => "DESKTOP",
        DeviceType::Mobile => "MOBILE",
        DeviceType::Tablet => "TABLET",
    }
}

/// Reads the stored form of a device type (unknown values read as unknown).
pub(crate) fn device_type_from_stored(value: &str) -> DeviceType {
    match value {
        "DESKTOP" => DeviceType::Desktop,
        "MOBILE" => DeviceType::Mobile,
        "TABLET" => DeviceType::Tablet,
        _ => DeviceType::Unknown,
    }
}

/// The most recent visible session the account had on a device (revoked or not): what a
/// trusted device is described by.
#[tracing::instrument(name = "db.sessions.latest_on_device", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn latest_on_device(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    device_id: &DeviceId,
) -> Result<Option<Session>, StoreError> {
    let select = session::Entity::find()
        .filter(session::Column::AccountId.eq(account_id.as_str()))
        .filter(session::Column::DeviceId.eq(device_id.as_str()))
        .filter(session::Column::Visible.eq(true))
        .order_by_desc(session::Column::SignedInAt)
        .limit(1);
    one_into(conn, select, into_domain).await
}

/// The latest `signed_in_at` among the account's sessions, if it has any: a listing snapshot is
/// never earlier than a sign-in already committed, whichever replica's clock stamped it.
#[tracing::instrument(name = "db.sessions.latest_sign_in", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn latest_sign_in(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
) -> Result<Option<Timestamp>, StoreError> {
    let latest: Option<Option<i64>> = session::Entity::find()
        .select_only()
        .column_as(session::Column::SignedInAt.max(), "latest")
        .filter(session::Column::AccountId.eq(account_id.as_str()))
        .into_tuple::<Option<i64>>()
        .one(conn)
        .await?;
    Ok(latest.flatten().map(Timestamp::from_micros))
}
