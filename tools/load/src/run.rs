//! The project's own runner of a ghz config, for machines without Go: the subset of ghz's keys
//! that the shipped configs use, with ghz's meaning, and ghz's JSON report.
//!
//! Workers and connections as in ghz's `runner/requester.go`: worker `i` is `g<i>c<i %
//! connections>` and uses that connection; calls are numbered from 0 across all workers. Data
//! as in ghz's `runner/worker.go`: call `n` uses element `n % len` of array data, its JSON text
//! templated for that call (`runner/calldata.go`). A `data-file` wins over `data`
//! (`cmd/ghz/main.go`); a relative path is relative to the working directory. With a
//! `duration`, calls still in flight when it ends are cut off and counted as `Canceled` (ghz's
//! default `duration-stop: close`). Messages are built from protobuf JSON through the contract's
//! descriptor set (ghz uses server reflection; the result is the same message).

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context, bail};
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor};
use serde_json::{Value, json};
use tonic::{
    Code, Request,
    codegen::http::uri::PathAndQuery,
    metadata::{MetadataKey, MetadataValue},
    transport::{Channel, Endpoint},
};

use crate::{
    report::{CallResult, Report, go_error_text},
    template::{self, CallData, Piece},
};

/// The ghz keys this runner reads; any other ghz key is refused with a pointer to ghz itself.
/// `proto`, `protoset` and `import-paths` are accepted and unused (the contract is compiled in).
pub const SUPPORTED_KEYS: &[&str] = &[
    "name",
    "call",
    "host",
    "insecure",
    "total",
    "concurrency",
    "connections",
    "duration",
    "timeout",
    "connect-timeout",
    "data",
    "data-file",
    "metadata",
    "tags",
    "format",
    "output",
    "proto",
    "protoset",
    "import-paths",
];

/// `total` ghz reports for a duration-bound run (`math.MaxInt32`, `cmd/ghz/main.go`).
const DURATION_RUN_TOTAL: u64 = 2_147_483_647;

/// A ghz config, checked and read: what one run does.
#[derive(Debug, Clone)]
pub struct RunConfig {
    name: String,
    method: MethodDescriptor,
    host: String,
    total: u64,
    concurrency: usize,
    connections: usize,
    duration: Option<Duration>,
    timeout: Option<Duration>,
    connect_timeout: Duration,
    data: Vec<Payload>,
    /// The data as given inline, for the report; `None` for a data file, which holds live
    /// session tokens that a report should not carry (ghz copies it; its `data` is omitempty).
    reported_data: Option<Value>,
    metadata: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
    /// `format` (`json` or `pretty`).
    pub format: String,
    /// `output`: the report's path, stdout when empty.
    pub output: String,
}

/// One element of the data: built once when it has no template, else per call.
#[derive(Debug, Clone)]
enum Payload {
    Fixed(DynamicMessage),
    Templated(Vec<Piece>),
}

fn duration(config: &Value, key: &str) -> anyhow::Result<Option<Duration>> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text == "0" => Ok(None),
        Some(Value::String(text)) => humantime::parse_duration(text)
            .map(Some)
            .with_context(|| format!("`{key}`: {text:?} is not a duration such as 10s")),
        Some(other) => bail!("`{key}`: {other} is not a duration such as \"10s\""),
    }
}

fn count(config: &Value, key: &str, default: u64) -> anyhow::Result<u64> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value
            .as_u64()
            .with_context(|| format!("`{key}`: {value} is not a whole number")),
    }
}

fn strings(config: &Value, key: &str) -> anyhow::Result<BTreeMap<String, String>> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(value) => serde_json::from_value(value.clone())
            .with_context(|| format!("`{key}` is not an object of strings")),
    }
}

