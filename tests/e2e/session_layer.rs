//! `SessionLayer` and the `ValidSession` extractor in a real axum product app on loopback, over
//! the real server: which requests get through (bearer, cookie) and which are answered 401
//! without reaching a handler (none, garbage, malformed, another product's); a log-out through
//! the settings path is refused by the app within a second; a server that cannot be reached is
//! 503 with `Retry-After`, never a pass, and the app recovers by itself.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use active_sessions_client::{
    Connection, Owner, Registration, RetryPolicy, SessionLayer, SessionValidator, ValidationCache,
};
use active_sessions_e2e::{
    TestApp, TestCaller, e2e, live_cache, on_each_database,
    product::{self, bearer},
    sign_in_browser,
};

on_each_database! {
    async fn layer_lets_through_only_signed_in_sessions_of_its_product(backend) {
        let callers = vec![
            TestCaller::new("chatgpt-web", &["product"], &["CHATGPT"]),
            TestCaller::new("codex", &["product"], &["CODEX"]),
        ];
        let Some(app) = TestApp::spawn_with_callers(backend, callers).await else { return };
        let chatgpt = app.connect_as("chatgpt-web").await;
        let (session_id, token) = sign_in_browser(&chatgpt, "acct_layer", "browser-1").await;
        let codex_token = app
            .connect_as("codex")
            .await
            .sessions()
            .register(Registration::codex_desktop("acct_layer", "install-1"))
            .await
            .expect("codex registration")
            .token;

        let validator = SessionValidator::builder(live_cache(&chatgpt).await)
            .cookie("chatgpt_session")
            .bearer()
            .build();
        let handled = Arc::new(AtomicU64::new(0));
        let (addr, server) =
            product::serve(product::app(Some(SessionLayer::new(validator)), handled.clone())).await;

        // A valid bearer token, and the same session in the cookie: through, with its account.
        let (name, value) = bearer(&token);
        let me = product::get(addr, "/me", &[(name, &value)]).await;
        assert_eq!(me.status, 200, "{me:?}");
        assert_eq!(me.json()["account_id"], "acct_layer");
        assert_eq!(me.json()["session_id"], session_id.as_str());
        assert_eq!(me.json()["product"], "PRODUCT_CHATGPT");
        let cookie = format!("theme=dark; chatgpt_session={token}");
        let me = product::get(addr, "/me", &[("cookie", &cookie)]).await;
        assert_eq!(me.status, 200, "{me:?}");
        // The cookie comes first: a valid cookie wins over a bad bearer token.
        let me = product::get(addr, "/me", &[("cookie", &cookie), ("authorization", "Bearer x")]).await;
        assert_eq!(me.status, 200, "{me:?}");
        assert_eq!(handled.load(Ordering::Relaxed), 3);

        // Missing, garbage, malformed base64 (bad characters, and bits past the 32 bytes),
        // another product's session: 401, and no handler runs.
        let missing = product::get(addr, "/me", &[]).await;
        assert_eq!(missing.status, 401);
        assert_eq!(missing.headers["www-authenticate"], "Bearer realm=\"active-sessions\"");
        assert_eq!(missing.json()["error"], "unauthenticated");
        let bad_chars = format!("ast_{}", "!".repeat(43));
        let past_the_end = format!("ast_{}B", "A".repeat(42));
        for refused in ["garbage", bad_chars.as_str(), past_the_end.as_str(), codex_token.as_str()] {
            let (name, value) = bearer(refused);
            let answer = product::get(addr, "/me", &[(name, &value)]).await;
            assert_eq!(answer.status, 401, "{answer:?}");
            assert!(
                answer.headers["www-authenticate"].to_str().unwrap().contains("invalid_token"),
                "{answer:?}"
            );
        }
        // A gRPC request is refused as gRPC: UNAUTHENTICATED in a trailers-only response.
        let grpc = product::get(addr, "/me", &[("content-type", "application/grpc")]).await;
        assert_eq!(grpc.status, 200);
        assert_eq!(grpc.headers["grpc-status"], "16");
        assert_eq!(handled.load(Ordering::Relaxed), 3, "no refused request reached a handler");
        server.abort();

        // Signed-out routes: `Option<ValidSession>` behind a layer that lets signed-out
        // requests through; `ValidSession` still refuses them.
        let (addr, server) = product::serve(product::app(
            Some(SessionLayer::new(chatgpt.sessions()).allow_signed_out()),
            handled.clone(),
        ))
        .await;
        assert_eq!(product::get(addr, "/hello", &[]).await.body, "hello stranger");
        let (name, value) = bearer(&token);
        assert_eq!(product::get(addr, "/hello", &[(name, &value)]).await.body, "hello acct_layer");
        let (name, value) = bearer(&codex_token);
        assert_eq!(product::get(addr, "/hello", &[(name, &value)]).await.body, "hello stranger");
        assert_eq!(product::get(addr, "/me", &[]).await.status, 401);
        server.abort();
        app.stop().await;
    }
}

