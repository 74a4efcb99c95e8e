//! Accounts and who may use Active sessions: every workspace type may, except an account linked
//! to organisation SSO. The link decides, not how the current session signed in.

use super::ids::{AccountId, OrganizationId};
use crate::clock::Timestamp;

/// The kind of workspace an account belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkspaceType {
    /// Never recorded; treated as personal.
    Unknown,
    /// A personal account.
    Personal,
    /// A workspace managed by an organisation.
    Managed,
}

impl WorkspaceType {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "UNKNOWN",
            Self::Personal => "PERSONAL",
            Self::Managed => "MANAGED",
        }
    }

    /// Reads the stored form.
    pub fn from_stored(value: &str) -> Option<Self> {
        match value {
            "UNKNOWN" => Some(Self::Unknown),
            "PERSONAL" => Some(Self::Personal),
            "MANAGED" => Some(Self::Managed),
            _ => None,
        }
    }
}

/// An organisation single sign-on protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsoProtocol {
    /// SAML 2.0.
    Saml,
    /// OpenID Connect.
    Oidc,
}

impl SsoProtocol {
    /// The stored form, also used in error metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Saml => "SAML",
            Self::Oidc => "OIDC",
        }
    }

    /// Reads the stored form.
    pub fn from_stored(value: &str) -> Option<Self> {
        match value {
            "SAML" => Some(Self::Saml),
            "OIDC" => Some(Self::Oidc),
            _ => None,
        }
    }
}

/// An account's link to an organisation's SSO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoLink {
    /// SAML or OIDC.
    pub protocol: SsoProtocol,
    /// The organisation.
    pub organization_id: OrganizationId,
    /// When the link was recorded.
    pub linked_at: Timestamp,
}

/// An account as this service knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The id from the identity system.
    pub account_id: AccountId,
    /// Personal or managed.
    pub workspace_type: WorkspaceType,
    /// The organisation SSO link, if any.
    pub sso_link: Option<SsoLink>,
    /// When the latest "log out of all sessions" took effect, for display (never moves back);
    /// which sessions it ended is decided by `revoked_generation`.
    pub revoked_before: Option<Timestamp>,
    /// How many times the account was logged out of all sessions: the cut-off generation.
    /// Visible sessions born in an earlier generation are ended. Only grows.
    pub revoked_generation: i64,
    /// When first seen.
    pub created_at: Timestamp,
    /// When last changed.
    pub updated_at: Timestamp,
}

/// Whether an account may use Active sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eligibility {
    /// It may.
    Eligible,
    /// It may not: it is linked to organisation SSO with this protocol.
    SsoLinked(SsoProtocol),
}

impl Eligibility {
    /// The rule: an SSO link makes an account ineligible; nothing else does. An account never
    /// seen (`None`) is eligible.
    pub fn of(account: Option<&Account>) -> Self {
        match account.and_then(|account| account.sso_link.as_ref()) {
            Some(link) => Self::SsoLinked(link.protocol),
            None => Self::Eligible,
        }
    }
}
