//! `active-sessions health`: the server's own health probe, for the container image's
//! HEALTHCHECK and for exec probes where the native Kubernetes gRPC probe is not available. It
//! asks the standard `grpc.health.v1.Health/Check` with tonic-health's client, so the image
//! needs no separately downloaded probe binary.

use tonic::transport::Endpoint;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::config::HealthProbe;

/// Why the probe got no status.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The address is not a valid endpoint.
    #[error("invalid address {0}")]
    Address(String),
    /// No connection, no answer in time, or an error status.
    #[error("health check of {addr} failed: {reason}")]
    Failed {
        /// The address asked.
        addr: String,
        /// What went wrong.
        reason: String,
    },
}

/// Asks the server at `probe.addr` for the health of `probe.service`.
pub async fn check(probe: &HealthProbe) -> Result<ServingStatus, ProbeError> {
    let uri = if probe.addr.contains("://") {
        probe.addr.clone()
    } else {
        format!("http://{}", probe.addr)
    };
    let endpoint = Endpoint::from_shared(uri)
        .map_err(|_| ProbeError::Address(probe.addr.clone()))?
        .connect_timeout(probe.timeout)
        .timeout(probe.timeout);
    let failed = |reason: String| ProbeError::Failed {
        addr: probe.addr.clone(),
        reason,
    };
    let channel = endpoint
        .connect()
        .await
        .map_err(|err| failed(err.to_string()))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: probe.service.clone(),
        })
        .await
        .map_err(|status| failed(format!("{:?}: {}", status.code(), status.message())))?;
    Ok(response.into_inner().status())
}
