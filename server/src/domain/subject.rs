//! Who an owner-facing call is about. The settings page presents the user's own session token:
//! the account and the current session are derived from it, never taken from the request. Only
//! a session of a kind the page shows (browser, first-party app) proves the owner: a
//! third-party, connected-app, "Sign in with ChatGPT" or CLI token is refused
//! (SUBJECT_NOT_OWNER_SESSION). An operator names an account and has no current session.

use std::sync::Arc;

use super::{
    DomainError,
    account::Account,
    ids::{AccountId, DeviceId, SessionId},
    session::Lifetimes,
    token::SessionToken,
};
use crate::{
    clock::Clock,
    store::{Store, accounts, sessions},
};

/// Whose sessions, devices or history a call is about, as the request said.
#[derive(Debug, Clone)]
pub enum Subject {
    /// The signed-in user's own session token.
    SessionToken(SessionToken),
    /// An account id (operators).
    Account(AccountId),
}

/// A subject resolved against the store.
#[derive(Debug, Clone)]
pub struct Owner {
    /// The account.
    pub account_id: AccountId,
    /// What is stored of it; `None` when never seen.
    pub account: Option<Account>,
    /// The caller's current session, when the caller presented a session token.
    pub current_session: Option<SessionId>,
    /// The device of the current session: the current row, which no row or session log-out
    /// may target.
    pub current_device: Option<DeviceId>,
}

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
    /// [`DomainError::SessionNotValid`]; one of a hidden kind is
    /// [`DomainError::NotOwnerSession`].
    pub async fn resolve(&self, subject: &Subject) -> Result<Owner, DomainError> {
        match subject {
            Subject::Account(account_id) => Ok(Owner {
                account: accounts::find(self.store.reader(), account_id).await?,
                account_id: account_id.clone(),
                current_session: None,
                current_device: None,
            }),
            Subject::SessionToken(token) => {
                let found = sessions::find_by_token_hash(self.store.reader(), &token.hash())
                    .await?
                    .ok_or(DomainError::SessionNotValid)?;
                if found.account_disabled {
                    return Err(DomainError::AccountDisabled);
                }
                let now = self.clock.now();
                if !found
                    .session
                    .is_active(now, self.lifetimes.idle_timeout, found.cut)
                {
                    return Err(DomainError::SessionNotValid);
                }
                if !found.session.client_kind.is_visible() {
                    return Err(DomainError::NotOwnerSession);
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
