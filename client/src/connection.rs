//! One channel to the server, with the calling service's credential on every call: to one
//! address, or balanced over the replicas (a list, or a DNS name re-resolved; see
//! [`balance`](crate::balance)), under the tower layers the product adds (timeouts,
//! metrics) and, with the `otel` feature, the W3C trace context of the current span.

use std::{fmt, sync::Arc, time::Duration};

use tonic::{
    body::Body,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};
use tower::{BoxError, Layer, Service, ServiceExt as _, util::BoxCloneSyncService};

use crate::{
    EligibilityClient, RetryPolicy, SessionClient, TrustedDeviceClient, balance,
    proto::{
        account_eligibility_client::AccountEligibilityClient,
        session_service_client::SessionServiceClient,
        trusted_device_service_client::TrustedDeviceServiceClient,
    },
};

/// The channel under the layers a product added with [`ConnectionBuilder::layer`]: what every
/// layer wraps, and what the credential is attached over.
pub type LayeredChannel =
    BoxCloneSyncService<http::Request<Body>, http::Response<Body>, ChannelError>;

/// A failure of the layered channel: the channel's own, or a layer's. Its `source` is the
/// original error, so a transport failure still reads as `UNAVAILABLE`.
#[derive(Debug)]
pub struct ChannelError(BoxError);

impl ChannelError {
    fn new(error: impl Into<BoxError>) -> Self {
        Self(error.into())
    }
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ChannelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// The transport every generated client of a [`Connection`] runs over.
pub type Transport = InterceptedService<LayeredChannel, AuthInterceptor>;

/// Wraps the channel in one layer.
type Wrap = Arc<dyn Fn(LayeredChannel) -> LayeredChannel + Send + Sync>;

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The endpoint URI does not parse.
    #[error("invalid endpoint {endpoint:?}: {source}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// The parse error.
        source: tonic::transport::Error,
    },
    /// The bearer token cannot travel as gRPC metadata.
    #[error("the bearer token contains characters that cannot be sent as metadata")]
    InvalidToken,
    /// The TLS settings were refused.
    #[error("TLS settings refused: {0}")]
    Tls(tonic::transport::Error),
    /// No replica of a balanced connection answered its health check.
    #[error("no replica of {endpoint} answered")]
    NoReplica {
        /// The endpoints or DNS name.
        endpoint: String,
    },
    /// The server could not be reached.
    #[error("cannot connect to {endpoint}: {source}")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// The transport error.
        source: tonic::transport::Error,
    },
}

/// Adds `authorization: Bearer <token>` to every call. Its `Debug` never shows the token.
#[derive(Clone, Default)]
pub struct AuthInterceptor {
    header: Option<MetadataValue<Ascii>>,
}

impl fmt::Debug for AuthInterceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthInterceptor")
            .field("bearer_token", &self.header.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Interceptor for AuthInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(header) = &self.header {
            request
                .metadata_mut()
                .insert("authorization", header.clone());
        }
        Ok(request)
    }
}

/// Settings for a [`Connection`].
#[derive(Clone)]
pub struct ConnectionBuilder {
    endpoint: String,
    bearer_token: Option<String>,
    tls: Option<ClientTlsConfig>,
    connect_timeout: Duration,
    request_timeout: Option<Duration>,
    user_agent: Option<String>,
    concurrency_limit: Option<usize>,
    lazy: bool,
    retry: RetryPolicy,
    /// More replicas to balance over, beside `endpoint`.
    more_endpoints: Vec<String>,
    /// How often a balanced connection re-resolves and re-checks its replicas.
    refresh: Duration,
    /// True once the TLS settings name the server (so a DNS target does not override it).
    tls_domain_set: bool,
    layers: Vec<Wrap>,
    trace_context: bool,
}

impl fmt::Debug for ConnectionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionBuilder")
            .field("endpoint", &self.endpoint)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .field("tls", &self.tls.is_some())
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("more_endpoints", &self.more_endpoints)
            .field("layers", &self.layers.len())
            .field("trace_context", &self.trace_context)
            .finish_non_exhaustive()
    }
}

impl ConnectionBuilder {
    /// Adds a tower layer around the channel, for every call of the connection: a timeout, a
    /// metric, a concurrency limit of the product's own. The first layer added is the
    /// outermost. The credential is attached before any layer sees the request.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), active_sessions_client::ConnectError> {
    /// use active_sessions_client::Connection;
    ///
    /// let connection = Connection::builder("http://127.0.0.1:50051")
    ///     .layer(tower::limit::ConcurrencyLimitLayer::new(64))
    ///     .connect()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<LayeredChannel> + Send + Sync + 'static,
        L::Service: Service<http::Request<Body>, Response = http::Response<Body>>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as Service<http::Request<Body>>>::Future: Send + 'static,
        <L::Service as Service<http::Request<Body>>>::Error: Into<BoxError>,
    {
        self.layers.push(Arc::new(move |inner| {
            BoxCloneSyncService::new(layer.layer(inner).map_err(ChannelError::new))
        }));
        self
    }

