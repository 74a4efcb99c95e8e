//! [`EligibilityClient`]: who may use Active sessions, and the identity system's records that
//! decide it.

use std::time::SystemTime;

use crate::{
    Connection, Error, Owner, RetryPolicy, Revocation, Transport,
    call::{Caller, required},
    proto::{
        self, IneligibilityReason, SsoProtocol, WorkspaceType,
        account_eligibility_client::AccountEligibilityClient,
    },
    retry::Idempotency::{Idempotent, Once},
    types::{non_empty, time},
};

type Service = AccountEligibilityClient<Transport>;

/// The typed client of `AccountEligibility`. Cheap to clone.
///
/// Checks and reads are retried according to the [`RetryPolicy`]; the identity system's writes
/// make exactly one attempt.
#[derive(Debug, Clone)]
pub struct EligibilityClient {
    caller: Caller<Service>,
}

/// Whether an account may use Active sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eligibility {
    /// The account that was checked.
    pub account_id: String,
    /// True when the account may use Active sessions.
    pub eligible: bool,
    /// When not eligible, why (`Unspecified` when eligible).
    pub reason: IneligibilityReason,
    /// The workspace type as last recorded (`Unspecified` when never recorded).
    pub workspace_type: WorkspaceType,
}

/// An account's single sign-on link to an organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoLink {
    /// SAML or OIDC.
    pub protocol: SsoProtocol,
    /// The organisation's id in the identity system.
    pub organization_id: String,
    /// When the link was recorded.
    pub linked_at: Option<SystemTime>,
}

/// An account as the service knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The account id from the identity system.
    pub account_id: String,
    /// Personal or managed.
    pub workspace_type: WorkspaceType,
    /// The organisation SSO link, if any (such an account may not use Active sessions).
    pub sso_link: Option<SsoLink>,
    /// When the service first saw the account.
    pub created_at: Option<SystemTime>,
    /// When the account's record last changed.
    pub updated_at: Option<SystemTime>,
    /// When the identity system disabled the account; `None` while enabled.
    pub disabled_at: Option<SystemTime>,
}

impl From<proto::Account> for Account {
    fn from(account: proto::Account) -> Self {
        let disabled_at = account
            .disabled_at
            .and_then(|at| SystemTime::try_from(at).ok());
        Self {
            workspace_type: account.workspace_type(),
            disabled_at,
            account_id: account.account_id,
            sso_link: account.sso_link.map(|link| SsoLink {
                protocol: link.protocol(),
                organization_id: link.organization_id,
                linked_at: time(link.linked_at),
            }),
            created_at: time(account.created_at),
            updated_at: time(account.updated_at),
        }
    }
}

impl Account {
    /// The account a response must carry.
    fn required(account: Option<proto::Account>) -> Result<Self, Error> {
        required(account, "account").map(Self::from)
    }
}

impl From<proto::CheckEligibilityResponse> for Eligibility {
    fn from(response: proto::CheckEligibilityResponse) -> Self {
        Self {
            reason: response.reason(),
            workspace_type: response.workspace_type(),
            account_id: response.account_id,
            eligible: response.eligible,
        }
    }
}

impl EligibilityClient {
    /// A client over `connection`, with the connection's retry policy.
    pub fn new(connection: &Connection) -> Self {
        Self {
            caller: Caller::new(connection.account_eligibility(), connection.retry_policy()),
        }
    }

    /// This client with another retry policy.
    pub fn with_retry_policy(self, policy: RetryPolicy) -> Self {
        Self {
            caller: self.caller.with_retry_policy(policy),
        }
    }

    /// Whether the owner's account may use Active sessions, and if not why. An account never
    /// seen before is eligible.
    pub async fn check(&self, owner: Owner) -> Result<Eligibility, Error> {
        let message = proto::CheckEligibilityRequest {
            subject: Some(owner.subject()),
        };
        self.caller
            .call(Idempotent, message, Service::check_eligibility)
            .await
            .map(Eligibility::from)
    }

    /// What the service knows of an account; [`Error::NotFound`] for an account never seen.
    pub async fn get_account(&self, account_id: &str) -> Result<Account, Error> {
        let message = proto::GetAccountRequest {
            account_id: account_id.to_owned(),
        };
        let response = self
            .caller
            .call(Idempotent, message, Service::get_account)
            .await?;
        Account::required(response.account)
    }

