//! The run: connections, preparation, workers, pacing, stopping, progress.
//!
//! Like ghz, `concurrency` workers share one request counter; worker `i` uses connection
//! `i % connections`; with `rps`, request `n` is not sent before `start + n / rps` (a constant
//! schedule that catches up rather than drifting). Each worker records into its own stats,
//! merged at the end, so the hot path takes no lock.

use std::{
    io::Write as _,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use active_sessions_client::{
    Connection,
    proto::{self as pb, session_service_client::SessionServiceClient},
};
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::{
    Code, Status,
    metadata::{Ascii, MetadataKey, MetadataMap, MetadataValue},
    transport::Channel,
};

use super::{
    DurationStop, LoadError, PrepareOptions, PreparedSession, RunOptions,
    duration::nanos,
    message::{Request, Rpc},
    report::{Report, ReportOptions, Stats},
    template::{CallData, Template, ValueTemplate},
};

const END_NORMAL: u8 = 0;
const END_TIMEOUT: u8 = 1;
const END_CANCEL: u8 = 2;

/// Runs the load described by `options` and reports on it. `cancel` ends the run early (for
/// Ctrl-C): calls in flight are dropped and the report says `endReason: cancel`.
pub async fn run(options: &RunOptions, cancel: CancellationToken) -> Result<Report, LoadError> {
    let rpc = Rpc::parse(&options.call)?;
    if options.concurrency == 0 || options.connections == 0 {
        return Err(LoadError::new(
            "concurrency and connections must be at least 1",
        ));
    }
    if options.connections > options.concurrency {
        return Err(LoadError::new(
            "number of connections cannot be greater than concurrency",
        ));
    }
    let data = DataPlan::compile(rpc, &options.data)?;
    let metadata = Arc::new(MetadataPlan::compile(options.metadata.as_ref())?);
    let wants_session = data.needs_session() || metadata.needs_session();
    if wants_session && options.prepare.is_none() {
        return Err(LoadError::new(
            "the data or metadata uses {{.Token}}, {{.AccountId}}, {{.SessionId}} or \
             {{.DeviceId}}, which come from prepared sessions: add --prepare-sessions N",
        ));
    }

    let channels = connect(options).await?;
    let sessions = match &options.prepare {
        Some(prepare) => {
            prepare_sessions(
                prepare,
                &channels,
                &metadata,
                options.timeout,
                options.progress,
                &cancel,
            )
            .await?
        }
        None => Vec::new(),
    };

    // Build the first request now, so that bad data fails the run instead of every call.
    {
        let probe = CallData::new("g0c0", 0, rpc, sessions.first());
        data.request(&probe)
            .map_err(|error| LoadError::new(format!("data: {error}")))?;
        metadata
            .render(&probe)
            .map_err(|error| LoadError::new(format!("metadata: {error}")))?;
    }

    let limit = if options.duration.is_some() {
        u64::MAX
    } else {
        options.total
    };
    let deadline = options.duration.or(options.max_duration);
    let shared = Arc::new(Shared {
        rpc,
        data,
        metadata,
        sessions,
        channels,
        timeout: options.timeout,
        rps: options.rps,
        limit,
        skip_first: options.skip_first,
        keep_details: options.details,
        next: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        start: Instant::now(),
        stop: CancellationToken::new(),
        abort: CancellationToken::new(),
        record_aborted: AtomicBool::new(false),
        end_reason: AtomicU8::new(END_NORMAL),
    });

    let finished = CancellationToken::new();
    let controller = tokio::spawn(control(
        shared.clone(),
        deadline,
        options.duration_stop,
        cancel,
        finished.clone(),
    ));
    let progress = options.progress.then(|| {
        tokio::spawn(show_progress(
            shared.clone(),
            deadline,
            (options.duration.is_none()).then_some(options.total),
            finished.clone(),
        ))
    });

    let workers: Vec<_> = (0..options.concurrency)
        .map(|index| tokio::spawn(worker(shared.clone(), index)))
        .collect();
    let mut stats = Stats::new(options.details)?;
    let mut failure = None;
    for handle in workers {
        match handle.await {
            Ok(Ok(worker_stats)) => stats.merge(worker_stats),
            Ok(Err(error)) => failure = Some(error),
            Err(error) => failure = Some(format!("a worker failed: {error}")),
        }
    }
    let total = shared.start.elapsed();
    finished.cancel();
    let _ = controller.await;
    if let Some(progress) = progress {
        let _ = progress.await;
    }
    if let Some(error) = failure {
        return Err(LoadError::new(error));
    }

    let end_reason = match shared.end_reason.load(Ordering::Acquire) {
        END_TIMEOUT => "timeout",
        END_CANCEL => "cancel",
        _ => "normal",
    };
    let report_options = ReportOptions {
        call: options.call.clone(),
        host: options.host.clone(),
        cacert: path_text(options.tls.cacert.as_ref()),
        cert: path_text(options.tls.cert.as_ref()),
        key: path_text(options.tls.key.as_ref()),
        cname: options.tls.cname.clone().unwrap_or_default(),
        insecure: options.insecure,
        rps: options.rps,
        load_schedule: "const".into(),
        concurrency: options.concurrency as u64,
        concurrency_schedule: "const".into(),
        total: if options.duration.is_some() {
            0
        } else {
            options.total
        },
        connections: options.connections as u64,
        duration: deadline.map(nanos).unwrap_or(0),
        timeout: options.timeout.map(nanos).unwrap_or(0),
        dial_timeout: nanos(options.connect_timeout),
        data: Some(options.data.clone()),
        binary: false,
        metadata: options.metadata.clone(),
        cpus: options.cpus,
        name: options.name.clone(),
        skip_first: options.skip_first,
        prepare_sessions: options.prepare.as_ref().map_or(0, |p| p.sessions),
    };
    Ok(Report::build(
        stats,
        total,
        end_reason,
        report_options,
        options.tags.clone(),
        rpc == Rpc::ValidateSession,
    ))
}

fn path_text(path: Option<&std::path::PathBuf>) -> String {
    path.map(|p| p.display().to_string()).unwrap_or_default()
}

/// What every worker shares.
#[derive(Debug)]
struct Shared {
    rpc: Rpc,
    data: DataPlan,
    metadata: Arc<MetadataPlan>,
    sessions: Vec<PreparedSession>,
    channels: Vec<Channel>,
    timeout: Option<Duration>,
    /// Requests per second over all workers; 0 for no limit.
    rps: u64,
    /// Requests to make (`u64::MAX` for a duration-bound run).
    limit: u64,
    skip_first: u64,
    keep_details: bool,
    /// The next request number.
    next: AtomicU64,
    /// Calls finished (counted or skipped).
    completed: AtomicU64,
    /// Calls that failed.
    failed: AtomicU64,
    start: Instant,
    /// No new calls once cancelled.
    stop: CancellationToken,
    /// Calls in flight are cut off once cancelled.
    abort: CancellationToken,
    /// Whether cut-off calls are counted (as `Canceled`) or dropped.
    record_aborted: AtomicBool,
    end_reason: AtomicU8,
}

impl Shared {
    /// When request `number` may start, with a rate limit.
    fn due(&self, number: u64) -> Option<Instant> {
        if self.rps == 0 {
            return None;
        }
        let offset = u128::from(number) * 1_000_000_000 / u128::from(self.rps);
        Some(self.start + Duration::from_nanos(u64::try_from(offset).unwrap_or(u64::MAX)))
    }
}

/// Ends the run when its time is up or when it is cancelled.
async fn control(
    shared: Arc<Shared>,
    deadline: Option<Duration>,
    stop_mode: DurationStop,
    cancel: CancellationToken,
    finished: CancellationToken,
) {
    let timer = async {
        match deadline {
            Some(deadline) => tokio::time::sleep_until(shared.start + deadline).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = finished.cancelled() => {}
        () = timer => {
            shared.end_reason.store(END_TIMEOUT, Ordering::Release);
            shared.stop.cancel();
            match stop_mode {
                DurationStop::Close => {
                    shared.record_aborted.store(true, Ordering::Release);
                    shared.abort.cancel();
                }
                DurationStop::Ignore => shared.abort.cancel(),
                DurationStop::Wait => {}
            }
        }
        () = cancel.cancelled() => {
            shared.end_reason.store(END_CANCEL, Ordering::Release);
            shared.stop.cancel();
            shared.abort.cancel();
        }
    }
}

/// One worker: claims request numbers until the run is over.
async fn worker(shared: Arc<Shared>, index: usize) -> Result<Stats, String> {
    let connection = index % shared.channels.len();
    let worker_id = format!("g{index}c{connection}");
    let channel = shared.channels[connection].clone();
    let mut stats = Stats::new(shared.keep_details)?;
    loop {
        if shared.stop.is_cancelled() {
            break;
        }
        let number = shared.next.fetch_add(1, Ordering::Relaxed);
        if number >= shared.limit {
            break;
        }
        if let Some(due) = shared.due(number) {
            tokio::select! {
                biased;
                () = shared.stop.cancelled() => break,
                () = tokio::time::sleep_until(due) => {}
            }
        }
        let session = (!shared.sessions.is_empty()).then(|| {
            let slot = usize::try_from(number % shared.sessions.len() as u64).unwrap_or(0);
            &shared.sessions[slot]
        });
        let data = CallData::new(&worker_id, number, shared.rpc, session);
        let built = shared
            .data
            .request(&data)
            .and_then(|request| Ok((request, shared.metadata.render(&data)?)));
        let wall = SystemTime::now();
        let started = Instant::now();
        let result = match built {
            Err(error) => Some(Err((Code::Unknown, error))),
            Ok((request, metadata)) => {
                let call = request.invoke(channel.clone(), metadata, shared.timeout);
                let call =
                    async {
                        match shared.timeout {
                            Some(timeout) => tokio::time::timeout(timeout, call)
                                .await
                                .unwrap_or_else(|_| {
                                    Err(Status::deadline_exceeded("context deadline exceeded"))
                                }),
                            None => call.await,
                        }
                    };
                tokio::select! {
                    biased;
                    result = call => Some(result
                        .map(|outcome| outcome.not_valid)
                        .map_err(|status| (status.code(), status.message().to_owned()))),
                    () = shared.abort.cancelled() => None,
                }
            }
        };
        let latency = started.elapsed();
        let result = match result {
            Some(result) => result,
            None if shared.record_aborted.load(Ordering::Acquire) => Err((
                Code::Cancelled,
                "grpc: the client connection is closing".to_owned(),
            )),
            None => break,
        };
        if result.is_err() {
            shared.failed.fetch_add(1, Ordering::Relaxed);
        }
        let finished = shared.completed.fetch_add(1, Ordering::Relaxed);
        if finished >= shared.skip_first {
            stats.record(wall, latency, result);
        }
        if shared.abort.is_cancelled() {
            break;
        }
    }
    Ok(stats)
}

/// The progress line on standard error, about once a second, erased at the end.
async fn show_progress(
    shared: Arc<Shared>,
    deadline: Option<Duration>,
    total: Option<u64>,
    finished: CancellationToken,
) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    let mut last = 0u64;
    let mut last_at = Instant::now();
    loop {
        tokio::select! {
            () = finished.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let done = shared.completed.load(Ordering::Relaxed);
        let failed = shared.failed.load(Ordering::Relaxed);
        let now = Instant::now();
        let rate = (done - last) as f64 / now.duration_since(last_at).as_secs_f64().max(1e-9);
        last = done;
        last_at = now;
        let elapsed = shared.start.elapsed().as_secs_f64();
        let position = match (total, deadline) {
            (Some(total), _) => format!(
                "{done}/{total} ({:.0} %)",
                done as f64 * 100.0 / total.max(1) as f64
            ),
            (None, _) => format!("{done} calls"),
        };
        let clock = match deadline {
            Some(deadline) => format!("{elapsed:.0}s/{:.0}s", deadline.as_secs_f64()),
            None => format!("{elapsed:.0}s"),
        };
        let mut stderr = std::io::stderr().lock();
        let _ = write!(
            stderr,
            "\r\x1b[2K[{clock}] {position}, {rate:.0} req/s, {failed} errors"
        );
        let _ = stderr.flush();
    }
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "\r\x1b[2K");
    let _ = stderr.flush();
}

/// The request data: built once when it has no template, per call otherwise.
#[derive(Debug)]
enum DataPlan {
    Fixed(Request),
    Templated(ValueTemplate),
    RoundRobin(Vec<DataPlan>),
}

impl DataPlan {
    fn compile(rpc: Rpc, data: &Value) -> Result<Self, LoadError> {
        if let Value::Array(items) = data {
            if items.is_empty() {
                return Err(LoadError::new(
                    "data: an array of requests must not be empty",
                ));
            }
            return Ok(Self::RoundRobin(
                items
                    .iter()
                    .map(|item| Self::compile(rpc, item))
                    .collect::<Result<_, _>>()?,
            ));
        }
        let template = ValueTemplate::compile(data)
            .map_err(|error| LoadError::new(format!("data: {error}")))?;
        match template {
            ValueTemplate::Static(value) => Ok(Self::Fixed(
                Request::from_json(rpc, &value)
                    .map_err(|error| LoadError::new(format!("data: {error}")))?,
            )),
            templated => Ok(Self::Templated(templated)),
        }
    }

    fn needs_session(&self) -> bool {
        match self {
            Self::Fixed(_) => false,
            Self::Templated(template) => template.fields().iter().any(|f| f.needs_session()),
            Self::RoundRobin(plans) => plans.iter().any(Self::needs_session),
        }
    }

    fn request(&self, data: &CallData<'_>) -> Result<Request, String> {
        match self {
            Self::Fixed(request) => Ok(request.clone()),
            Self::Templated(template) => Request::from_json(data.rpc, &template.render(data)?),
            Self::RoundRobin(plans) => {
                let slot = usize::try_from(data.request_number % plans.len() as u64).unwrap_or(0);
                plans
                    .get(slot)
                    .ok_or_else(|| "no data".to_owned())?
                    .request(data)
            }
        }
    }
}

/// The metadata: built once when it has no template, per call otherwise.
#[derive(Debug)]
enum MetadataPlan {
    Fixed(MetadataMap),
    Templated(Vec<(MetadataKey<Ascii>, Template)>),
}

impl MetadataPlan {
    fn compile(metadata: Option<&Value>) -> Result<Self, LoadError> {
        let Some(metadata) = metadata else {
            return Ok(Self::Fixed(MetadataMap::new()));
        };
        let map = metadata
            .as_object()
            .ok_or_else(|| LoadError::new("metadata must be a JSON object of strings"))?;
        let mut entries = Vec::new();
        for (key, value) in map {
            let name = key.to_ascii_lowercase();
            if name.ends_with("-bin") {
                return Err(LoadError::new(format!(
                    "metadata {key:?}: binary (-bin) metadata is not supported"
                )));
            }
            let key = MetadataKey::from_bytes(name.as_bytes())
                .map_err(|_| LoadError::new(format!("metadata key {key:?} is not valid")))?;
            let text = value
                .as_str()
                .ok_or_else(|| LoadError::new("metadata values must be strings"))?;
            let template = Template::parse(text)
                .map_err(|error| LoadError::new(format!("metadata: {error}")))?;
            entries.push((key, template));
        }
        if entries.iter().all(|(_, template)| template.is_static()) {
            let mut map = MetadataMap::new();
            for (key, template) in entries {
                let probe = CallData::new("", 0, Rpc::HealthCheck, None);
                let text = template.render(&probe)?;
                map.append(key, ascii_value(&text)?);
            }
            return Ok(Self::Fixed(map));
        }
        Ok(Self::Templated(entries))
    }

    fn needs_session(&self) -> bool {
        match self {
            Self::Fixed(_) => false,
            Self::Templated(entries) => entries
                .iter()
                .any(|(_, template)| template.fields().any(|f| f.needs_session())),
        }
    }

    fn render(&self, data: &CallData<'_>) -> Result<MetadataMap, String> {
        match self {
            Self::Fixed(map) => Ok(map.clone()),
            Self::Templated(entries) => {
                let mut map = MetadataMap::new();
                for (key, template) in entries {
                    map.append(key.clone(), ascii_value(&template.render(data)?)?);
                }
                Ok(map)
            }
        }
    }
}

fn ascii_value(text: &str) -> Result<MetadataValue<Ascii>, String> {
    MetadataValue::try_from(text)
        .map_err(|_| format!("metadata value {text:?} is not printable ASCII"))
}

/// Opens the connections (eagerly, so that an unreachable server fails the run at once).
async fn connect(options: &RunOptions) -> Result<Vec<Channel>, LoadError> {
    let host = options.host.trim();
    let uri = if host.contains("://") {
        host.to_owned()
    } else if options.insecure {
        format!("http://{host}")
    } else {
        format!("https://{host}")
    };
    let tls = if uri.starts_with("https://") {
        let ca = options
            .tls
            .cacert
            .as_ref()
            .map(|path| {
                std::fs::read(path)
                    .map_err(|error| LoadError::new(format!("cacert {}: {error}", path.display())))
            })
            .transpose()?;
        let identity = match (&options.tls.cert, &options.tls.key) {
            (Some(cert), Some(key)) => Some((
                std::fs::read(cert)
                    .map_err(|e| LoadError::new(format!("cert {}: {e}", cert.display())))?,
                std::fs::read(key)
                    .map_err(|e| LoadError::new(format!("key {}: {e}", key.display())))?,
            )),
            (None, None) => None,
            _ => return Err(LoadError::new("--cert and --key go together")),
        };
        Some((ca, identity))
    } else {
        None
    };
    let domain = options.tls.cname.clone().unwrap_or_else(|| host_name(&uri));
    let mut channels = Vec::with_capacity(options.connections);
    for _ in 0..options.connections {
        let mut builder = Connection::builder(uri.clone()).connect_timeout(options.connect_timeout);
        if let Some((ca, identity)) = &tls {
            builder = match ca {
                Some(ca) => builder.tls_ca(ca, domain.clone()),
                None => builder.tls_system_roots(),
            };
            if let Some((cert, key)) = identity {
                builder = builder.tls_client_identity(cert, key);
            }
        }
        let connection = builder
            .connect()
            .await
            .map_err(|error| LoadError::new(with_causes(&error)))?;
        channels.push(connection.channel());
    }
    Ok(channels)
}

/// An error's text followed by those of its causes that it does not already include.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// The host name of `scheme://host:port/...`, without brackets or port.
fn host_name(uri: &str) -> String {
    let rest = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    if let Some(bracketed) = authority.strip_prefix('[') {
        return bracketed.split(']').next().unwrap_or(bracketed).to_owned();
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
        .to_owned()
}

/// Registers the sessions of `prepare`, spreading the registrations over the connections.
async fn prepare_sessions(
    prepare: &PrepareOptions,
    channels: &[Channel],
    metadata: &Arc<MetadataPlan>,
    timeout: Option<Duration>,
    progress: bool,
    cancel: &CancellationToken,
) -> Result<Vec<PreparedSession>, LoadError> {
    if metadata.needs_session() {
        return Err(LoadError::new(
            "the metadata uses a prepared session's fields, which do not exist yet while the \
             sessions are registered",
        ));
    }
    let total = prepare.sessions;
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    // Ctrl-C (the run's cancel) stops the preparation too.
    let stop = cancel.child_token();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let workers = usize::try_from(total)
        .unwrap_or(usize::MAX)
        .min(prepare.concurrency.max(1));
    for index in 0..workers {
        let channel = channels[index % channels.len()].clone();
        let prepare = prepare.clone();
        let next = next.clone();
        let done = done.clone();
        let stop = stop.clone();
        let metadata = metadata.clone();
        tasks.spawn(async move {
            let mut registered = Vec::new();
            loop {
                if stop.is_cancelled() {
                    break;
                }
                let number = next.fetch_add(1, Ordering::Relaxed);
                if number >= prepare.sessions {
                    break;
                }
                let account = number / prepare.sessions_per_account;
                let request = pb::RegisterSessionRequest {
                    request_id: String::new(),
                    account_id: format!("{}{account}", prepare.account_prefix),
                    product: prepare.product,
                    client_kind: prepare.client_kind,
                    device_id: format!("{}device-{number}", prepare.account_prefix),
                    user_agent: "active-sessions-load".into(),
                    ip_address: String::new(),
                    auth_method: pb::AuthMethod::Password as i32,
                    lifetime: None,
                    status_unavailable: false,
                };
                let account_id = request.account_id.clone();
                let device_id = request.device_id.clone();
                let call_data = CallData::new("prepare", number, Rpc::RegisterSession, None);
                let metadata = match metadata.render(&call_data) {
                    Ok(metadata) => metadata,
                    Err(error) => {
                        stop.cancel();
                        return Err(format!("preparing sessions: metadata: {error}"));
                    }
                };
                let mut call =
                    tonic::Request::from_parts(metadata, tonic::Extensions::default(), request);
                if let Some(timeout) = timeout {
                    call.set_timeout(timeout);
                }
                let mut client = SessionServiceClient::new(channel.clone());
                let result = tokio::select! {
                    biased;
                    () = stop.cancelled() => break,
                    result = client.register_session(call) => {
                        result.map(tonic::Response::into_inner)
                    }
                };
                match result {
                    Ok(response) => {
                        let token = response.session_token;
                        let session_id = response.session.map(|s| s.session_id).unwrap_or_default();
                        registered.push((
                            number,
                            PreparedSession {
                                token,
                                account_id,
                                session_id,
                                device_id,
                            },
                        ));
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(status) => {
                        stop.cancel();
                        return Err(format!(
                            "preparing sessions: RegisterSession #{number} failed: {}",
                            super::report::go_error_text(status.code(), status.message())
                        ));
                    }
                }
            }
            Ok(registered)
        });
    }
    let ticker = progress.then(|| {
        let done = done.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(1));
            ticker.tick().await;
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = ticker.tick() => {}
                }
                let mut stderr = std::io::stderr().lock();
                let _ = write!(
                    stderr,
                    "\r\x1b[2Kpreparing sessions: {}/{total}",
                    done.load(Ordering::Relaxed)
                );
                let _ = stderr.flush();
            }
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[2K");
            let _ = stderr.flush();
        })
    });
    let mut sessions: Vec<(u64, PreparedSession)> = Vec::new();
    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(registered)) => sessions.extend(registered),
            Ok(Err(error)) => failure = failure.or(Some(error)),
            Err(error) => failure = failure.or(Some(format!("preparing sessions: {error}"))),
        }
    }
    stop.cancel();
    if let Some(ticker) = ticker {
        let _ = ticker.await;
    }
    if let Some(error) = failure {
        return Err(LoadError::new(error));
    }
    if cancel.is_cancelled() {
        return Err(LoadError::new("interrupted while preparing sessions"));
    }
    sessions.sort_by_key(|(number, _)| *number);
    if progress {
        eprintln!(
            "prepared {} sessions in {:.1}s",
            sessions.len(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(sessions.into_iter().map(|(_, session)| session).collect())
}
