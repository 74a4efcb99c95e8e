//! TrustedDeviceService: TrustDevice, RemoveTrustedDevice, CheckDeviceTrust and
//! ListTrustedDevices requests into the trust commands' inputs, and trusted devices and
//! removals back into messages.

use std::time::Duration;

use active_sessions::v1 as pb;

use super::{
    enums::optional_number,
    fields::{account_id, count, device_id, id_strings, optional_duration, required_enum, subject},
};
use crate::domain::{
    ids::{AccountId, DeviceId},
    modes::DeviceSessions,
    session::Product,
    subject::Subject,
    text::Violations,
    trust::{Removal, TrustMethod, TrustedDevice},
};

/// A TrustDevice request, validated.
#[derive(Debug, Clone)]
pub struct TrustDevice {
    /// The account.
    pub account_id: AccountId,
    /// The device.
    pub device_id: DeviceId,
    /// How the user proved it.
    pub method: TrustMethod,
    /// How long, if the caller says (otherwise the policy's default).
    pub duration: Option<Duration>,
    /// The product that trusts it.
    pub product: Product,
}

impl TryFrom<pb::TrustDeviceRequest> for TrustDevice {
    type Error = Violations;

    fn try_from(request: pb::TrustDeviceRequest) -> Result<Self, Violations> {
        let mut v = Violations::new();
        let account_id = account_id(&mut v, "account_id", &request.account_id);
        let device_id = device_id(&mut v, "device_id", &request.device_id);
        let method = required_enum(&mut v, "method", request.method);
        let duration = optional_duration(&mut v, "duration", request.duration.as_ref());
        let product = required_enum(&mut v, "product", request.product);
        v.complete(|| {
            Some(Self {
                account_id: account_id?,
                device_id: device_id?,
                method: method?,
                duration: duration?,
                product: product?,
            })
        })
    }
}

/// A RemoveTrustedDevice request, validated.
#[derive(Debug, Clone)]
pub struct RemoveTrustedDevice {
    /// Whose device.
    pub subject: Subject,
    /// The device.
    pub device_id: DeviceId,
    /// Whether its sessions are logged out too.
    pub sessions: DeviceSessions,
}

impl TryFrom<pb::RemoveTrustedDeviceRequest> for RemoveTrustedDevice {
    type Error = Violations;

    fn try_from(request: pb::RemoveTrustedDeviceRequest) -> Result<Self, Violations> {
        let mut v = Violations::new();
        let subject = subject(&mut v, "subject", request.subject.as_ref());
        let device_id = device_id(&mut v, "device_id", &request.device_id);
        v.complete(|| {
            Some(Self {
                subject: subject?,
                device_id: device_id?,
                sessions: request.log_out_sessions.into(),
            })
        })
    }
}

/// A CheckDeviceTrust request, validated.
#[derive(Debug, Clone)]
pub struct CheckDeviceTrust {
    /// The account.
    pub account_id: AccountId,
    /// The device.
    pub device_id: DeviceId,
}

impl TryFrom<pb::CheckDeviceTrustRequest> for CheckDeviceTrust {
    type Error = Violations;

    fn try_from(request: pb::CheckDeviceTrustRequest) -> Result<Self, Violations> {
        let mut v = Violations::new();
        let account_id = account_id(&mut v, "account_id", &request.account_id);
        let device_id = device_id(&mut v, "device_id", &request.device_id);
        v.complete(|| {
            Some(Self {
                account_id: account_id?,
                device_id: device_id?,
            })
        })
    }
}

impl From<&TrustedDevice> for pb::TrustedDevice {
    fn from(device: &TrustedDevice) -> Self {
        Self {
            device_id: device.device_id.to_string(),
            account_id: device.account_id.to_string(),
            device: Some((&device.device).into()),
            location: Some((&device.location).into()),
            trusted_since: Some(device.trusted_since.to_proto()),
            trusted_until: Some(device.trusted_until.to_proto()),
            method: optional_number(device.method),
            product: optional_number(device.product),
            has_active_session: device.has_active_session,
            renewed_at: Some(device.renewed_at.to_proto()),
        }
    }
}

impl From<Removal> for pb::RemoveTrustedDeviceResponse {
    fn from(removal: Removal) -> Self {
        Self {
            removed: removal.removed,
            revoked_session_ids: id_strings(&removal.revoked_session_ids),
            revocation: removal.revocation.as_ref().map(Into::into),
            revoked_session_count: count(removal.revoked_session_count),
        }
    }
}