    /// Whether every call carries the W3C `traceparent` of the current OpenTelemetry context,
    /// so the server's spans continue the product's trace (default: on, with the `otel`
    /// feature; without it there is no context to send).
    pub fn propagate_trace_context(mut self, propagate: bool) -> Self {
        self.trace_context = propagate;
        self
    }

    /// The calling service's bearer token (its SHA-256 is in the server's callers file).
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer_token = Some(token.into());
        self
    }

    /// Verifies the server's certificate against this PEM CA (instead of the system roots).
    /// `domain` is the name the certificate must carry.
    pub fn tls_ca(mut self, ca_pem: impl AsRef<[u8]>, domain: impl Into<String>) -> Self {
        let tls = self.tls.take().unwrap_or_default();
        self.tls = Some(
            tls.ca_certificate(Certificate::from_pem(ca_pem))
                .domain_name(domain),
        );
        self.tls_domain_set = true;
        self
    }

    /// Verifies the server's certificate against the system's roots.
    pub fn tls_system_roots(mut self) -> Self {
        let tls = self.tls.take().unwrap_or_default();
        self.tls = Some(tls.with_native_roots());
        self
    }

    /// Presents this client certificate and key (PEM) for mTLS.
    pub fn tls_client_identity(
        mut self,
        cert_pem: impl AsRef<[u8]>,
        key_pem: impl AsRef<[u8]>,
    ) -> Self {
        let tls = self.tls.take().unwrap_or_default();
        self.tls = Some(tls.identity(Identity::from_pem(cert_pem, key_pem)));
        self
    }

    /// How long to wait for the connection to open (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The deadline of every call (sent to the server as `grpc-timeout`).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// The user agent sent with every call.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// At most this many calls in flight on the connection; more wait for a slot.
    pub fn concurrency_limit(mut self, limit: usize) -> Self {
        self.concurrency_limit = Some(limit);
        self
    }

    /// Connect on first use instead of now.
    pub fn lazy(mut self) -> Self {
        self.lazy = true;
        self
    }

    /// How the typed clients of this connection retry idempotent calls (default
    /// [`RetryPolicy::default`]). A client can override it with `with_retry_policy`.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Balances calls over these endpoints too (`http://host:port`, ...), beside the one the
    /// builder was made with: each replica gets its own connection, each call goes to the less
    /// loaded of two, and a replica that stops answering (or reports NOT_SERVING) is left out
    /// until it recovers. For replicas behind one DNS name, give the builder a
    /// `dns:///host:port` endpoint instead.
    pub fn endpoints<I, S>(mut self, endpoints: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.more_endpoints
            .extend(endpoints.into_iter().map(Into::into));
        self
    }

    /// How often a balanced connection resolves its DNS name again and checks each replica's
    /// health (default 5 s).
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh = interval;
        self
    }

    /// The replicas to balance over, when this is a balanced connection.
    fn replicas(&self) -> Option<balance::Replicas> {
        if let Some(dns) = balance::Replicas::parse_dns(&self.endpoint, self.tls.is_some()) {
            return Some(dns);
        }
        if self.more_endpoints.is_empty() {
            return None;
        }
        let mut uris = vec![self.endpoint.clone()];
        uris.extend(self.more_endpoints.iter().cloned());
        Some(balance::Replicas::List(uris))
    }

    /// The endpoint for `uri` with every setting of this builder. `tls_name` names the server
    /// for certificate checks when the URI holds an address resolved from a DNS name.
    fn configured_endpoint(
        &self,
        uri: &str,
        tls_name: Option<&str>,
    ) -> Result<Endpoint, ConnectError> {
        let invalid = |source| ConnectError::InvalidEndpoint {
            endpoint: uri.to_owned(),
            source,
        };
        let mut endpoint = Endpoint::from_shared(uri.to_owned())
            .map_err(invalid)?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        if let Some(timeout) = self.request_timeout {
            endpoint = endpoint.timeout(timeout);
        }
        if let Some(user_agent) = &self.user_agent {
            endpoint = endpoint.user_agent(user_agent.clone()).map_err(invalid)?;
        }
        if let Some(limit) = self.concurrency_limit {
            endpoint = endpoint.concurrency_limit(limit);
        }
        if let Some(mut tls) = self.tls.clone() {
            if let Some(name) = tls_name.filter(|_| !self.tls_domain_set) {
                tls = tls.domain_name(name);
            }
            endpoint = endpoint.tls_config(tls).map_err(ConnectError::Tls)?;
        }
        Ok(endpoint)
    }

    /// Opens the connection. A balanced one (several endpoints, or a `dns:///` name) checks its
    /// replicas first and fails only when none answers (unless [`lazy`](Self::lazy)).
    pub async fn connect(self) -> Result<Connection, ConnectError> {
        let header = self
            .bearer_token
            .as_ref()
            .map(|token| MetadataValue::try_from(format!("Bearer {token}")))
            .transpose()
            .map_err(|_| ConnectError::InvalidToken)?;
        if let Some(replicas) = self.replicas() {
            let tls_name = match &replicas {
                balance::Replicas::Dns { host, .. } => Some(host.clone()),
                balance::Replicas::List(_) => None,
            };
            let settings = self.clone();
            let factory: balance::EndpointFactory = Box::new(move |uri: &str| {
                settings.configured_endpoint(uri, tls_name.as_deref()).ok()
            });
            let (channel, any) = balance::balanced_channel(replicas, factory, self.refresh).await;
            if !any && !self.lazy {
                return Err(ConnectError::NoReplica {
                    endpoint: self.endpoint.clone(),
                });
            }
            return Ok(self.finish(channel, header));
        }
        let endpoint = self.configured_endpoint(&self.endpoint, None)?;
        let channel = if self.lazy {
            endpoint.connect_lazy()
        } else {
            endpoint
                .connect()
                .await
                .map_err(|source| ConnectError::Unreachable {
                    endpoint: self.endpoint.clone(),
                    source,
                })?
        };
        Ok(self.finish(channel, header))
    }

    /// The connection over `channel`: the product's layers around it, the trace context
    /// outermost, the credential attached over all of them.
    fn finish(&self, channel: Channel, header: Option<MetadataValue<Ascii>>) -> Connection {
        let mut layered = BoxCloneSyncService::new(channel.clone().map_err(ChannelError::new));
        for wrap in self.layers.iter().rev() {
            layered = wrap(layered);
        }
        #[cfg(feature = "otel")]
        if self.trace_context {
            layered = BoxCloneSyncService::new(crate::trace::TraceContextLayer.layer(layered));
        }
        Connection {
            channel,
            layered,
            auth: AuthInterceptor { header },
            retry: self.retry,
        }
    }
}

