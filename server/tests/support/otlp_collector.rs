//! An in-process OTLP/gRPC collector, shared by the telemetry test and the `otlp_sink` example:
//! tonic's OTLP trace and metrics services, handing every export they accept to a [`Sink`] and
//! answering it with an empty (fully accepted) response.

use opentelemetry_proto::tonic::collector::{
    metrics::v1::{
        ExportMetricsServiceRequest, ExportMetricsServiceResponse,
        metrics_service_server::{MetricsService, MetricsServiceServer},
    },
    trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
};
use tonic::{Request, Response, Status, transport::server::Router};

/// What the collector does with the exports it accepts.
pub trait Sink: Clone + Send + Sync + 'static {
    /// One trace export.
    fn traces(&self, export: ExportTraceServiceRequest);
    /// One metrics export.
    fn metrics(&self, export: ExportMetricsServiceRequest);
}

/// A tonic router serving the OTLP trace and metrics services into `sink`.
pub fn router(sink: impl Sink) -> Router {
    tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(Collector(sink.clone())))
        .add_service(MetricsServiceServer::new(Collector(sink)))
}

struct Collector<S>(S);

#[tonic::async_trait]
impl<S: Sink> TraceService for Collector<S> {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.0.traces(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl<S: Sink> MetricsService for Collector<S> {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.0.metrics(request.into_inner());
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}
