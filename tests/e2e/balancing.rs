//! Calls spread over replicas: one client connection balanced over three replicas sends each at
//! least a fifth of its calls, and when one replica stops mid-run the caller sees no error (a
//! call caught on the stopping replica is retried as UNAVAILABLE, and the replica is ejected at
//! the next refresh). The server side of the same goal, its maximum connection age, is on by
//! default.

use std::time::Duration;

use active_sessions_client::Connection;
use active_sessions_e2e::{SignIn, TestApp, e2e};

/// ValidateSession calls each replica has answered (cache hits and misses).
fn validations(app: &TestApp) -> u64 {
    let stats = app.services().sessions().cache_stats();
    stats.hits + stats.misses
}

e2e! {
    async fn a_balanced_client_spreads_calls_over_replicas_and_survives_one_stopping(app) {
        let second = app.replica().await;
        let third = app.replica().await;
        assert!(app.config().max_connection_age > Duration::ZERO);
        let (_, token) = app.sign_in(SignIn::browser("acct", "laptop")).await;
        let connection = Connection::builder(format!("http://{}", app.addr))
            .endpoints([format!("http://{}", second.addr), format!("http://{}", third.addr)])
            .refresh_interval(Duration::from_millis(200))
            .connect()
            .await
            .unwrap();
        let sessions = connection.sessions();

        // Connections open in the background: once every replica has answered a call, each is
        // in the balancer's set and the shares below measure the balancing, not connection
        // start-up on a loaded machine.
        let warm_up = [validations(&app), validations(&second), validations(&third)];
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                assert!(sessions.validate(&token).await.unwrap().is_some());
                let now = [validations(&app), validations(&second), validations(&third)];
                if now.iter().zip(warm_up).all(|(now, then)| *now > then) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("every replica answers within 20 s");

        let before = [validations(&app), validations(&second), validations(&third)];
        for _ in 0..300 {
            assert!(sessions.validate(&token).await.unwrap().is_some());
        }
        let served: Vec<u64> = [validations(&app), validations(&second), validations(&third)]
            .iter()
            .zip(before)
            .map(|(after, before)| after - before)
            .collect();
        eprintln!("calls per replica: {served:?}");
        assert_eq!(served.iter().sum::<u64>(), 300);
        for count in &served {
            assert!(*count >= 60, "every replica gets at least 20%: {served:?}");
        }

        // One replica stops in the middle of a run: no call fails.
        let stopping = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            third.stop().await;
        });
        for _ in 0..300 {
            assert!(
                sessions.validate(&token).await.expect("no error reaches the caller").is_some()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        stopping.await.unwrap();
        // The survivors serve what follows.
        let before = [validations(&app), validations(&second)];
        for _ in 0..100 {
            assert!(sessions.validate(&token).await.unwrap().is_some());
        }
        let after = [validations(&app), validations(&second)];
        assert_eq!(after[0] - before[0] + after[1] - before[1], 100);
        second.stop().await;
    }
}
