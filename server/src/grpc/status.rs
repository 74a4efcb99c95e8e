//! The one mapping from service errors, bad input and auth refusals to gRPC statuses. Every
//! refusal carries a `google.rpc.ErrorInfo` (reason from `activesessions.v1.ErrorReason`, domain
//! `activesessions.v1`); bad input carries a `google.rpc.BadRequest` naming each field; a
//! transient store failure and a rate limit carry `google.rpc.RetryInfo`. Internal detail (SQL,
//! rows) is logged, never sent.

use std::{collections::HashMap, time::Duration};

use active_sessions::{ERROR_DOMAIN, v1::ErrorReason};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::auth::Refusal;
use crate::domain::text::{Violations, truncate_at_char_boundary};
use crate::service::ServiceError;

/// How long a client should wait before retrying after a transient store failure.
const STORE_RETRY_DELAY: Duration = Duration::from_secs(1);

impl From<ServiceError> for Status {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Invalid(violations) => invalid_argument(&violations),
            ServiceError::NotFound(what) => refusal(
                Code::NotFound,
                format!("{what} not found"),
                ErrorReason::NotFound,
                &[("resource", what)],
            ),
            ServiceError::SsoLinked(protocol) => refusal(
                Code::FailedPrecondition,
                err.to_string(),
                ErrorReason::AccountSsoLinked,
                &[("sso_protocol", protocol.as_str())],
            ),
            ServiceError::AccountDisabled => refusal(
                Code::FailedPrecondition,
                err.to_string(),
                ErrorReason::AccountDisabled,
                &[],
            ),
            ServiceError::CurrentSession => refusal(
                Code::FailedPrecondition,
                err.to_string(),
                ErrorReason::CurrentSession,
                &[],
            ),
            ServiceError::StatusUnavailable => refusal(
                Code::FailedPrecondition,
                err.to_string(),
                ErrorReason::StatusUnavailable,
                &[],
            ),
            ServiceError::SessionNotValid => refusal(
                Code::Unauthenticated,
                err.to_string(),
                ErrorReason::SessionNotValid,
                &[],
            ),
            ServiceError::RequestIdReused => refusal(
                Code::AlreadyExists,
                err.to_string(),
                ErrorReason::RequestIdReused,
                &[],
            ),
            ServiceError::SealedTokenUnavailable(session_id) => refusal(
                Code::FailedPrecondition,
                err.to_string(),
                ErrorReason::SealedTokenUnavailable,
                &[("session_id", &session_id.to_string())],
            ),
            ServiceError::NotOwnerSession => refusal(
                Code::PermissionDenied,
                err.to_string(),
                ErrorReason::SubjectNotOwnerSession,
                &[],
            ),
            ServiceError::PageTokenInvalid => {
                let mut details = ErrorDetails::new();
                details
                    .set_error_info(
                        ErrorReason::PageTokenInvalid.reason(),
                        ERROR_DOMAIN,
                        HashMap::new(),
                    )
                    .add_bad_request_violation("page_token", err.to_string());
                Status::with_error_details(Code::InvalidArgument, err.to_string(), details)
            }
            ServiceError::CursorExpired => refusal(
                Code::OutOfRange,
                err.to_string(),
                ErrorReason::CursorNotResumable,
                &[],
            ),
            ServiceError::Entropy => {
                tracing::error!("the OS random number generator failed");
                Status::internal("internal error")
            }
            ServiceError::Store(crate::store::StoreError::DeadlineExceeded) => {
                Status::deadline_exceeded(
                    "the call's deadline passed before its change could commit; nothing was changed",
                )
            }
            ServiceError::RevocationFeedStale(store_err) => {
                tracing::warn!(error = %store_err, "revocation feed stale and database unavailable: refusing to vouch");
                retry_after(
                    STORE_RETRY_DELAY,
                    Code::Unavailable,
                    "this replica cannot confirm the session now; try again, ideally elsewhere"
                        .into(),
                    ErrorReason::RevocationFeedStale,
                )
            }
            ServiceError::Store(store_err) if store_err.is_transient() => {
                tracing::warn!(error = %store_err, "database unavailable");
                retry_after(
                    STORE_RETRY_DELAY,
                    Code::Unavailable,
                    "the session store is unavailable; try again later".into(),
                    ErrorReason::StoreUnavailable,
                )
            }
            ServiceError::Store(store_err) => {
                tracing::error!(error = %store_err, "database error");
                Status::internal("internal error")
            }
        }
    }
}

