//! The one error type of the typed clients, read from a [`tonic::Status`] and its rich details
//! (`google.rpc.ErrorInfo`, `BadRequest`, `RetryInfo`).

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::{
    ConnectError, ERROR_DOMAIN,
    proto::{ErrorReason, SsoProtocol},
};

/// Why a call failed: one variant per condition a caller acts on.
///
/// Built from the server's [`Status`] by reading its `google.rpc.ErrorInfo` reason (domain
/// [`ERROR_DOMAIN`]), its `BadRequest` field violations and its `RetryInfo` delay. A status
/// this crate does not recognise is kept whole in [`Error::Other`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The account is linked to an organisation's single sign-on, so Active sessions is not
    /// available for it (`FAILED_PRECONDITION`, reason `ACCOUNT_SSO_LINKED`). Hide the page.
    #[error(
        "the account is linked to {protocol:?} single sign-on; Active sessions is not available"
    )]
    SsoLinked {
        /// SAML or OIDC (`Unspecified` if the server did not say).
        protocol: SsoProtocol,
    },
    /// The identity system disabled the account, or is deleting it (`FAILED_PRECONDITION`,
    /// reason `ACCOUNT_DISABLED`): it may not sign in, and its owner-facing calls are refused.
    #[error("the account is disabled")]
    AccountDisabled,
    /// The row or session is the caller's current session (`FAILED_PRECONDITION`, reason
    /// `CURRENT_SESSION`): it ends by signing out, or by logging out of all sessions.
    #[error("that is the current session; sign out or log out of all sessions instead")]
    CurrentSession,
    /// The row's status cannot be confirmed (`FAILED_PRECONDITION`, reason `STATUS_UNAVAILABLE`):
    /// only logging out of all sessions ends it.
    #[error("the session's status cannot be confirmed; log out of all sessions ends it")]
    StatusUnavailable,
    /// No such session, row, device, revocation or account for this caller (`NOT_FOUND`).
    #[error("not found")]
    NotFound,
    /// The request was refused as malformed (`INVALID_ARGUMENT`), with the offending fields.
    #[error("invalid request: {}", describe_violations(violations))]
    InvalidArgument {
        /// `(field, description)` for each problem, as the server named them (for example
        /// `("device_id", "must be 1 to 128 characters")` or `("page_token", ...)`).
        violations: Vec<(String, String)>,
    },
    /// The calling service presented no credential or an unknown one (`UNAUTHENTICATED`, reason
    /// `CALLER_UNAUTHENTICATED`). Check the bearer token or client certificate.
    #[error("the calling service is not authenticated")]
    Unauthenticated,
    /// The calling service's role or products do not allow this call (`PERMISSION_DENIED`).
    #[error("the calling service is not allowed to make this call")]
    PermissionDenied,
    /// The session token given as the owner is of a kind the page never shows (third-party app,
    /// connected app, "Sign in with ChatGPT" for a third-party service, CLI), so it does not
    /// prove the owner (`PERMISSION_DENIED`, reason `SUBJECT_NOT_OWNER_SESSION`). Use the
    /// user's browser or first-party app session.
    #[error("that session token does not prove the account's owner (not a first-party session)")]
    NotOwnerSession,
    /// A retried registration's token can no longer be returned: the server's token seal key
    /// changed (`FAILED_PRECONDITION`, reason `SEALED_TOKEN_UNAVAILABLE`). The session named here
    /// is unaffected; register again with a new request id.
    #[error("the token of registration {session_id} can no longer be returned; register again")]
    SealedTokenUnavailable {
        /// The session the request id created (empty if the server did not say).
        session_id: String,
    },
    /// The user's session token is not valid: unknown, expired or revoked (`UNAUTHENTICATED`,
    /// reason `SESSION_NOT_VALID`), or malformed (`INVALID_ARGUMENT` naming only a
    /// `session_token` field). Sign the user out.
    #[error("the session token is not valid")]
    SessionNotValid,
    /// A registration request id was used before with a different request (`ALREADY_EXISTS`,
    /// reason `REQUEST_ID_REUSED`). Use a fresh request id per sign-in.
    #[error("the registration request id was already used for a different sign-in")]
    RequestIdReused,
    /// The calling service is over its rate limit (`RESOURCE_EXHAUSTED`, reason `RATE_LIMITED`).
    #[error("rate limited{}", after(retry_after))]
    RateLimited {
        /// How long the server asked to wait before retrying.
        retry_after: Option<Duration>,
    },
    /// The server is at its limit of calls in flight, or draining (`UNAVAILABLE`, reason
    /// `OVERLOADED`). Retry after the delay, ideally on another replica.
    #[error("the server is overloaded{}", after(retry_after))]
    Overloaded {
        /// How long the server asked to wait before retrying.
        retry_after: Option<Duration>,
    },
    /// The server or its database cannot be reached now (`UNAVAILABLE`, including reason
    /// `STORE_UNAVAILABLE` and transport failures). Retry later.
    #[error("the service is unavailable{}", after(retry_after))]
    Unavailable {
        /// How long the server asked to wait before retrying, if it said.
        retry_after: Option<Duration>,
    },
    /// A revocation stream cursor is no longer (or not yet) in the server's log
    /// (`OUT_OF_RANGE`): drop every cached validation and watch again from an empty cursor.
    #[error("the revocation cursor is out of range; start again from an empty cursor")]
    CursorExpired,
    /// Any other status (for example `DEADLINE_EXCEEDED` or `INTERNAL`).
    #[error("call failed: {}: {}", .0.code(), .0.message())]
    Other(Status),
    /// The connection could not be opened.
    #[error(transparent)]
    Connect(#[from] ConnectError),
}