e2e! {
    async fn a_log_out_from_the_settings_page_is_refused_by_the_app_within_a_second(app) {
        let connection = Connection::builder(format!("http://{}", app.addr)).connect().await.unwrap();
        let (_, laptop) = sign_in_browser(&connection, "acct_logout", "laptop").await;
        let (_, phone) = sign_in_browser(&connection, "acct_logout", "phone").await;
        let cache = live_cache(&connection).await;
        let handled = Arc::new(AtomicU64::new(0));
        let (addr, server) =
            product::serve(product::app(Some(SessionLayer::new(cache.clone())), handled)).await;
        let mut client = product::HttpClient::connect(addr).await;
        let (name, value) = bearer(&phone);
        for _ in 0..3 {
            assert_eq!(client.get("/me", &[(name, &value)]).await.status, 200);
        }
        assert!(cache.stats().hits >= 2, "answered from memory: {:?}", cache.stats());

        // The laptop's settings page logs the phone out.
        let started = Instant::now();
        connection
            .sessions()
            .revoke_row(Owner::token(&laptop), "phone", true)
            .await
            .expect("log-out");
        let refused_after = loop {
            let answer = client.get("/me", &[(name, &value)]).await;
            if answer.status == 401 {
                break started.elapsed();
            }
            assert_eq!(answer.status, 200);
            assert!(started.elapsed() < Duration::from_secs(2), "still signed in after 2 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert!(refused_after <= Duration::from_secs(1), "refused after {refused_after:?}");
        let (name, value) = bearer(&laptop);
        assert_eq!(client.get("/me", &[(name, &value)]).await.status, 200);
        server.abort();
    }
}

e2e! {
    async fn an_unreachable_service_is_503_and_the_app_recovers_by_itself(app) {
        let connection = Connection::builder(format!("http://{}", app.addr))
            .connect_timeout(Duration::from_millis(500))
            .retry_policy(RetryPolicy::default().deadline(Duration::from_millis(500)))
            .connect()
            .await
            .unwrap();
        let (_, token) = sign_in_browser(&connection, "acct_outage", "laptop").await;
        let cache = ValidationCache::builder(connection)
            .max_reconnect_delay(Duration::from_millis(200))
            .start()
            .await;
        tokio::time::timeout(Duration::from_secs(10), cache.wait_live()).await.unwrap();
        let (addr, server) = product::serve(product::app(
            Some(SessionLayer::new(cache.clone())),
            Arc::new(AtomicU64::new(0)),
        ))
        .await;
        let (name, value) = bearer(&token);
        assert_eq!(product::get(addr, "/me", &[(name, &value)]).await.status, 200);

        app.pause().await;
        let deadline = Instant::now() + Duration::from_secs(5);
        let unavailable = loop {
            let answer = product::get(addr, "/me", &[(name, &value)]).await;
            if answer.status != 200 || Instant::now() > deadline {
                break answer;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(unavailable.status, 503, "{unavailable:?}");
        assert_eq!(unavailable.headers["retry-after"], "1");
        assert!(cache.health().is_degraded(), "{:?}", cache.health());
        assert_eq!(product::get(addr, "/me", &[]).await.status, 401, "no token needs no server");

        app.resume().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let answer = product::get(addr, "/me", &[(name, &value)]).await;
            if answer.status == 200 {
                break;
            }
            assert_eq!(answer.status, 503, "{answer:?}");
            assert!(Instant::now() < deadline, "the app did not recover");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::timeout(Duration::from_secs(10), cache.wait_live()).await.unwrap();
        assert_eq!(cache.health(), active_sessions_client::CacheHealth::Live);
        server.abort();
    }
}

e2e! {
    async fn the_heartbeat_touches_a_session_once_per_interval_through_the_products_layers(app) {
        // The product's own layer on the channel sees every call: count them by method.
        let calls = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let seen = calls.clone();
        let connection = Connection::builder(format!("http://{}", app.addr))
            .layer(tower::util::MapRequestLayer::new(move |request: http::Request<_>| {
                seen.lock().unwrap().push(request.uri().path().to_owned());
                request
            }))
            .connect()
            .await
            .unwrap();
        let (_, token) = sign_in_browser(&connection, "acct_heartbeat", "laptop").await;
        let validator = SessionValidator::builder(connection.sessions())
            .heartbeat(connection.sessions(), Duration::from_secs(3600))
            .build();
        let (addr, server) = product::serve(product::app(
            Some(SessionLayer::new(validator)),
            Arc::new(AtomicU64::new(0)),
        ))
        .await;
        let mut client = product::HttpClient::connect(addr).await;
        let (name, value) = bearer(&token);
        for _ in 0..5 {
            assert_eq!(client.get("/me", &[(name, &value)]).await.status, 200);
        }
        let count = |method: &str| {
            let path = format!("/activesessions.v1.SessionService/{method}");
            calls.lock().unwrap().iter().filter(|called| **called == path).count()
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while count("TouchSession") == 0 {
            assert!(Instant::now() < deadline, "no heartbeat");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(count("ValidateSession"), 5, "validated through the server every time");
        assert_eq!(count("TouchSession"), 1, "one heartbeat per interval");
        assert_eq!(count("RegisterSession"), 1);
        server.abort();
    }
}
