//! Requests over the message-size limit. tonic refuses a message whose length prefix is over
//! `--max-message-bytes` before buffering it, answering OUT_OF_RANGE with a bare message; this
//! layer adds the `google.rpc.ErrorInfo` every refusal of this API carries (reason
//! REQUEST_TOO_LARGE, the limit in `metadata["limit_bytes"]`), keeping tonic's code so that
//! existing clients see what they saw before.
//!
//! What cannot become a gRPC status: a header list over the HTTP/2 limit (16 KiB, hyper's default)
//! is refused by the HTTP/2 layer itself with HTTP 431 before any service sees the request, which
//! gRPC clients report as UNKNOWN or INTERNAL.

use std::collections::HashMap;

use active_sessions::{ERROR_DOMAIN, v1::ErrorReason};
use futures::future::FutureExt;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tower::Layer;

use crate::call_layer::{CallService, Inner, OnCall, Reply};

/// The start of tonic's message for a length prefix over the limit, as sent in `grpc-message`
/// (percent-encoded: tonic encodes spaces).
const TONIC_TOO_LARGE: &str = "Error,%20decoded%20message%20length%20too%20large";

/// Gives tonic's message-size refusals their ErrorInfo.
#[derive(Debug, Clone, Copy)]
pub struct OversizeLayer {
    limit_bytes: usize,
}

impl OversizeLayer {
    /// For a server whose messages are limited to `limit_bytes`.
    pub fn new(limit_bytes: usize) -> Self {
        Self { limit_bytes }
    }
}

impl<S> Layer<S> for OversizeLayer {
    type Service = Oversize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallService::new(inner, *self)
    }
}

/// The service [`OversizeLayer`] builds.
pub type Oversize<S> = CallService<S, OversizeLayer>;

impl OnCall for OversizeLayer {
    fn on_call<S: Inner<B>, B>(&self, inner: &mut S, request: http::Request<B>) -> Reply<S::Error> {
        let limit_bytes = self.limit_bytes;
        let response = inner.call(request);
        async move {
            let response = response.await?;
            // A refusal before any message is sent is "trailers-only": its status is in the
            // headers, so nothing of the body needs to be looked at.
            let oversize = response.headers().get("grpc-status").is_some_and(|code| {
                code.as_bytes() == (Code::OutOfRange as i32).to_string().as_bytes()
            }) && response
                .headers()
                .get("grpc-message")
                .is_some_and(|message| message.as_bytes().starts_with(TONIC_TOO_LARGE.as_bytes()))
                && !response.headers().contains_key("grpc-status-details-bin");
            if !oversize {
                return Ok(response);
            }
            Ok(too_large(limit_bytes).into_http())
        }
        .boxed()
    }
}

/// OUT_OF_RANGE with reason REQUEST_TOO_LARGE.
fn too_large(limit_bytes: usize) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(
        ErrorReason::RequestTooLarge.reason(),
        ERROR_DOMAIN,
        HashMap::from([("limit_bytes".to_owned(), limit_bytes.to_string())]),
    );
    Status::with_error_details(
        Code::OutOfRange,
        format!("the request message is too large: the limit is {limit_bytes} bytes"),
        details,
    )
}
