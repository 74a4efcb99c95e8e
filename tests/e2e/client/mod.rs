//! The typed client (`active-sessions-client`): typed calls round-trip, errors map to the
//! variants a caller acts on, idempotent calls retry and others never do, and the validation
//! cache never reports a revoked session valid once the revocation has reached its stream,
//! across stream breaks and server restarts too. One capability a file; this module holds the
//! helpers they share.

mod cache_revocations;
mod cache_stream;
mod errors;
mod retries;
mod typed_calls;

use std::{
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant},
};

use active_sessions_client::{
    AuthMethod, Connection, Registration, SessionClient, ValidationCache,
};
use active_sessions_e2e::{TestApp, user_agents};

const LONDON: IpAddr = IpAddr::V4(Ipv4Addr::new(81, 2, 69, 142));

/// A well-formed session token that no session has.
const UNKNOWN_TOKEN: &str = "ast_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

fn endpoint(app: &TestApp) -> String {
    format!("http://{}", app.addr)
}

async fn connect(app: &TestApp) -> Connection {
    Connection::builder(endpoint(app))
        .user_agent("active-sessions-e2e")
        .connect()
        .await
        .expect("connect")
}

/// Registers a ChatGPT browser sign-in and returns its token.
async fn sign_in(sessions: &SessionClient, account: &str, device: &str) -> (String, String) {
    let registered = sessions
        .register(
            Registration::chatgpt_browser(account, device)
                .user_agent(user_agents::CHROME_MAC)
                .ip(LONDON)
                .auth_method(AuthMethod::Password),
        )
        .await
        .expect("registration");
    (registered.session.session_id, registered.token)
}

/// True when the violations name `field`.
fn names(violations: &[(String, String)], field: &str) -> bool {
    violations.iter().any(|(name, _)| name == field)
}

/// Waits (at most `limit`) until `condition` holds; returns how long it took.
async fn within(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < limit,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

/// Starts a cache over a fresh connection to `app` and waits until its stream is live.
async fn live_cache(
    app: &TestApp,
    adjust: impl FnOnce(
        active_sessions_client::ValidationCacheBuilder,
    ) -> active_sessions_client::ValidationCacheBuilder,
) -> ValidationCache {
    let cache = adjust(ValidationCache::builder(connect(app).await))
        .start()
        .await;
    tokio::time::timeout(Duration::from_secs(10), cache.wait_live())
        .await
        .expect("the cache's stream goes live");
    cache
}
