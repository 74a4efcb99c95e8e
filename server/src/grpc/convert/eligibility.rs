//! AccountEligibility: its requests into the eligibility and account lifecycle commands' inputs,
//! and accounts, eligibility checks and erasures back into messages.

use active_sessions::v1 as pb;

use super::{
    enums::number,
    fields::{account_id, count, or_empty, required_enum, subject},
};
use crate::{
    domain::{
        account::{Account, Eligibility, SsoProtocol, WorkspaceType},
        ids::{AccountId, OrganizationId},
        subject::{Owner, Subject},
        text::Violations,
    },
    service::sessions::Erasure,
};

impl TryFrom<pb::CheckEligibilityRequest> for Subject {
    type Error = Violations;

    fn try_from(request: pb::CheckEligibilityRequest) -> Result<Self, Violations> {
        let mut v = Violations::new();
        let subject = subject(&mut v, "subject", request.subject.as_ref());
        v.complete(|| subject)
    }
}

/// The requests that name one account and nothing more.
macro_rules! account_requests {
    ($($request:ident),+) => {
        $(
            impl TryFrom<pb::$request> for AccountId {
                type Error = Violations;

                fn try_from(request: pb::$request) -> Result<Self, Violations> {
                    let mut v = Violations::new();
                    let account_id = account_id(&mut v, "account_id", &request.account_id);
                    v.complete(|| account_id)
                }
            }
        )+
    };
}

account_requests!(
    GetAccountRequest,
    ClearSsoLinkRequest,
    DisableAccountRequest,
    EnableAccountRequest,
    DeleteAccountRequest
);

/// A SetSsoLink request, validated.
#[derive(Debug, Clone)]
pub struct SetSsoLink {
    /// The account.
    pub account_id: AccountId,
    /// The link's protocol.
    pub protocol: SsoProtocol,
    /// The organization it links to.
    pub organization_id: OrganizationId,
}

impl TryFrom<pb::SetSsoLinkRequest> for SetSsoLink {
    type Error = Violations;

    fn try_from(request: pb::SetSsoLinkRequest) -> Result<Self, Violations> {
        let mut v = Violations::new();
        let account_id = account_id(&mut v, "account_id", &request.account_id);
        let protocol = required_enum(&mut v, "protocol", request.protocol);
        let organization_id = v.check(
            "organization_id",
            OrganizationId::parse(&request.organization_id),
        );
        v.complete(|| {
            Some(Self {
                account_id: account_id?,
                protocol: protocol?,
                organization_id: organization_id?,
            })
        })
    }
}

/// A SetWorkspaceType request, validated.
#[derive(Debug, Clone)]
pub struct SetWorkspaceType {
    /// The account.
    pub account_id: AccountId,
    /// Its workspace type (never UNSPECIFIED).
    pub workspace_type: WorkspaceType,
}

impl TryFrom<pb::SetWorkspaceTypeRequest> for SetWorkspaceType {
    type Error = Violations;

    fn try_from(request: pb::SetWorkspaceTypeRequest) -> Result<Self, Violations> {
        let mut v = Violations::new();
        let account_id = account_id(&mut v, "account_id", &request.account_id);
        let workspace_type = required_enum(&mut v, "workspace_type", request.workspace_type);
        v.complete(|| {
            Some(Self {
                account_id: account_id?,
                workspace_type: workspace_type?,
            })
        })
    }
}

impl From<&Account> for pb::Account {
    fn from(account: &Account) -> Self {
        Self {
            account_id: account.account_id.to_string(),
            workspace_type: number(account.workspace_type),
            sso_link: account.sso_link.as_ref().map(|link| pb::SsoLink {
                protocol: number(link.protocol),
                organization_id: link.organization_id.to_string(),
                linked_at: Some(link.linked_at.to_proto()),
            }),
            created_at: Some(account.created_at.to_proto()),
            updated_at: Some(account.updated_at.to_proto()),
            disabled_at: account.disabled_at.map(|at| at.to_proto()),
        }
    }
}

/// Whether the subject's account may use the Active sessions page.
impl From<Owner> for pb::CheckEligibilityResponse {
    fn from(owner: Owner) -> Self {
        let eligibility = Eligibility::of(owner.account.as_ref());
        Self {
            account_id: owner.account_id.to_string(),
            eligible: eligibility == Eligibility::Eligible,
            reason: pb::IneligibilityReason::from(eligibility) as i32,
            workspace_type: number(
                owner
                    .account
                    .map_or(WorkspaceType::Unknown, |account| account.workspace_type),
            ),
        }
    }
}

/// What a deletion erased; the caller adds the account id.
impl From<Erasure> for pb::DeleteAccountResponse {
    fn from(erased: Erasure) -> Self {
        Self {
            account_id: String::new(),
            existed: erased.existed,
            revocation_id: or_empty(erased.revocation_id.as_ref()),
            sessions_erased: count(erased.sessions),
            trusted_devices_erased: count(erased.trusted_devices),
            security_events_erased: count(erased.security_events),
        }
    }
}
