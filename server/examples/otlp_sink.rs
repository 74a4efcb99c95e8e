//! An OTLP sink: accepts OTLP/gRPC traces and metrics and counts them, for measuring what
//! exporting costs the server (`OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317`).
//!
//! `cargo run --release -p active-sessions-server --example otlp_sink -- 127.0.0.1:4317`

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use opentelemetry_proto::tonic::collector::{
    metrics::v1::ExportMetricsServiceRequest, trace::v1::ExportTraceServiceRequest,
};

#[path = "../tests/support/otlp_collector.rs"]
mod otlp_collector;

#[derive(Debug, Default, Clone)]
struct Counts {
    spans: Arc<AtomicU64>,
    metric_exports: Arc<AtomicU64>,
}

impl otlp_collector::Sink for Counts {
    fn traces(&self, export: ExportTraceServiceRequest) {
        let spans: usize = export
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.spans.fetch_add(spans as u64, Ordering::Relaxed);
    }

    fn metrics(&self, _export: ExportMetricsServiceRequest) {
        self.metric_exports.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4317".into())
        .parse()?;
    let counts = Counts::default();
    let report = counts.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            eprintln!(
                "spans received: {}, metric exports: {}",
                report.spans.load(Ordering::Relaxed),
                report.metric_exports.load(Ordering::Relaxed)
            );
        }
    });
    otlp_collector::router(counts).serve(addr).await?;
    Ok(())
}
