//! A replica cut off from the database fails closed. Two replicas on one PostgreSQL database,
//! the second reaching it through a TCP proxy the test cuts for 20 s: once its revocation feed
//! is older than the documented bound it stops answering from its cache, so a session logged
//! out on the other replica is never "valid" there later than the bound after the log-out
//! returned; it answers UNAVAILABLE (REVOCATION_FEED_STALE) instead, reports NOT_SERVING, and
//! recovers by itself when the proxy is restored.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use active_sessions_e2e::{Backend, SignIn, TestApp, by_account, pb};
use active_sessions_server::service::sessions::MAX_FEED_STALENESS;
use tokio::{net::TcpListener, sync::watch};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic_types::StatusExt;

/// How long the replica stays cut off.
const PARTITION: Duration = Duration::from_secs(20);

/// A TCP proxy to PostgreSQL that the test can cut (every connection closed, new ones refused)
/// and restore.
struct Proxy {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (cut, watching) = watch::channel(false);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if *watching.borrow() {
                    drop(inbound);
                    continue;
                }
                let mut cut_off = watching.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_off.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Self { addr, cut, accept }
    }

    fn cut(&self) {
        self.cut.send_replace(true);
    }

    fn restore(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut.send_replace(true);
        self.accept.abort();
    }
}

/// `scheme://user@host:port/db?x` -> (`host:port`, the URL with `authority` in its place).
fn through(url: &str, authority: &str) -> (String, String) {
    let start = url.find("://").expect("scheme") + 3;
    let rest = &url[start..];
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let host_start = rest[..end].rfind('@').map_or(0, |at| at + 1);
    let upstream = rest[host_start..end].to_owned();
    let proxied = format!(
        "{}{}{}{}",
        &url[..start],
        &rest[..host_start],
        authority,
        &rest[end..]
    );
    (upstream, proxied)
}

async fn health(app: &TestApp) -> i32 {
    HealthClient::new(app.channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .map(|response| response.into_inner().status)
        .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_off_from_the_database_stops_vouching_and_recovers_by_itself() {
    let Some(first) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let (upstream, _) = through(first.database_url(), "");
    let proxy = Proxy::start(upstream).await;
    let (_, proxied) = through(first.database_url(), &proxy.addr.to_string());
    let cut_off = first
        .replica_with(first.clock.clone(), |config| {
            config.database.url = proxied.into();
            config.database.connect_timeout = Duration::from_secs(1);
            config.database.acquire_timeout = Duration::from_secs(1);
        })
        .await;

    let (_, token) = first.sign_in(SignIn::browser("acct", "dev")).await;
    // Cached on the replica that will be cut off.
    assert!(cut_off.is_valid(&token).await);
    assert!(cut_off.is_valid(&token).await);
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    // The replica reports SERVING once its health watcher has seen the database and a fresh
    // revocation feed, which on a busy machine can come after its first answers.
    let deadline = Instant::now() + Duration::from_secs(5);
    while health(&cut_off).await != serving {
        assert!(
            Instant::now() < deadline,
            "the replica never became SERVING"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    proxy.cut();
    let cut_at = Instant::now();
    first
        .sessions()
        .revoke_all_sessions(pb::RevokeAllSessionsRequest {
            subject: Some(by_account("acct")),
            ..Default::default()
        })
        .await
        .expect("log out of all on the connected replica");
    let returned = Instant::now();

    let mut stale_refusals = 0;
    let mut late_valid = Vec::new();
    let mut not_serving_seen = false;
    while cut_at.elapsed() < PARTITION {
        let asked = Instant::now();
        let answer = cut_off
            .sessions()
            .validate_session(pb::ValidateSessionRequest {
                session_token: token.clone(),
            })
            .await;
        match answer {
            Ok(response) if response.get_ref().valid => {
                let late = asked.saturating_duration_since(returned);
                if asked >= returned && late >= MAX_FEED_STALENESS {
                    late_valid.push(late);
                }
            }
            Ok(_) => {}
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
                let reason = status.get_details_error_info().map(|info| info.reason);
                if reason.as_deref() == Some("REVOCATION_FEED_STALE") {
                    stale_refusals += 1;
                }
            }
        }
        if cut_at.elapsed() > Duration::from_secs(3) && health(&cut_off).await != serving {
            not_serving_seen = true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        late_valid.is_empty(),
        "valid after the log-out returned, later than {MAX_FEED_STALENESS:?}: {late_valid:?}"
    );
    assert!(
        stale_refusals > 0,
        "the cut-off replica never answered UNAVAILABLE"
    );
    assert!(not_serving_seen, "health stayed SERVING while cut off");

    proxy.restore();
    let restored = Instant::now();
    loop {
        let answer = cut_off
            .sessions()
            .validate_session(pb::ValidateSessionRequest {
                session_token: token.clone(),
            })
            .await;
        if let Ok(response) = answer {
            assert!(
                !response.into_inner().valid,
                "the revoked session validates"
            );
            break;
        }
        assert!(
            restored.elapsed() < Duration::from_secs(20),
            "the replica did not recover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while health(&cut_off).await != serving {
        assert!(
            restored.elapsed() < Duration::from_secs(20),
            "health did not return to SERVING"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, fresh) = first.sign_in(SignIn::browser("acct", "dev_2")).await;
    assert!(cut_off.is_valid(&fresh).await);
    eprintln!(
        "partition: {stale_refusals} REVOCATION_FEED_STALE refusals; recovered in {:?}",
        restored.elapsed()
    );

    cut_off.stop().await;
    drop(proxy);
    first.stop().await;
}

#[test]
fn proxied_urls_keep_user_database_and_options() {
    assert_eq!(
        through("postgres://postgres@127.0.0.1:5432/db?x=1", "127.0.0.1:9"),
        (
            "127.0.0.1:5432".to_owned(),
            "postgres://postgres@127.0.0.1:9/db?x=1".to_owned()
        )
    );
}
