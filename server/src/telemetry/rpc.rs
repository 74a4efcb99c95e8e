//! One span and one latency measurement per RPC, as a tower layer in front of every service,
//! named by the OpenTelemetry RPC semantic conventions (the `opentelemetry-semantic-conventions`
//! constants, never hand-typed): `rpc.system.name` (`grpc`), `rpc.method` fully qualified
//! (`activesessions.v1.SessionService/ValidateSession`), `rpc.response.status_code` as the
//! status name (`OK`, `INVALID_ARGUMENT`), and `error.type` for server errors. A method this
//! server does not serve is `_OTHER` (the requested path goes to `rpc.method_original` on the
//! span only), so arbitrary paths cannot create new metric series. The span continues a
//! caller's W3C trace context and carries `trace_id` so every log line inside the call shows
//! it. Handlers' own spans (with session and account ids, never tokens) are its children.

use std::{
    collections::BTreeSet,
    sync::OnceLock,
    task::{Context, Poll},
    time::Instant,
};

use futures::future::{BoxFuture, FutureExt};
use opentelemetry::{KeyValue, global, trace::TraceContextExt as _};
use opentelemetry_http::HeaderExtractor;
use opentelemetry_semantic_conventions::attribute::{
    ERROR_TYPE, RPC_METHOD, RPC_METHOD_ORIGINAL, RPC_RESPONSE_STATUS_CODE, RPC_SYSTEM_NAME,
};
use prost::Message as _;
use tower::{Layer, Service};
use tracing::{Instrument, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::metrics::metrics;

/// `rpc.method` for a method this server does not serve.
const OTHER_METHOD: &str = "_OTHER";

/// The longest requested path kept in `rpc.method_original`.
const MAX_ORIGINAL_METHOD: usize = 128;

/// Adds the RPC span and metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcLayer;

impl<S> Layer<S> for RpcLayer {
    type Service = Rpc<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Rpc { inner }
    }
}

/// The service [`RpcLayer`] builds.
#[derive(Debug, Clone)]
pub struct Rpc<S> {
    inner: S,
}

/// Every `package.Service/Method` this server serves: its own services, health and reflection,
/// read once from their file descriptor sets.
fn known_methods() -> &'static BTreeSet<String> {
    static KNOWN: OnceLock<BTreeSet<String>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        let mut known = BTreeSet::new();
        for encoded in [
            active_sessions::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ] {
            let Ok(set) = prost_types::FileDescriptorSet::decode(encoded) else {
                continue;
            };
            for file in set.file {
                let package = file.package.unwrap_or_default();
                for service in file.service {
                    let service_name = service.name.unwrap_or_default();
                    for method in service.method {
                        known.insert(format!(
                            "{package}.{service_name}/{}",
                            method.name.unwrap_or_default()
                        ));
                    }
                }
            }
        }
        known
    })
}

/// The name of a gRPC status code, as `rpc.response.status_code` wants it.
fn status_name(code: i64) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

impl<S, B, RB> Service<http::Request<B>> for Rpc<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().trim_start_matches('/');
        let known = known_methods().contains(path);
        let method = if known {
            path.to_owned()
        } else {
            OTHER_METHOD.to_owned()
        };
        let span = tracing::info_span!(
            "rpc",
            otel.name = %method,
            otel.kind = "server",
            otel.status_code = Empty,
            trace_id = Empty,
        );
        span.set_attribute(RPC_SYSTEM_NAME, "grpc");
        span.set_attribute(RPC_METHOD, method.clone());
        if !known {
            let original: String = path.chars().take(MAX_ORIGINAL_METHOD).collect();
            span.set_attribute(RPC_METHOD_ORIGINAL, original);
        }
        let parent = global::get_text_map_propagator(|propagator| {
            propagator.extract(&HeaderExtractor(request.headers()))
        });
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }
        let trace_id = span.context().span().span_context().trace_id();
        if trace_id != opentelemetry::trace::TraceId::INVALID {
            span.record("trace_id", tracing::field::display(trace_id));
        }
        let started = Instant::now();
        let response = self.inner.call(request);
        let in_span = span.clone();
        async move {
            let response = response.await;
            // A refusal travels as a trailers-only response, with grpc-status in the headers;
            // a successful unary call's status is in the trailers, and is OK.
            let code = match &response {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.parse::<i64>().ok())
                    .unwrap_or(0),
                Err(_) => 13,
            };
            let status = status_name(code);
            span.set_attribute(RPC_RESPONSE_STATUS_CODE, status);
            let mut attributes = vec![
                KeyValue::new(RPC_SYSTEM_NAME, "grpc"),
                KeyValue::new(RPC_METHOD, method),
                KeyValue::new(RPC_RESPONSE_STATUS_CODE, status),
            ];
            // Server errors per the gRPC conventions: UNKNOWN, DEADLINE_EXCEEDED,
            // UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS.
            if matches!(code, 2 | 4 | 12 | 13 | 14 | 15) {
                span.record("otel.status_code", "ERROR");
                span.set_attribute(ERROR_TYPE, status);
                attributes.push(KeyValue::new(ERROR_TYPE, status));
            }
            metrics()
                .rpc_duration
                .record(started.elapsed().as_secs_f64(), &attributes);
            response
        }
        .instrument(in_span)
        .boxed()
    }
}
