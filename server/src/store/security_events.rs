//! Queries on `security_events`: append, and list newest first with a keyset cursor on the id.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::{StoreError, entity::security_event, query::all_into};
use crate::domain::stored::StoredEnum as _;
use crate::{
    clock::Timestamp,
    domain::{
        history::{SecurityEvent, SecurityEventType},
        ids::{AccountId, DeviceId, EventId, RevocationId, SessionId},
        session::Product,
    },
    enrich::{DeviceDetails, GeoLocation},
};

/// Appends an event.
pub async fn insert(conn: &impl ConnectionTrait, event: &SecurityEvent) -> Result<(), StoreError> {
    insert_many(conn, &[event]).await
}

/// Appends events in one statement.
#[tracing::instrument(name = "db.security_events.insert", skip_all, fields(otel.kind = "client", rows = events.len(), { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn insert_many(
    conn: &impl ConnectionTrait,
    events: &[&SecurityEvent],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    security_event::Entity::insert_many(events.iter().map(|event| new_row(event)))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// An event's row.
fn new_row(event: &SecurityEvent) -> security_event::ActiveModel {
    security_event::ActiveModel {
        event_id: Set(event.event_id.to_string()),
        account_id: Set(event.account_id.to_string()),
        event_type: Set(event.event_type.as_str().to_owned()),
        occurred_at: Set(event.occurred_at.as_micros()),
        session_id: Set(event.session_id.map(|id| id.to_string())),
        product: Set(event.product.map(|p| p.as_str().to_owned())),
        device_id: Set(event.device_id.as_ref().map(ToString::to_string)),
        device_description: Set(event.device.description()),
        browser: Set(event.device.browser.clone()),
        os: Set(event.device.os.clone()),
        device_type: Set(Some(
            super::sessions::device_type_to_stored(event.device.device_type).to_owned(),
        )),
        city: Set(event.location.city.clone()),
        region: Set(event.location.region.clone()),
        country_code: Set(event.location.country_code.clone()),
        country: Set(event.location.country.clone()),
        actor: Set(event.actor.clone()),
        revocation_id: Set(event.revocation_id.map(|id| id.to_string())),
        session_count: Set(event.session_count),
        reason: Set(event.reason.map(|reason| reason.as_str().to_owned())),
    }
}

/// Up to `limit` events of the account older than `before` (all when `None`), newest first.
#[tracing::instrument(name = "db.security_events.list", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
/// Writes the number of sessions a log-out of all ended into its LOG_OUT_ALL event, once its
/// sweep has counted them.
#[tracing::instrument(name = "db.security_events.record_log_out_all_count", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn record_log_out_all_count(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    revocation_id: RevocationId,
    session_count: i64,
) -> Result<(), StoreError> {
    security_event::Entity::update_many()
        .col_expr(
            security_event::Column::SessionCount,
            sea_orm::sea_query::Expr::value(session_count),
        )
        .filter(security_event::Column::AccountId.eq(account_id.as_str()))
        .filter(security_event::Column::RevocationId.eq(revocation_id.to_string()))
        .filter(security_event::Column::EventType.eq(SecurityEventType::LogOutAll.as_str()))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn list(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    before: Option<EventId>,
    limit: u64,
) -> Result<Vec<SecurityEvent>, StoreError> {
    let mut query = security_event::Entity::find()
        .filter(security_event::Column::AccountId.eq(account_id.as_str()));
    if let Some(before) = before {
        query = query.filter(security_event::Column::EventId.lt(before.to_string()));
    }
    let query = query
        .order_by_desc(security_event::Column::EventId)
        .limit(limit);
    all_into(conn, query, into_domain).await
}

fn into_domain(model: security_event::Model) -> Result<SecurityEvent, StoreError> {
    let corrupt = |what: &str| {
        StoreError::corrupt("security_events", format!("{what} in {}", model.event_id))
    };
    Ok(SecurityEvent {
        event_id: EventId::parse(&model.event_id).map_err(|_| corrupt("event_id"))?,
        event_type: SecurityEventType::from_stored(&model.event_type)
            .ok_or_else(|| corrupt("event_type"))?,
        session_id: model
            .session_id
            .as_deref()
            .map(SessionId::parse)
            .transpose()
            .map_err(|_| corrupt("session_id"))?,
        product: model
            .product
            .as_deref()
            .map(|p| Product::from_stored(p).ok_or_else(|| corrupt("product")))
            .transpose()?,
        revocation_id: model
            .revocation_id
            .as_deref()
            .map(RevocationId::parse)
            .transpose()
            .map_err(|_| corrupt("revocation_id"))?,
        account_id: AccountId::from_stored(model.account_id),
        occurred_at: Timestamp::from_micros(model.occurred_at),
        device_id: model.device_id.map(DeviceId::from_stored),
        device: DeviceDetails {
            browser: model.browser,
            browser_version: None,
            os: model.os,
            os_version: None,
            device_type: super::sessions::device_type_from_stored(
                model.device_type.as_deref().unwrap_or_default(),
            ),
        },
        location: GeoLocation {
            city: model.city,
            region: model.region,
            country_code: model.country_code,
            country: model.country,
        },
        actor: model.actor,
        session_count: model.session_count,
        reason: model
            .reason
            .as_deref()
            .and_then(crate::domain::session::RevocationReason::from_stored),
    })
}

/// Whether the account's history mentions the device: it was trusted, or had trust removed, at
/// some point (so RemoveTrustedDevice knows it even after its trust record is gone).
#[tracing::instrument(name = "db.security_events.mentions_device", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn mentions_device(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    device_id: &DeviceId,
) -> Result<bool, StoreError> {
    Ok(security_event::Entity::find()
        .filter(security_event::Column::AccountId.eq(account_id.as_str()))
        .filter(security_event::Column::DeviceId.eq(device_id.as_str()))
        .one(conn)
        .await?
        .is_some())
}
