//! Correctness under concurrency: real parallel calls against both databases.
//!
//! Every test fires many gRPC calls at once (spawned tasks over clones of the client, on the
//! harness's multi-thread runtime) and then checks what the race may and may not leave behind:
//! idempotent registrations create one session, a log-out of all sessions splits sessions
//! cleanly at its cut-off, paging is stable while rows come and go, a row is logged out once,
//! and database contention never reaches a caller. One race a file; this module holds the
//! helpers they share.

mod contention;
mod idempotent_registration;
mod log_out_races;
mod paging;
mod same_row_log_outs;

use active_sessions_e2e::{SignIn, TestApp, by_account, pb};
use futures::future::join_all;
use pb::{
    ListSecurityEventsRequest, Product, RevokeAllSessionsRequest, RevokeSessionRequest,
    revoke_session_request::Target,
};
use tokio::task::JoinHandle;
use tonic::Status;
use tonic_types::StatusExt;

const PRODUCTS: [Product; 3] = [Product::Chatgpt, Product::Codex, Product::ApiPlatform];

/// Awaits every task, failing the test if one panicked.
async fn join<T: Send + 'static>(handles: Vec<JoinHandle<T>>) -> Vec<T> {
    join_all(handles)
        .await
        .into_iter()
        .map(|joined| joined.expect("task panicked"))
        .collect()
}

/// The `ErrorInfo` reason of a status, or "" without one.
fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

fn revoke_device(subject: pb::Subject, device: &str) -> RevokeSessionRequest {
    RevokeSessionRequest {
        subject: Some(subject),
        target: Some(Target::DeviceId(device.into())),
        validate_only: false,
    }
}

fn revoke_all(subject: pb::Subject) -> RevokeAllSessionsRequest {
    RevokeAllSessionsRequest {
        subject: Some(subject),
        validate_only: false,
        remove_trusted_devices: false,
        ..Default::default()
    }
}

/// Spawns one registration on its own clone of the client.
fn spawn_register(
    app: &TestApp,
    sign_in: &SignIn,
) -> JoinHandle<Result<pb::RegisterSessionResponse, Status>> {
    let mut client = app.sessions();
    let request = sign_in.request();
    tokio::spawn(async move {
        client
            .register_session(request)
            .await
            .map(tonic::Response::into_inner)
    })
}

/// The account's whole security history (operator view), newest first.
async fn security_events(app: &TestApp, account_id: &str) -> Vec<pb::SecurityEvent> {
    let mut events = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = app
            .sessions()
            .list_security_events(ListSecurityEventsRequest {
                subject: Some(by_account(account_id)),
                page_size: 100,
                page_token,
            })
            .await
            .unwrap_or_else(|status| panic!("history failed: {status:?}"))
            .into_inner();
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            return events;
        }
        page_token = page.next_page_token;
    }
}
