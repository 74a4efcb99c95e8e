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
mod sign_in_storm;

use active_sessions_e2e::{SignIn, TestApp, pb};
use futures::future::join_all;
use pb::Product;
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
