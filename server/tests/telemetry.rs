//! Traces and metrics reach an OTLP collector when the standard OTEL variables say so, with
//! the RPC semantic-convention attributes, database child spans and the service's metrics, and
//! no session token anywhere in them. The collector is an in-process tonic server implementing
//! the OTLP trace and metrics services; the server is the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use active_sessions::v1::{self as pb, session_service_client::SessionServiceClient};
use opentelemetry_proto::tonic::{
    collector::{
        metrics::v1::{
            ExportMetricsServiceRequest, ExportMetricsServiceResponse,
            metrics_service_server::{MetricsService, MetricsServiceServer},
        },
        trace::v1::{
            ExportTraceServiceRequest, ExportTraceServiceResponse,
            trace_service_server::{TraceService, TraceServiceServer},
        },
    },
    common::v1::{AnyValue, KeyValue, any_value::Value},
};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

#[derive(Debug, Default, Clone)]
struct Collected {
    traces: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    metrics: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Collected {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.traces.lock().unwrap().push(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Collected {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.metrics.lock().unwrap().push(request.into_inner());
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| text(&kv.value))
}

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_and_metrics_reach_the_collector_without_tokens() {
    let collected = Collected::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    let collector = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(collected.clone()))
        .add_service(MetricsServiceServer::new(collected.clone()))
        .serve_with_incoming(TcpListenerStream::new(listener));
    tokio::spawn(collector);

    let dir = tempfile::tempdir().unwrap();
    let addr = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_active-sessions"))
        .args(["--listen", &addr.to_string()])
        .args([
            "--database-url",
            &format!("sqlite://{}", dir.path().join("t.db").display()),
        ])
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://{collector_addr}"),
        )
        .env("OTEL_METRIC_EXPORT_INTERVAL", "300")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_SERVICE_NAME", "active-sessions-test")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server binary");
    let server = Server(child);

    let deadline = Instant::now() + Duration::from_secs(20);
    let channel = loop {
        match tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
        {
            Ok(channel) => break channel,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(err) => panic!("server did not start: {err}"),
        }
    };
    let mut sessions = SessionServiceClient::new(channel);
    let registered = sessions
        .register_session(pb::RegisterSessionRequest {
            account_id: "acct_otel".into(),
            product: pb::Product::Chatgpt as i32,
            client_kind: pb::ClientKind::Browser as i32,
            device_id: "dev_otel".into(),
            ip_address: "81.2.69.142".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let token = registered.session_token.clone();
    for _ in 0..3 {
        let valid = sessions
            .validate_session(pb::ValidateSessionRequest {
                session_token: token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(valid.valid);
    }
    let refused = sessions
        .validate_session(pb::ValidateSessionRequest {
            session_token: "ast_bad".into(),
        })
        .await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::InvalidArgument);

    // SIGTERM: the server drains, then flushes its exporters before exiting.
    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut server = server;
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "server did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let traces = collected.traces.lock().unwrap().clone();
    let spans: Vec<_> = traces
        .iter()
        .flat_map(|t| &t.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect();
    let validate = spans
        .iter()
        .find(|s| s.name == "activesessions.v1.SessionService/ValidateSession")
        .unwrap_or_else(|| {
            panic!(
                "no ValidateSession span among {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    assert_eq!(
        attr(&validate.attributes, "rpc.system").as_deref(),
        Some("grpc")
    );
    assert_eq!(
        attr(&validate.attributes, "rpc.service").as_deref(),
        Some("activesessions.v1.SessionService")
    );
    assert_eq!(
        attr(&validate.attributes, "rpc.method").as_deref(),
        Some("ValidateSession")
    );
    assert_eq!(
        attr(&validate.attributes, "rpc.grpc.status_code").as_deref(),
        Some("0")
    );
    let refused = spans
        .iter()
        .filter(|s| s.name == "activesessions.v1.SessionService/ValidateSession")
        .any(|s| attr(&s.attributes, "rpc.grpc.status_code").as_deref() == Some("3"));
    assert!(refused, "the INVALID_ARGUMENT call has its status code");
    let register = spans
        .iter()
        .find(|s| s.name == "activesessions.v1.SessionService/RegisterSession")
        .unwrap();
    let insert = spans
        .iter()
        .find(|s| s.name == "db.sessions.insert")
        .expect("a database child span");
    assert_eq!(
        insert.trace_id, register.trace_id,
        "database work is part of the RPC's trace"
    );
    let resource_name = traces[0].resource_spans[0]
        .resource
        .as_ref()
        .and_then(|r| attr(&r.attributes, "service.name"));
    assert_eq!(resource_name.as_deref(), Some("active-sessions-test"));

    let metrics = collected.metrics.lock().unwrap().clone();
    let names: Vec<String> = metrics
        .iter()
        .flat_map(|m| &m.resource_metrics)
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| m.name.clone())
        .collect();
    for expected in [
        "rpc.server.call.duration",
        "active_sessions.sessions.registered",
        "active_sessions.validation_cache.lookups",
        "db.client.connection.count",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "metric {expected} missing from {names:?}"
        );
    }

    // No token (nor its secret part) in any span, attribute, event or metric.
    let everything = format!("{traces:?}{metrics:?}");
    assert!(!everything.contains(&token), "token exported");
    assert!(!everything.contains(&token[4..]), "token secret exported");
    assert!(!everything.contains("81.2.69.142"), "raw IP exported");
}
