//! [`TrustedDeviceClient`]: the devices an account trusts, and for how long.

use std::time::{Duration, SystemTime};

use crate::{
    Connection, Error, Owner, RetryPolicy, Revocation, Transport,
    call::{Caller, required},
    proto::{
        self, DeviceInfo, Location, Product, TrustMethod,
        trusted_device_service_client::TrustedDeviceServiceClient,
    },
    retry::Idempotency::{Idempotent, Once},
    types::{ListOptions, non_empty, time, wire_duration},
};

type Service = TrustedDeviceServiceClient<Transport>;

/// The typed client of `TrustedDeviceService`. Cheap to clone.
///
/// Listing and checking are retried according to the [`RetryPolicy`]; trusting and removing
/// make exactly one attempt.
#[derive(Debug, Clone)]
pub struct TrustedDeviceClient {
    caller: Caller<Service>,
}

/// A device the account trusts.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustedDevice {
    /// The device id (the id sessions are registered with).
    pub device_id: String,
    /// The account.
    pub account_id: String,
    /// Device and browser or app, from the latest session on the device.
    pub device: DeviceInfo,
    /// Approximate location of the latest session on the device.
    pub location: Location,
    /// When the device was first trusted.
    pub trusted_since: Option<SystemTime>,
    /// When the trust expires.
    pub trusted_until: Option<SystemTime>,
    /// How it was trusted most recently.
    pub method: TrustMethod,
    /// The product through which it was trusted most recently.
    pub product: Product,
    /// True when a session is active on the device now.
    pub has_active_session: bool,
    /// When the trust was last renewed.
    pub renewed_at: Option<SystemTime>,
}

impl From<proto::TrustedDevice> for TrustedDevice {
    fn from(device: proto::TrustedDevice) -> Self {
        Self {
            method: device.method(),
            product: device.product(),
            device_id: device.device_id,
            account_id: device.account_id,
            device: device.device.unwrap_or_default(),
            location: device.location.unwrap_or_default(),
            trusted_since: time(device.trusted_since),
            trusted_until: time(device.trusted_until),
            has_active_session: device.has_active_session,
            renewed_at: time(device.renewed_at),
        }
    }
}

/// A device to trust with [`TrustedDeviceClient::trust`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    account_id: String,
    device_id: String,
    product: Product,
    method: TrustMethod,
    duration: Option<Duration>,
}

impl Trust {
    /// Trust `device_id` for `account_id`, verified by `method` in `product`, for the server's
    /// default duration (30 days).
    pub fn new(
        account_id: impl Into<String>,
        device_id: impl Into<String>,
        product: Product,
        method: TrustMethod,
    ) -> Self {
        Self {
            account_id: account_id.into(),
            device_id: device_id.into(),
            product,
            method,
            duration: None,
        }
    }

    /// Trust for this long instead (at most the server's maximum).
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = Some(duration);
        self
    }
}

/// The outcome of [`TrustedDeviceClient::trust`].
#[derive(Debug, Clone, PartialEq)]
pub struct Trusted {
    /// The trusted device after the change.
    pub device: TrustedDevice,
    /// True when the device was already trusted and its trust was renewed.
    pub renewed: bool,
}

/// A page of trusted devices.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustedDevicesPage {
    /// The devices, most recently trusted first.
    pub devices: Vec<TrustedDevice>,
    /// Pass to [`ListOptions::page_token`] for the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}

/// Whether a device is trusted now, from [`TrustedDeviceClient::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceTrust {
    /// True when the device is trusted for the account now.
    pub trusted: bool,
    /// When the trust expires (only when trusted).
    pub trusted_until: Option<SystemTime>,
}

/// The outcome of [`TrustedDeviceClient::remove`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// True when a trust was removed; false when the device was not trusted.
    pub removed: bool,
    /// The sessions logged out with it: all of them when there are at most 100, otherwise the
    /// 100 newest.
    pub revoked_session_ids: Vec<String>,
    /// How many sessions were logged out with it.
    pub revoked_session_count: i64,
    /// The revocation recorded for those sessions, if any.
    pub revocation: Option<Revocation>,
}

