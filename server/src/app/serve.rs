//! The serving loop: every service behind its layers on one listener, until the shutdown
//! signal; then the drain (health NOT_SERVING, listener closed, calls in flight given the grace
//! period, background work stopped, pool closed).

use std::{future::Future, time::Duration};

use active_sessions::{
    FILE_DESCRIPTOR_SET, service_names,
    v1::{
        account_eligibility_server::AccountEligibilityServer,
        session_service_server::SessionServiceServer,
        trusted_device_service_server::TrustedDeviceServiceServer,
    },
};
use futures::TryStreamExt as _;
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tonic::{
    service::interceptor::InterceptedService,
    transport::{Server, server::TcpIncoming},
};
use tonic_health::ServingStatus;

use crate::{
    grpc::{
        eligibility::AccountEligibilityApi, sessions::SessionApi, trusted_devices::TrustedDeviceApi,
    },
    limits::ShedLayer,
    oversize::OversizeLayer,
    telemetry::RpcLayer,
};

use super::{
    Services,
    background::{reload_callers_on_hangup, set_health, watch_database_health},
    coalesced_writes::CoalescedWrites,
};

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The transport failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Reflection could not be built.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// How long each last step of a shutdown (closing connections, stopping background work,
/// closing the pool) may take after the drain: together at most 0.7 s beyond the grace period.
const CLOSE_STEP: Duration = Duration::from_millis(300);
const BACKGROUND_STEP: Duration = Duration::from_millis(200);

