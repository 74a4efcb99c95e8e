//! Client for the active-sessions gRPC service, for first-party product backends.
//!
//! A [`Connection`] opens one HTTP/2 channel (plaintext, TLS or mTLS) and attaches the calling
//! service's bearer token to every call. Three small typed clients run over it, one per
//! service: [`SessionClient`], [`TrustedDeviceClient`] and [`EligibilityClient`]. They take
//! domain arguments, return typed results, and fail with one [`Error`] whose variants are the
//! conditions a caller acts on. Idempotent calls are retried on `UNAVAILABLE` (and rate limits
//! with a `RetryInfo` delay) under a [`RetryPolicy`]; calls that change state without an
//! idempotency key are never retried. A product backend that validates on every request can put
//! a [`ValidationCache`] in front of validation: it is kept honest by the revocation stream,
//! and its [`health`](ValidationCache::health) says when it is degraded to the server.
//! Product backends depend on this crate, never on the server.
//!
//! The generated messages and clients remain available under [`proto`], and through
//! [`Connection::session_service`] and its siblings.
//!
//! # Protecting a product's routes in one line
//!
//! With the `axum` feature (or `tower` for any tower, hyper or tonic server), `SessionLayer`
//! lets through only requests carrying a signed-in session (`Authorization: Bearer`, or a
//! cookie), validated through the cache, and hands handlers the [`ValidSession`]. Anything
//! else is answered 401 (gRPC: UNAUTHENTICATED) without reaching the handler, and a service
//! that cannot be reached 503 with `Retry-After` (gRPC: UNAVAILABLE), never a pass:
//!
//! ```no_run
//! # #[cfg(feature = "axum")]
//! # async fn example(connection: active_sessions_client::Connection) {
//! use active_sessions_client::{SessionLayer, ValidSession, ValidationCache};
//! use axum::{Router, routing::get};
//!
//! let cache = ValidationCache::builder(connection).start().await;
//! let app: Router = Router::new()
//!     .route("/me", get(|session: ValidSession| async move { session.account_id }))
//!     .layer(SessionLayer::new(cache));
//! # }
//! ```
//!
//! # Features
//!
//! None by default: the typed clients and the cache. `tower`: `SessionLayer` and
//! `SessionValidator`. `axum`: `ValidSession` and `Option<ValidSession>` as axum extractors.
//! `otel`: every call carries the current OpenTelemetry span as W3C `traceparent`
//! (`TraceContextLayer`), and the cache's health is the gauge
//! `active_sessions.client.cache.degraded`.
//!
//! # Example
//!
//! A browser signs in to ChatGPT, its requests are validated, and the settings page lists and
//! logs out rows:
//!
//! ```no_run
//! use std::{net::Ipv4Addr, time::Duration};
//!
//! use active_sessions_client::{
//!     AuthMethod, Connection, Error, ListOptions, Owner, Registration, RetryPolicy,
//! };
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Error> {
//!     let connection = Connection::builder("http://127.0.0.1:50051")
//!         .bearer_token("chatgpt-web-token")
//!         .request_timeout(Duration::from_secs(2))
//!         .retry_policy(RetryPolicy::default().deadline(Duration::from_secs(5)))
//!         .connect()
//!         .await?;
//!     let sessions = connection.sessions();
//!
//!     // Sign-in: the device id is the browser's long-lived cookie. A request id is generated,
//!     // so retrying the registration never creates a second session.
//!     let signed_in = sessions
//!         .register(
//!             Registration::chatgpt_browser("user-123", "browser-cookie-8f2c")
//!                 .user_agent("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)")
//!                 .ip(Ipv4Addr::new(81, 2, 69, 142).into())
//!                 .auth_method(AuthMethod::Passkey),
//!         )
//!         .await?;
//!
//!     // Every request: is the cookie's token still signed in?
//!     match sessions.validate(&signed_in.token).await? {
//!         Some(session) => println!("request from {}", session.account_id),
//!         None => println!("signed out: clear the cookie"),
//!     }
//!
//!     // The settings page, as the signed-in user.
//!     let owner = Owner::token(&signed_in.token);
//!     let page = sessions.list_rows(owner.clone(), ListOptions::new()).await?;
//!     for row in &page.rows {
//!         println!("{} {:?} current={}", row.device.description, row.products, row.current);
//!     }
//!     if let Some(row) = page.rows.iter().find(|row| !row.current) {
//!         // The confirmation step, then the log-out.
//!         let preview = sessions.revoke_row(owner.clone(), &row.device_id, false).await?;
//!         println!("would log out {} session(s)", preview.session_ids.len());
//!         sessions.revoke_row(owner.clone(), &row.device_id, true).await?;
//!     }
//!     match sessions.revoke_row(owner, "browser-cookie-8f2c", true).await {
//!         Err(Error::CurrentSession) => println!("the current row signs out instead"),
//!         other => println!("{other:?}"),
//!     }
//!     Ok(())
//! }
//! ```

#![deny(missing_docs)]

mod balance;
mod cache;
mod call;
mod connection;
mod eligibility;
mod error;
mod health;
#[cfg(feature = "tower")]
mod layer;
mod retry;
mod sessions;
#[cfg(feature = "otel")]
mod trace;
mod trusted_devices;
mod types;

pub use cache::{CacheStats, ConnectFuture, ValidationCache, ValidationCacheBuilder};
pub use connection::{
    AuthInterceptor, ChannelError, ConnectError, Connection, ConnectionBuilder, LayeredChannel,
    Transport,
};
pub use eligibility::{Account, AccountDeletion, Eligibility, EligibilityClient, SsoLink};
pub use error::Error;
pub use health::CacheHealth;
#[cfg(feature = "tower")]
pub use layer::{
    DEFAULT_COOKIE, SessionBody, SessionFuture, SessionLayer, SessionRejection, SessionService,
    SessionValidator, SessionValidatorBuilder, SignedOut, TokenSource, ValidateThrough, session_of,
};
pub use retry::RetryPolicy;
pub use sessions::{
    AccountLogOut, Registered, Registration, Revocation, RevocationBatch, RevocationEvent,
    RevocationStream, RevokeAllOptions, RevokeResult, RowsPage, SecurityEvent, SecurityEventsPage,
    Session, SessionClient, SessionRow, SessionsPage, ValidSession,
};
#[cfg(feature = "otel")]
pub use trace::{TraceContextLayer, TraceContextService, inject_trace_context};
pub use trusted_devices::{
    DeviceTrust, Removed, Trust, Trusted, TrustedDevice, TrustedDeviceClient, TrustedDevicesPage,
};
pub use types::{ListOptions, Owner};

/// The generated `activesessions.v1` messages and service clients.
pub use active_sessions::v1 as proto;

/// The `google.rpc.ErrorInfo` domain of this API's errors.
pub use active_sessions::ERROR_DOMAIN;

pub use proto::{
    AuthMethod, ClientKind, DeviceInfo, DeviceType, ErrorReason, IneligibilityReason, Location,
    LogOutAction, NoLogOutReason, Product, RevocationReason, RevocationScope, RevokeOutcome,
    SecurityEventType, SessionStatus, SsoProtocol, TrustMethod, WorkspaceType,
};

/// Opens a plaintext channel to `endpoint` (for example `http://127.0.0.1:50051`) with no
/// credential: for local development servers.
pub async fn connect(
    endpoint: impl Into<String>,
) -> Result<tonic::transport::Channel, ConnectError> {
    Ok(Connection::builder(endpoint).connect().await?.channel())
}
