//! What the examples share: the connection from the environment, unique ids, and a time bound.

#![allow(dead_code)] // each example uses only some of these

use std::{
    future::Future,
    process::ExitCode,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use active_sessions_client::{Connection, Error, RetryPolicy};

/// Chrome on macOS.
pub const CHROME_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36";
/// Safari on an iPhone.
pub const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
/// The Codex desktop app on macOS.
pub const CODEX_MAC_APP: &str = "Codex/0.9.1 (Mac OS X 14.5; arm64)";

/// The whole example must finish within this.
const TIME_LIMIT: Duration = Duration::from_secs(30);

/// Connects to `ACTIVE_SESSIONS_ENDPOINT` (default `http://127.0.0.1:50051`) with the optional
/// `ACTIVE_SESSIONS_TOKEN`, with short timeouts so a missing server fails fast.
pub async fn connect(name: &str) -> Result<Connection, Error> {
    let endpoint = std::env::var("ACTIVE_SESSIONS_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:50051".into());
    println!("connecting to {endpoint}");
    let mut builder = Connection::builder(endpoint)
        .user_agent(format!("{name}-example/0.1"))
        .connect_timeout(Duration::from_secs(3))
        .request_timeout(Duration::from_secs(5))
        .retry_policy(RetryPolicy::default().deadline(Duration::from_secs(5)));
    if let Ok(token) = std::env::var("ACTIVE_SESSIONS_TOKEN") {
        builder = builder.bearer_token(token);
    }
    Ok(builder.connect().await?)
}

/// A location for display ("London, GB"), or "location unknown" (for example when the server
/// has no GeoIP database).
pub fn place(location: &active_sessions_client::Location) -> String {
    match (location.city.as_str(), location.country_code.as_str()) {
        ("", "") => "location unknown".into(),
        ("", country) => country.into(),
        (city, country) => format!("{city}, {country}"),
    }
}

/// Whole days from now until `until` (0 if past).
pub fn days_until(until: SystemTime) -> u64 {
    until
        .duration_since(SystemTime::now())
        .map_or(0, |left| left.as_secs().div_ceil(86_400))
}

/// `prefix` and a value unique to this run, so repeated runs never collide.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

/// Runs the example within the time limit; exit code 0 on success.
pub async fn bounded<F>(example: F) -> ExitCode
where
    F: Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>>,
{
    match tokio::time::timeout(TIME_LIMIT, example).await {
        Ok(Ok(())) => {
            println!("done");
            ExitCode::SUCCESS
        }
        Ok(Err(err)) => {
            eprintln!("failed: {err}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("failed: did not finish within {TIME_LIMIT:?}");
            ExitCode::FAILURE
        }
    }
}
