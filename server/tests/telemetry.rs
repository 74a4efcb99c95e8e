//! Traces and metrics reach an OTLP collector when the standard OTEL variables say so, over
//! either protocol `OTEL_EXPORTER_OTLP_PROTOCOL` names (`grpc`, `http/protobuf`), with the
//! current semantic-convention names (checked against the `opentelemetry-semantic-conventions`
//! constants), database child spans and the service's metrics, and no session token anywhere in
//! them. The collectors are in-process: a tonic server implementing the OTLP trace and metrics
//! services, and a hyper server taking OTLP/HTTP; the server is the real binary.

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
        metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse},
        trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse},
    },
    common::v1::{AnyValue, KeyValue, any_value::Value},
    metrics::v1::{Metric, metric},
};
#[allow(deprecated)]
use opentelemetry_semantic_conventions::attribute::{
    RPC_GRPC_STATUS_CODE, RPC_SERVICE, RPC_SYSTEM,
};
use opentelemetry_semantic_conventions::{
    attribute::{
        DB_CLIENT_CONNECTION_POOL_NAME, DB_CLIENT_CONNECTION_STATE, DB_SYSTEM_NAME, ERROR_TYPE,
        RPC_METHOD, RPC_METHOD_ORIGINAL, RPC_RESPONSE_STATUS_CODE, RPC_SYSTEM_NAME,
    },
    metric::{DB_CLIENT_CONNECTION_COUNT, RPC_SERVER_CALL_DURATION},
};
use tokio_stream::wrappers::TcpListenerStream;

#[path = "support/otlp_collector.rs"]
mod otlp_collector;

use otlp_collector::Sink;

#[derive(Debug, Default, Clone)]
struct Collected {
    traces: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    metrics: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
}

impl Sink for Collected {
    fn traces(&self, export: ExportTraceServiceRequest) {
        self.traces.lock().unwrap().push(export);
    }

