//! `activesessions.v1.TrustedDeviceService`: products trust devices and check trust; the owner
//! (or an operator) lists and removes trusted devices.

use active_sessions::v1::{self as pb, trusted_device_service_server::TrustedDeviceService};
use tonic::{Request, Response, Status};

use super::{
    proto::{account_id, owner_page, required_enum, subject},
    session_proto::{
        device_to_proto, location_to_proto, optional_duration, page_token, product_from_proto,
        product_to_proto, revocation_to_proto,
    },
};
use crate::auth::Caller;
use crate::domain::{
    ids::DeviceId,
    text::Violations,
    trust::{TrustMethod, TrustedDevice},
};
use crate::service::trust::TrustService;

/// The TrustedDeviceService handlers.
#[derive(Debug, Clone)]
pub struct TrustedDeviceApi {
    trust: TrustService,
}

impl TrustedDeviceApi {
    /// Builds the handlers.
    pub fn new(trust: TrustService) -> Self {
        Self { trust }
    }
}

fn method_from_proto(value: pb::TrustMethod) -> Option<TrustMethod> {
    Some(match value {
        pb::TrustMethod::Unspecified => return None,
        pb::TrustMethod::Totp => TrustMethod::Totp,
        pb::TrustMethod::SmsCode => TrustMethod::SmsCode,
        pb::TrustMethod::EmailCode => TrustMethod::EmailCode,
        pb::TrustMethod::Passkey => TrustMethod::Passkey,
        pb::TrustMethod::RecoveryCode => TrustMethod::RecoveryCode,
    })
}

fn method_to_proto(value: TrustMethod) -> pb::TrustMethod {
    match value {
        TrustMethod::Totp => pb::TrustMethod::Totp,
        TrustMethod::SmsCode => pb::TrustMethod::SmsCode,
        TrustMethod::EmailCode => pb::TrustMethod::EmailCode,
        TrustMethod::Passkey => pb::TrustMethod::Passkey,
        TrustMethod::RecoveryCode => pb::TrustMethod::RecoveryCode,
    }
}

fn trusted_device_to_proto(device: &TrustedDevice) -> pb::TrustedDevice {
    pb::TrustedDevice {
        device_id: device.device_id.to_string(),
        account_id: device.account_id.to_string(),
        device: Some(device_to_proto(&device.device)),
        location: Some(location_to_proto(&device.location)),
        trusted_since: Some(device.trusted_since.to_proto()),
        trusted_until: Some(device.trusted_until.to_proto()),
        method: device
            .method
            .map_or(pb::TrustMethod::Unspecified, method_to_proto) as i32,
        product: device
            .product
            .map_or(pb::Product::Unspecified, product_to_proto) as i32,
        has_active_session: device.has_active_session,
        renewed_at: Some(device.renewed_at.to_proto()),
    }
}

#[tonic::async_trait]
impl TrustedDeviceService for TrustedDeviceApi {
    #[tracing::instrument(name = "TrustDevice", skip_all, fields(account_id = %request.get_ref().account_id.escape_debug(), device_id = %request.get_ref().device_id.escape_debug()))]
    async fn trust_device(
        &self,
        request: Request<pb::TrustDeviceRequest>,
    ) -> Result<Response<pb::TrustDeviceResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let mut v = Violations::new();
        let account = account_id(&mut v, "account_id", &request.account_id);
        let device = v.check("device_id", DeviceId::parse(&request.device_id));
        let method = required_enum(&mut v, "method", request.method, method_from_proto);
        let duration = optional_duration(&mut v, "duration", request.duration.as_ref());
        let product = required_enum(&mut v, "product", request.product, product_from_proto);
        let (((account, device), (method, duration)), product) =
            v.finish(account.zip(device).zip(method.zip(duration)).zip(product))?;
        let actor = caller.authorize_product_write(product)?;
        let (trusted, renewed) = self
            .trust
            .trust(&account, &device, method, product, duration, &actor)
            .await?;
        Ok(Response::new(pb::TrustDeviceResponse {
            trusted_device: Some(trusted_device_to_proto(&trusted)),
            renewed,
        }))
    }

    #[tracing::instrument(name = "ListTrustedDevices", skip_all)]
    async fn list_trusted_devices(
        &self,
        request: Request<pb::ListTrustedDevicesRequest>,
    ) -> Result<Response<pb::ListTrustedDevicesResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let (subject, size) = owner_page(&caller, request.subject.as_ref(), request.page_size)?;
        let (devices, tokens_after, next) = self
            .trust
            .list(&subject, size, page_token(&request.page_token))
            .await?;
        let devices = devices.iter().map(trusted_device_to_proto).collect();
        let (trusted_devices, next_page_token) =
            super::budget::fit_page(devices, tokens_after, next);
        Ok(Response::new(pb::ListTrustedDevicesResponse {
            trusted_devices,
            next_page_token,
        }))
    }

    #[tracing::instrument(name = "RemoveTrustedDevice", skip_all, fields(device_id = %request.get_ref().device_id.escape_debug()))]
    async fn remove_trusted_device(
        &self,
        request: Request<pb::RemoveTrustedDeviceRequest>,
    ) -> Result<Response<pb::RemoveTrustedDeviceResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let mut v = Violations::new();
        let subject = subject(&mut v, "subject", request.subject.as_ref());
        let device = v.check("device_id", DeviceId::parse(&request.device_id));
        let (subject, device) = v.finish(subject.zip(device))?;
        let actor = caller.authorize_owner_call(&subject)?;
        let removal = self
            .trust
            .remove(&subject, &device, request.log_out_sessions, &actor)
            .await?;
        Ok(Response::new(pb::RemoveTrustedDeviceResponse {
            removed: removal.removed,
            revoked_session_ids: removal
                .revoked_session_ids
                .iter()
                .map(ToString::to_string)
                .collect(),
            revocation: removal
                .revocation
                .as_ref()
                .map(|r| revocation_to_proto(r, true)),
            revoked_session_count: i64::try_from(removal.revoked_session_count).unwrap_or(i64::MAX),
        }))
    }

    #[tracing::instrument(name = "CheckDeviceTrust", skip_all)]
    async fn check_device_trust(
        &self,
        request: Request<pb::CheckDeviceTrustRequest>,
    ) -> Result<Response<pb::CheckDeviceTrustResponse>, Status> {
        Caller::of(&request)?.product_scope()?;
        let request = request.into_inner();
        let mut v = Violations::new();
        let account = account_id(&mut v, "account_id", &request.account_id);
        let device = v.check("device_id", DeviceId::parse(&request.device_id));
        let (account, device) = v.finish(account.zip(device))?;
        let until = self.trust.check(&account, &device).await?;
        Ok(Response::new(pb::CheckDeviceTrustResponse {
            trusted: until.is_some(),
            trusted_until: until.map(|t| t.to_proto()),
        }))
    }
}
