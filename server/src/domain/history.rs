//! The account security history (S15): sign-ins, log-outs and trust changes, each with what was
//! known of the device and place at the time, written in the same transaction as the change.

use super::{
    ids::{AccountId, DeviceId, EventId, RevocationId, SessionId, new_ulid},
    session::{Product, RevocationReason, Session},
};
use crate::{
    clock::Timestamp,
    enrich::{DeviceDetails, GeoLocation},
};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum SecurityEventType {
    #[doc = "SIGN_IN"]
    SignIn,
    #[doc = "LOG_OUT"]
    LogOut,
    #[doc = "LOG_OUT_ALL"]
    LogOutAll,
    #[doc = "DEVICE_TRUSTED"]
    DeviceTrusted,
    #[doc = "DEVICE_TRUST_REMOVED"]
    DeviceTrustRemoved,
    #[doc = "ACCOUNT_DISABLED"]
    AccountDisabled,
    #[doc = "ACCOUNT_ENABLED"]
    AccountEnabled,
}

/// Who made a change: the account owner through their session, or a named calling service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The account's owner, through the settings page.
    User,
    /// An operator acting on the account.
    Operator(String),
    /// A calling service (a product backend) acting on its own.
    Service(String),
}

impl Actor {
    /// The stored and displayed form: `user`, `operator:NAME`, `service:NAME`.
    pub fn to_stored(&self) -> String {
        match self {
            Self::User => "user".into(),
            Self::Operator(name) => format!("operator:{name}"),
            Self::Service(name) => format!("service:{name}"),
        }
    }
}

/// One entry of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEvent {
    /// Its id; ids sort by time.
    pub event_id: EventId,
    /// The account.
    pub account_id: AccountId,
    /// What happened.
    pub event_type: SecurityEventType,
    /// When.
    pub occurred_at: Timestamp,
    /// The session involved, if one.
    pub session_id: Option<SessionId>,
    /// The product involved, if one.
    pub product: Option<Product>,
    /// The device involved, if one.
    pub device_id: Option<DeviceId>,
    /// The device as known then.
    pub device: DeviceDetails,
    /// The approximate place then.
    pub location: GeoLocation,
    /// Who did it (stored form of [`Actor`]).
    pub actor: String,
    /// The revocation, for log-outs.
    pub revocation_id: Option<RevocationId>,
    /// How many sessions it covered.
    pub session_count: i64,
    /// Why, for log-outs.
    pub reason: Option<RevocationReason>,
}

impl SecurityEvent {
    /// A bare event; callers fill in what they know.
    pub fn new(
        account_id: AccountId,
        event_type: SecurityEventType,
        now: Timestamp,
        actor: &Actor,
    ) -> Self {
        Self {
            event_id: EventId::from_ulid(new_ulid(now)),
            account_id,
            event_type,
            occurred_at: now,
            session_id: None,
            product: None,
            device_id: None,
            device: DeviceDetails::default(),
            location: GeoLocation::default(),
            actor: actor.to_stored(),
            revocation_id: None,
            session_count: 0,
            reason: None,
        }
    }

    /// Fills in the session, product, device and place from a session.
    pub fn about_session(mut self, session: &Session) -> Self {
        self.session_id = Some(session.session_id);
        self.product = Some(session.product);
        self.about_device(session)
    }

    /// Fills in the device and place from a session on that device.
    pub fn about_device(mut self, session: &Session) -> Self {
        self.device_id = Some(session.device_id.clone());
        self.device = session.device.clone();
        self.location = session.location.clone();
        self
    }
}