fn after(retry_after: &Option<Duration>) -> String {
    retry_after
        .map(|delay| format!("; retry after {delay:?}"))
        .unwrap_or_default()
}

fn describe_violations(violations: &[(String, String)]) -> String {
    if violations.is_empty() {
        return "no field named".into();
    }
    violations
        .iter()
        .map(|(field, description)| format!("{field}: {description}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// True when trying the same call again later may succeed: [`Unavailable`](Self::Unavailable),
    /// [`Overloaded`](Self::Overloaded), [`RateLimited`](Self::RateLimited) with a delay, and a
    /// server that could not be reached. Only idempotent calls should be retried; the typed
    /// clients do so themselves within their [`RetryPolicy`](crate::RetryPolicy).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unavailable { .. } | Self::Overloaded { .. } => true,
            Self::RateLimited { retry_after } => retry_after.is_some(),
            Self::Connect(ConnectError::Unreachable { .. }) => true,
            _ => false,
        }
    }

    /// The delay the server asked for before a retry, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after }
            | Self::Overloaded { retry_after }
            | Self::Unavailable { retry_after } => *retry_after,
            _ => None,
        }
    }
}

/// True when the status was made on this side because the connection failed under the call
/// (the replica went away, sent GOAWAY, reset the stream, closed the connection mid-call): tonic
/// reports that as INTERNAL, UNKNOWN or CANCELLED with the transport error as its source (a
/// status the server sent has no source). No server answered, so for the caller it is
/// the service being unavailable, and an idempotent call may be retried elsewhere.
fn cut_off_by_the_connection(status: &Status) -> bool {
    if !matches!(
        status.code(),
        Code::Internal | Code::Unknown | Code::Cancelled
    ) {
        return false;
    }
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        if error.is::<tonic::transport::Error>() {
            return true;
        }
        source = error.source();
    }
    false
}

