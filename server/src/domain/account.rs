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
    /// The generation below which sessions of the hidden kinds are cut off too (raised by
    /// log-outs that include them). Never above `revoked_generation`.
    pub hidden_cut_generation: i64,
    /// When the identity system disabled the account; `None` while enabled.
    pub disabled_at: Option<Timestamp>,
    /// When a deletion of the account began; its row is the last thing erased.
    pub deleted_at: Option<Timestamp>,
    /// When first seen.
    pub created_at: Timestamp,
    /// When last changed.
    pub updated_at: Timestamp,
}

impl Account {
    /// An account as it is when first seen: personal or managed unknown, no SSO link, never
    /// logged out of all sessions.
    pub fn first_seen(account_id: AccountId, now: Timestamp) -> Self {
        Self {
            account_id,
            workspace_type: WorkspaceType::Unknown,
            sso_link: None,
            revoked_before: None,
            revoked_generation: 0,
            hidden_cut_generation: 0,
            disabled_at: None,
            deleted_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// True while the account is disabled or being deleted: no sign-in is accepted.
    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some() || self.deleted_at.is_some()
    }

    /// The cut-offs its sessions are judged by.
    pub fn generation_cut(&self) -> super::session::GenerationCut {
        super::session::GenerationCut {
            visible: self.revoked_generation,
            hidden: self.hidden_cut_generation,
        }
    }
}

/// Whether an account may use Active sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eligibility {
    /// It may.
    Eligible,
    /// It may not: it is linked to organisation SSO with this protocol.
    SsoLinked(SsoProtocol),
    /// It may not: the identity system disabled it (or is deleting it).
    Disabled,
}

impl Eligibility {
    /// The rule: a disabled account is ineligible, and so is one with an SSO link; nothing else
    /// makes an account ineligible. An account never seen (`None`) is eligible.
    pub fn of(account: Option<&Account>) -> Self {
        if account.is_some_and(Account::is_disabled) {
            return Self::Disabled;
        }
        match account.and_then(|account| account.sso_link.as_ref()) {
            Some(link) => Self::SsoLinked(link.protocol),
            None => Self::Eligible,
        }
    }
}
