//! Account eligibility commands: checking it, and the identity system's updates of SSO links and
//! workspace types. Each update is one transaction on the account row.

use std::sync::Arc;

use super::ServiceError;
use crate::{
    clock::Clock,
    domain::{
        account::{Account, Eligibility, SsoLink, SsoProtocol, WorkspaceType},
        ids::{AccountId, OrganizationId},
    },
    store::{Store, accounts},
};

/// The eligibility rules applied through the store.
#[derive(Debug, Clone)]
pub struct EligibilityService {
    store: Store,
    clock: Arc<dyn Clock>,
}

impl EligibilityService {
    /// Builds the service.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Whether the account may use Active sessions, with what is known of it. Never creates it.
    pub async fn check(
        &self,
        account_id: &AccountId,
    ) -> Result<(Eligibility, Option<Account>), ServiceError> {
        let account = accounts::find(self.store.reader(), account_id).await?;
        Ok((Eligibility::of(account.as_ref()), account))
    }

    /// Refuses an ineligible account with [`ServiceError::SsoLinked`]: the guard of every
    /// owner-facing call.
    pub fn ensure_eligible(account: Option<&Account>) -> Result<(), ServiceError> {
        match Eligibility::of(account) {
            Eligibility::Eligible => Ok(()),
            Eligibility::SsoLinked(protocol) => Err(ServiceError::SsoLinked(protocol)),
            Eligibility::Disabled => Err(ServiceError::AccountDisabled),
        }
    }

    /// Reads an account.
    pub async fn get(&self, account_id: &AccountId) -> Result<Account, ServiceError> {
        accounts::find(self.store.reader(), account_id)
            .await?
            .ok_or(ServiceError::NotFound("account"))
    }

    /// Records (or replaces) the account's SSO link.
    pub async fn set_sso_link(
        &self,
        account_id: &AccountId,
        protocol: SsoProtocol,
        organization_id: OrganizationId,
    ) -> Result<Account, ServiceError> {
        self.update(account_id, |account, now| {
            let unchanged = account.sso_link.as_ref().is_some_and(|link| {
                link.protocol == protocol && link.organization_id == organization_id
            });
            if !unchanged {
                account.sso_link = Some(SsoLink {
                    protocol,
                    organization_id,
                    linked_at: now,
                });
            }
        })
        .await
    }

    /// Removes the account's SSO link, if any.
    pub async fn clear_sso_link(&self, account_id: &AccountId) -> Result<Account, ServiceError> {
        self.update(account_id, |account, _| account.sso_link = None)
            .await
    }

    /// Records the account's workspace type.
    pub async fn set_workspace_type(
        &self,
        account_id: &AccountId,
        workspace_type: WorkspaceType,
    ) -> Result<Account, ServiceError> {
        self.update(account_id, |account, _| {
            account.workspace_type = workspace_type;
        })
        .await
    }

    /// Locks (creating if needed) the account, applies `change`, and writes it back if it
    /// changed, all in one transaction.
    async fn update(
        &self,
        account_id: &AccountId,
        change: impl FnOnce(&mut Account, crate::clock::Timestamp),
    ) -> Result<Account, ServiceError> {
        let txn = self.store.write().await?;
        let mut account = accounts::lock_or_create(&*txn, account_id, self.clock.now()).await?;
        let now = self.clock.now();
        let before = account.clone();
        change(&mut account, now);
        if account != before {
            account.updated_at = now;
            accounts::update(&*txn, &account).await?;
        }
        txn.commit().await?;
        Ok(account)
    }
}
