//! What the examples share: the connection from the environment (and, for the product servers,
//! the validation cache over it), unique ids, sample clients, and a time bound.

#![allow(dead_code)] // each example uses only some of these

use std::{
    future::Future,
    net::{IpAddr, Ipv4Addr},
    process::ExitCode,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use active_sessions_client::{
    Connection, ConnectionBuilder, Error, Product, RetryPolicy, ValidationCache,
};

/// What an example returns.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// An IP address in London.
pub const LONDON: IpAddr = IpAddr::V4(Ipv4Addr::new(81, 2, 69, 142));

/// Chrome on macOS.
pub const CHROME_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36";
/// Safari on an iPhone.
pub const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
/// The Codex desktop app on macOS.
pub const CODEX_MAC_APP: &str = "Codex/0.9.1 (Mac OS X 14.5; arm64)";

/// The whole example must finish within this.
const TIME_LIMIT: Duration = Duration::from_secs(30);

/// `ACTIVE_SESSIONS_ENDPOINT`, by default `http://127.0.0.1:50051`.
pub fn endpoint() -> String {
    std::env::var("ACTIVE_SESSIONS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:50051".into())
}

/// A connection to `endpoint` as `{name}-example/0.1`, with the optional
/// `ACTIVE_SESSIONS_TOKEN`, these timeouts, and calls retried within `deadline`.
fn builder(endpoint: &str, name: &str, connect: Duration, deadline: Duration) -> ConnectionBuilder {
    let builder = Connection::builder(endpoint)
        .user_agent(format!("{name}-example/0.1"))
        .connect_timeout(connect)
        .request_timeout(deadline)
        .retry_policy(RetryPolicy::default().deadline(deadline));
    match std::env::var("ACTIVE_SESSIONS_TOKEN") {
        Ok(token) => builder.bearer_token(token),
        Err(_) => builder,
    }
}

/// Connects to [`endpoint`] with the optional `ACTIVE_SESSIONS_TOKEN`, with short timeouts so
/// a missing server fails fast.
pub async fn connect(name: &str) -> std::result::Result<Connection, Error> {
    let endpoint = endpoint();
    println!("connecting to {endpoint}");
    let builder = builder(
        &endpoint,
        name,
        Duration::from_secs(3),
        Duration::from_secs(5),
    );
    Ok(builder.connect().await?)
}

/// A product server's validation cache of `product`'s sessions. Its connection is lazy, so the
/// server starts (and answers 503) while the session service is down.
pub async fn product_cache(
    endpoint: &str,
    name: &str,
    product: Product,
) -> Result<ValidationCache> {
    let connection = builder(
        endpoint,
        name,
        Duration::from_secs(2),
        Duration::from_secs(2),
    )
    .lazy()
    .connect()
    .await?;
    Ok(ValidationCache::builder(connection)
        .products([product])
        .start()
        .await)
}

/// Where a product server listens: `PRODUCT_LISTEN`, by default `default`.
pub fn listen(default: &str) -> String {
    std::env::var("PRODUCT_LISTEN").unwrap_or_else(|_| default.into())
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
    F: Future<Output = Result<()>>,
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
