//! `activesessions.v1.TrustedDeviceService`: products trust devices and check trust; the owner
//! (or an operator) lists and removes trusted devices.

use active_sessions::v1::{self as pb, trusted_device_service_server::TrustedDeviceService};
use tonic::{Request, Response, Status};

use super::{
    authenticate::caller_of,
    budget::fit_page,
    convert::{
        fields::OwnerPage,
        trust::{CheckDeviceTrust, RemoveTrustedDevice, TrustDevice},
    },
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

#[tonic::async_trait]
impl TrustedDeviceService for TrustedDeviceApi {
    #[tracing::instrument(name = "TrustDevice", skip_all, fields(account_id = %request.get_ref().account_id.escape_debug(), device_id = %request.get_ref().device_id.escape_debug()))]
    async fn trust_device(
        &self,
        request: Request<pb::TrustDeviceRequest>,
    ) -> Result<Response<pb::TrustDeviceResponse>, Status> {
        let caller = caller_of(&request)?;
        let trust = TrustDevice::try_from(request.into_inner())?;
        let actor = caller.authorize_product_write(trust.product)?;
        let (trusted, renewed) = self
            .trust
            .trust(
                &trust.account_id,
                &trust.device_id,
                trust.method,
                trust.product,
                trust.duration,
                &actor,
            )
            .await?;
        Ok(Response::new(pb::TrustDeviceResponse {
            trusted_device: Some((&trusted).into()),
            renewed,
        }))
    }

    #[tracing::instrument(name = "ListTrustedDevices", skip_all)]
    async fn list_trusted_devices(
        &self,
        request: Request<pb::ListTrustedDevicesRequest>,
    ) -> Result<Response<pb::ListTrustedDevicesResponse>, Status> {
        let caller = caller_of(&request)?;
        let page = OwnerPage::try_from(request.into_inner())?;
        caller.authorize_owner_call(&page.subject)?;
        let (devices, tokens_after, next) = self
            .trust
            .list(&page.subject, page.size, page.page_token.as_deref())
            .await?;
        let devices = devices.iter().map(Into::into).collect();
        let (trusted_devices, next_page_token) = fit_page(devices, tokens_after, next);
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
        let caller = caller_of(&request)?;
        let remove = RemoveTrustedDevice::try_from(request.into_inner())?;
        let actor = caller.authorize_owner_call(&remove.subject)?;
        let removal = self
            .trust
            .remove(&remove.subject, &remove.device_id, remove.sessions, &actor)
            .await?;
        Ok(Response::new(removal.into()))
    }

    #[tracing::instrument(name = "CheckDeviceTrust", skip_all)]
    async fn check_device_trust(
        &self,
        request: Request<pb::CheckDeviceTrustRequest>,
    ) -> Result<Response<pb::CheckDeviceTrustResponse>, Status> {
        caller_of(&request)?.product_scope()?;
        let check = CheckDeviceTrust::try_from(request.into_inner())?;
        let until = self
            .trust
            .check(&check.account_id, &check.device_id)
            .await?;
        Ok(Response::new(pb::CheckDeviceTrustResponse {
            trusted: until.is_some(),
            trusted_until: until.map(|t| t.to_proto()),
        }))
    }
}
