//! W3C trace context on outgoing calls (`otel` feature): [`TraceContextLayer`] writes the
//! `traceparent` (and `tracestate`) of the current OpenTelemetry context into each request's
//! headers, so the server's spans continue the caller's trace. Every [`Connection`] carries it
//! unless [`ConnectionBuilder::propagate_trace_context`] turns it off.
//!
//! With `tracing-opentelemetry`, the current context is the current `tracing` span's.
//!
//! [`Connection`]: crate::Connection
//! [`ConnectionBuilder::propagate_trace_context`]: crate::ConnectionBuilder::propagate_trace_context

use std::task::{Context, Poll};

use opentelemetry::{
    propagation::{Injector, TextMapPropagator as _},
    trace::TraceContextExt as _,
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tower::{Layer, Service};

/// Adds the current OpenTelemetry context to every request as W3C `traceparent`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextLayer;

impl<S> Layer<S> for TraceContextLayer {
    type Service = TraceContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceContextService { inner }
    }
}

/// The service [`TraceContextLayer`] builds.
#[derive(Debug, Clone)]
pub struct TraceContextService<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for TraceContextService<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        inject_trace_context(request.headers_mut());
        self.inner.call(request)
    }
}

/// Writes the current OpenTelemetry context into `headers` as W3C trace context; nothing when
/// there is no sampled or unsampled span in it.
pub fn inject_trace_context(headers: &mut http::HeaderMap) {
    let context = opentelemetry::Context::current();
    if !context.span().span_context().is_valid() {
        return;
    }
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    use super::*;

    #[test]
    fn the_current_span_travels_as_traceparent() {
        let mut headers = http::HeaderMap::new();
        inject_trace_context(&mut headers);
        assert!(headers.is_empty(), "no span, no header");

        let span = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let _guard = opentelemetry::Context::current()
            .with_remote_span_context(span)
            .attach();
        inject_trace_context(&mut headers);
        assert_eq!(
            headers["traceparent"],
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
    }
}
