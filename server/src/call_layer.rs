//! The tower plumbing shared by the layers that stand in front of tonic's router and may answer
//! a call themselves ([`crate::limits`], [`crate::oversize`]): a [`CallService`] keeps its inner
//! service's readiness and hands each call to the layer's [`OnCall`], which returns the answer
//! as a boxed future. Each layer only says what it does with one call.

use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tower::Service;

/// What tonic's router answers, and what a call layer answers in its place.
pub type GrpcResponse = http::Response<tonic::body::Body>;

/// The answer to one call, as a call layer returns it.
pub type Reply<E> = BoxFuture<'static, Result<GrpcResponse, E>>;

/// The service behind a call layer: tonic's router, or another layer in front of it.
pub trait Inner<B>:
    Service<
        http::Request<B>,
        Response = GrpcResponse,
        Future: Send + 'static,
        Error: Send + 'static,
    > + Send
{
}

impl<S, B> Inner<B> for S
where
    S: Service<http::Request<B>, Response = GrpcResponse> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
}

/// What a call layer does with one call: answer it itself, or pass it to `inner` and look at or
/// replace the answer.
pub trait OnCall {
    /// Handles one call.
    fn on_call<S: Inner<B>, B>(&self, inner: &mut S, request: http::Request<B>) -> Reply<S::Error>;
}

/// The service a call layer builds around `inner`.
#[derive(Debug, Clone)]
pub struct CallService<S, C> {
    inner: S,
    on_call: C,
}

impl<S, C> CallService<S, C> {
    /// `inner` behind the layer whose calls `on_call` handles.
    pub fn new(inner: S, on_call: C) -> Self {
        Self { inner, on_call }
    }
}

impl<S: Inner<B>, B, C: OnCall> Service<http::Request<B>> for CallService<S, C> {
    type Response = GrpcResponse;
    type Error = S::Error;
    type Future = Reply<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        self.on_call.on_call(&mut self.inner, request)
    }
}
