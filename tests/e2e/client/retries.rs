//! Retries: idempotent calls retry through overload and other calls never do; rate-limited
//! reads wait for the retry delay and writes report it.

use std::time::{Duration, Instant};

use super::{UNKNOWN_TOKEN, endpoint, sign_in};
use active_sessions_client::{
    Connection, Error, Owner, Product, Registration, RetryPolicy, RevokeAllOptions, SessionClient,
    Trust, TrustMethod,
};
use active_sessions_e2e::{TestApp, TestCaller, callers_file, on_each_database, pb};
use tokio::task::JoinHandle;

/// A registration whose request never arrives: it holds one of the server's in-flight slots
/// until it is aborted (or the server's request timeout passes).
fn stalled_registration(
    app: &TestApp,
) -> JoinHandle<Result<pb::RegisterSessionResponse, tonic::Status>> {
    let channel = app.channel.clone();
    tokio::spawn(async move {
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready()
            .await
            .map_err(|err| tonic::Status::unavailable(err.to_string()))?;
        grpc.client_streaming(
            tonic::Request::new(futures::stream::pending::<pb::RegisterSessionRequest>()),
            http::uri::PathAndQuery::from_static(
                "/activesessions.v1.SessionService/RegisterSession",
            ),
            active_sessions::codec::ActiveSessionsCodec::<
                pb::RegisterSessionRequest,
                pb::RegisterSessionResponse,
            >::default(),
        )
        .await
        .map(tonic::Response::into_inner)
    })
}

/// Holds the only in-flight slot of a server started with `max_concurrent_calls = 1`, and
/// returns once a cheap call is being shed.
async fn hold_the_only_slot(
    app: &TestApp,
    probe: &SessionClient,
) -> JoinHandle<Result<pb::RegisterSessionResponse, tonic::Status>> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut holder = stalled_registration(app);
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if holder.is_finished() {
            // Our holder was itself shed by a call still finishing: try again.
            holder = stalled_registration(app);
            continue;
        }
        match probe.validate(UNKNOWN_TOKEN).await {
            Err(Error::Overloaded { .. }) if !holder.is_finished() => return holder,
            other => assert!(Instant::now() < deadline, "never shed: {other:?}"),
        }
    }
}

