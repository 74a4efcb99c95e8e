//! Client deadlines and the server's request timeout: a call past a one-millisecond deadline
//! ends DEADLINE_EXCEEDED or CANCELLED, and the request timeout ends a stalled call and frees its
//! slot whatever the client's deadline.

use std::time::{Duration, Instant};

use super::{stalled_registration, wait_until_not_shedding};
use active_sessions_client::Connection;
use active_sessions_e2e::{SignIn, TestApp, e2e, on_each_database};
use tonic::{Code, Status};

/// True for a status the client made from a transport failure (no answer from the server).
fn is_client_transport_error(status: &Status) -> bool {
    status.code() == Code::Unknown
        && std::error::Error::source(status)
            .is_some_and(|source| source.downcast_ref::<tonic::transport::Error>().is_some())
}

e2e! {
    async fn calls_past_a_one_millisecond_client_deadline_end_deadline_exceeded_or_cancelled(app) {
        let is_deadline = |status: &Status| {
            matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled)
        };

        // A call that cannot finish in time (its request never arrives) with a 1 ms deadline.
        let status = stalled_registration(app.channel.clone(), Some(Duration::from_millis(1)))
            .await
            .expect("task")
            .expect_err("the deadline passes");
        assert!(is_deadline(&status), "{status:?}");

        // Ordinary registrations, one after another, on a connection whose every call has 1 ms:
        // each finishes in time or ends at its deadline.
        let hurried = Connection::builder(format!("http://{}", app.addr))
            .request_timeout(Duration::from_millis(1))
            .connect()
            .await
            .unwrap();
        let mut client = hurried.session_service();
        let mut expired = 0;
        let mut broken = 0;
        for i in 0..20 {
            let request = SignIn::browser("acct-deadline", &format!("device-{i}")).request();
            if let Err(status) = client.register_session(request).await {
                if is_deadline(&status) {
                    expired += 1;
                } else {
                    // The server also enforces the deadline it was sent: when it answers while
                    // the client is still writing the request, hyper's client may report the
                    // broken request stream (UNKNOWN "transport error", made on the client)
                    // instead of the answer. Anything else, INTERNAL above all, is a failure.
                    assert!(is_client_transport_error(&status), "{status:?}");
                    broken += 1;
                }
            }
        }
        eprintln!(
            "1 ms client deadline: {expired} of 20 registrations expired, {broken} broken streams"
        );

        // The server is unharmed.
        app.sign_in(SignIn::browser("acct-deadline", "device-after")).await;
    }
}

on_each_database! {
    async fn the_server_request_timeout_ends_a_stalled_call_and_frees_its_slot_whatever_the_client_deadline(backend) {
        let Some(app) = TestApp::spawn_with(backend, |config| {
            config.security.request_timeout = Duration::from_millis(300);
            config.security.max_concurrent_calls = 1;
        })
        .await
        else {
            return;
        };

        // The client allows 10 s; the server allows 300 ms.
        let started = Instant::now();
        let status = stalled_registration(app.channel.clone(), Some(Duration::from_secs(10)))
            .await
            .expect("task")
            .expect_err("a call whose request never arrives must end");
        let elapsed = started.elapsed();
        assert!(
            matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
            "{status:?}"
        );
        eprintln!("server timeout: {:?} {:?} after {elapsed:?}", status.code(), status.message());
        assert!(elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(5), "{elapsed:?}");

        // A short client deadline on the same kind of call ends it sooner.
        let started = Instant::now();
        let status = stalled_registration(app.channel.clone(), Some(Duration::from_millis(50)))
            .await
            .expect("task")
            .expect_err("the deadline passes");
        assert!(
            matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
            "{status:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(300), "{:?}", started.elapsed());

        // The only slot is free again.
        wait_until_not_shedding(&app).await;
        app.sign_in(SignIn::browser("acct-timeout", "device-1")).await;

        app.stop().await;
    }
}