impl From<proto::ListTrustedDevicesResponse> for TrustedDevicesPage {
    fn from(response: proto::ListTrustedDevicesResponse) -> Self {
        Self {
            devices: response
                .trusted_devices
                .into_iter()
                .map(TrustedDevice::from)
                .collect(),
            next_page_token: non_empty(response.next_page_token),
        }
    }
}

impl From<proto::CheckDeviceTrustResponse> for DeviceTrust {
    fn from(response: proto::CheckDeviceTrustResponse) -> Self {
        Self {
            trusted: response.trusted,
            trusted_until: time(response.trusted_until).filter(|_| response.trusted),
        }
    }
}

impl From<proto::RemoveTrustedDeviceResponse> for Removed {
    fn from(response: proto::RemoveTrustedDeviceResponse) -> Self {
        Self {
            removed: response.removed,
            revoked_session_ids: response.revoked_session_ids,
            revoked_session_count: response.revoked_session_count,
            revocation: response.revocation.map(Revocation::from),
        }
    }
}

impl TrustedDeviceClient {
    /// A client over `connection`, with the connection's retry policy.
    pub fn new(connection: &Connection) -> Self {
        Self {
            caller: Caller::new(
                connection.trusted_device_service(),
                connection.retry_policy(),
            ),
        }
    }

    /// This client with another retry policy.
    pub fn with_retry_policy(self, policy: RetryPolicy) -> Self {
        Self {
            caller: self.caller.with_retry_policy(policy),
        }
    }

    /// Marks a device trusted, or renews its trust (never retried).
    pub async fn trust(&self, trust: Trust) -> Result<Trusted, Error> {
        let message = proto::TrustDeviceRequest {
            account_id: trust.account_id,
            device_id: trust.device_id,
            method: trust.method as i32,
            duration: trust.duration.map(wire_duration),
            product: trust.product as i32,
        };
        let response = self
            .caller
            .call(Once, message, Service::trust_device)
            .await?;
        Ok(Trusted {
            device: required(response.trusted_device, "trusted device")?.into(),
            renewed: response.renewed,
        })
    }

    /// One page of the owner's trusted devices (the page size and token of `options` apply).
    pub async fn list(
        &self,
        owner: Owner,
        options: ListOptions,
    ) -> Result<TrustedDevicesPage, Error> {
        let message = proto::ListTrustedDevicesRequest {
            subject: Some(owner.subject()),
            page_size: options.wire_page_size(),
            page_token: options.page_token.unwrap_or_default(),
        };
        self.caller
            .call(Idempotent, message, Service::list_trusted_devices)
            .await
            .map(TrustedDevicesPage::from)
    }

    /// Removes a device from trusted devices, with `log_out_sessions` also logging out its
    /// sessions in the same transaction. Removing a device of the account that is not trusted
    /// (never, or already removed) succeeds with `removed = false` and changes nothing, so a
    /// removal alone is retried like any idempotent call (a retry after a lost response
    /// answers `removed = false`); with `log_out_sessions` it is never retried, as log-outs are
    /// not.
    pub async fn remove(
        &self,
        owner: Owner,
        device_id: &str,
        log_out_sessions: bool,
    ) -> Result<Removed, Error> {
        let message = proto::RemoveTrustedDeviceRequest {
            subject: Some(owner.subject()),
            device_id: device_id.to_owned(),
            log_out_sessions,
        };
        let idempotency = if log_out_sessions { Once } else { Idempotent };
        self.caller
            .call(idempotency, message, Service::remove_trusted_device)
            .await
            .map(Removed::from)
    }

    /// Whether the device is trusted for the account now, and until when.
    pub async fn check(&self, account_id: &str, device_id: &str) -> Result<DeviceTrust, Error> {
        let message = proto::CheckDeviceTrustRequest {
            account_id: account_id.to_owned(),
            device_id: device_id.to_owned(),
        };
        self.caller
            .call(Idempotent, message, Service::check_device_trust)
            .await
            .map(DeviceTrust::from)
    }
}
