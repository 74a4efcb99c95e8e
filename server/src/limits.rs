//! Load shedding: a global limit on calls in flight. A call over the limit is answered at once
//! with UNAVAILABLE (reason OVERLOADED, with a RetryInfo delay) instead of queueing, so overload
//! shows quickly and a client can retry elsewhere. Health checks are exempt: a load balancer
//! must still be able to ask.

use std::{
    collections::HashMap,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use active_sessions::{ERROR_DOMAIN, v1::ErrorReason};
use futures::future::{BoxFuture, FutureExt};
use tokio::sync::Semaphore;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tower::{Layer, Service};

/// How long a shed caller is asked to wait.
const OVERLOAD_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Limits calls in flight across all connections.
#[derive(Debug, Clone)]
pub struct ShedLayer {
    permits: Arc<Semaphore>,
}

impl ShedLayer {
    /// At most `max_in_flight` calls at once.
    pub fn new(max_in_flight: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_in_flight.max(1))),
        }
    }
}

impl<S> Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Shed {
            inner,
            permits: self.permits.clone(),
        }
    }
}

/// The service [`ShedLayer`] builds.
#[derive(Debug, Clone)]
pub struct Shed<S> {
    inner: S,
    permits: Arc<Semaphore>,
}

impl<S, B> Service<http::Request<B>> for Shed<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path().starts_with("/grpc.health.") {
            return self.inner.call(request).boxed();
        }
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let response = self.inner.call(request);
                async move {
                    let response = response.await;
                    drop(permit);
                    response
                }
                .boxed()
            }
            Err(_) => {
                let mut details = ErrorDetails::with_retry_info(Some(OVERLOAD_RETRY_DELAY));
                details.set_error_info(
                    ErrorReason::Overloaded.reason(),
                    ERROR_DOMAIN,
                    HashMap::new(),
                );
                let status = Status::with_error_details(
                    Code::Unavailable,
                    "the server is at its limit of calls in flight; retry shortly",
                    details,
                );
                futures::future::ready(Ok(status.into_http())).boxed()
            }
        }
    }
}
