//! The revocation stream (in commit order, resumable from a cursor, filtered by product),
//! paging (opaque tokens bound to the account), and S14: when the store cannot be reached the
//! caller is told to try again later.

use std::time::Duration;

use active_sessions_client::{
    Error, Owner, RevocationBatch, RevocationScope, RevocationStream, RevokeAllOptions,
};
use active_sessions_e2e::{Backend, SignIn, assert_status, by_account, e2e, pb};
use pb::{ListActiveSessionsRequest, Product};
use sea_orm::{ConnectionTrait, Database};
use tonic::Code;
use tonic_types::StatusExt;

/// The next batch that carries revocations (keep-alives skipped), within 5 s.
async fn next_events(stream: &mut RevocationStream) -> RevocationBatch {
    loop {
        let batch = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("a revocation within 5 s")
            .expect("stream healthy")
            .expect("stream open");
        if !batch.events.is_empty() {
            return batch;
        }
    }
}

e2e! {
    async fn revocations_stream_in_commit_order_and_resume_from_a_cursor(app) {
        let (_, owner) = app.sign_in(SignIn::browser("acct", "mine")).await;
        for device in ["a", "b", "c"] {
            app.sign_in(SignIn::browser("acct", device).product(Product::Codex)).await;
        }
        let sessions = app.connect_with_token(None).await.sessions();
        let mut stream = sessions.watch_revocations(None, &[]).await.unwrap();
        // The first message announces the starting cursor.
        let hello = stream.next().await.unwrap().unwrap();
        assert!(hello.events.is_empty());
        assert!(!hello.cursor.is_empty());

        sessions.revoke_row(Owner::token(&owner), "a", true).await.unwrap();
        let first = next_events(&mut stream).await;
        assert_eq!(first.events.len(), 1);
        let event = &first.events[0];
        assert_eq!(event.account_id, "acct");
        assert_eq!(event.scope, RevocationScope::Device);
        assert_eq!(event.products, [Product::Codex]);
        assert_eq!(event.session_ids.len(), 1);
        drop(stream);

        // While disconnected, two more revocations; resuming from the cursor delivers both, in order.
        sessions.revoke_row(Owner::token(&owner), "b", true).await.unwrap();
        sessions.revoke_all(Owner::account("acct"), RevokeAllOptions::confirmed()).await.unwrap();
        let mut resumed = sessions.watch_revocations(Some(&first.cursor), &[]).await.unwrap();
        let mut received = Vec::new();
        while received.len() < 2 {
            received.extend(next_events(&mut resumed).await.events);
        }
        assert_eq!(received[0].scope, RevocationScope::Device);
        assert_eq!(received[1].scope, RevocationScope::All);
        assert!(received[1].revoked_before.is_some());
        assert!(received[0].cursor.parse::<i64>().unwrap() < received[1].cursor.parse::<i64>().unwrap());
    }
}

e2e! {
    async fn revocation_stream_filters_by_product_and_refuses_a_cursor_from_elsewhere(app) {
        let (_, owner) = app.sign_in(SignIn::browser("acct", "mine")).await;
        app.sign_in(SignIn::browser("acct", "codex_box").product(Product::Codex)).await;
        app.sign_in(SignIn::browser("acct", "api_box").product(Product::ApiPlatform)).await;
        let sessions = app.connect_with_token(None).await.sessions();
        let mut api_only = sessions.watch_revocations(None, &[Product::ApiPlatform]).await.unwrap();
        api_only.next().await.unwrap().unwrap();
        sessions.revoke_row(Owner::token(&owner), "codex_box", true).await.unwrap();
        sessions.revoke_row(Owner::token(&owner), "api_box", true).await.unwrap();
        let batch = next_events(&mut api_only).await;
        assert_eq!(batch.events.len(), 1);
        assert_eq!(batch.events[0].products, [Product::ApiPlatform]);

        // A cursor past the log's end is OUT_OF_RANGE; one that is not a cursor names its field.
        let expired = sessions.watch_revocations(Some("999999"), &[]).await.unwrap_err();
        assert!(matches!(expired, Error::CursorExpired), "{expired:?}");
        let malformed = sessions.watch_revocations(Some("abc"), &[]).await.unwrap_err();
        let Error::InvalidArgument { violations } = malformed else {
            panic!("not INVALID_ARGUMENT: {malformed:?}");
        };
        assert_eq!(violations.iter().map(|(field, _)| field.as_str()).collect::<Vec<_>>(), ["cursor"]);
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
