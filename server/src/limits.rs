//! Load shedding and the drain. A global limit on calls in flight: a call over the limit is
//! answered at once with UNAVAILABLE (reason OVERLOADED, with a RetryInfo delay) instead of
//! queueing, so overload shows quickly and a client can retry elsewhere. Health checks are exempt:
//! a load balancer must still be able to ask.
//!
//! The same layer drains on shutdown ([`Drain`]): new calls are refused the same way (retry on
//! another replica) while the calls in flight finish, and once the grace period is over the calls
//! still in flight are abandoned: their futures are dropped, which rolls back any open
//! transaction, and they are answered UNAVAILABLE. It also scopes each call with its client
//! deadline, which the commit point checks (`deadline`).

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use active_sessions::{ERROR_DOMAIN, v1::ErrorReason};
use futures::future::FutureExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tower::Layer;

use crate::call_layer::{CallService, Inner, OnCall, Reply};

/// How long a shed caller is asked to wait.
const OVERLOAD_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Limits calls in flight across all connections, and drains them on shutdown.
#[derive(Debug, Clone)]
pub struct ShedLayer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    permits: Arc<Semaphore>,
    max_in_flight: u32,
    draining: AtomicBool,
    abandon: CancellationToken,
}

impl ShedLayer {
    /// At most `max_in_flight` calls at once.
    pub fn new(max_in_flight: usize) -> Self {
        let max_in_flight =
            u32::try_from(max_in_flight.clamp(1, Semaphore::MAX_PERMITS)).unwrap_or(u32::MAX);
        Self {
            shared: Arc::new(Shared {
                permits: Arc::new(Semaphore::new(max_in_flight as usize)),
                max_in_flight,
                draining: AtomicBool::new(false),
                abandon: CancellationToken::new(),
            }),
        }
    }

    /// The handle that drains the calls this layer admits.
    pub fn drain(&self) -> Drain {
        Drain {
            shared: self.shared.clone(),
        }
    }
}

/// Drains the calls of a [`ShedLayer`] on shutdown.
#[derive(Debug, Clone)]
pub struct Drain {
    shared: Arc<Shared>,
}

impl Drain {
    /// Refuses every new call (UNAVAILABLE, reason OVERLOADED) and completes once every call in
    /// flight has finished.
    pub async fn calls_finished(&self) {
        self.shared.draining.store(true, Ordering::SeqCst);
        if let Ok(all) = self
            .shared
            .permits
            .acquire_many(self.shared.max_in_flight)
            .await
        {
            all.forget();
        }
    }

    /// Ends every call still in flight: its work is dropped (rolling back its transaction) and
    /// it is answered UNAVAILABLE.
    pub fn abandon_calls(&self) {
        self.shared.draining.store(true, Ordering::SeqCst);
        self.shared.abandon.cancel();
    }
}

impl<S> Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallService::new(inner, self.clone())
    }
}

/// The service [`ShedLayer`] builds.
pub type Shed<S> = CallService<S, ShedLayer>;

impl OnCall for ShedLayer {
    fn on_call<S: Inner<B>, B>(&self, inner: &mut S, request: http::Request<B>) -> Reply<S::Error> {
        if request.uri().path().starts_with("/grpc.health.") {
            return inner.call(request).boxed();
        }
        let draining = self.shared.draining.load(Ordering::SeqCst);
        let permit = if draining {
            None
        } else {
            self.shared.permits.clone().try_acquire_owned().ok()
        };
        let Some(permit) = permit else {
            let message = if draining {
                "the server is shutting down; retry on another replica"
            } else {
                "the server is at its limit of calls in flight; retry shortly"
            };
            let mut details = ErrorDetails::with_retry_info(Some(OVERLOAD_RETRY_DELAY));
            details.set_error_info(
                ErrorReason::Overloaded.reason(),
                ERROR_DOMAIN,
                HashMap::new(),
            );
            let status = Status::with_error_details(Code::Unavailable, message, details);
            return futures::future::ready(Ok(status.into_http())).boxed();
        };
        let deadline = crate::deadline::from_headers(request.headers());
        let response = crate::deadline::scope(deadline, inner.call(request));
        let abandon = self.shared.abandon.clone();
        async move {
            let response = tokio::select! {
                response = response => response,
                () = abandon.cancelled() => {
                    Ok(Status::unavailable(
                        "the server shut down before this call finished; retry on another replica",
                    )
                    .into_http())
                }
            };
            drop(permit);
            response
        }
        .boxed()
    }
}
