//! Per-caller rate limits: a caller over its limit is refused with RetryInfo while other
//! callers are not.

use std::time::{Duration, Instant};

use super::{CallersFile, product_caller, register, retry_delay};
use active_sessions_client::Connection;
use active_sessions_e2e::{TestApp, TestCaller, assert_status, callers_file, on_each_database, pb};
use futures::future::join_all;
use tonic::Code;

/// The callers-file entry of `caller` with extra `key = value` lines.
fn entry_with(caller: &TestCaller, extra: &str) -> String {
    format!(
        "{}\n{extra}\n\n",
        callers_file(std::slice::from_ref(caller)).trim_end()
    )
}

on_each_database! {
    async fn a_caller_over_its_rate_limit_is_refused_with_retry_info_while_other_callers_are_not(backend) {
        let brute = product_caller("brute");
        let other = product_caller("other");
        let text = format!(
            "{}{}",
            entry_with(&brute, "rate_limit_per_second = 5"),
            callers_file(std::slice::from_ref(&other))
        );
        let callers = CallersFile::new(&text);
        let Some(app) = TestApp::spawn_with(backend, |config| {
            config.security.callers_file = Some(callers.path.clone());
        })
        .await
        else {
            return;
        };
        let brute_conn = app.connect_with_token(Some(&brute.token)).await;
        let other_conn = app.connect_with_token(Some(&other.token)).await;
        let token = register(&other_conn, "acct-rate", "device-1").await.expect("register");
        let validate = |connection: &Connection| {
            let mut client = connection.session_service();
            let request = pb::ValidateSessionRequest { session_token: token.clone() };
            tokio::spawn(async move { client.validate_session(request).await.map(|r| r.into_inner().valid) })
        };

        let started = Instant::now();
        let brute_calls = join_all((0..50).map(|_| validate(&brute_conn)));
        let other_calls = join_all((0..20).map(|_| validate(&other_conn)));
        let (brute_results, other_results) = tokio::join!(brute_calls, other_calls);
        let elapsed = started.elapsed();

        let mut allowed = 0;
        let mut limited = 0;
        for result in brute_results {
            match result.expect("task") {
                Ok(valid) => {
                    assert!(valid);
                    allowed += 1;
                }
                Err(status) => {
                    assert_status(&status, Code::ResourceExhausted, Some("RATE_LIMITED"));
                    let delay = retry_delay(&status).unwrap_or_else(|| panic!("no RetryInfo in {status:?}"));
                    assert!(delay > Duration::ZERO && delay <= Duration::from_secs(1), "{delay:?}");
                    limited += 1;
                }
            }
        }
        eprintln!("brute: {allowed} allowed, {limited} rate limited in {elapsed:?}");
        // A burst of 5, then one more every 200 ms.
        let most_allowed = 5 + usize::try_from(elapsed.as_millis() / 200).unwrap() + 1;
        assert!(allowed >= 1 && allowed <= most_allowed, "{allowed} allowed in {elapsed:?}");
        assert!(limited >= 50 - most_allowed, "{limited}");
        assert!(elapsed < Duration::from_secs(3), "refusals must be quick: {elapsed:?}");
        for result in other_results {
            assert!(result.expect("task").expect("the other caller is not limited"));
        }

        // After the RetryInfo delay the caller may call again.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(brute_conn
            .session_service()
            .validate_session(pb::ValidateSessionRequest { session_token: token.clone() })
            .await
            .expect("allowed again after waiting")
            .into_inner()
            .valid);

        app.stop().await;
    }
}