impl RunConfig {
    /// Reads a ghz config (a config file's JSON, with any command-line settings merged over it).
    pub fn from_ghz(config: &Value) -> anyhow::Result<Self> {
        let object = config
            .as_object()
            .context("a ghz config is a JSON object")?;
        for key in object.keys() {
            if !SUPPORTED_KEYS.contains(&key.as_str()) {
                if crate::ghz::CONFIG_KEYS.contains(&key.as_str()) {
                    bail!("ghz's `{key}` is not supported by this runner: run ghz itself");
                }
                bail!("`{key}` is not a ghz config key");
            }
        }
        let text = |key: &str| config.get(key).and_then(Value::as_str).unwrap_or("");
        if config.get("insecure") != Some(&Value::Bool(true)) {
            bail!("this runner speaks plaintext only (`insecure: true`): for TLS run ghz itself");
        }
        let method = method(text("call"))?;
        let host = text("host").trim_start_matches("http://").to_owned();
        if host.is_empty() {
            bail!("no `host` (host:port)");
        }
        let concurrency = count(config, "concurrency", 50)?.max(1) as usize;
        let connections = count(config, "connections", 1)?.max(1) as usize;
        if connections > concurrency {
            bail!("`connections` ({connections}) exceeds `concurrency` ({concurrency})");
        }
        let duration = duration(config, "duration")?;
        let total = count(config, "total", 200)?;
        if duration.is_none() && total < concurrency as u64 {
            bail!("`total` ({total}) is below `concurrency` ({concurrency})");
        }
        let from_file = !text("data-file").is_empty();
        let raw_data = match text("data-file") {
            "" => config.get("data").cloned().unwrap_or_else(|| json!({})),
            path => serde_json::from_slice(
                &std::fs::read(path).with_context(|| format!("data file {path}"))?,
            )
            .with_context(|| format!("data file {path} is not JSON"))?,
        };
        let problems = crate::ghz::check_data(&raw_data);
        if !problems.is_empty() {
            bail!("data: {}", problems.join("; "));
        }
        let elements = match &raw_data {
            Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        };
        let data = elements
            .iter()
            .map(|element| payload(element, &method.input()))
            .collect::<anyhow::Result<_>>()?;
        let format = match text("format") {
            "" | "summary" | "pretty" => "pretty",
            "json" => "json",
            other => bail!("format {other:?}: this runner writes ghz's json or pretty report"),
        };
        Ok(Self {
            name: text("name").to_owned(),
            method,
            host,
            total: if duration.is_some() {
                DURATION_RUN_TOTAL
            } else {
                total
            },
            concurrency,
            connections,
            duration,
            timeout: duration_or(config, "timeout", Duration::from_secs(20))?,
            connect_timeout: duration_or(config, "connect-timeout", Duration::from_secs(10))?
                .unwrap_or(Duration::from_secs(10)),
            data,
            reported_data: (!from_file).then_some(raw_data),
            metadata: strings(config, "metadata")?,
            tags: strings(config, "tags")?,
            format: format.to_owned(),
            output: text("output").to_owned(),
        })
    }

    /// ghz's `options` in the report (`Options` in `runner/reporter.go`).
    fn options(&self) -> Value {
        let ns = |d: Option<Duration>| d.map_or(0, |d| d.as_nanos() as u64);
        let mut options = json!({
            "host": self.host,
            "call": self.method.full_name(),
            "insecure": true,
            "total": self.total,
            "concurrency": self.concurrency,
            "connections": self.connections,
            "duration": ns(self.duration),
            "timeout": ns(self.timeout),
            "dial-timeout": ns(Some(self.connect_timeout)),
            "binary": false,
            "CPUs": std::thread::available_parallelism().map_or(1, |n| n.get()),
        });
        if let Some(data) = &self.reported_data {
            options["data"] = data.clone();
        }
        if !self.metadata.is_empty() {
            // A caller's credential stays out of the report.
            let metadata: BTreeMap<&str, &str> = self
                .metadata
                .iter()
                .map(|(key, value)| match key.to_lowercase().as_str() {
                    "authorization" => (key.as_str(), "<redacted>"),
                    _ => (key.as_str(), value.as_str()),
                })
                .collect();
            options["metadata"] = json!(metadata);
        }
        if !self.name.is_empty() {
            options["name"] = json!(self.name);
        }
        options
    }
}

