//! `activesessions.v1.AccountEligibility`: eligibility checks for the settings page and
//! operators, the identity system's SSO-link and workspace-type updates, and its account
//! lifecycle calls (disable, enable, delete).

use active_sessions::v1::{self as pb, account_eligibility_server::AccountEligibility};
use tonic::{Request, Response, Status};

use super::{
    authenticate::caller_of,
    convert::eligibility::{SetSsoLink, SetWorkspaceType},
};
use crate::domain::{account::Account, ids::AccountId, subject::Subject};
use crate::service::{
    eligibility::EligibilityService, sessions::Sessions, subject::SubjectResolver,
};

/// The AccountEligibility handlers.
#[derive(Debug, Clone)]
pub struct AccountEligibilityApi {
    eligibility: EligibilityService,
    subjects: SubjectResolver,
    sessions: Sessions,
}

impl AccountEligibilityApi {
    /// Builds the handlers.
    pub fn new(
        eligibility: EligibilityService,
        subjects: SubjectResolver,
        sessions: Sessions,
    ) -> Self {
        Self {
            eligibility,
            subjects,
            sessions,
        }
    }
}

/// The account, as the calls that change or read one answer it.
fn account(account: &Account) -> Option<pb::Account> {
    Some(account.into())
}

#[tonic::async_trait]
impl AccountEligibility for AccountEligibilityApi {
    #[tracing::instrument(name = "CheckEligibility", skip_all, fields(account_id))]
    async fn check_eligibility(
        &self,
        request: Request<pb::CheckEligibilityRequest>,
    ) -> Result<Response<pb::CheckEligibilityResponse>, Status> {
        let caller = caller_of(&request)?;
        let subject = Subject::try_from(request.into_inner())?;
        caller.authorize_eligibility_check(&subject)?;
        let owner = self.subjects.resolve(&subject).await?;
        tracing::Span::current().record("account_id", owner.account_id.as_str());
        Ok(Response::new(owner.into()))
    }

    #[tracing::instrument(name = "GetAccount", skip_all, fields(account_id = %request.get_ref().account_id.escape_debug()))]
    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::GetAccountResponse>, Status> {
        caller_of(&request)?.authorize_identity_call()?;
        let account_id = AccountId::try_from(request.into_inner())?;
        let found = self.eligibility.get(&account_id).await?;
        Ok(Response::new(pb::GetAccountResponse {
            account: account(&found),
        }))
    }

    #[tracing::instrument(name = "SetSsoLink", skip_all, fields(account_id = %request.get_ref().account_id.escape_debug()))]
    async fn set_sso_link(
        &self,
        request: Request<pb::SetSsoLinkRequest>,
    ) -> Result<Response<pb::SetSsoLinkResponse>, Status> {
        caller_of(&request)?.authorize_identity_call()?;
        let link = SetSsoLink::try_from(request.into_inner())?;
        let updated = self
            .eligibility
            .set_sso_link(&link.account_id, link.protocol, link.organization_id)
            .await?;
        tracing::info!(account_id = %link.account_id, protocol = link.protocol.as_str(), "SSO link recorded");
        Ok(Response::new(pb::SetSsoLinkResponse {
            account: account(&updated),
        }))
    }

    #[tracing::instrument(name = "ClearSsoLink", skip_all, fields(account_id = %request.get_ref().account_id.escape_debug()))]
    async fn clear_sso_link(
        &self,
        request: Request<pb::ClearSsoLinkRequest>,
    ) -> Result<Response<pb::ClearSsoLinkResponse>, Status> {
        caller_of(&request)?.authorize_identity_call()?;
        let account_id = AccountId::try_from(request.into_inner())?;
        let updated = self.eligibility.clear_sso_link(&account_id).await?;
        tracing::info!(account_id = %account_id, "SSO link cleared");
        Ok(Response::new(pb::ClearSsoLinkResponse {
            account: account(&updated),
        }))
    }

    #[tracing::instrument(name = "SetWorkspaceType", skip_all, fields(account_id = %request.get_ref().account_id.escape_debug()))]
    async fn set_workspace_type(
        &self,
        request: Request<pb::SetWorkspaceTypeRequest>,
    ) -> Result<Response<pb::SetWorkspaceTypeResponse>, Status> {
        caller_of(&request)?.authorize_identity_call()?;
        let set = SetWorkspaceType::try_from(request.into_inner())?;
        let updated = self
            .eligibility
            .set_workspace_type(&set.account_id, set.workspace_type)
            .await?;
        Ok(Response::new(pb::SetWorkspaceTypeResponse {
            account: account(&updated),
        }))
    }

    #[tracing::instrument(name = "DisableAccount", skip_all, fields(account_id = %request.get_ref().account_id.escape_debug()))]
    async fn disable_account(
        &self,
        request: Request<pb::DisableAccountRequest>,
    ) -> Result<Response<pb::DisableAccountResponse>, Status> {
        let actor = caller_of(&request)?.authorize_identity_call()?;
        let account_id = AccountId::try_from(request.into_inner())?;
        let (disabled, revocation) = self.sessions.disable_account(&account_id, &actor).await?;
        Ok(Response::new(pb::DisableAccountResponse {
            account: account(&disabled),
            revocation: revocation.as_ref().map(Into::into),
        }))
    }

    #[tracing::instrument(name = "EnableAccount", skip_all, fields(account_id = %request.get_ref().account_id.escape_debug()))]
    async fn enable_account(
        &self,
        request: Request<pb::EnableAccountRequest>,
    ) -> Result<Response<pb::EnableAccountResponse>, Status> {
        let actor = caller_of(&request)?.authorize_identity_call()?;
        let account_id = AccountId::try_from(request.into_inner())?;
        let enabled = self.sessions.enable_account(&account_id, &actor).await?;
        Ok(Response::new(pb::EnableAccountResponse {
            account: account(&enabled),
        }))
    }

    #[tracing::instrument(name = "DeleteAccount", skip_all, fields(account_id = %request.get_ref().account_id.escape_debug()))]
    async fn delete_account(
        &self,
        request: Request<pb::DeleteAccountRequest>,
    ) -> Result<Response<pb::DeleteAccountResponse>, Status> {
        let actor = caller_of(&request)?.authorize_identity_call()?;
        let account_id = AccountId::try_from(request.into_inner())?;
        let erased = self.sessions.delete_account(&account_id, &actor).await?;
        Ok(Response::new(pb::DeleteAccountResponse {
            account_id: account_id.to_string(),
            ..erased.into()
        }))
    }
}
