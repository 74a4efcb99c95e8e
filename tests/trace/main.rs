//! A product's trace continues into the server: the axum app's request span and the server's
//! ValidateSession RPC span, both collected in-process, share one trace id, because the
//! client's channel sends the current span as W3C `traceparent`.
//!
//! The test runs on a current-thread runtime, so the app, the client and the in-process server
//! all run on its thread: the process-wide subscriber records spans only on a thread that is
//! collecting, so no other test's spans are seen, and other tests are not slowed. It is a test
//! binary of its own because it installs the process-wide subscriber: in the end-to-end binary,
//! callsites other tests had already registered were not reliably recorded.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::{
    cell::RefCell,
    sync::{Arc, Mutex, OnceLock, atomic::AtomicU64},
    time::{Duration, Instant},
};

use active_sessions_client::{Connection, Registration, SessionLayer};
use active_sessions_e2e::{
    Backend, TestApp,
    product::{self, bearer},
};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{
    error::OTelSdkResult,
    propagation::TraceContextPropagator,
    trace::{SdkTracerProvider, SpanData, SpanExporter},
};
use tracing_subscriber::{Layer as _, filter::dynamic_filter_fn, layer::SubscriberExt as _};

type Spans = Arc<Mutex<Vec<SpanData>>>;

thread_local! {
    /// Where this thread's ended spans go, while it collects.
    static COLLECTING: RefCell<Option<Spans>> = const { RefCell::new(None) };
}

fn collecting() -> bool {
    COLLECTING.with(|spans| spans.borrow().is_some())
}

/// Exports each span to its thread's collection (the simple processor exports on the thread
/// that ends the span).
#[derive(Debug)]
struct ThreadCollector;

impl SpanExporter for ThreadCollector {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        COLLECTING.with(|spans| {
            // Never panic here: a failed assertion unwinding through the exporter would abort.
            if let Some(Ok(mut spans)) = spans.borrow().as_ref().map(|spans| spans.lock()) {
                spans.extend(batch);
            }
        });
        Ok(())
    }
}

/// Installs, once per process, a subscriber that records spans of collecting threads only.
fn provider() -> &'static SdkTracerProvider {
    static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();
    PROVIDER.get_or_init(|| {
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(ThreadCollector)
            .build();
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("e2e"))
            // Whether a span is recorded depends on the thread: never cache the answer.
            .with_filter(
                dynamic_filter_fn(|_, _| collecting())
                    .with_callsite_filter(|_| tracing::subscriber::Interest::sometimes()),
            );
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("no other global subscriber in the e2e tests");
        // Other tests may have registered callsites (the server's RPC span among them) before
        // there was a subscriber, as never interesting: ask again.
        tracing::callsite::rebuild_interest_cache();
        // The server reads the caller's trace context through the global propagator.
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        provider
    })
}

async fn trace_continues(backend: Backend) {
    let provider = provider();
    let collected = Spans::default();
    COLLECTING.with(|spans| *spans.borrow_mut() = Some(collected.clone()));

    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let connection = Connection::builder(format!("http://{}", app.addr))
        .connect()
        .await
        .unwrap();
    let token = connection
        .sessions()
        .register(Registration::chatgpt_browser("acct_trace", "laptop"))
        .await
        .unwrap()
        .token;
    // Validated through the server on every request: each request has its RPC.
    let layer = SessionLayer::new(connection.sessions());
    let (addr, server) =
        product::serve(product::app(Some(layer), Arc::new(AtomicU64::new(0)))).await;
    let (name, value) = bearer(&token);
    assert_eq!(
        product::get(addr, "/me", &[(name, &value)]).await.status,
        200
    );

    // A span is exported when it ends, once the tasks holding it (the app's and the server's
    // connection tasks) have run on: give them time.
    let named = |name: &str| {
        collected
            .lock()
            .unwrap()
            .iter()
            .find(|span| span.name == name)
            .cloned()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let (request, rpc) = loop {
        provider.force_flush().unwrap();
        let found = (
            named("GET /me"),
            named("activesessions.v1.SessionService/ValidateSession"),
        );
        if let (Some(request), Some(rpc)) = found {
            break (request, rpc);
        }
        assert!(
            Instant::now() < deadline,
            "spans missing: {found:?} among {:?}",
            collected
                .lock()
                .unwrap()
                .iter()
                .map(|span| span.name.to_string())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    COLLECTING.with(|spans| *spans.borrow_mut() = None);
    server.abort();
    app.stop().await;
    assert_eq!(
        rpc.span_context.trace_id(),
        request.span_context.trace_id(),
        "the server's span continues the app's trace"
    );
    assert_eq!(rpc.parent_span_id, request.span_context.span_id());
}

mod the_products_trace_continues_into_the_servers_span {
    use super::*;

    #[tokio::test]
    async fn sqlite() {
        trace_continues(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn postgres() {
        trace_continues(Backend::Postgres).await;
    }
}
