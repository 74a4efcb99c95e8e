//! [`SessionRejection`]: why a request is not let through, and its answer: HTTP 401 with a
//! small JSON body and `WWW-Authenticate: Bearer`, or 503 with `Retry-After`; for gRPC
//! requests (`content-type: application/grpc…`) a trailers-only UNAUTHENTICATED or
//! UNAVAILABLE status (with `RetryInfo` and `retry-after`).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use tonic_types::{ErrorDetails, StatusExt as _};

/// Why a request carries no session to let through.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionRejection {
    /// No token in any configured source: 401 / UNAUTHENTICATED.
    MissingToken,
    /// A token that is not a signed-in session: malformed, unknown, revoked, expired, or of
    /// another product. 401 / UNAUTHENTICATED.
    InvalidToken,
    /// The session service cannot answer now (unreachable, overloaded, deadline, or this
    /// backend's own credential refused): 503 / UNAVAILABLE with `Retry-After`. Never a pass.
    Unavailable {
        /// When to try again.
        retry_after: Duration,
    },
    /// A `ValidSession` extractor found neither a [`SessionLayer`](super::SessionLayer) in
    /// front of the route nor a [`SessionValidator`](super::SessionValidator) extension: 500.
    NotConfigured,
}

const REALM: &str = "Bearer realm=\"active-sessions\"";
const REALM_INVALID: &str = "Bearer realm=\"active-sessions\", error=\"invalid_token\"";

impl SessionRejection {
    /// True when the request is signed out (no token, or not a valid one).
    pub fn is_signed_out(&self) -> bool {
        matches!(self, Self::MissingToken | Self::InvalidToken)
    }

    /// The answer to a request with these headers: gRPC when its content type says so, else
    /// HTTP.
    pub fn response_for(&self, headers: &HeaderMap) -> Response<Full<Bytes>> {
        if is_grpc(headers) {
            self.grpc_response()
        } else {
            self.http_response()
        }
    }

    /// The HTTP answer: 401 with `WWW-Authenticate`, 503 with `Retry-After`, or 500, each with
    /// a small JSON body (`{"error": …, "message": …}`).
    pub fn http_response(&self) -> Response<Full<Bytes>> {
        let (status, body) = match self {
            Self::MissingToken | Self::InvalidToken => (
                StatusCode::UNAUTHORIZED,
                r#"{"error":"unauthenticated","message":"a signed-in session is required"}"#,
            ),
            Self::Unavailable { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"error":"unavailable","message":"sessions cannot be checked now; retry later"}"#,
            ),
            Self::NotConfigured => (
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"error":"internal","message":"session validation is not configured"}"#,
            ),
        };
        let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match self {
            Self::MissingToken => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(REALM));
            }
            Self::InvalidToken => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(REALM_INVALID),
                );
            }
            Self::Unavailable { retry_after } => {
                headers.insert(header::RETRY_AFTER, retry_after_seconds(*retry_after));
            }
            Self::NotConfigured => {}
        }
        response
    }

    /// The gRPC answer: a trailers-only response with status UNAUTHENTICATED, UNAVAILABLE (with
    /// `RetryInfo` and `retry-after`) or INTERNAL.
    pub fn grpc_response(&self) -> Response<Full<Bytes>> {
        let status = match self {
            Self::MissingToken => tonic::Status::unauthenticated("a signed-in session is required"),
            Self::InvalidToken => tonic::Status::unauthenticated("the session is not signed in"),
            Self::Unavailable { retry_after } => tonic::Status::with_error_details(
                tonic::Code::Unavailable,
                "sessions cannot be checked now; retry later",
                ErrorDetails::with_retry_info(Some(*retry_after)),
            ),
            Self::NotConfigured => tonic::Status::internal("session validation is not configured"),
        };
        let mut response = status.into_http::<Full<Bytes>>();
        if let Self::Unavailable { retry_after } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after_seconds(*retry_after));
        }
        response
    }
}

impl std::fmt::Display for SessionRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::MissingToken => "no session token",
            Self::InvalidToken => "the session token is not signed in",
            Self::Unavailable { .. } => "the session service is unavailable",
            Self::NotConfigured => "session validation is not configured",
        })
    }
}

impl std::error::Error for SessionRejection {}

/// True for a gRPC request.
pub(super) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"))
}

/// Whole seconds, rounded up, at least 1.
fn retry_after_seconds(delay: Duration) -> HeaderValue {
    let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    HeaderValue::from(seconds.max(1))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn http_and_grpc_answers() {
        let missing = SessionRejection::MissingToken.http_response();
        assert_eq!(missing.status(), 401);
        assert_eq!(missing.headers()["www-authenticate"], REALM);
        let unavailable = SessionRejection::Unavailable {
            retry_after: Duration::from_millis(1500),
        }
        .http_response();
        assert_eq!(unavailable.status(), 503);
        assert_eq!(unavailable.headers()["retry-after"], "2");

        let mut grpc = HeaderMap::new();
        grpc.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc+proto"),
        );
        let refused = SessionRejection::InvalidToken.response_for(&grpc);
        assert_eq!(refused.status(), 200);
        assert_eq!(refused.headers()["grpc-status"], "16");
        let unavailable = SessionRejection::Unavailable {
            retry_after: Duration::from_secs(1),
        }
        .response_for(&grpc);
        assert_eq!(unavailable.headers()["grpc-status"], "14");
        assert_eq!(unavailable.headers()["retry-after"], "1");
    }
}