fn duration_or(config: &Value, key: &str, default: Duration) -> anyhow::Result<Option<Duration>> {
    match config.get(key) {
        None => Ok(Some(default)),
        Some(_) => duration(config, key),
    }
}

/// The contract's method for ghz's `call`: `package.Service.Method` or `package.Service/Method`.
fn method(call: &str) -> anyhow::Result<MethodDescriptor> {
    let pool = DescriptorPool::decode(active_sessions::FILE_DESCRIPTOR_SET)
        .context("the contract's descriptor set")?;
    let call = call.replace('/', ".");
    let (service, name) = call.rsplit_once('.').context("no `call`")?;
    let method = pool
        .get_service_by_name(service)
        .and_then(|service| service.methods().find(|m| m.name() == name))
        .with_context(|| format!("no method {call} in the active-sessions contract"))?;
    if method.is_client_streaming() || method.is_server_streaming() {
        bail!("{call} is a streaming call: this runner makes unary calls; run ghz itself");
    }
    Ok(method)
}

fn payload(element: &Value, input: &MessageDescriptor) -> anyhow::Result<Payload> {
    let text = element.to_string();
    if template::has_actions(&text) {
        let pieces = template::parse(&text).map_err(anyhow::Error::msg)?;
        // Refused before the run, not at its first call: the data as one call would send it.
        message(&template::render(&pieces, &sample_call_data()), input)?;
        return Ok(Payload::Templated(pieces));
    }
    Ok(Payload::Fixed(message(&text, input)?))
}

fn sample_call_data() -> CallData {
    CallData {
        worker_id: "g0c0".to_owned(),
        request_number: 0,
        fully_qualified_name: String::new(),
        method_name: String::new(),
        service_name: String::new(),
        input_name: String::new(),
        output_name: String::new(),
        now: SystemTime::now(),
        uuid: uuid::Uuid::new_v4().to_string(),
    }
}

fn message(json_text: &str, input: &MessageDescriptor) -> anyhow::Result<DynamicMessage> {
    let mut deserializer = serde_json::Deserializer::from_str(json_text);
    DynamicMessage::deserialize(input.clone(), &mut deserializer)
        .with_context(|| format!("{json_text} is not a valid {}", input.full_name()))
}

struct Shared {
    config: RunConfig,
    next: AtomicU64,
    deadline: Option<Instant>,
}

/// Runs `config` and returns ghz's report. Fails when the run cannot start (server unreachable)
/// or templated data does not make a valid request.
pub async fn run(config: RunConfig) -> anyhow::Result<Report> {
    let endpoint = Endpoint::from_shared(format!("http://{}", config.host))
        .with_context(|| format!("host {}", config.host))?
        .connect_timeout(config.connect_timeout);
    let mut channels = Vec::with_capacity(config.connections);
    for _ in 0..config.connections {
        // Each `connect` opens its own HTTP/2 connection.
        channels.push(
            endpoint
                .connect()
                .await
                .with_context(|| format!("cannot connect to {}", config.host))?,
        );
    }
    let started = Instant::now();
    let shared = Arc::new(Shared {
        deadline: config.duration.map(|d| started + d),
        next: AtomicU64::new(0),
        config,
    });
    let mut workers = tokio::task::JoinSet::new();
    for index in 0..shared.config.concurrency {
        let connection = index % shared.config.connections;
        let mut worker_id = format!("g{index}c{connection}");
        if !shared.config.name.is_empty() {
            worker_id = format!("{}:{worker_id}", shared.config.name);
        }
        workers.spawn(worker(
            shared.clone(),
            channels[connection].clone(),
            worker_id,
        ));
    }
    let mut results = Vec::new();
    while let Some(outcome) = workers.join_next().await {
        results.extend(outcome.context("a worker panicked")??);
    }
    let total = started.elapsed();
    results.sort_by_key(|result: &CallResult| result.timestamp);
    let config = &shared.config;
    let end_reason = if config.duration.is_some() {
        "timeout"
    } else {
        "normal"
    };
    Ok(Report::build(
        config.name.clone(),
        end_reason,
        config.options(),
        config.tags.clone(),
        &results,
        total,
    ))
}

