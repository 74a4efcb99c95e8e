//! Queries on `sessions`. Reads return domain [`Session`]s; the token is only ever looked up by
//! its hash through the unique index.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::{
    StoreError,
    entity::{account, session},
};
use crate::{
    clock::Timestamp,
    domain::{
        ids::{AccountId, DeviceId, RevocationId, SessionId},
        session::{AuthMethod, ClientKind, Product, Session, SessionStatus},
        token::TokenHash,
    },
    enrich::{DeviceDetails, DeviceType, GeoLocation},
};

/// A session with its account's log-out-of-all cut-off: everything the validity rule needs.
#[derive(Debug, Clone)]
pub struct SessionWithCutOff {
    /// The session.
    pub session: Session,
    /// The account's `revoked_before`, if any.
    pub revoked_before: Option<Timestamp>,
}

/// Finds a session by token hash, with its account's cut-off, in one indexed read.
pub async fn find_by_token_hash(
    conn: &impl ConnectionTrait,
    hash: &TokenHash,
) -> Result<Option<SessionWithCutOff>, StoreError> {
    let found = session::Entity::find()
        .filter(session::Column::TokenHash.eq(hash.as_bytes().to_vec()))
        .find_also_related(account::Entity)
        .one(conn)
        .await?;
    found
        .map(|(model, account)| {
            Ok(SessionWithCutOff {
                session: into_domain(model)?,
                revoked_before: account
                    .and_then(|account| account.revoked_before)
                    .map(Timestamp::from_micros),
            })
        })
        .transpose()
}

/// Reads a stored row into the domain type.
pub(crate) fn into_domain(model: session::Model) -> Result<Session, StoreError> {
    let corrupt = |column: &str, value: &str| {
        StoreError::corrupt(
            "sessions",
            format!("{column} {value:?} in {}", model.session_id),
        )
    };
    Ok(Session {
        session_id: SessionId::parse(&model.session_id)
            .map_err(|_| corrupt("session_id", &model.session_id))?,
        product: Product::from_stored(&model.product)
            .ok_or_else(|| corrupt("product", &model.product))?,
        client_kind: ClientKind::from_stored(&model.client_kind)
            .ok_or_else(|| corrupt("client_kind", &model.client_kind))?,
        auth_method: AuthMethod::from_stored(&model.auth_method)
            .ok_or_else(|| corrupt("auth_method", &model.auth_method))?,
        status: SessionStatus::from_stored(&model.status)
            .ok_or_else(|| corrupt("status", &model.status))?,
        device: DeviceDetails {
            browser: model.browser,
            browser_version: model.browser_version,
            os: model.os,
            os_version: model.os_version,
            device_type: device_type_from_stored(&model.device_type),
        },
        revocation_id: model
            .revocation_id
            .as_deref()
            .map(RevocationId::parse)
            .transpose()
            .map_err(|_| {
                corrupt(
                    "revocation_id",
                    model.revocation_id.as_deref().unwrap_or(""),
                )
            })?,
        account_id: AccountId::from_stored(model.account_id),
        device_id: DeviceId::from_stored(model.device_id),
        user_agent: model.user_agent,
        ip_address: model.ip_address,
        location: GeoLocation {
            city: model.city,
            region: model.region,
            country_code: model.country_code,
            country: model.country,
        },
        new_device: model.new_device,
        new_country: model.new_country,
        signed_in_at: Timestamp::from_micros(model.signed_in_at),
        last_active_at: Timestamp::from_micros(model.last_active_at),
        expires_at: Timestamp::from_micros(model.expires_at),
        revoked_at: model.revoked_at.map(Timestamp::from_micros),
    })
}

fn device_type_from_stored(value: &str) -> DeviceType {
    match value {
        "DESKTOP" => DeviceType::Desktop,
        "MOBILE" => DeviceType::Mobile,
        "TABLET" => DeviceType::Tablet,
        _ => DeviceType::Unknown,
    }
}
