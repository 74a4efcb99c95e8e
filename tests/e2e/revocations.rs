//! The revocation stream (in commit order, resumable from a cursor, filtered by product),
//! paging (opaque tokens bound to the account), and S14: when the store cannot be reached the
//! caller is told to try again later.

use std::time::Duration;

use active_sessions_e2e::{
    Backend, SignIn, assert_status, by_account, by_token, e2e, pb, violated_fields,
};
use futures::StreamExt;
use pb::{ListActiveSessionsRequest, Product, RevokeSessionRequest, WatchRevocationsRequest};
use sea_orm::{ConnectionTrait, Database};
use tonic::Code;
use tonic_types::StatusExt;

async fn next_events(
    stream: &mut tonic::Streaming<pb::WatchRevocationsResponse>,
) -> pb::WatchRevocationsResponse {
    loop {
        let batch = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("a revocation within 5 s")
            .expect("stream open")
            .expect("batch");
        if !batch.events.is_empty() {
            return batch;
        }
    }
}

fn revoke_device(subject: pb::Subject, device: &str) -> RevokeSessionRequest {
    RevokeSessionRequest {
        subject: Some(subject),
        target: Some(pb::revoke_session_request::Target::DeviceId(device.into())),
        validate_only: false,
    }
}

e2e! {
    async fn revocations_stream_in_commit_order_and_resume_from_a_cursor(app) {
        let (_, owner) = app.sign_in(SignIn::browser("acct", "mine")).await;
        for device in ["a", "b", "c"] {
            app.sign_in(SignIn::browser("acct", device).product(Product::Codex)).await;
        }
        let mut stream = app.sessions().watch_revocations(WatchRevocationsRequest::default()).await.unwrap().into_inner();
        // The first message announces the starting cursor.
        let hello = stream.next().await.unwrap().unwrap();
        assert!(hello.events.is_empty());
        assert!(!hello.cursor.is_empty());

        app.sessions().revoke_session(revoke_device(by_token(&owner), "a")).await.unwrap();
        let first = next_events(&mut stream).await;
        assert_eq!(first.events.len(), 1);
        let event = &first.events[0];
        assert_eq!(event.account_id, "acct");
        assert_eq!(event.scope(), pb::RevocationScope::Device);
        assert_eq!(event.products().collect::<Vec<_>>(), [Product::Codex]);
        assert_eq!(event.session_ids.len(), 1);
        drop(stream);

        // While disconnected, two more revocations; resuming from the cursor delivers both, in order.
        app.sessions().revoke_session(revoke_device(by_token(&owner), "b")).await.unwrap();
        app.sessions().revoke_all_sessions(pb::RevokeAllSessionsRequest { subject: Some(by_account("acct")), ..Default::default() }).await.unwrap();
        let mut resumed = app
            .sessions()
            .watch_revocations(WatchRevocationsRequest { cursor: first.cursor.clone(), products: vec![] })
            .await
            .unwrap()
            .into_inner();
        let mut received = Vec::new();
        while received.len() < 2 {
            received.extend(next_events(&mut resumed).await.events);
        }
        assert_eq!(received[0].scope(), pb::RevocationScope::Device);
        assert_eq!(received[1].scope(), pb::RevocationScope::All);
        assert!(received[1].revoked_before.is_some());
        assert!(received[0].cursor.parse::<i64>().unwrap() < received[1].cursor.parse::<i64>().unwrap());
    }
}

e2e! {
    async fn revocation_stream_filters_by_product_and_refuses_a_cursor_from_elsewhere(app) {
        let (_, owner) = app.sign_in(SignIn::browser("acct", "mine")).await;
        app.sign_in(SignIn::browser("acct", "codex_box").product(Product::Codex)).await;
        app.sign_in(SignIn::browser("acct", "api_box").product(Product::ApiPlatform)).await;
        let mut api_only = app
            .sessions()
            .watch_revocations(WatchRevocationsRequest { cursor: String::new(), products: vec![Product::ApiPlatform as i32] })
            .await
            .unwrap()
            .into_inner();
        api_only.next().await.unwrap().unwrap();
        app.sessions().revoke_session(revoke_device(by_token(&owner), "codex_box")).await.unwrap();
        app.sessions().revoke_session(revoke_device(by_token(&owner), "api_box")).await.unwrap();
        let batch = next_events(&mut api_only).await;
        assert_eq!(batch.events.len(), 1);
        assert_eq!(batch.events[0].products().collect::<Vec<_>>(), [Product::ApiPlatform]);

        let status = app
            .sessions()
            .watch_revocations(WatchRevocationsRequest { cursor: "999999".into(), products: vec![] })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::OutOfRange);
        let status = app
            .sessions()
            .watch_revocations(WatchRevocationsRequest { cursor: "abc".into(), products: vec![] })
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&status), ["cursor"]);
    }
}