    fn metrics(&self, export: ExportMetricsServiceRequest) {
        self.metrics.lock().unwrap().push(export);
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

/// The OTLP/HTTP collector: `POST /v1/traces` and `POST /v1/metrics` with protobuf bodies,
/// answered 200 with an empty export response, as a collector's `otlphttp` receiver does.
async fn serve_otlp_http(listener: tokio::net::TcpListener, collected: Collected) {
    use http_body_util::{BodyExt, Full};
    use hyper::{Response as HttpResponse, body::Bytes, service::service_fn};
    use prost::Message;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let collected = collected.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let collected = collected.clone();
                async move {
                    let path = request.uri().path().to_owned();
                    let body = request.into_body().collect().await?.to_bytes();
                    let reply: Vec<u8> = match path.as_str() {
                        "/v1/traces" => {
                            collected.traces(ExportTraceServiceRequest::decode(body).unwrap());
                            ExportTraceServiceResponse::default().encode_to_vec()
                        }
                        "/v1/metrics" => {
                            collected.metrics(ExportMetricsServiceRequest::decode(body).unwrap());
                            ExportMetricsServiceResponse::default().encode_to_vec()
                        }
                        other => panic!("unexpected OTLP path {other}"),
                    };
                    let mut response = HttpResponse::new(Full::new(Bytes::from(reply)));
                    response.headers_mut().insert(
                        "content-type",
                        hyper::header::HeaderValue::from_static("application/x-protobuf"),
                    );
                    Ok::<_, hyper::Error>(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Which OTLP transport a run exports over.
#[derive(Debug, Clone, Copy)]
enum Protocol {
    Grpc,
    HttpProtobuf,
}

/// Starts a collector for `protocol`, runs the real server against it (registration,
/// validations, a refusal, a call to a method that does not exist), stops it with SIGTERM, and
/// returns what reached the collector, with the session token that was used.
async fn run_against_collector(protocol: Protocol) -> (Collected, String) {
    let collected = Collected::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    match protocol {
        Protocol::Grpc => {
            let collector = otlp_collector::router(collected.clone())
                .serve_with_incoming(TcpListenerStream::new(listener));
            tokio::spawn(collector);
        }
        Protocol::HttpProtobuf => {
            tokio::spawn(serve_otlp_http(listener, collected.clone()));
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let addr = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_active-sessions"));
    command
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
        .env("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=ci")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match protocol {
        Protocol::Grpc => command.env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        Protocol::HttpProtobuf => command.env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    };
    let server = Server(command.spawn().expect("start the server binary"));

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
    let mut sessions = SessionServiceClient::new(channel.clone());
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
    // Methods the server does not serve: each must not become a metric series of its own.
    for unknown in ["NoSuchMethod", "AnotherMadeUpMethod"] {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.unwrap();
        let path = format!("/activesessions.v1.SessionService/{unknown}");
        let status = grpc
            .unary::<pb::ValidateSessionRequest, pb::ValidateSessionResponse, _>(
                tonic::Request::new(pb::ValidateSessionRequest::default()),
                http::uri::PathAndQuery::try_from(path).unwrap(),
                tonic_prost::ProstCodec::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unimplemented);
    }

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
    (collected, token)
}

/// What every run must show, whatever the protocol: the current semantic-convention names
/// (from the crate's constants), the database spans as children of the RPC, the resource from
/// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, bounded method names, and no token or IP.
fn assert_current_conventions(collected: &Collected, token: &str) {
    let traces = collected.traces.lock().unwrap().clone();
    let spans: Vec<_> = traces
        .iter()
        .flat_map(|t| &t.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect();
    let validate_method = "activesessions.v1.SessionService/ValidateSession";
    let validate = spans
        .iter()
        .find(|s| s.name == validate_method)
        .unwrap_or_else(|| {
            panic!(
                "no ValidateSession span among {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    assert_eq!(
        attr(&validate.attributes, RPC_SYSTEM_NAME).as_deref(),
        Some("grpc")
    );
    assert_eq!(
        attr(&validate.attributes, RPC_METHOD).as_deref(),
        Some(validate_method)
    );
    assert_eq!(
        attr(&validate.attributes, RPC_RESPONSE_STATUS_CODE).as_deref(),
        Some("OK")
    );
    #[allow(deprecated)]
    for deprecated in [RPC_SYSTEM, RPC_SERVICE, RPC_GRPC_STATUS_CODE] {
        assert!(
            attr(&validate.attributes, deprecated).is_none(),
            "deprecated attribute {deprecated} still set"
        );
    }
    let refused = spans.iter().filter(|s| s.name == validate_method).any(|s| {
        attr(&s.attributes, RPC_RESPONSE_STATUS_CODE).as_deref() == Some("INVALID_ARGUMENT")
    });
    assert!(refused, "the INVALID_ARGUMENT call has its status code");
    let other = spans
        .iter()
        .find(|s| attr(&s.attributes, RPC_METHOD).as_deref() == Some("_OTHER"))
        .expect("an unknown method is _OTHER");
    assert!(
        attr(&other.attributes, RPC_METHOD_ORIGINAL)
            .is_some_and(|original| original.ends_with("/NoSuchMethod")
                || original.ends_with("/AnotherMadeUpMethod"))
    );
    assert_eq!(
        attr(&other.attributes, RPC_RESPONSE_STATUS_CODE).as_deref(),
        Some("UNIMPLEMENTED")
    );
    assert_eq!(
        attr(&other.attributes, ERROR_TYPE).as_deref(),
        Some("UNIMPLEMENTED")
    );
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
    assert_eq!(
        attr(&insert.attributes, DB_SYSTEM_NAME).as_deref(),
        Some("sqlite")
    );
    let resource = traces[0].resource_spans[0].resource.as_ref().unwrap();
    assert_eq!(
        attr(&resource.attributes, "service.name").as_deref(),
        Some("active-sessions-test"),
        "OTEL_SERVICE_NAME sets service.name"
    );
    assert_eq!(
        attr(&resource.attributes, "deployment.environment.name").as_deref(),
        Some("ci"),
        "OTEL_RESOURCE_ATTRIBUTES reach the resource"
    );

    let metrics = collected.metrics.lock().unwrap().clone();
    let all: Vec<&Metric> = metrics
        .iter()
        .flat_map(|m| &m.resource_metrics)
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .collect();
    let names: Vec<&str> = all.iter().map(|m| m.name.as_str()).collect();
    for expected in [
        RPC_SERVER_CALL_DURATION,
        "active_sessions.sessions.registered",
        "active_sessions.validation_cache.lookups",
        "active_sessions.revocation_feed.staleness",
        "active_sessions.revocation_feed.fresh",
        DB_CLIENT_CONNECTION_COUNT,
    ] {
        assert!(
            names.contains(&expected),
            "metric {expected} missing from {names:?}"
        );
    }
    // rpc.server.call.duration: current attributes, and one `_OTHER` series for both unknown
    // methods.
    let mut methods = std::collections::BTreeSet::new();
    for metric in all.iter().filter(|m| m.name == RPC_SERVER_CALL_DURATION) {
        let Some(metric::Data::Histogram(histogram)) = &metric.data else {
            panic!("{RPC_SERVER_CALL_DURATION} is a histogram");
        };
        for point in &histogram.data_points {
            assert_eq!(
                attr(&point.attributes, RPC_SYSTEM_NAME).as_deref(),
                Some("grpc")
            );
            assert!(attr(&point.attributes, RPC_RESPONSE_STATUS_CODE).is_some());
            #[allow(deprecated)]
            for deprecated in [RPC_SYSTEM, RPC_SERVICE, RPC_GRPC_STATUS_CODE] {
                assert!(attr(&point.attributes, deprecated).is_none());
            }
            methods.insert(attr(&point.attributes, RPC_METHOD).unwrap_or_default());
        }
    }
    assert!(methods.contains(validate_method), "{methods:?}");
    assert!(methods.contains("_OTHER"), "{methods:?}");
    assert!(
        !methods
            .iter()
            .any(|m| m.contains("NoSuchMethod") || m.contains("MadeUp")),
        "unknown methods are not series of their own: {methods:?}"
    );
    // db.client.connection.count: an up-down counter by state and pool name.
    let connections = all
        .iter()
        .find(|m| m.name == DB_CLIENT_CONNECTION_COUNT)
        .unwrap();
    let Some(metric::Data::Sum(sum)) = &connections.data else {
        panic!("{DB_CLIENT_CONNECTION_COUNT} is an up-down counter (a non-monotonic sum)");
    };
    assert!(!sum.is_monotonic);
    for point in &sum.data_points {
        let state = attr(&point.attributes, DB_CLIENT_CONNECTION_STATE).unwrap_or_default();
        assert!(state == "used" || state == "idle", "state {state:?}");
        assert!(attr(&point.attributes, DB_CLIENT_CONNECTION_POOL_NAME).is_some());
        assert!(
            attr(&point.attributes, "state").is_none(),
            "the old attribute is gone"
        );
    }

    // No token (nor its secret part) in any span, attribute, event or metric.
    let everything = format!("{traces:?}{metrics:?}");
    assert!(!everything.contains(token), "token exported");
    assert!(!everything.contains(&token[4..]), "token secret exported");
    assert!(!everything.contains("81.2.69.142"), "raw IP exported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_and_metrics_reach_a_grpc_collector_by_the_current_conventions_without_tokens() {
    let (collected, token) = run_against_collector(Protocol::Grpc).await;
    assert_current_conventions(&collected, &token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_and_metrics_reach_an_http_protobuf_collector_by_the_current_conventions() {
    let (collected, token) = run_against_collector(Protocol::HttpProtobuf).await;
    assert_current_conventions(&collected, &token);
}