impl Error {
    /// A refused request; one refused only for its user session token's form is a token that
    /// is not signed in.
    fn invalid_argument(violations: Vec<(String, String)>) -> Self {
        let malformed_token_only = !violations.is_empty()
            && violations
                .iter()
                .all(|(field, _)| field == "session_token" || field.ends_with(".session_token"));
        if malformed_token_only {
            Self::SessionNotValid
        } else {
            Self::InvalidArgument { violations }
        }
    }
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        if cut_off_by_the_connection(&status) {
            return Self::Unavailable { retry_after: None };
        }
        let details = status.get_error_details();
        let retry_after = details.retry_info().and_then(|info| info.retry_delay);
        let info = details
            .error_info()
            .filter(|info| info.domain == ERROR_DOMAIN);
        let violations = || {
            details
                .bad_request()
                .map(|bad| {
                    bad.field_violations
                        .iter()
                        .map(|v| (v.field.clone(), v.description.clone()))
                        .collect()
                })
                .unwrap_or_default()
        };
        if let Some(info) = info
            && let Some(reason) = ErrorReason::from_reason(&info.reason)
        {
            match reason {
                ErrorReason::AccountSsoLinked => {
                    let protocol = info
                        .metadata
                        .get("sso_protocol")
                        .and_then(|name| {
                            SsoProtocol::from_str_name(name).or_else(|| {
                                SsoProtocol::from_str_name(&format!("SSO_PROTOCOL_{name}"))
                            })
                        })
                        .unwrap_or(SsoProtocol::Unspecified);
                    return Self::SsoLinked { protocol };
                }
                ErrorReason::CurrentSession => return Self::CurrentSession,
                ErrorReason::AccountDisabled => return Self::AccountDisabled,
                ErrorReason::StatusUnavailable => return Self::StatusUnavailable,
                ErrorReason::SessionNotValid => return Self::SessionNotValid,
                ErrorReason::RequestIdReused => return Self::RequestIdReused,
                ErrorReason::NotFound => return Self::NotFound,
                ErrorReason::CallerUnauthenticated => return Self::Unauthenticated,
                ErrorReason::CallerNotAllowed => return Self::PermissionDenied,
                ErrorReason::RateLimited => return Self::RateLimited { retry_after },
                ErrorReason::Overloaded => return Self::Overloaded { retry_after },
                ErrorReason::StoreUnavailable | ErrorReason::RevocationFeedStale => {
                    return Self::Unavailable { retry_after };
                }
                ErrorReason::PageTokenInvalid | ErrorReason::InvalidRequest => {
                    return Self::invalid_argument(violations());
                }
                ErrorReason::CursorNotResumable => return Self::CursorExpired,
                // Not a cursor problem, whatever its code says: the caller built too big a request.
                ErrorReason::RequestTooLarge => return Self::Other(status),
                ErrorReason::SubjectNotOwnerSession => return Self::NotOwnerSession,
                ErrorReason::SealedTokenUnavailable => {
                    return Self::SealedTokenUnavailable {
                        session_id: info.metadata.get("session_id").cloned().unwrap_or_default(),
                    };
                }
                ErrorReason::Unspecified => {}
            }
        }
        match status.code() {
            Code::NotFound => Self::NotFound,
            Code::InvalidArgument => Self::invalid_argument(violations()),
            Code::Unauthenticated => Self::Unauthenticated,
            Code::PermissionDenied => Self::PermissionDenied,
            Code::Unavailable => Self::Unavailable { retry_after },
            Code::ResourceExhausted if retry_after.is_some() => Self::RateLimited { retry_after },
            Code::OutOfRange => Self::CursorExpired,
            _ => Self::Other(status),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::collections::HashMap;

    use tonic_types::ErrorDetails;

    use super::*;

    fn refusal(code: Code, reason: ErrorReason, metadata: &[(&str, &str)]) -> Status {
        let metadata = metadata
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<HashMap<_, _>>();
        let details = ErrorDetails::with_error_info(reason.reason(), ERROR_DOMAIN, metadata);
        Status::with_error_details(code, "refused", details)
    }

    #[test]
    fn reasons_map_to_variants() {
        let sso = refusal(
            Code::FailedPrecondition,
            ErrorReason::AccountSsoLinked,
            &[("sso_protocol", "OIDC")],
        );
        assert!(matches!(
            Error::from(sso),
            Error::SsoLinked {
                protocol: SsoProtocol::Oidc
            }
        ));
        let current = refusal(Code::FailedPrecondition, ErrorReason::CurrentSession, &[]);
        assert!(matches!(Error::from(current), Error::CurrentSession));
        let denied = refusal(Code::PermissionDenied, ErrorReason::CallerNotAllowed, &[]);
        assert!(matches!(Error::from(denied), Error::PermissionDenied));
        let not_valid = refusal(Code::Unauthenticated, ErrorReason::SessionNotValid, &[]);
        assert!(matches!(Error::from(not_valid), Error::SessionNotValid));
        // A precondition with no ErrorInfo is not guessed at.
        assert!(matches!(
            Error::from(Status::failed_precondition("?")),
            Error::Other(_)
        ));
    }

    #[test]
    fn a_malformed_user_token_is_a_session_not_valid() {
        for reason in [None, Some(ErrorReason::InvalidRequest)] {
            let refused = |fields: &[&str]| {
                let mut details = ErrorDetails::new();
                for field in fields {
                    details.add_bad_request_violation(*field, "malformed");
                }
                if let Some(reason) = reason {
                    details.set_error_info(reason.reason(), ERROR_DOMAIN, HashMap::new());
                }
                Error::from(Status::with_error_details(
                    Code::InvalidArgument,
                    "bad",
                    details,
                ))
            };
            assert!(matches!(
                refused(&["subject.session_token"]),
                Error::SessionNotValid
            ));
            assert!(matches!(
                refused(&["session_token"]),
                Error::SessionNotValid
            ));
            assert!(matches!(
                refused(&["session_token", "ip_address"]),
                Error::InvalidArgument { .. }
            ));
            assert!(matches!(refused(&[]), Error::InvalidArgument { .. }));
        }
    }

    #[test]
    fn retry_info_is_read() {
        let mut details = ErrorDetails::with_retry_info(Some(Duration::from_millis(250)));
        details.set_error_info(
            ErrorReason::RateLimited.reason(),
            ERROR_DOMAIN,
            HashMap::new(),
        );
        let status = Status::with_error_details(Code::ResourceExhausted, "slow down", details);
        let err = Error::from(status);
        assert!(
            matches!(err, Error::RateLimited { retry_after: Some(d) } if d == Duration::from_millis(250))
        );
        assert!(err.is_retryable());

        let bare = Error::from(Status::unavailable("connection refused"));
        assert!(matches!(bare, Error::Unavailable { retry_after: None }));
        assert!(bare.is_retryable());
        // RESOURCE_EXHAUSTED without a delay (for example a message too large) is final.
        let too_big = Error::from(Status::resource_exhausted("message too large"));
        assert!(matches!(too_big, Error::Other(_)));
        assert!(!too_big.is_retryable());
    }

    #[test]
    fn violations_are_listed() {
        let mut details = ErrorDetails::new();
        details
            .add_bad_request_violation("device_id", "must not be empty")
            .add_bad_request_violation("product", "must be set");
        let status = Status::with_error_details(Code::InvalidArgument, "bad", details);
        let Error::InvalidArgument { violations } = Error::from(status) else {
            panic!("not InvalidArgument");
        };
        assert_eq!(
            violations,
            [
                ("device_id".to_owned(), "must not be empty".to_owned()),
                ("product".to_owned(), "must be set".to_owned())
            ]
        );
    }
}
