//! Why authentication or authorization refuses a call, as a value. Auth decides; the gRPC layer
//! maps each refusal to its status and `google.rpc.ErrorInfo` (`grpc::status`), so the codes,
//! reasons and details of every refusal are written in one place. The display text is the
//! status message.

use std::time::Duration;

/// A refused call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No credential, an unknown one, or one a callers-file reload removed: UNAUTHENTICATED
    /// (reason CALLER_UNAUTHENTICATED).
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The caller's roles or products do not allow the call: PERMISSION_DENIED (reason
    /// CALLER_NOT_ALLOWED).
    #[error("{0}")]
    PermissionDenied(String),
    /// The caller is over its rate limit: RESOURCE_EXHAUSTED (reason RATE_LIMITED) with the wait
    /// as `google.rpc.RetryInfo`.
    #[error("{caller} is over its rate limit")]
    RateLimited {
        /// The caller's name.
        caller: String,
        /// How long until it may call again.
        wait: Duration,
    },
    /// A handler found no caller in the request: the authenticator was not in front of it
    /// (a wiring fault, answered INTERNAL).
    #[error("request reached a handler unauthenticated")]
    Unidentified,
}

impl Refusal {
    /// PERMISSION_DENIED with this message.
    pub fn denied(message: impl Into<String>) -> Self {
        Self::PermissionDenied(message.into())
    }
}
