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
    future::{Future, Ready},
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
    type Future = SessionFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        // Most requests are answered without waiting (a session the cache holds, or no token):
        // the inner service, polled ready, is called at once.
        let token = self.validator.token(request.headers());
        if let Some(answer) = self.validator.validate_now(token) {
            return match let_through(self.signed_out_allowed, &mut request, answer) {
                Ok(()) => SessionFuture::inner(self.inner.call(request)),
                Err(rejection) => SessionFuture::refused(refusal(&rejection, &request)),
            };
        }
        let token = token.map(str::to_owned);
        // The service that was polled ready serves this request; its clone serves the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let validator = self.validator.clone();
        let signed_out_allowed = self.signed_out_allowed;
        SessionFuture::waiting(Box::pin(async move {
            let answer = validator.validate(token.as_deref()).await;
            if let Err(rejection) = let_through(signed_out_allowed, &mut request, answer) {
                return Ok(refusal(&rejection, &request));
            }
            let response = inner.call(request).await?;
            Ok(response.map(Either::Left))
        }))
    }
}

/// Puts the validation's answer in the request's extensions: the session, or why it is signed
/// out when signed-out requests are let through; otherwise returns the rejection.
fn let_through<ReqBody>(
    signed_out_allowed: bool,
    request: &mut http::Request<ReqBody>,
    answer: Result<ValidSession, SessionRejection>,
) -> Result<(), SessionRejection> {
    match answer {
        Ok(session) => {
            request.extensions_mut().insert(session);
            Ok(())
        }
        Err(rejection) if signed_out_allowed && rejection.is_signed_out() => {
            request.extensions_mut().insert(SignedOut(rejection));
            Ok(())
        }
        Err(rejection) => Err(rejection),
    }
}

/// The answer to a request refused for `rejection`.
fn refusal<ReqBody, ResBody>(
    rejection: &SessionRejection,
    request: &http::Request<ReqBody>,
) -> http::Response<SessionBody<ResBody>> {
    rejection.response_for(request.headers()).map(Either::Right)
}

pin_project_lite::pin_project! {
    /// The response future of a [`SessionService`]: the inner service's, a refusal, or a
    /// validation that has to wait (on the server) before the inner service is called.
    pub struct SessionFuture<F, B, E> {
        #[pin]
        state: FutureState<F, B, E>,
    }
}

pin_project_lite::pin_project! {
    #[project = FutureStateProjection]
    enum FutureState<F, B, E> {
        Inner { #[pin] future: F },
        Refused { answer: Ready<Result<http::Response<SessionBody<B>>, E>> },
        Waiting { future: BoxFuture<Result<http::Response<SessionBody<B>>, E>> },
    }
}

impl<F, B, E> SessionFuture<F, B, E> {
    fn inner(future: F) -> Self {
        Self {
            state: FutureState::Inner { future },
        }
    }

    fn refused(response: http::Response<SessionBody<B>>) -> Self {
        Self {
            state: FutureState::Refused {
                answer: std::future::ready(Ok(response)),
            },
        }
    }

    fn waiting(future: BoxFuture<Result<http::Response<SessionBody<B>>, E>>) -> Self {
        Self {
            state: FutureState::Waiting { future },
        }
    }
}

impl<F, B, E> Future for SessionFuture<F, B, E>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = Result<http::Response<SessionBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            FutureStateProjection::Inner { future } => future
                .poll(cx)
                .map(|answer| answer.map(|response| response.map(Either::Left))),
            FutureStateProjection::Refused { answer } => Pin::new(answer).poll(cx),
            FutureStateProjection::Waiting { future } => future.as_mut().poll(cx),
        }
    }
}

impl<F, B, E> std::fmt::Debug for SessionFuture<F, B, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            FutureState::Inner { .. } => "inner",
            FutureState::Refused { .. } => "refused",
            FutureState::Waiting { .. } => "waiting",
        };
        f.debug_struct("SessionFuture")
            .field("state", &state)
            .finish()
    }
}

/// The session [`SessionLayer`] put in a request's extensions, if any.
pub fn session_of<B>(request: &http::Request<B>) -> Option<&ValidSession> {
    request.extensions().get::<ValidSession>()
}
