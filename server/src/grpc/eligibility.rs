//! `activesessions.v1.AccountEligibility`: eligibility checks for the settings page and
//! operators, the identity system's SSO-link and workspace-type updates, and its account
//! lifecycle calls (disable, enable, delete).

use active_sessions::v1::{self as pb, account_eligibility_server::AccountEligibility};
use tonic::{Request, Response, Status};

use super::proto::{
    account_id, account_to_proto, ineligibility_reason, required_enum, sso_protocol_from_proto,
    subject, workspace_type_from_proto, workspace_type_to_proto,
};
use super::session_proto::revocation_to_proto;
use crate::auth::Caller;
use crate::domain::{
    account::{Eligibility, WorkspaceType},
    ids::OrganizationId,
    text::Violations,
};
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

#[tonic::async_trait]
impl AccountEligibility for AccountEligibilityApi {
    #[tracing::instrument(name = "CheckEligibility", skip_all, fields(account_id))]
    async fn check_eligibility(
        &self,
        request: Request<pb::CheckEligibilityRequest>,
    ) -> Result<Response<pb::CheckEligibilityResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let subject = subject(&mut violations, "subject", request.subject.as_ref());
        let subject = violations.finish(subject)?;
        caller.authorize_eligibility_check(&subject)?;
        let owner = self.subjects.resolve(&subject).await?;
        tracing::Span::current().record("account_id", owner.account_id.as_str());
        let eligibility = Eligibility::of(owner.account.as_ref());
        Ok(Response::new(pb::CheckEligibilityResponse {
            account_id: owner.account_id.to_string(),
            eligible: eligibility == Eligibility::Eligible,
            reason: ineligibility_reason(eligibility) as i32,
            workspace_type: workspace_type_to_proto(
                owner
                    .account
                    .map_or(WorkspaceType::Unknown, |account| account.workspace_type),
            ) as i32,
        }))
    }

    #[tracing::instrument(name = "GetAccount", skip_all, fields(account_id = %request.get_ref().account_id.escape_debug()))]
    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::GetAccountResponse>, Status> {
        Caller::of(&request)?.authorize_identity_call()?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let account = account_id(&mut violations, "account_id", &request.account_id);
        let account_id = violations.finish(account)?;
        let account = self.eligibility.get(&account_id).await?;
        Ok(Response::new(pb::GetAccountResponse {
            account: Some(account_to_proto(&account)),
        }))
    }

    #[tracing::instrument(name = "SetSsoLink", skip_all, fields(account_id = %request.get_ref().account_id.escape_debug()))]
    async fn set_sso_link(
        &self,
        request: Request<pb::SetSsoLinkRequest>,
    ) -> Result<Response<pb::SetSsoLinkResponse>, Status> {
        Caller::of(&request)?.authorize_identity_call()?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let account = account_id(&mut violations, "account_id", &request.account_id);
        let protocol = required_enum(
            &mut violations,
            "protocol",
            request.protocol,
            sso_protocol_from_proto,
        );
        let organization = violations.check(
            "organization_id",
            OrganizationId::parse(&request.organization_id),
        );
        let (account_id, protocol, organization_id) = violations.finish(
            account
                .zip(protocol)
                .zip(organization)
                .map(|((a, p), o)| (a, p, o)),
        )?;
        let account = self
            .eligibility
            .set_sso_link(&account_id, protocol, organization_id)
            .await?;
        tracing::info!(account_id = %account_id, protocol = protocol.as_str(), "SSO link recorded");
        Ok(Response::new(pb::SetSsoLinkResponse {
            account: Some(account_to_proto(&account)),
        }))
    }

    #[tracing::instrument(name = "ClearSsoLink", skip_all, fields(account_id = %request.get_ref().account_id.escape_debug()))]
    async fn clear_sso_link(
        &self,
        request: Request<pb::ClearSsoLinkRequest>,
    ) -> Result<Response<pb::ClearSsoLinkResponse>, Status> {
        Caller::of(&request)?.authorize_identity_call()?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let account = account_id(&mut violations, "account_id", &request.account_id);
        let account_id = violations.finish(account)?;
        let account = self.eligibility.clear_sso_link(&account_id).await?;
        tracing::info!(account_id = %account_id, "SSO link cleared");
        Ok(Response::new(pb::ClearSsoLinkResponse {
            account: Some(account_to_proto(&account)),
        }))
    }

    #[tracing::instrument(name = "SetWorkspaceType", skip_all, fields(account_id = %request.get_ref().account_id.escape_debug()))]
    async fn set_workspace_type(
        &self,
        request: Request<pb::SetWorkspaceTypeRequest>,
    ) -> Result<Response<pb::SetWorkspaceTypeResponse>, Status> {
        Caller::of(&request)?.authorize_identity_call()?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let account = account_id(&mut violations, "account_id", &request.account_id);
        let workspace_type = required_enum(
            &mut violations,
            "workspace_type",
            request.workspace_type,
            workspace_type_from_proto,
        );
        let (account_id, workspace_type) = violations.finish(account.zip(workspace_type))?;
        let account = self
            .eligibility
            .set_workspace_type(&account_id, workspace_type)
            .await?;
        Ok(Response::new(pb::SetWorkspaceTypeResponse {
            account: Some(account_to_proto(&account)),
        }))
    }

    #[tracing::instrument(name = "DisableAccount", skip_all, fields(account_id = %request.get_ref().account_id.escape_debug()))]
    async fn disable_account(
        &self,
        request: Request<pb::DisableAccountRequest>,
    ) -> Result<Response<pb::DisableAccountResponse>, Status> {
        let actor = Caller::of(&request)?.authorize_identity_call()?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let account = account_id(&mut violations, "account_id", &request.account_id);
        let account_id = violations.finish(account)?;
        let (account, revocation) = self.sessions.disable_account(&account_id, &actor).await?;
        Ok(Response::new(pb::DisableAccountResponse {
            account: Some(account_to_proto(&account)),
            revocation: revocation.map(|revocation| revocation_to_proto(&revocation, true)),
        }))
    }

    #[tracing::instrument(name = "EnableAccount", skip_all, fields(account_id = %request.get_ref().account_id.escape_debug()))]
    async fn enable_account(
        &self,
        request: Request<pb::EnableAccountRequest>,
    ) -> Result<Response<pb::EnableAccountResponse>, Status> {
        let actor = Caller::of(&request)?.authorize_identity_call()?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let account = account_id(&mut violations, "account_id", &request.account_id);
        let account_id = violations.finish(account)?;
        let account = self.sessions.enable_account(&account_id, &actor).await?;
        Ok(Response::new(pb::EnableAccountResponse {
            account: Some(account_to_proto(&account)),
        }))
    }

    #[tracing::instrument(name = "DeleteAccount", skip_all, fields(account_id = %request.get_ref().account_id.escape_debug()))]
    async fn delete_account(
        &self,
        request: Request<pb::DeleteAccountRequest>,
    ) -> Result<Response<pb::DeleteAccountResponse>, Status> {
        let actor = Caller::of(&request)?.authorize_identity_call()?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let account = account_id(&mut violations, "account_id", &request.account_id);
        let account_id = violations.finish(account)?;
        let erased = self.sessions.delete_account(&account_id, &actor).await?;
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        Ok(Response::new(pb::DeleteAccountResponse {
            account_id: account_id.to_string(),
            existed: erased.existed,
            revocation_id: erased
                .revocation_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            sessions_erased: count(erased.sessions),
            trusted_devices_erased: count(erased.trusted_devices),
            security_events_erased: count(erased.security_events),
        }))
    }
}