impl From<Refusal> for Status {
    fn from(denial: Refusal) -> Self {
        let message = denial.to_string();
        match denial {
            Refusal::Unauthenticated(_) => refusal(
                Code::Unauthenticated,
                message,
                ErrorReason::CallerUnauthenticated,
                &[],
            ),
            Refusal::PermissionDenied(_) => refusal(
                Code::PermissionDenied,
                message,
                ErrorReason::CallerNotAllowed,
                &[],
            ),
            Refusal::RateLimited { wait, .. } => retry_after(
                wait,
                Code::ResourceExhausted,
                message,
                ErrorReason::RateLimited,
            ),
            Refusal::Unidentified => Status::internal(message),
        }
    }
}

impl From<Violations> for Status {
    fn from(violations: Violations) -> Self {
        invalid_argument(&violations)
    }
}

/// The longest status message an INVALID_ARGUMENT carries, in bytes. With at most
/// [`MAX_REPORTED_VIOLATIONS`](crate::domain::text::MAX_REPORTED_VIOLATIONS) bounded field
/// violations beside it, a refusal's `grpc-message` plus `grpc-status-details-bin` stay well under
/// the 8 KiB of trailers common gRPC clients accept, whatever the request.
pub const MAX_INVALID_MESSAGE_BYTES: usize = 512;

/// The field a refusal names for the violations it counts but does not list.
pub const OMITTED_VIOLATIONS_FIELD: &str = "(more)";

/// INVALID_ARGUMENT with an `ErrorInfo` (reason INVALID_REQUEST, `metadata["violations"]` the total
/// number found) and a `BadRequest` with one field violation per reported problem, plus one entry
/// counting those not reported.
pub fn invalid_argument(violations: &Violations) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(
        ErrorReason::InvalidRequest.reason(),
        ERROR_DOMAIN,
        HashMap::from([("violations".to_owned(), violations.total().to_string())]),
    );
    let mut fields = Vec::new();
    for violation in violations.iter() {
        details.add_bad_request_violation(&violation.field, &violation.description);
        fields.push(format!("{}: {}", violation.field, violation.description));
    }
    if violations.omitted() > 0 {
        let more = format!("and {} more violations not listed", violations.omitted());
        details.add_bad_request_violation(OMITTED_VIOLATIONS_FIELD, &more);
        fields.push(more);
    }
    let mut message = format!("invalid request: {}", fields.join("; "));
    truncate_at_char_boundary(&mut message, MAX_INVALID_MESSAGE_BYTES);
    Status::with_error_details(Code::InvalidArgument, message, details)
}

fn refusal(code: Code, message: String, reason: ErrorReason, metadata: &[(&str, &str)]) -> Status {
    let metadata: HashMap<String, String> = metadata
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    let mut details = ErrorDetails::new();
    details.set_error_info(reason.reason(), ERROR_DOMAIN, metadata);
    Status::with_error_details(code, message, details)
}

/// A refusal the client may retry after `wait`: `ErrorInfo` and `RetryInfo`.
fn retry_after(wait: Duration, code: Code, message: String, reason: ErrorReason) -> Status {
    let mut details = ErrorDetails::with_retry_info(Some(wait));
    details.set_error_info(reason.reason(), ERROR_DOMAIN, HashMap::new());
    Status::with_error_details(code, message, details)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn refusals_keep_their_codes_reasons_and_messages() {
        let cases = [
            (
                Refusal::Unauthenticated("unknown bearer token"),
                Code::Unauthenticated,
                Some(ErrorReason::CallerUnauthenticated),
                "unknown bearer token",
            ),
            (
                Refusal::denied("web may not act for product CODEX"),
                Code::PermissionDenied,
                Some(ErrorReason::CallerNotAllowed),
                "web may not act for product CODEX",
            ),
            (
                Refusal::RateLimited {
                    caller: "web".into(),
                    wait: Duration::from_millis(250),
                },
                Code::ResourceExhausted,
                Some(ErrorReason::RateLimited),
                "web is over its rate limit",
            ),
            (
                Refusal::Unidentified,
                Code::Internal,
                None,
                "request reached a handler unauthenticated",
            ),
        ];
        for (refusal, code, reason, message) in cases {
            let status = Status::from(refusal);
            assert_eq!(
                (status.code(), status.message()),
                (code, message),
                "{status:?}"
            );
            let info = status.get_details_error_info();
            assert_eq!(
                info.as_ref().map(|info| info.reason.as_str()),
                reason.map(ErrorReason::reason)
            );
            if let Some(info) = info {
                assert_eq!(info.domain, ERROR_DOMAIN);
                assert!(info.metadata.is_empty());
            }
        }
        let limited = Status::from(Refusal::RateLimited {
            caller: "web".into(),
            wait: Duration::from_millis(250),
        });
        let retry = limited.get_details_retry_info().unwrap();
        assert_eq!(retry.retry_delay, Some(Duration::from_millis(250)));
    }
}
