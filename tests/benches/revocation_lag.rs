//! Cross-replica revocation lag under a fault-free run: two replicas on one database
//! (PostgreSQL when `ACTIVE_SESSIONS_TEST_POSTGRES_URL` is set, else SQLite), the second
//! validating a session (from its cache) while the first logs it out. The lag is the time from
//! the revoking call's return to the first validation on the other replica that refuses it;
//! the documented bound (ARCHITECTURE.md, "Across replicas") is 500 ms.
//!
//! ```text
//! cargo bench -p active-sessions-e2e --bench revocation_lag            # 200 rounds
//! cargo bench -p active-sessions-e2e --bench revocation_lag -- 50      # 50 rounds
//! ```

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::time::{Duration, Instant};

use active_sessions_e2e::{Backend, POSTGRES_URL_VAR, SignIn, TestApp, by_account, pb};
use active_sessions_server::service::sessions::MAX_FEED_STALENESS;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(200);
    let backend = if std::env::var(POSTGRES_URL_VAR).is_ok() {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    let first = TestApp::spawn(backend).await.expect("server");
    let second = first.replica().await;

    let mut lags = Vec::with_capacity(rounds);
    let mut late = 0;
    for round in 0..rounds {
        let account = format!("acct_{round}");
        let (_, token) = first.sign_in(SignIn::browser(&account, "dev")).await;
        // Cached on the other replica.
        assert!(second.is_valid(&token).await && second.is_valid(&token).await);
        // Alternate one-session log-outs and log-outs of all.
        if round % 2 == 0 {
            first
                .sessions()
                .revoke_session(pb::RevokeSessionRequest {
                    subject: Some(by_account(&account)),
                    target: Some(pb::revoke_session_request::Target::DeviceId("dev".into())),
                    validate_only: false,
                })
                .await
                .unwrap();
        } else {
            first
                .sessions()
                .revoke_all_sessions(pb::RevokeAllSessionsRequest {
                    subject: Some(by_account(&account)),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        let returned = Instant::now();
        loop {
            let asked = Instant::now();
            if !second.is_valid(&token).await {
                lags.push(asked.duration_since(returned));
                break;
            }
            if asked.duration_since(returned) >= MAX_FEED_STALENESS {
                late += 1;
            }
            assert!(
                returned.elapsed() < Duration::from_secs(10),
                "never refused"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    lags.sort();
    println!(
        "cross-replica revocation lag ({backend:?}, {rounds} rounds, fault-free): p50 {:?}, \
         p99 {:?}, max {:?}; valid answers later than the {MAX_FEED_STALENESS:?} bound: {late}",
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags[lags.len() - 1],
    );
    second.stop().await;
    first.stop().await;
}
