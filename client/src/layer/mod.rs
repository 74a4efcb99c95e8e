//! [`SessionLayer`] (`tower` feature): one tower layer that lets through only requests with a
//! signed-in session, for any tower, hyper, axum or tonic server. It reads the session token
//! (`Authorization: Bearer`, or a cookie), validates it through the [`ValidationCache`] (or
//! the server), and puts the [`ValidSession`] in the request's extensions for the handler.
//! Anything else is answered without calling the inner service: 401 / UNAUTHENTICATED for a
//! missing, malformed, unknown, revoked, expired or other product's token, 503 / UNAVAILABLE
//! with `Retry-After` when the service cannot answer.
//!
//! [`ValidationCache`]: crate::ValidationCache

#[cfg(feature = "axum")]
mod axum;
mod heartbeat;
mod refusal;
mod validator;

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body_util::{Either, Full};
use tower::{Layer, Service};

pub use refusal::SessionRejection;
pub use validator::{
    DEFAULT_COOKIE, SessionValidator, SessionValidatorBuilder, TokenSource, ValidateThrough,
};

use crate::ValidSession;

/// Lets through only requests with a signed-in session, with the [`ValidSession`] in their
/// extensions.
///
/// ```no_run
/// # async fn example() -> Result<(), active_sessions_client::Error> {
/// use active_sessions_client::{Connection, SessionLayer, ValidationCache};
///
/// let connection = Connection::builder("http://127.0.0.1:50051")
///     .bearer_token("chatgpt-web-token")
///     .connect()
///     .await?;
/// let cache = ValidationCache::builder(connection).start().await;
/// let layer = SessionLayer::new(cache); // then `.layer(layer)` on the router or server
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SessionLayer {
    validator: SessionValidator,
    signed_out_allowed: bool,
}

impl SessionLayer {
    /// A layer validating through `validator`: a [`ValidationCache`](crate::ValidationCache),
    /// a [`SessionClient`](crate::SessionClient), or a [`SessionValidator`] built with its own
    /// token sources, products and heartbeat.
    pub fn new(validator: impl Into<SessionValidator>) -> Self {
        Self {
            validator: validator.into(),
            signed_out_allowed: false,
        }
    }

    /// Also lets signed-out requests through (no token, or one that is not valid), without a
    /// session in their extensions, for routes that work signed out: their handlers take an
    /// `Option<ValidSession>`. An unavailable service is still answered 503.
    pub fn allow_signed_out(mut self) -> Self {
        self.signed_out_allowed = true;
        self
    }

    /// The validator.
    pub fn validator(&self) -> &SessionValidator {
        &self.validator
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            validator: self.validator.clone(),
            signed_out_allowed: self.signed_out_allowed,
        }
    }
}

/// In the extensions of a request let through signed out by
/// [`SessionLayer::allow_signed_out`], instead of a [`ValidSession`]: why it is signed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedOut(pub SessionRejection);

/// The service [`SessionLayer`] builds.
#[derive(Debug, Clone)]
pub struct SessionService<S> {
    inner: S,
    validator: SessionValidator,
    signed_out_allowed: bool,
}

/// The response body of a [`SessionService`]: the inner service's, or a refusal's.
pub type SessionBody<B> = Either<B, Full<Bytes>>;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for SessionService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = http::Response<SessionBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        // The service that was polled ready serves this request; its clone serves the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let validator = self.validator.clone();
        let signed_out_allowed = self.signed_out_allowed;
        let token = validator.token(request.headers()).map(str::to_owned);
        Box::pin(async move {
            match validator.validate(token.as_deref()).await {
                Ok(session) => {
                    request.extensions_mut().insert(session);
                }
                Err(rejection) if signed_out_allowed && rejection.is_signed_out() => {
                    request.extensions_mut().insert(SignedOut(rejection));
                }
                Err(rejection) => {
                    return Ok(rejection.response_for(request.headers()).map(Either::Right));
                }
            }
            let response = inner.call(request).await?;
            Ok(response.map(Either::Left))
        })
    }
}

/// The session [`SessionLayer`] put in a request's extensions, if any.
pub fn session_of<B>(request: &http::Request<B>) -> Option<&ValidSession> {
    request.extensions().get::<ValidSession>()
}
