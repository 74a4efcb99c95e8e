//! [`ValidationCacheBuilder`]: the settings of a validation cache (what it caches and for how
//! long, how patient it is with its stream, how validations are retried) and where it gets its
//! connection from.

use std::{fmt, future::Future, pin::Pin, sync::Arc, time::Duration};

use super::{RECONNECT_BASE, store::Limits};
use crate::{ConnectError, Connection, RetryPolicy, ValidationCache, proto::Product};

/// What a connector returns: a connection, or why none could be opened.
pub type ConnectFuture = Pin<Box<dyn Future<Output = Result<Connection, ConnectError>> + Send>>;

/// Opens the connection the cache validates and watches over.
#[derive(Clone)]
pub(super) struct Connector(Arc<dyn Fn() -> ConnectFuture + Send + Sync>);

impl Connector {
    pub(super) fn connect(&self) -> ConnectFuture {
        (self.0)()
    }
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Connector")
    }
}

/// Settings of a [`ValidationCache`], from [`ValidationCache::builder`].
#[derive(Debug)]
pub struct ValidationCacheBuilder {
    connector: Connector,
    settings: Settings,
}

#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) limits: Limits,
    pub(super) stream_timeout: Duration,
    pub(super) max_reconnect_delay: Duration,
    pub(super) retry: Option<RetryPolicy>,
}

impl ValidationCacheBuilder {
    pub(super) fn new<F, Fut>(connect: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Connection, ConnectError>> + Send + 'static,
    {
        Self {
            connector: Connector(Arc::new(move || Box::pin(connect()))),
            settings: Settings {
                limits: Limits {
                    products: Vec::new(),
                    max_entries: 10_000,
                    max_age: Duration::from_secs(60),
                },
                stream_timeout: Duration::from_secs(30),
                max_reconnect_delay: Duration::from_secs(2),
                retry: None,
            },
        }
    }

    /// Watch only these products' revocations, and cache only their sessions. By default the
    /// stream carries every product the caller may see, and every answer is cached.
    pub fn products(mut self, products: impl IntoIterator<Item = Product>) -> Self {
        self.settings.limits.products = products.into_iter().collect();
        self
    }

    /// At most this many sessions cached (default 10 000); the oldest go first.
    pub fn max_entries(mut self, max_entries: usize) -> Self {
        self.settings.limits.max_entries = max_entries;
        self
    }

    /// An entry is dropped this long after it was fetched (default 60 s), or at the session's
    /// expiry if sooner.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.settings.limits.max_age = max_age;
        self
    }

    /// A stream silent for this long is taken as broken and reopened (default 30 s; the server
    /// sends a keep-alive every 10 s).
    pub fn stream_timeout(mut self, timeout: Duration) -> Self {
        self.settings.stream_timeout = timeout;
        self
    }

    /// The longest wait between attempts to reopen the stream (default 2 s).
    pub fn max_reconnect_delay(mut self, delay: Duration) -> Self {
        self.settings.max_reconnect_delay = delay.max(RECONNECT_BASE);
        self
    }

    /// How validations sent to the server are retried (default: the connection's policy).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.settings.retry = Some(policy);
        self
    }

    /// Starts the cache and its revocation stream (on the current Tokio runtime). It answers
    /// from the server until the stream is live; see [`ValidationCache::wait_live`].
    pub async fn start(self) -> ValidationCache {
        ValidationCache::start(self.connector, self.settings)
    }
}
