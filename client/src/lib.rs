//! Client for the active-sessions gRPC service, for first-party product backends.
//!
//! [`Connection`] opens one HTTP/2 channel (plaintext, TLS or mTLS) and attaches the calling
//! service's bearer token to every call; the generated service clients run over it. Product
//! backends depend on this crate, never on the server.

mod connection;

pub use connection::{AuthInterceptor, ConnectError, Connection, ConnectionBuilder, Transport};

/// The generated `activesessions.v1` messages and service clients.
pub use active_sessions::v1 as proto;

/// The `google.rpc.ErrorInfo` domain of this API's errors.
pub use active_sessions::ERROR_DOMAIN;

/// Opens a plaintext channel to `endpoint` (for example `http://127.0.0.1:50051`) with no
/// credential: for local development servers.
pub async fn connect(
    endpoint: impl Into<String>,
) -> Result<tonic::transport::Channel, ConnectError> {
    Ok(Connection::builder(endpoint).connect().await?.channel())
}