/// An open channel and the caller's credential. Cloning shares the channel.
#[derive(Clone)]
pub struct Connection {
    channel: Channel,
    layered: LayeredChannel,
    auth: AuthInterceptor,
    retry: RetryPolicy,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("channel", &self.channel)
            .field("auth", &self.auth)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Settings for a connection to `endpoint`: `http://host:port` or `https://host:port` for one
    /// address, `dns:///host:port` to balance over every address the name resolves to (a
    /// Kubernetes headless Service), re-resolved every [`refresh_interval`](ConnectionBuilder::refresh_interval).
    pub fn builder(endpoint: impl Into<String>) -> ConnectionBuilder {
        ConnectionBuilder {
            endpoint: endpoint.into(),
            bearer_token: None,
            tls: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: None,
            user_agent: None,
            concurrency_limit: None,
            lazy: false,
            retry: RetryPolicy::default(),
            more_endpoints: Vec::new(),
            refresh: Duration::from_secs(5),
            tls_domain_set: false,
            layers: Vec::new(),
            trace_context: true,
        }
    }

    /// The underlying channel (without the credential or the layers).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The transport: the layered channel, with the credential attached.
    pub fn transport(&self) -> Transport {
        InterceptedService::new(self.layered.clone(), self.auth.clone())
    }

    /// The generated SessionService client over this connection.
    pub fn session_service(&self) -> SessionServiceClient<Transport> {
        SessionServiceClient::new(self.transport())
    }

    /// The generated TrustedDeviceService client over this connection.
    pub fn trusted_device_service(&self) -> TrustedDeviceServiceClient<Transport> {
        TrustedDeviceServiceClient::new(self.transport())
    }

    /// The generated AccountEligibility client over this connection.
    pub fn account_eligibility(&self) -> AccountEligibilityClient<Transport> {
        AccountEligibilityClient::new(self.transport())
    }

    /// The retry policy the typed clients of this connection start with.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// A typed [`SessionClient`] over this connection.
    pub fn sessions(&self) -> SessionClient {
        SessionClient::new(self)
    }

    /// A typed [`TrustedDeviceClient`] over this connection.
    pub fn trusted_devices(&self) -> TrustedDeviceClient {
        TrustedDeviceClient::new(self)
    }

    /// A typed [`EligibilityClient`] over this connection.
    pub fn eligibility(&self) -> EligibilityClient {
        EligibilityClient::new(self)
    }
}
