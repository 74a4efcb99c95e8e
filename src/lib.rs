//! The active-sessions v1 contract: the messages and service stubs generated from
//! `proto/activesessions/v1/*.proto`, and the file descriptor set that the server serves through
//! gRPC reflection.
//!
//! Product backends do not use this crate directly; they use `active-sessions-client`, which
//! re-exports what they need. The server implements the generated `*_server` traits.

/// Package `activesessions.v1`.
pub mod v1 {
    #![allow(missing_docs, missing_debug_implementations, clippy::all)]
    tonic::include_proto!("activesessions.v1");
}

/// The encoded `FileDescriptorSet` of every file under `proto/`, for tonic-reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("activesessions_descriptor");

/// The `google.rpc.ErrorInfo` domain of every error this API sends.
pub const ERROR_DOMAIN: &str = "activesessions.v1";

/// The fully qualified names of the three services, as health and reflection know them.
pub mod service_names {
    /// `activesessions.v1.SessionService`.
    pub const SESSION_SERVICE: &str = "activesessions.v1.SessionService";
    /// `activesessions.v1.TrustedDeviceService`.
    pub const TRUSTED_DEVICE_SERVICE: &str = "activesessions.v1.TrustedDeviceService";
    /// `activesessions.v1.AccountEligibility`.
    pub const ACCOUNT_ELIGIBILITY: &str = "activesessions.v1.AccountEligibility";
    /// All three.
    pub const ALL: [&str; 3] = [SESSION_SERVICE, TRUSTED_DEVICE_SERVICE, ACCOUNT_ELIGIBILITY];
    /// The health name of the process alone: SERVING from the moment the server listens until
    /// it exits, whatever the database does and through a drain. For liveness probes, which
    /// must not restart a replica because its database fails over; readiness and start-up
    /// probes use the services' names (or `""`), which follow the database.
    pub const LIVENESS: &str = "liveness";
}

impl v1::ErrorReason {
    /// The string this API puts in `google.rpc.ErrorInfo.reason`: the value's name without the
    /// `ERROR_REASON_` prefix.
    pub fn reason(self) -> &'static str {
        let name = self.as_str_name();
        name.strip_prefix("ERROR_REASON_").unwrap_or(name)
    }

    /// The inverse of [`reason`](Self::reason).
    pub fn from_reason(reason: &str) -> Option<Self> {
        Self::from_str_name(&format!("ERROR_REASON_{reason}"))
    }
}

pub mod codec;
mod redact;
