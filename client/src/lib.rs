//! Client for the active-sessions gRPC service, for first-party product backends.
//!
//! It re-exports the generated v1 contract ([`proto`]) and opens channels to the server. Product
//! backends depend on this crate, never on the server.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// The generated `activesessions.v1` messages and service clients.
pub use active_sessions::v1 as proto;

/// The `google.rpc.ErrorInfo` domain of this API's errors.
pub use active_sessions::ERROR_DOMAIN;

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The endpoint URI does not parse.
    #[error("invalid endpoint {endpoint:?}: {source}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// The parse error.
        source: tonic::transport::Error,
    },
    /// The server could not be reached.
    #[error("cannot connect to {endpoint}: {source}")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// The transport error.
        source: tonic::transport::Error,
    },
}

/// Opens a channel to `endpoint` (for example `http://127.0.0.1:50051`), with a connect timeout.
pub async fn connect(endpoint: impl Into<String>) -> Result<Channel, ConnectError> {
    let endpoint = endpoint.into();
    Endpoint::from_shared(endpoint.clone())
        .map_err(|source| ConnectError::InvalidEndpoint {
            endpoint: endpoint.clone(),
            source,
        })?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|source| ConnectError::Unreachable { endpoint, source })
}
