//! Load shedding: calls over the in-flight limit are shed as overloaded (with a retry delay)
//! while health still answers.

use std::time::{Duration, Instant};

use super::{
    SESSION_SERVICE, retry_delay, stalled_registration, unknown_token_validation,
    wait_until_not_shedding, wait_until_serving,
};
use active_sessions_e2e::{SignIn, TestApp, assert_status, on_each_database, pb};
use futures::future::join_all;
use tokio::task::JoinHandle;
use tonic::{Code, Status};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// Starts `slots` stalled calls and waits (bounded) until they hold every slot: until a cheap
/// call is shed. A stalled call that was itself shed (it raced a probe) is started again.
async fn hold_every_slot(
    app: &TestApp,
    slots: usize,
) -> Vec<JoinHandle<Result<pb::RegisterSessionResponse, Status>>> {
    let mut holders: Vec<_> = (0..slots)
        .map(|_| stalled_registration(app.channel.clone(), None))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        for holder in &mut holders {
            if holder.is_finished() {
                let status = (&mut *holder)
                    .await
                    .expect("task")
                    .expect_err("a stalled call cannot succeed");
                assert_overloaded(&status);
                *holder = stalled_registration(app.channel.clone(), None);
            }
        }
        match app
            .sessions()
            .validate_session(unknown_token_validation())
            .await
        {
            Err(status) if status.code() == Code::Unavailable => {
                assert_overloaded(&status);
                if holders.iter().all(|holder| !holder.is_finished()) {
                    return holders;
                }
            }
            other => assert!(Instant::now() < deadline, "never shed: {other:?}"),
        }
    }
}

fn assert_overloaded(status: &Status) {
    assert_status(status, Code::Unavailable, Some("OVERLOADED"));
    let delay = retry_delay(status).unwrap_or_else(|| panic!("no RetryInfo in {status:?}"));
    assert!(
        delay > Duration::ZERO && delay <= Duration::from_secs(5),
        "{delay:?}"
    );
}

/// Fires `count` registrations at once, each on its own device of `account`.
async fn register_burst(app: &TestApp, account: &str, count: usize) -> Vec<Result<String, Status>> {
    let calls = (0..count).map(|i| {
        let mut client = app.sessions();
        let request = SignIn::browser(account, &format!("device-{i}")).request();
        tokio::spawn(async move {
            client
                .register_session(request)
                .await
                .map(|response| response.into_inner().session_token)
        })
    });
    join_all(calls)
        .await
        .into_iter()
        .map(|joined| joined.expect("task panicked"))
        .collect()
}

on_each_database! {
    async fn calls_over_the_in_flight_limit_are_shed_as_overloaded_while_health_still_answers(backend) {
        let Some(app) = TestApp::spawn_with(backend, |config| {
            config.security.max_concurrent_calls = 2;
        })
        .await
        else {
            return;
        };
        wait_until_serving(app.channel.clone(), SESSION_SERVICE).await;

        // Two calls whose request never arrives hold both slots.
        let holders = hold_every_slot(&app, 2).await;

        // A burst while the slots are held: every call is shed at once, nothing stored.
        let started = Instant::now();
        let burst = register_burst(&app, "acct-shed", 50);
        let (results, health) = tokio::join!(burst, async {
            HealthClient::new(app.channel.clone())
                .check(HealthCheckRequest { service: SESSION_SERVICE.into() })
                .await
        });
        assert!(started.elapsed() < Duration::from_secs(5), "shedding must not queue");
        for result in &results {
            assert_overloaded(result.as_ref().expect_err("every call is shed"));
        }
        assert_eq!(
            health.expect("health is exempt from shedding").into_inner().status(),
            ServingStatus::Serving
        );

        // Releasing the slots ends the shedding.
        for holder in &holders {
            holder.abort();
        }
        wait_until_not_shedding(&app).await;
        assert!(app.rows_for_account("acct-shed").await.is_empty(), "shed calls stored nothing");

        // A free-running burst: each call either succeeds or is shed cleanly, never INTERNAL;
        // what succeeded is exactly what was stored.
        let results = register_burst(&app, "acct-burst", 50).await;
        let mut ok = 0;
        let mut shed = 0;
        for result in &results {
            match result {
                Ok(_) => ok += 1,
                Err(status) => {
                    assert_overloaded(status);
                    shed += 1;
                }
            }
        }
        eprintln!("free-running burst of 50 with 2 slots: {ok} OK, {shed} OVERLOADED");
        assert!(ok >= 1);
        assert_eq!(app.rows_for_account("acct-burst").await.len(), ok);

        app.stop().await;
    }
}
