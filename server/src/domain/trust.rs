//! Trusted devices as values: how a device was verified, the trust durations, a trusted device
//! as the owner sees it, and what removing trust did. The commands live in `service::trust`.

use std::time::Duration;

use super::{
    ids::{AccountId, DeviceId, SessionId},
    revocation::Revocation,
    session::Product,
};
use crate::{
    clock::Timestamp,
    enrich::{DeviceDetails, GeoLocation},
};

/// How a device was verified before it was trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum TrustMethod {
    #[doc = "TOTP"]
    Totp,
    #[doc = "SMS_CODE"]
    SmsCode,
    #[doc = "EMAIL_CODE"]
    EmailCode,
    #[doc = "PASSKEY"]
    Passkey,
    #[doc = "RECOVERY_CODE"]
    RecoveryCode,
}

/// Trust durations, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustPolicy {
    /// Duration when the request names none.
    pub default_duration: Duration,
    /// Longest duration a request may ask for.
    pub max_duration: Duration,
}

/// A trusted device as the owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedDevice {
    /// The device.
    pub device_id: DeviceId,
    /// The account.
    pub account_id: AccountId,
    /// How it was verified most recently.
    pub method: Option<TrustMethod>,
    /// Through which product, most recently.
    pub product: Option<Product>,
    /// First trusted.
    pub trusted_since: Timestamp,
    /// Last renewed.
    pub renewed_at: Timestamp,
    /// Expiry.
    pub trusted_until: Timestamp,
    /// Details of the latest session on the device.
    pub device: DeviceDetails,
    /// Location of the latest session on the device.
    pub location: GeoLocation,
    /// A session is active on the device now.
    pub has_active_session: bool,
}

/// The result of RemoveTrustedDevice.
#[derive(Debug, Clone)]
pub struct Removal {
    /// Trust in force was removed.
    pub removed: bool,
    /// Sessions logged out with it: all of them up to `MAX_SESSION_IDS`, otherwise the newest
    /// that many.
    pub revoked_session_ids: Vec<SessionId>,
    /// How many sessions were logged out with it.
    pub revoked_session_count: u64,
    /// The revocation recorded for them.
    pub revocation: Option<Revocation>,
}
