//! Resolving who an owner-facing call is about (see `domain::subject`): a session token is
//! looked up and must be active and of a kind the page shows; an account id is read as it is.

use std::sync::Arc;

use super::ServiceError;
use crate::{
    clock::Clock,
    domain::{
        session::Lifetimes,
        subject::{Owner, Subject},
    },
    store::{Store, accounts},
};

/// Resolves subjects to owners.
#[derive(Debug, Clone)]
pub struct SubjectResolver {
    store: Store,
    clock: Arc<dyn Clock>,
    lifetimes: Lifetimes,
}

impl SubjectResolver {
    /// Builds the resolver.
    pub fn new(store: Store, clock: Arc<dyn Clock>, lifetimes: Lifetimes) -> Self {
        Self {
            store,
            clock,
            lifetimes,
        }
    }

    /// Resolves a subject. A session token that is not active now is
    /// [`ServiceError::SessionNotValid`]; one of a hidden kind is
    /// [`ServiceError::NotOwnerSession`].
    pub async fn resolve(&self, subject: &Subject) -> Result<Owner, ServiceError> {
        match subject {
            Subject::Account(account_id) => Ok(Owner {
                account: accounts::find(self.store.reader(), account_id).await?,
                account_id: account_id.clone(),
                current_session: None,
                current_device: None,
            }),
            Subject::SessionToken(token) => {
                let found = self
                    .store
                    .validity_by_token_hash(&token.hash())
                    .await?
                    .ok_or(ServiceError::SessionNotValid)?;
                if found.account_disabled {
                    return Err(ServiceError::AccountDisabled);
                }
                let now = self.clock.now();
                if !found
                    .session
                    .is_active(now, self.lifetimes.idle_timeout, found.cut)
                {
                    return Err(ServiceError::SessionNotValid);
                }
                if !found.session.facts.visible {
                    return Err(ServiceError::NotOwnerSession);
                }
                let account_id = found.session.account_id;
                Ok(Owner {
                    account: accounts::find(self.store.reader(), &account_id).await?,
                    account_id,
                    current_session: Some(found.session.session_id),
                    current_device: Some(found.session.device_id),
                })
            }
        }
    }
}