e2e! {
    async fn page_tokens_are_bound_to_their_account_and_refused_when_altered(app) {
        for i in 0..5 {
            app.sign_in(SignIn::browser("alice", &format!("dev_{i}"))).await;
        }
        app.sign_in(SignIn::browser("bob", "bob_dev")).await;
        let first = app
            .sessions()
            .list_active_sessions(ListActiveSessionsRequest { subject: Some(by_account("alice")), page_size: 2, ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(first.rows.len(), 2);
        assert!(!first.next_page_token.is_empty());
        let replayed = app
            .sessions()
            .list_active_sessions(ListActiveSessionsRequest {
                subject: Some(by_account("bob")),
                page_size: 2,
                page_token: first.next_page_token.clone(),
                product: 0,
            })
            .await
            .unwrap_err();
        assert_status(&replayed, Code::InvalidArgument, Some("PAGE_TOKEN_INVALID"));
        let mut altered = first.next_page_token.clone();
        let flipped = if altered.starts_with('e') { "f" } else { "e" };
        altered.replace_range(0..1, flipped);
        let status = app
            .sessions()
            .list_active_sessions(ListActiveSessionsRequest { subject: Some(by_account("alice")), page_size: 2, page_token: altered, product: 0 })
            .await
            .unwrap_err();
        assert_status(&status, Code::InvalidArgument, Some("PAGE_TOKEN_INVALID"));
        // The genuine token walks the rest, and the pages add up to every row exactly once.
        let all = app.rows_for_account("alice").await;
        let mut devices: Vec<_> = all.iter().map(|r| r.device_id.clone()).collect();
        devices.sort();
        devices.dedup();
        assert_eq!(devices.len(), 5);
    }
}

e2e! {
    async fn s14_an_unreachable_store_is_unavailable_with_a_retry_delay(app) {
        let (_, token) = app.sign_in(SignIn::browser("acct", "dev")).await;
        match app.backend {
            Backend::Postgres => {
                // Refuse new connections to this test's database and end the existing ones.
                let admin = Database::connect(std::env::var(active_sessions_e2e::POSTGRES_URL_VAR).unwrap()).await.unwrap();
                let name = app.database_url().rsplit('/').next().unwrap().to_owned();
                admin.execute_unprepared(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false")).await.unwrap();
                admin
                    .execute_unprepared(&format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
                    .await
                    .unwrap();
                let status = app
                    .sessions()
                    .list_active_sessions(ListActiveSessionsRequest { subject: Some(by_account("acct")), ..Default::default() })
                    .await
                    .unwrap_err();
                assert_status(&status, Code::Unavailable, Some("STORE_UNAVAILABLE"));
                assert!(status.get_details_retry_info().unwrap().retry_delay.is_some());
                admin.execute_unprepared(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true")).await.unwrap();
                admin.close().await.unwrap();
            }
            Backend::Sqlite => {
                // Another process holds the write lock past the busy timeout.
                let other = Database::connect(app.database_url()).await.unwrap();
                other.execute_unprepared("BEGIN EXCLUSIVE").await.unwrap();
                let status = app.sessions().register_session(SignIn::browser("acct", "dev2").request()).await.unwrap_err();
                assert_status(&status, Code::Unavailable, Some("STORE_UNAVAILABLE"));
                assert!(status.get_details_retry_info().unwrap().retry_delay.is_some());
                other.execute_unprepared("ROLLBACK").await.unwrap();
                other.close().await.unwrap();
            }
        }
        // Once the store is back, the page loads again and nothing was lost.
        assert_eq!(app.rows_for_token(&token).await.len(), 1);
    }
}
