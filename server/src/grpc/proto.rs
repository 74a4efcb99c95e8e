//! Conversions between protobuf messages and domain types, in both directions, beside each
//! other so that the wire contract and the domain stay in step.

use active_sessions::v1 as pb;

use crate::domain::{
    account::{Account, Eligibility, SsoProtocol, WorkspaceType},
    ids::AccountId,
    subject::Subject,
    text::Violations,
    token::SessionToken,
};

/// Parses a required enum field, refusing UNSPECIFIED and unknown numbers.
pub fn required_enum<E, T>(
    violations: &mut Violations,
    field: &str,
    raw: i32,
    convert: impl FnOnce(E) -> Option<T>,
) -> Option<T>
where
    E: TryFrom<i32>,
{
    match E::try_from(raw).ok().and_then(convert) {
        Some(value) => Some(value),
        None if raw == 0 => {
            violations.add(field, "must be set");
            None
        }
        None => {
            violations.add(field, format!("unknown value {raw}"));
            None
        }
    }
}

/// Parses an account id field.
pub fn account_id(violations: &mut Violations, field: &str, raw: &str) -> Option<AccountId> {
    violations.check(field, AccountId::parse(raw))
}

/// proto -> domain: SSO protocol.
pub fn sso_protocol_from_proto(value: pb::SsoProtocol) -> Option<SsoProtocol> {
    match value {
        pb::SsoProtocol::Unspecified => None,
        pb::SsoProtocol::Saml => Some(SsoProtocol::Saml),
        pb::SsoProtocol::Oidc => Some(SsoProtocol::Oidc),
    }
}

/// proto -> domain: workspace type.
pub fn workspace_type_from_proto(value: pb::WorkspaceType) -> Option<WorkspaceType> {
    match value {
        pb::WorkspaceType::Unspecified => None,
        pb::WorkspaceType::Personal => Some(WorkspaceType::Personal),
        pb::WorkspaceType::Managed => Some(WorkspaceType::Managed),
    }
}

/// domain -> proto: workspace type.
pub fn workspace_type_to_proto(value: WorkspaceType) -> pb::WorkspaceType {
    match value {
        WorkspaceType::Unknown => pb::WorkspaceType::Unspecified,
        WorkspaceType::Personal => pb::WorkspaceType::Personal,
        WorkspaceType::Managed => pb::WorkspaceType::Managed,
    }
}

/// domain -> proto: SSO protocol.
pub fn sso_protocol_to_proto(value: SsoProtocol) -> pb::SsoProtocol {
    match value {
        SsoProtocol::Saml => pb::SsoProtocol::Saml,
        SsoProtocol::Oidc => pb::SsoProtocol::Oidc,
    }
}

/// domain -> proto: eligibility reason.
pub fn ineligibility_reason(eligibility: Eligibility) -> pb::IneligibilityReason {
    match eligibility {
        Eligibility::Eligible => pb::IneligibilityReason::Unspecified,
        Eligibility::SsoLinked(SsoProtocol::Saml) => pb::IneligibilityReason::SsoLinkedSaml,
        Eligibility::SsoLinked(SsoProtocol::Oidc) => pb::IneligibilityReason::SsoLinkedOidc,
        Eligibility::Disabled => pb::IneligibilityReason::AccountDisabled,
    }
}

/// domain -> proto: account.
pub fn account_to_proto(account: &Account) -> pb::Account {
    pb::Account {
        account_id: account.account_id.to_string(),
        workspace_type: workspace_type_to_proto(account.workspace_type) as i32,
        sso_link: account.sso_link.as_ref().map(|link| pb::SsoLink {
            protocol: sso_protocol_to_proto(link.protocol) as i32,
            organization_id: link.organization_id.to_string(),
            linked_at: Some(link.linked_at.to_proto()),
        }),
        created_at: Some(account.created_at.to_proto()),
        updated_at: Some(account.updated_at.to_proto()),
        disabled_at: account.disabled_at.map(|at| at.to_proto()),
    }
}

/// Parses a `Subject` message field.
pub fn subject(
    violations: &mut Violations,
    field: &str,
    raw: Option<&pb::Subject>,
) -> Option<Subject> {
    match raw.and_then(|raw| raw.subject.as_ref()) {
        None => {
            violations.add(field, "must set session_token or account_id");
            None
        }
        Some(pb::subject::Subject::SessionToken(token)) => violations
            .check(
                &format!("{field}.session_token"),
                SessionToken::parse(token).map_err(|err| err.to_string()),
            )
            .map(Subject::SessionToken),
        Some(pb::subject::Subject::AccountId(id)) => {
            account_id(violations, &format!("{field}.account_id"), id).map(Subject::Account)
        }
    }
}

/// The subject and page size of an owner-facing list call, validated and authorized for the
/// caller.
pub fn owner_page(
    caller: &crate::auth::Caller,
    subject_field: Option<&pb::Subject>,
    page_size_field: i32,
) -> Result<(Subject, u64), tonic::Status> {
    let mut violations = Violations::new();
    let owner = subject(&mut violations, "subject", subject_field);
    let size = super::session_proto::page_size(&mut violations, "page_size", page_size_field);
    let (owner, size) = violations.finish(owner.zip(size))?;
    caller.authorize_owner_call(&owner)?;
    Ok((owner, size))
}
