//! Logs, traces and metrics. Building the subscriber is separate from installing it. Logs are
//! human-readable by default and JSON by flag, and carry the trace id inside an RPC. Traces and
//! metrics go to an OTLP collector when the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or the
//! per-signal variables) is set, configured further by the other standard `OTEL_*` variables
//! (`OTEL_EXPORTER_OTLP_PROTOCOL`: `grpc`, the default, or `http/protobuf`; `OTEL_SERVICE_NAME`
//! and `OTEL_RESOURCE_ATTRIBUTES` for `service.name`; `OTEL_METRIC_EXPORT_INTERVAL`, ...);
//! otherwise no exporter exists and the instruments are no-ops. No token, secret or raw IP is
//! ever a span attribute or a metric label: spans carry ids only.

pub mod metrics;
mod rpc;

use opentelemetry::{KeyValue, global, trace::TracerProvider as _};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{
    Resource, metrics::SdkMeterProvider, propagation::TraceContextPropagator,
    trace::SdkTracerProvider,
};
use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt};

pub use rpc::RpcLayer;

use crate::config::{LogConfig, LogFormat};

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The log filter does not parse.
    #[error("invalid log filter {filter:?}: {source}")]
    Filter {
        /// The filter as given.
        filter: String,
        /// The parse error.
        source: tracing_subscriber::filter::ParseError,
    },
    /// A global subscriber was already installed.
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
    /// The OTLP exporter could not be built.
    #[error("OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// The installed telemetry. [`shutdown`](Self::shutdown) flushes what is buffered.
#[derive(Debug, Default)]
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
}

/// How traces and metrics travel to the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP over gRPC (the collector's port 4317): the default here.
    Grpc,
    /// OTLP over HTTP with protobuf bodies (port 4318, paths `/v1/traces`, `/v1/metrics`).
    HttpProtobuf,
}

/// The protocol the standard variables ask for: the signal's own variable (`signal_var`), else
/// `OTEL_EXPORTER_OTLP_PROTOCOL`; `grpc` when neither is set (the protocol this server has
/// always exported with, so existing collectors keep working) or the value is not
/// `http/protobuf`. (`http/json` is not supported and falls back to `grpc`, with a warning.)
pub fn otlp_protocol(signal_var: &str) -> OtlpProtocol {
    let value = [signal_var, "OTEL_EXPORTER_OTLP_PROTOCOL"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()));
    match value.as_deref().map(str::trim) {
        Some("http/protobuf") => OtlpProtocol::HttpProtobuf,
        None | Some("grpc") => OtlpProtocol::Grpc,
        Some(other) => {
            eprintln!("unsupported OTLP protocol {other:?}; exporting over grpc");
            OtlpProtocol::Grpc
        }
    }
}

/// True when the standard OTLP variables ask for an exporter (and the SDK is not disabled).
pub fn otlp_requested() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|value| !value.trim().is_empty());
    let disabled =
        std::env::var("OTEL_SDK_DISABLED").is_ok_and(|value| value.eq_ignore_ascii_case("true"));
    !disabled
        && (set("OTEL_EXPORTER_OTLP_ENDPOINT")
            || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            || set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))
}

impl Telemetry {
    /// Installs logging (always) and the OTLP trace and metric pipelines (when requested) as
    /// the process-wide defaults.
    pub fn install(config: &LogConfig) -> Result<Self, TelemetryError> {
        let filter =
            EnvFilter::try_new(&config.level).map_err(|source| TelemetryError::Filter {
                filter: config.level.clone(),
                source,
            })?;
        let mut telemetry = Self::default();
        let otel_layer = if otlp_requested() {
            // The builder reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES itself.
            let mut resource = Resource::builder()
                .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
            if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
                resource = resource.with_service_name("active-sessions");
            }
            let resource = resource.build();
            let spans = match otlp_protocol("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") {
                OtlpProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .build()?,
                OtlpProtocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .build()?,
            };
            let tracer_provider = SdkTracerProvider::builder()
                .with_batch_exporter(spans)
                .with_resource(resource.clone())
                .build();
            let metrics = match otlp_protocol("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL") {
                OtlpProtocol::Grpc => opentelemetry_otlp::MetricExporter::builder()
                    .with_tonic()
                    .build()?,
                OtlpProtocol::HttpProtobuf => opentelemetry_otlp::MetricExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .build()?,
            };
            let meter_provider = SdkMeterProvider::builder()
                .with_periodic_exporter(metrics)
                .with_resource(resource)
                .build();
            global::set_meter_provider(meter_provider.clone());
            global::set_text_map_propagator(TraceContextPropagator::new());
            let tracer = tracer_provider.tracer("active-sessions");
            telemetry.tracer_provider = Some(tracer_provider);
            telemetry.meter_provider = Some(meter_provider);
            Some(tracing_opentelemetry::layer().with_tracer(tracer))
        } else {
            None
        };
        let (text, json) = match config.format {
            LogFormat::Text => (
                Some(fmt::layer().with_writer(std::io::stderr).with_ansi(false)),
                None,
            ),
            LogFormat::Json => (
                None,
                Some(
                    fmt::layer()
                        .json()
                        .with_writer(std::io::stderr)
                        .with_current_span(true)
                        .with_span_list(false),
                ),
            ),
        };
        let subscriber = tracing_subscriber::registry()
            .with(filter)
            .with(otel_layer)
            .with(text)
            .with(json);
        tracing::subscriber::set_global_default(subscriber)
            .map_err(|_| TelemetryError::AlreadyInstalled)?;
        Ok(telemetry)
    }

    /// True when traces and metrics are exported.
    pub fn exporting(&self) -> bool {
        self.tracer_provider.is_some()
    }

    /// Flushes and stops the exporters.
    pub fn shutdown(self) {
        if let Some(meter_provider) = self.meter_provider
            && let Err(err) = meter_provider.shutdown()
        {
            tracing::warn!(error = %err, "flushing metrics failed");
        }
        if let Some(tracer_provider) = self.tracer_provider
            && let Err(err) = tracer_provider.shutdown()
        {
            eprintln!("flushing traces failed: {err}");
        }
    }
}
