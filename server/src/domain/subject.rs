//! Who an owner-facing call is about. The settings page presents the user's own session token:
//! the account and the current session are derived from it, never taken from the request. Only
//! a session of a kind the page shows (browser, first-party app) proves the owner: a
//! third-party, connected-app, "Sign in with ChatGPT" or CLI token is refused
//! (SUBJECT_NOT_OWNER_SESSION). An operator names an account and has no current session.

use super::{
    account::Account,
    ids::{AccountId, DeviceId, SessionId},
    token::SessionToken,
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