    /// Records that the account is linked to an organisation's SSO (identity system; never
    /// retried).
    pub async fn set_sso_link(
        &self,
        account_id: &str,
        protocol: SsoProtocol,
        organization_id: &str,
    ) -> Result<Account, Error> {
        let message = proto::SetSsoLinkRequest {
            account_id: account_id.to_owned(),
            protocol: protocol as i32,
            organization_id: organization_id.to_owned(),
        };
        let response = self
            .caller
            .call(Once, message, Service::set_sso_link)
            .await?;
        Account::required(response.account)
    }

    /// Removes the account's SSO link (identity system; never retried).
    pub async fn clear_sso_link(&self, account_id: &str) -> Result<Account, Error> {
        let message = proto::ClearSsoLinkRequest {
            account_id: account_id.to_owned(),
        };
        let response = self
            .caller
            .call(Once, message, Service::clear_sso_link)
            .await?;
        Account::required(response.account)
    }

    /// Records the account's workspace type (identity system; never retried).
    pub async fn set_workspace_type(
        &self,
        account_id: &str,
        workspace_type: WorkspaceType,
    ) -> Result<Account, Error> {
        let message = proto::SetWorkspaceTypeRequest {
            account_id: account_id.to_owned(),
            workspace_type: workspace_type as i32,
        };
        let response = self
            .caller
            .call(Once, message, Service::set_workspace_type)
            .await?;
        Account::required(response.account)
    }

    /// Disables the account (identity system, operators; retried: disabling twice changes
    /// nothing): every session of every kind ends at once, sign-ins are refused with
    /// [`Error::AccountDisabled`] until [`enable_account`](Self::enable_account). Returns the
    /// account and the revocation it recorded (`None` when it was already disabled).
    pub async fn disable_account(
        &self,
        account_id: &str,
    ) -> Result<(Account, Option<Revocation>), Error> {
        let message = proto::DisableAccountRequest {
            account_id: account_id.to_owned(),
        };
        let response = self
            .caller
            .call(Idempotent, message, Service::disable_account)
            .await?;
        let revocation = response.revocation.map(Revocation::from);
        Ok((Account::required(response.account)?, revocation))
    }

    /// Enables a disabled account again (identity system, operators; retried).
    pub async fn enable_account(&self, account_id: &str) -> Result<Account, Error> {
        let message = proto::EnableAccountRequest {
            account_id: account_id.to_owned(),
        };
        let response = self
            .caller
            .call(Idempotent, message, Service::enable_account)
            .await?;
        Account::required(response.account)
    }

    /// Deletes everything the service keeps about the account (identity system, operators;
    /// retried: a retry finishes an interrupted deletion). Every session ends at once and the
    /// revocation stays on the stream, so validation caches drop them.
    pub async fn delete_account(&self, account_id: &str) -> Result<AccountDeletion, Error> {
        let message = proto::DeleteAccountRequest {
            account_id: account_id.to_owned(),
        };
        self.caller
            .call(Idempotent, message, Service::delete_account)
            .await
            .map(AccountDeletion::from)
    }
}

/// What [`EligibilityClient::delete_account`] erased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountDeletion {
    /// The account.
    pub account_id: String,
    /// False when the service held nothing about it.
    pub existed: bool,
    /// The revocation left on the stream (reason `AccountDeleted`).
    pub revocation_id: Option<String>,
    /// Session rows erased.
    pub sessions_erased: i64,
    /// Trusted devices erased.
    pub trusted_devices_erased: i64,
    /// Security events erased.
    pub security_events_erased: i64,
}

impl From<proto::DeleteAccountResponse> for AccountDeletion {
    fn from(response: proto::DeleteAccountResponse) -> Self {
        Self {
            existed: response.existed,
            revocation_id: non_empty(response.revocation_id),
            sessions_erased: response.sessions_erased,
            trusted_devices_erased: response.trusted_devices_erased,
            security_events_erased: response.security_events_erased,
            account_id: response.account_id,
        }
    }
}
