//! The service layer's error type: every way a command can be refused, in terms a caller can act
//! on. The gRPC layer maps each variant to exactly one status code with rich details.

use crate::{
    domain::{
        account::SsoProtocol, ids::SessionId, page_token::InvalidPageToken, text::Violations,
    },
    store::StoreError,
};

/// Why a command was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed; each violation names its field.
    #[error("invalid request")]
    Invalid(Violations),
    /// The thing does not exist for this caller (also: it belongs to someone else, or is of a
    /// hidden kind, which must look exactly the same).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The account is linked to organisation SSO, so Active sessions is not available.
    #[error("Active sessions is not available for accounts linked to organisation SSO")]
    SsoLinked(SsoProtocol),
    /// The identity system disabled the account (or is deleting it).
    #[error("this account is disabled")]
    AccountDisabled,
    /// The target is the caller's current session.
    #[error("this is your current session: sign out, or log out of all sessions")]
    CurrentSession,
    /// The target's status cannot be confirmed.
    #[error("session status unavailable: use log out of all sessions")]
    StatusUnavailable,
    /// The user's session token is not valid (unknown, expired or revoked).
    #[error("the session token is not valid")]
    SessionNotValid,
    /// The registration request id was used before with a different request.
    #[error("request_id was already used for a different registration")]
    RequestIdReused,
    /// A retried registration's token no longer opens under the token seal key (rotated or
    /// lost); the session it created is unaffected.
    #[error(
        "this registration's token can no longer be returned (the token seal key changed); \
         the session is unaffected: register again with a new request_id"
    )]
    SealedTokenUnavailable(SessionId),
    /// The session token given as the subject is of a hidden kind, which does not prove the
    /// account's owner.
    #[error(
        "only a browser or first-party app session proves the account's owner; this token is \
         of a kind the Active sessions page never shows"
    )]
    NotOwnerSession,
    /// The page token was altered or issued for another account or query.
    #[error("page_token is not valid for this request")]
    PageTokenInvalid,
    /// A resume cursor older than what the revocation log retains.
    #[error("cursor is older than the retained revocation log")]
    CursorExpired,
    /// The operating system's random source failed.
    #[error("could not generate a session token")]
    Entropy,
    /// This replica has not read the revocation log recently enough to answer from memory, and
    /// the database could not answer either: it must not vouch for a session.
    #[error("revocation feed is stale and the database is unavailable: {0}")]
    RevocationFeedStale(StoreError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Violations> for ServiceError {
    fn from(violations: Violations) -> Self {
        Self::Invalid(violations)
    }
}

impl From<InvalidPageToken> for ServiceError {
    fn from(_: InvalidPageToken) -> Self {
        Self::PageTokenInvalid
    }
}