async fn worker(
    shared: Arc<Shared>,
    channel: Channel,
    worker_id: String,
) -> anyhow::Result<Vec<CallResult>> {
    let config = &shared.config;
    let method = &config.method;
    let path = PathAndQuery::try_from(format!(
        "/{}/{}",
        method.parent_service().full_name(),
        method.name()
    ))?;
    let mut grpc = tonic::client::Grpc::new(channel);
    let mut results = Vec::new();
    loop {
        let number = shared.next.fetch_add(1, Ordering::Relaxed);
        if number >= config.total || shared.deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(results);
        }
        let call_data = CallData {
            worker_id: worker_id.clone(),
            request_number: number,
            fully_qualified_name: method.full_name().to_owned(),
            method_name: method.name().to_owned(),
            service_name: method.parent_service().name().to_owned(),
            input_name: method.input().name().to_owned(),
            output_name: method.output().name().to_owned(),
            now: SystemTime::now(),
            uuid: uuid::Uuid::new_v4().to_string(),
        };
        let message = match &config.data[(number % config.data.len() as u64) as usize] {
            Payload::Fixed(message) => message.clone(),
            Payload::Templated(pieces) => {
                message(&template::render(pieces, &call_data), &method.input())?
            }
        };
        let mut request = Request::new(message);
        for (key, value) in &config.metadata {
            let value = template::render(
                &template::parse(value).map_err(anyhow::Error::msg)?,
                &call_data,
            );
            request.metadata_mut().insert(
                MetadataKey::from_bytes(key.to_lowercase().as_bytes())
                    .with_context(|| format!("metadata key {key:?}"))?,
                MetadataValue::try_from(value.as_str())
                    .with_context(|| format!("metadata {key:?} value"))?,
            );
        }
        if let Some(timeout) = config.timeout {
            request.set_timeout(timeout);
        }
        let timestamp = SystemTime::now();
        let start = Instant::now();
        let call = async {
            grpc.ready()
                .await
                .map_err(|error| tonic::Status::unavailable(error.to_string()))?;
            let codec = tonic_prost::ProstCodec::<DynamicMessage, ()>::default();
            grpc.unary(request, path.clone(), codec).await
        };
        let limit = [config.timeout.map(|t| start + t), shared.deadline]
            .into_iter()
            .flatten()
            .min();
        let outcome = match limit {
            Some(limit) => tokio::time::timeout_at(limit.into(), call).await,
            None => Ok(call.await),
        };
        let (code, error) = match outcome {
            Ok(Ok(_)) => (Code::Ok, None),
            Ok(Err(status)) => (
                status.code(),
                Some(go_error_text(status.code(), status.message())),
            ),
            // The run's duration ended first: ghz's `close` cancels the call.
            Err(_) if shared.deadline.is_some_and(|d| Instant::now() >= d) => (
                Code::Cancelled,
                Some(go_error_text(
                    Code::Cancelled,
                    "grpc: the client connection is closing",
                )),
            ),
            Err(_) => (
                Code::DeadlineExceeded,
                Some(go_error_text(
                    Code::DeadlineExceeded,
                    "context deadline exceeded",
                )),
            ),
        };
        results.push(CallResult {
            timestamp,
            latency: start.elapsed(),
            code,
            error,
        });
    }
}