on_each_database! {
    async fn idempotent_calls_retry_through_overload_and_other_calls_never_do(backend) {
        let Some(app) = TestApp::spawn_with(backend, |config| {
            config.security.max_concurrent_calls = 1;
        })
        .await
        else {
            return;
        };
        let patient = RetryPolicy::default()
            .max_attempts(200)
            .backoff(Duration::from_millis(10), Duration::from_millis(50))
            .deadline(Duration::from_secs(20));
        let connection = Connection::builder(endpoint(&app)).retry_policy(patient).connect().await.unwrap();
        let sessions = connection.sessions();
        let (_, token) = sign_in(&sessions, "acct-retry", "browser-1").await;
        let once = sessions.clone().with_retry_policy(RetryPolicy::no_retries());

        let holder = hold_the_only_slot(&app, &once).await;

        // Calls that change state make one attempt, however patient the policy.
        let started = Instant::now();
        let err = sessions.touch(&token, None).await.unwrap_err();
        assert!(matches!(err, Error::Overloaded { retry_after: Some(_) }), "{err:?}");
        assert!(err.is_retryable());
        let err = sessions.revoke_row(Owner::account("acct-retry"), "browser-1", true).await.unwrap_err();
        assert!(matches!(err, Error::Overloaded { .. }), "{err:?}");
        let err = sessions.revoke_all(Owner::account("acct-retry"), RevokeAllOptions::confirmed()).await.unwrap_err();
        assert!(matches!(err, Error::Overloaded { .. }), "{err:?}");
        let err = connection
            .trusted_devices()
            .trust(Trust::new("acct-retry", "browser-1", Product::Chatgpt, TrustMethod::Totp))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Overloaded { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "not retried: {:?}", started.elapsed());
        // An idempotent call with a policy of one attempt fails at once too.
        assert!(matches!(once.validate(&token).await, Err(Error::Overloaded { .. })));

        // Idempotent calls keep trying while the slot is held, and succeed once it is free.
        let validation = tokio::spawn({
            let sessions = sessions.clone();
            let token = token.clone();
            async move { sessions.validate(&token).await }
        });
        let registration = tokio::spawn({
            let sessions = sessions.clone();
            async move { sessions.register(Registration::chatgpt_browser("acct-retry", "browser-2")).await }
        });
        let listing = tokio::spawn({
            let sessions = sessions.clone();
            async move { sessions.list_all_rows(Owner::account("acct-retry"), None).await }
        });
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!validation.is_finished() && !registration.is_finished() && !listing.is_finished());
        holder.abort();

        let released = Instant::now();
        assert!(validation.await.unwrap().unwrap().is_some());
        let registered = registration.await.unwrap().unwrap();
        listing.await.unwrap().unwrap();
        assert!(released.elapsed() < Duration::from_secs(10));
        // The retried registration created exactly one session (its request id made any repeat
        // a replay).
        let rows = sessions.list_all_rows(Owner::account("acct-retry"), None).await.unwrap();
        let browser_2 = rows.iter().find(|row| row.device_id == "browser-2").unwrap();
        assert_eq!(browser_2.sessions.len(), 1);
        assert_eq!(browser_2.sessions[0].session_id, registered.session.session_id);

        // Nothing the refused calls asked for happened.
        assert!(sessions.validate(&token).await.unwrap().is_some());
        assert!(!connection.trusted_devices().check("acct-retry", "browser-1").await.unwrap().trusted);

        app.stop().await;
    }
}

on_each_database! {
    async fn rate_limited_reads_wait_for_the_retry_delay_and_writes_report_it(backend) {
        let caller = TestCaller::new("chatgpt", &["product", "settings"], &["CHATGPT"]);
        let scratch = tempfile::tempdir().unwrap();
        let path = scratch.path().join("callers.toml");
        let entry = callers_file(std::slice::from_ref(&caller));
        std::fs::write(&path, format!("{}\nrate_limit_per_second = 1\n", entry.trim_end())).unwrap();
        let Some(app) = TestApp::spawn_with(backend, |config| {
            config.security.callers_file = Some(path.clone());
        })
        .await
        else {
            return;
        };
        let connection = Connection::builder(endpoint(&app))
            .bearer_token(caller.token.clone())
            .retry_policy(RetryPolicy::default().deadline(Duration::from_secs(5)))
            .connect()
            .await
            .unwrap();
        let sessions = connection.sessions();

        // One call a second: the second validation waits for the server's delay, then succeeds.
        assert!(sessions.validate(UNKNOWN_TOKEN).await.unwrap().is_none());
        let started = Instant::now();
        assert!(sessions.validate(UNKNOWN_TOKEN).await.unwrap().is_none());
        assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());

        // Without retries the same call reports the delay; a touch reports it whatever the policy.
        let impatient = sessions.clone().with_retry_policy(RetryPolicy::no_retries());
        let err = impatient.validate(UNKNOWN_TOKEN).await.unwrap_err();
        let Error::RateLimited { retry_after: Some(delay) } = err else { panic!("{err:?}") };
        assert!(delay > Duration::ZERO && delay <= Duration::from_secs(1), "{delay:?}");
        let started = Instant::now();
        let err = sessions.touch(UNKNOWN_TOKEN, None).await.unwrap_err();
        assert!(matches!(err, Error::RateLimited { retry_after: Some(_) }), "{err:?}");
        assert!(err.is_retryable());
        assert!(started.elapsed() < Duration::from_millis(300), "touch was retried");

        app.stop().await;
    }
}