/// Serves every service on `listener` until `shutdown` completes, then drains: health turns
/// NOT_SERVING at once (answered on connections already open), the listener closes, new calls
/// are refused (UNAVAILABLE, retry elsewhere), and calls in flight get the configured grace
/// period to finish. After it, the calls still in flight are abandoned (their transactions
/// rolled back) and the server returns within a second whatever the database does.
pub async fn run(
    listener: TcpListener,
    services: Services,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    set_health(&health, ServingStatus::NotServing).await;
    // The process is up: liveness stays SERVING until it exits (see `service_names::LIVENESS`).
    health
        .set_service_status(service_names::LIVENESS, ServingStatus::Serving)
        .await;
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    let background = CancellationToken::new();
    let tasks = TaskTracker::new();
    tasks.spawn(watch_database_health(
        services.store.clone(),
        services.sessions.clone(),
        health.clone(),
        background.clone(),
    ));
    services.sessions.spawn_background(&tasks, &background);
    if let Some(clock) = &services.aligned_clock {
        tasks.spawn(crate::time_alignment::keep_aligned(
            services.store.clone(),
            clock.clone(),
            background.clone(),
        ));
    }
    tasks.spawn(services.pruner.clone().run_until(background.clone()));

    if let Some(registry) = services.callers() {
        tasks.spawn(reload_callers_on_hangup(
            registry.clone(),
            background.clone(),
        ));
    }

    let security = &services.config.security;
    let max_message = security.max_message_bytes;
    let auth = services.authenticator.clone();
    let eligibility = AccountEligibilityServer::new(AccountEligibilityApi::new(
        services.eligibility.clone(),
        services.subjects.clone(),
        services.sessions.clone(),
    ))
    .max_decoding_message_size(max_message);
    let sessions = SessionServiceServer::new(SessionApi::new(
        services.sessions.clone(),
        background.clone(),
    ))
    .max_decoding_message_size(max_message);
    let trusted_devices =
        TrustedDeviceServiceServer::new(TrustedDeviceApi::new(services.trust.clone()))
            .max_decoding_message_size(max_message);
    let shed = ShedLayer::new(security.max_concurrent_calls);
    let drain = shed.drain();
    let mut builder = Server::builder()
        .timeout(security.request_timeout)
        .tcp_nodelay(true)
        .max_connection_age(services.config.max_connection_age)
        .max_connection_age_grace(services.config.max_connection_age_grace);
    if let Some(tls) = services.tls.clone() {
        builder = builder.tls_config(tls)?;
    }
    let router = builder
        .layer(RpcLayer)
        .layer(shed)
        .layer(OversizeLayer::new(max_message))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(InterceptedService::new(eligibility, auth.clone()))
        .add_service(InterceptedService::new(sessions, auth.clone()))
        .add_service(InterceptedService::new(trusted_devices, auth));

    // Accepted sockets get TCP_NODELAY here: the builder's setting applies only to listeners
    // tonic binds itself, and with Nagle's algorithm on a small response waits for the
    // client's delayed ACK (about 40 ms). Responses that finish together leave in one write
    // (`coalesced_writes`), except under TLS, where rustls's own buffer decides the writes.
    let draining = CancellationToken::new();
    let coalesce = services.tls.is_none();
    let incoming = StopAccepting::new(
        TcpIncoming::from(listener)
            .with_nodelay(Some(true))
            .with_keepalive(Some(Duration::from_secs(60)))
            .map_ok(move |socket| CoalescedWrites::new(socket, coalesce)),
        draining.clone(),
    );
    // The transport's own graceful shutdown (GOAWAY on every connection) comes only after the
    // drain, so that connections already open still get answers (health: NOT_SERVING) during it.
    let close_connections = CancellationToken::new();
    let serve =
        router.serve_with_incoming_shutdown(incoming, close_connections.clone().cancelled_owned());
    tokio::pin!(serve);
    tokio::pin!(shutdown);

    let failed = tokio::select! {
        result = &mut serve => Some(result),
        () = &mut shutdown => None,
    };
    let result = match failed {
        Some(result) => result,
        None => {
            let grace = services.config.shutdown_grace;
            tracing::info!(
                grace_secs = grace.as_secs_f64(),
                "shutting down: draining in-flight calls"
            );
            set_health(&health, ServingStatus::NotServing).await;
            background.cancel();
            draining.cancel();
            if tokio::time::timeout(grace, drain.calls_finished())
                .await
                .is_err()
            {
                tracing::warn!(
                    grace_secs = grace.as_secs_f64(),
                    "grace period over; abandoning the calls still in flight"
                );
                drain.abandon_calls();
            }
            close_connections.cancel();
            match tokio::time::timeout(CLOSE_STEP, &mut serve).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!("connections still open after the drain; closing them");
                    Ok(())
                }
            }
        }
    };
    background.cancel();
    tasks.close();
    if tokio::time::timeout(BACKGROUND_STEP, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("background work still running at shutdown; abandoning it");
    }
    if tokio::time::timeout(BACKGROUND_STEP, services.store.clone().close())
        .await
        .is_err()
    {
        tracing::warn!("database connections still busy at shutdown; abandoning them");
    }
    result.map_err(ServeError::from)
}

/// The listener's connections until the drain starts; then the listening socket is closed at
/// once (new clients are refused and go elsewhere) while the connections already open are
/// served on.
struct StopAccepting<S> {
    inner: Option<S>,
    stop: std::pin::Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
}

impl<S> StopAccepting<S> {
    fn new(inner: S, stop: CancellationToken) -> Self {
        Self {
            inner: Some(inner),
            stop: Box::pin(stop.cancelled_owned()),
        }
    }
}

impl<S: futures::Stream + Unpin> futures::Stream for StopAccepting<S> {
    type Item = S::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.inner.is_some() && self.stop.as_mut().poll(cx).is_ready() {
            self.inner = None;
        }
        match self.inner.as_mut() {
            Some(inner) => std::pin::Pin::new(inner).poll_next(cx),
            // Not the end of the stream: that would make the transport close every connection.
            None => std::task::Poll::Pending,
        }
    }
}

/// Reflection over our services, health, and google.rpc's error details (so that grpcurl can
/// print the BadRequest, ErrorInfo and RetryInfo details of a refusal).
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
}
