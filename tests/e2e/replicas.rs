//! Several replicas on one PostgreSQL database: a revocation made through one replica is
//! refused by ValidateSession on every other replica (whose validation caches it invalidates)
//! and reaches every replica's WatchRevocations stream, within a second at p99. The revocation
//! log drives it; PostgreSQL LISTEN/NOTIFY wakes the replicas, polling is the fallback.

use std::time::{Duration, Instant};

use active_sessions_e2e::{Backend, SignIn, TestApp, by_account, pb};
use futures::StreamExt;

const ROUNDS: usize = 20;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_reach_every_replica_within_a_second() {
    let Some(first) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let replicas = [first.replica().await, first.replica().await];
    let all: Vec<&TestApp> = std::iter::once(&first).chain(replicas.iter()).collect();

    // Every replica watches the stream from now.
    let mut streams = Vec::new();
    for app in &all {
        let mut stream = app
            .sessions()
            .watch_revocations(pb::WatchRevocationsRequest::default())
            .await
            .unwrap()
            .into_inner();
        stream.next().await.unwrap().unwrap();
        streams.push(stream);
    }

    let mut validation_lag = Vec::new();
    let mut stream_lag = Vec::new();
    for round in 0..ROUNDS {
        let device = format!("dev_{round}");
        let (session, token) = first.sign_in(SignIn::browser("acct", &device)).await;
        // Every replica validates it once, so each has it in its cache.
        for app in &all {
            assert!(app.is_valid(&token).await);
        }
        // Revoke through a rotating replica; the others must notice.
        let origin = round % all.len();
        let started = Instant::now();
        all[origin]
            .sessions()
            .revoke_session(pb::RevokeSessionRequest {
                subject: Some(by_account("acct")),
                target: Some(pb::revoke_session_request::Target::DeviceId(device.clone())),
                validate_only: false,
            })
            .await
            .unwrap();
        for (i, app) in all.iter().enumerate() {
            if i == origin {
                assert!(
                    !app.is_valid(&token).await,
                    "the revoking replica refuses at once"
                );
                continue;
            }
            loop {
                if !app.is_valid(&token).await {
                    validation_lag.push(started.elapsed());
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "replica {i} still validates a revoked session"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        for (i, stream) in streams.iter_mut().enumerate() {
            loop {
                let batch = tokio::time::timeout(Duration::from_secs(5), stream.next())
                    .await
                    .unwrap()
                    .unwrap()
                    .unwrap();
                if batch
                    .events
                    .iter()
                    .any(|e| e.session_ids.contains(&session.session_id))
                {
                    stream_lag.push(started.elapsed());
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "replica {i}'s stream missed the revocation"
                );
            }
        }
    }
    validation_lag.sort();
    stream_lag.sort();
    let report = |name: &str, lags: &[Duration]| {
        eprintln!(
            "{name}: n={} p50={:?} p99={:?} max={:?}",
            lags.len(),
            percentile(lags, 0.5),
            percentile(lags, 0.99),
            lags[lags.len() - 1]
        );
    };
    report("cross-replica validation refusal lag", &validation_lag);
    report("cross-replica stream delivery lag", &stream_lag);
    assert!(percentile(&validation_lag, 0.99) < Duration::from_secs(1));
    assert!(percentile(&stream_lag, 0.99) < Duration::from_secs(1));

    for replica in replicas {
        replica.stop().await;
    }
    first.stop().await;
}
