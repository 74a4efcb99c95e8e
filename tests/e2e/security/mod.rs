//! Security at the edge: who may call (bearer tokens, client certificates), how the callers file
//! is reloaded and refused, TLS and mTLS, and what protects the server from too much: load
//! shedding, per-caller rate limits, the message-size limit and deadlines. One capability a
//! file; this module holds the helpers they share.
//!
//! Certificates are made at run time with rcgen; every server listens on loopback only.

mod callers_file;
mod credentials;
mod oversized_input;
mod rate_limits;
mod shedding;
mod timeouts;
mod tls;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use active_sessions_client::Connection;
use active_sessions_e2e::{SignIn, TestApp, TestCaller, assert_status, pb};
use tokio::task::JoinHandle;
use tonic::{Code, Status, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_types::StatusExt;

const SESSION_SERVICE: &str = "activesessions.v1.SessionService";
const REGISTER_SESSION: &str = "/activesessions.v1.SessionService/RegisterSession";

/// The `RetryInfo` delay of a status.
fn retry_delay(status: &Status) -> Option<Duration> {
    status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
}

fn product_caller(name: &str) -> TestCaller {
    TestCaller::new(name, &["product"], &["CHATGPT"])
}

/// A ValidateSession request for a well-formed token no session has.
fn unknown_token_validation() -> pb::ValidateSessionRequest {
    pb::ValidateSessionRequest {
        session_token: format!("ast_{}", "A".repeat(43)),
    }
}

/// Registers a sign-in through `connection` and returns its token.
async fn register(connection: &Connection, account: &str, device: &str) -> Result<String, Status> {
    connection
        .session_service()
        .register_session(SignIn::browser(account, device).request())
        .await
        .map(|response| response.into_inner().session_token)
}

/// Asserts that the call was refused UNAUTHENTICATED with reason CALLER_UNAUTHENTICATED.
fn assert_caller_unauthenticated(result: Result<impl std::fmt::Debug, Status>) {
    let status = result.expect_err("the call must be refused");
    assert_status(
        &status,
        Code::Unauthenticated,
        Some("CALLER_UNAUTHENTICATED"),
    );
}

/// Waits (bounded) until health reports `service` SERVING.
async fn wait_until_serving(channel: Channel, service: &str) {
    let mut health = HealthClient::new(channel);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health answers without a credential")
            .into_inner()
            .status();
        if status == ServingStatus::Serving {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{service:?} never became SERVING"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts a unary RegisterSession call whose request message never arrives: the server has the
/// call's headers (so it holds an in-flight slot) and waits for a body that does not come.
/// Aborting the task resets the stream.
fn stalled_registration(
    channel: Channel,
    timeout: Option<Duration>,
) -> JoinHandle<Result<pb::RegisterSessionResponse, Status>> {
    tokio::spawn(async move {
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready()
            .await
            .map_err(|err| Status::unavailable(err.to_string()))?;
        let mut request =
            tonic::Request::new(futures::stream::pending::<pb::RegisterSessionRequest>());
        if let Some(timeout) = timeout {
            request.set_timeout(timeout);
        }
        grpc.client_streaming(
            request,
            http::uri::PathAndQuery::from_static(REGISTER_SESSION),
            tonic_prost::ProstCodec::<pb::RegisterSessionRequest, pb::RegisterSessionResponse>::default(),
        )
        .await
        .map(tonic::Response::into_inner)
    })
}

/// A callers file written to a temporary directory.
struct CallersFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl CallersFile {
    fn new(text: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("callers.toml");
        std::fs::write(&path, text).expect("write callers file");
        Self { _dir: dir, path }
    }
}

/// Waits (bounded) until a cheap call succeeds again.
async fn wait_until_not_shedding(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match app
            .sessions()
            .validate_session(unknown_token_validation())
            .await
        {
            Ok(_) => return,
            other => assert!(Instant::now() < deadline, "still shedding: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
