//! Callers-file reloads bite at once: a WatchRevocations stream opened by a caller that a reload
//! removes ends within a second with UNAUTHENTICATED, one whose caller may no longer watch its
//! products with PERMISSION_DENIED, while other callers' streams carry on. The loader refuses
//! the SHA-256 of the empty token, and `authorization: Bearer ` with nothing after it never
//! authenticates.

use std::time::Duration;

use active_sessions_client::{Owner, Registration};
use active_sessions_e2e::{Backend, TestApp, TestCaller, assert_status, callers_file, pb};
use futures::StreamExt;
use tonic::{Code, Streaming};

async fn watch(
    app: &TestApp,
    caller: &str,
    product: pb::Product,
) -> Streaming<pb::WatchRevocationsResponse> {
    let connection = app.connect_as(caller).await;
    let mut stream = connection
        .session_service()
        .watch_revocations(pb::WatchRevocationsRequest {
            cursor: String::new(),
            products: vec![product as i32],
        })
        .await
        .unwrap()
        .into_inner();
    stream.next().await.unwrap().unwrap();
    stream
}

/// The status that ends the stream within one second.
async fn ended_within_a_second(
    stream: &mut Streaming<pb::WatchRevocationsResponse>,
) -> tonic::Status {
    tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            match stream.next().await {
                Some(Ok(_)) => continue,
                Some(Err(status)) => return status,
                None => panic!("the stream closed without a status"),
            }
        }
    })
    .await
    .expect("the stream still runs a second after the reload")
}

async fn reloads_end_streams_of_removed_and_restricted_callers(backend: Backend) {
    let web = TestCaller::new("chatgpt-web", &["product"], &["CHATGPT"]);
    let codex = TestCaller::new("codex", &["product"], &["CODEX"]);
    let operator = TestCaller::new("operator", &["operator"], &[]);
    let Some(app) =
        TestApp::spawn_with_callers(backend, vec![web.clone(), codex.clone(), operator.clone()])
            .await
    else {
        return;
    };
    let mut web_stream = watch(&app, "chatgpt-web", pb::Product::Chatgpt).await;
    let mut codex_stream = watch(&app, "codex", pb::Product::Codex).await;
    let mut operator_stream = watch(&app, "operator", pb::Product::Chatgpt).await;

    // chatgpt-web is removed; codex keeps its token but now serves ChatGPT only.
    let restricted = TestCaller {
        products: vec!["CHATGPT".into()],
        ..codex.clone()
    };
    std::fs::write(
        app.callers_file_path(),
        callers_file(&[restricted, operator.clone()]),
    )
    .unwrap();
    app.services().callers().unwrap().reload().unwrap();
    let removed = ended_within_a_second(&mut web_stream).await;
    assert_status(
        &removed,
        Code::Unauthenticated,
        Some("CALLER_UNAUTHENTICATED"),
    );
    let denied = ended_within_a_second(&mut codex_stream).await;
    assert_status(&denied, Code::PermissionDenied, Some("CALLER_NOT_ALLOWED"));

    // The operator's stream carries on and still delivers revocations.
    let ops = app.connect_as("operator").await.sessions();
    let registered = ops
        .register(Registration::chatgpt_browser("acct", "dev"))
        .await
        .unwrap();
    ops.revoke_row(Owner::account("acct"), "dev", true)
        .await
        .unwrap();
    let session_id = registered.session.session_id;
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let message = operator_stream.next().await.unwrap().unwrap();
            if message
                .events
                .iter()
                .any(|event| event.session_ids.contains(&session_id))
            {
                return;
            }
        }
    })
    .await
    .expect("the operator's stream delivers the revocation");
    app.stop().await;
}

async fn the_empty_token_never_authenticates(backend: Backend) {
    let identity = TestCaller::new("identity", &["identity"], &[]);
    let Some(app) = TestApp::spawn_with_callers(backend, vec![identity.clone()]).await else {
        return;
    };
    // An entry whose hash is the SHA-256 of the empty token is refused, on reload and at start.
    let empty = TestCaller {
        name: "empty".into(),
        token: String::new(),
        ..identity.clone()
    };
    std::fs::write(
        app.callers_file_path(),
        callers_file(&[identity.clone(), empty]),
    )
    .unwrap();
    let err = app.services().callers().unwrap().reload().unwrap_err();
    assert!(err.to_string().contains("empty token"), "{err}");
    let mut config = app.config().clone();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let start = active_sessions_server::Application::build(config)
        .await
        .unwrap_err();
    assert!(start.to_string().contains("empty token"), "{start}");

    // `Bearer ` with nothing after it (and variations) is no credential.
    for header in ["Bearer ", "Bearer    ", "Bearer"] {
        let mut request = tonic::Request::new(pb::GetAccountRequest {
            account_id: "acct".into(),
        });
        request
            .metadata_mut()
            .insert("authorization", header.parse().unwrap());
        let status = app.eligibility().get_account(request).await.unwrap_err();
        assert_status(
            &status,
            Code::Unauthenticated,
            Some("CALLER_UNAUTHENTICATED"),
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_end_streams_of_removed_and_restricted_callers_sqlite() {
    reloads_end_streams_of_removed_and_restricted_callers(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_end_streams_of_removed_and_restricted_callers_postgres() {
    reloads_end_streams_of_removed_and_restricted_callers(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_empty_bearer_token_never_authenticates_sqlite() {
    the_empty_token_never_authenticates(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_empty_bearer_token_never_authenticates_postgres() {
    the_empty_token_never_authenticates(Backend::Postgres).await;
}
