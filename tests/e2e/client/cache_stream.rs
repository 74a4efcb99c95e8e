//! The validation cache's stream and bounds: while the stream is down the cache asks the server
//! and then resumes from its cursor; it is bounded in size and age and reconnects on request; it
//! drops everything when the server does not know its cursor; its stream outlives the
//! connection's request timeout.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use super::{connect, endpoint, live_cache, sign_in, within};
use active_sessions_client::{
    Connection, Owner, Product, Registration, RetryPolicy, ValidationCache,
};
use active_sessions_e2e::{TestApp, by_account, e2e, pb};

e2e! {
    async fn the_cache_answers_from_the_server_while_its_stream_is_down_and_resumes_from_its_cursor(app) {
        // The cache's connector reads the server's address from here, so a restarted server
        // (on a new port) can be reached once the test says so.
        let address = Arc::new(Mutex::new(endpoint(&app)));
        let cache = ValidationCache::builder_with_connector({
            let address = address.clone();
            move || {
                let endpoint = address.lock().unwrap().clone();
                async move {
                    Connection::builder(endpoint)
                        .retry_policy(RetryPolicy::default().deadline(Duration::from_secs(1)))
                        .connect()
                        .await
                }
            }
        })
        .max_reconnect_delay(Duration::from_millis(200))
        .start()
        .await;
        tokio::time::timeout(Duration::from_secs(10), cache.wait_live()).await.expect("live");

        let sessions = connect(&app).await.sessions();
        let (session_a1, token_a1) = sign_in(&sessions, "acct-a", "d1").await;
        let (_, token_a2) = sign_in(&sessions, "acct-a", "d2").await;
        let (_, token_b1) = sign_in(&sessions, "acct-b", "d1").await;
        let (_, token_b2) = sign_in(&sessions, "acct-b", "d2").await;
        let all = [&token_a1, &token_a2, &token_b1, &token_b2];
        for token in all {
            assert!(cache.validate(token).await.unwrap().is_some());
            assert!(cache.validate(token).await.unwrap().is_some());
        }
        assert_eq!(cache.stats().hits, 4);
        let cursor = cache.cursor().expect("a cursor");

        // The server restarts on a new port: the stream breaks, and the cache stops answering
        // from memory (it cannot reach the server at the old address either).
        app.restart().await;
        tokio::time::timeout(Duration::from_secs(15), cache.wait_not_live()).await.expect("the stream breaks");
        let before = cache.stats();
        let answer = cache.validate(&token_a1).await;
        assert!(answer.is_err(), "answered while the stream was down: {answer:?}");
        let after = cache.stats();
        assert_eq!(after.hits, before.hits, "answered from memory while the stream was down");
        assert_eq!(after.bypassed, before.bypassed + 1);

        // While the stream is down, one session and then a whole account are logged out.
        app.sessions()
            .revoke_session(pb::RevokeSessionRequest {
                subject: Some(by_account("acct-a")),
                target: Some(pb::revoke_session_request::Target::SessionId(session_a1.clone())),
                validate_only: false,
            })
            .await
            .unwrap();
        app.sessions()
            .revoke_all_sessions(pb::RevokeAllSessionsRequest {
                subject: Some(by_account("acct-b")),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(!cache.is_live());
        assert_eq!(cache.len(), 4, "nothing reached the cache yet");
        assert_eq!(cache.stats().revocations_applied, 0);

        // The cache finds the server again and resumes from its cursor: both revocations are
        // applied before it answers from memory.
        *address.lock().unwrap() = endpoint(&app);
        tokio::time::timeout(Duration::from_secs(10), cache.wait_live()).await.expect("live again");
        let stats = cache.stats();
        assert_eq!(stats.revocations_applied, 2, "{stats:?}");
        assert_eq!(stats.streams_opened, 2);
        assert_eq!(stats.entries, 1, "only acct-a's d2 session is left");
        assert_ne!(cache.cursor().unwrap(), cursor);
        for token in [&token_a1, &token_b1, &token_b2] {
            assert!(cache.validate(token).await.unwrap().is_none());
        }
        let hits = cache.stats().hits;
        assert!(cache.validate(&token_a2).await.unwrap().is_some());
        assert_eq!(cache.stats().hits, hits + 1, "the surviving session is answered from memory");
    }
}

e2e! {
    async fn the_cache_is_bounded_in_size_and_age_and_reconnects_on_request(app) {
        let sessions = connect(&app).await.sessions();
        let mut tokens = Vec::new();
        for device in ["d0", "d1", "d2"] {
            tokens.push(sign_in(&sessions, "acct-bounds", device).await.1);
        }
        let codex = sessions.register(Registration::codex_desktop("acct-bounds", "install")).await.unwrap();

        // At most two entries: the oldest goes first.
        let cache = live_cache(&app, |builder| builder.max_entries(2).products([Product::Chatgpt])).await;
        for token in &tokens {
            cache.validate(token).await.unwrap();
        }
        assert_eq!(cache.len(), 2);
        let misses = cache.stats().misses;
        cache.validate(&tokens[0]).await.unwrap();
        assert_eq!(cache.stats().misses, misses + 1, "the oldest entry was dropped");
        // Sessions of products outside the cache's are validated but never cached.
        assert!(cache.validate(&codex.token).await.unwrap().is_some());
        assert!(cache.validate(&codex.token).await.unwrap().is_some());
        assert_eq!(cache.stats().misses, misses + 3);

        // Told to reconnect, the cache reopens its stream from its cursor and keeps its entries.
        cache.reconnect();
        within(Duration::from_secs(5), "the stream reopening", || {
            let stats = cache.stats();
            stats.streams_opened == 2 && stats.live
        })
        .await;
        let hits = cache.stats().hits;
        cache.validate(&tokens[2]).await.unwrap();
        assert_eq!(cache.stats().hits, hits + 1);

        // Entries expire after the maximum age.
        let cache = live_cache(&app, |builder| builder.max_age(Duration::from_millis(300))).await;
        cache.validate(&tokens[0]).await.unwrap();
        cache.validate(&tokens[0]).await.unwrap();
        assert_eq!(cache.stats().hits, 1);
        tokio::time::sleep(Duration::from_millis(400)).await;
        cache.validate(&tokens[0]).await.unwrap();
        assert_eq!(cache.stats().hits, 1, "an entry older than the maximum age is not used");
    }
}

e2e! {
    async fn the_cache_drops_everything_when_the_server_does_not_know_its_cursor(app) {
        let sessions = connect(&app).await.sessions();
        let (_, keep) = sign_in(&sessions, "acct-cursor", "d0").await;
        let (_, gone) = sign_in(&sessions, "acct-cursor", "d1").await;
        sessions.revoke_row(Owner::account("acct-cursor"), "d1", true).await.unwrap();
        assert!(sessions.validate(&gone).await.unwrap().is_none());

        // The cache starts here, then is pointed at a server over another database, whose
        // revocation log is shorter than the cache's cursor.
        let Some(other) = TestApp::spawn(app.backend).await else { return };
        let address = Arc::new(Mutex::new(endpoint(&app)));
        let cache = ValidationCache::builder_with_connector({
            let address = address.clone();
            move || {
                let endpoint = address.lock().unwrap().clone();
                async move { Connection::builder(endpoint).connect().await }
            }
        })
        .max_reconnect_delay(Duration::from_millis(100))
        .start()
        .await;
        tokio::time::timeout(Duration::from_secs(10), cache.wait_live()).await.expect("live");
        cache.validate(&keep).await.unwrap();
        assert_eq!(cache.len(), 1);
        let cursor = cache.cursor().expect("a cursor");

        *address.lock().unwrap() = endpoint(&other);
        cache.reconnect();
        within(Duration::from_secs(10), "the stream opening on the other server", || {
            let stats = cache.stats();
            stats.streams_opened == 2 && stats.live
        })
        .await;
        assert!(cache.is_empty(), "an unknown cursor drops every cached validation");
        assert_ne!(cache.cursor().expect("a new cursor"), cursor);
        assert!(cache.last_stream_error().is_some_and(|err| err.contains("cursor")));
        other.stop().await;
    }
}

e2e! {
    async fn the_cache_stream_outlives_the_connection_request_timeout(app) {
        // A short per-call deadline bounds unary calls, never the long-lived stream.
        let connection = Connection::builder(endpoint(&app))
            .request_timeout(Duration::from_millis(300))
            .connect()
            .await
            .unwrap();
        let cache = ValidationCache::builder(connection.clone()).start().await;
        tokio::time::timeout(Duration::from_secs(10), cache.wait_live()).await.expect("live");
        let (_, token) = sign_in(&connection.sessions(), "acct-deadline", "d0").await;
        cache.validate(&token).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let stats = cache.stats();
        assert!(stats.live && stats.streams_opened == 1, "{stats:?}, {:?}", cache.last_stream_error());
        connection.sessions().revoke_row(Owner::account("acct-deadline"), "d0", true).await.unwrap();
        within(Duration::from_secs(1), "the revocation reaching the cache", || {
            cache.stats().revocations_applied == 1
        })
        .await;
        assert!(cache.validate(&token).await.unwrap().is_none());
    }
}
