//! The engine of `active-sessions-load`, a load generator that speaks ghz's language (its
//! flags, config-file keys, data templates and report) for the active-sessions API, with no Go
//! and no downloads: it runs wherever cargo does.
//!
//! [`GhzConfig`] holds ghz's settings (from a config file and the command line),
//! [`GhzConfig::resolve`] checks them into a [`Plan`], and [`run`] makes the calls over real
//! gRPC through the generated clients and returns a [`Report`] in ghz's shape.
//!
//! ```no_run
//! # async fn demo() -> Result<(), active_sessions_e2e::load::LoadError> {
//! use active_sessions_e2e::load::{self, RunOptions};
//! let options = RunOptions {
//!     call: "activesessions.v1.SessionService/ValidateSession".into(),
//!     host: "127.0.0.1:50051".into(),
//!     insecure: true,
//!     data: serde_json::json!({"sessionToken": "{{.Token}}"}),
//!     prepare: Some(load::PrepareOptions::new(100)),
//!     ..RunOptions::default()
//! };
//! let report = load::run(&options, Default::default()).await?;
//! println!("{}", report.to_summary());
//! # Ok(()) }
//! ```

#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod config;
mod duration;
mod message;
mod report;
mod runner;
mod template;

use std::{collections::BTreeMap, fmt, path::PathBuf, time::Duration};

use active_sessions_client::proto as pb;
use serde_json::Value;

pub use config::{Format, GhzConfig, GoDuration, Plan};
pub use duration::{format_nano_unit, parse_go_duration};
pub use message::Rpc;
pub use report::{
    Bucket, Detail, LatencyDistribution, PERCENTILES, Report, ReportOptions, go_code_name,
};
pub use runner::run;
pub use tokio_util::sync::CancellationToken;

/// Why a run could not start (bad settings, unreachable server, failed preparation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError(String);

impl LoadError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

impl From<String> for LoadError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

/// What happens to calls still in flight when the run's duration ends (ghz's `--duration-stop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DurationStop {
    /// Cut them off and count them as `Canceled` errors (ghz's default).
    #[default]
    Close,
    /// Let them finish and count them.
    Wait,
    /// Cut them off and leave them out of the report.
    Ignore,
}

/// TLS settings (used unless `insecure`).
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// PEM file of the CA to verify the server with; the system roots when `None`.
    pub cacert: Option<PathBuf>,
    /// PEM client certificate, for mTLS (with `key`).
    pub cert: Option<PathBuf>,
    /// PEM client key, for mTLS (with `cert`).
    pub key: Option<PathBuf>,
    /// The name the server's certificate must carry; the host's name when `None`.
    pub cname: Option<String>,
}

/// Sessions to register (through RegisterSession) before the run. During the run, call `n`
/// uses prepared session `n % sessions` for `{{.Token}}`, `{{.AccountId}}`, `{{.SessionId}}`
/// and `{{.DeviceId}}`.
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// How many.
    pub sessions: u64,
    /// Account ids are this prefix and the account's number.
    pub account_prefix: String,
    /// Sessions per account (each on its own device).
    pub sessions_per_account: u64,
    /// Their product (a `Product` value).
    pub product: i32,
    /// Their client kind (a `ClientKind` value).
    pub client_kind: i32,
    /// Registrations in flight at once.
    pub concurrency: usize,
}

impl PrepareOptions {
    /// `sessions` ChatGPT browser sessions, one per account, under a fresh account prefix.
    pub fn new(sessions: u64) -> Self {
        Self {
            sessions,
            account_prefix: format!(
                "load-{}-",
                ulid::Ulid::generate().to_string().to_ascii_lowercase()
            ),
            sessions_per_account: 1,
            product: pb::Product::Chatgpt as i32,
            client_kind: pb::ClientKind::Browser as i32,
            concurrency: 8,
        }
    }
}

/// A session registered before the run.
#[derive(Debug, Clone)]
pub struct PreparedSession {
    /// Its token (`{{.Token}}`).
    pub token: String,
    /// Its account (`{{.AccountId}}`).
    pub account_id: String,
    /// Its id (`{{.SessionId}}`).
    pub session_id: String,
    /// Its device (`{{.DeviceId}}`).
    pub device_id: String,
}

/// One run's settings, with ghz's defaults (see [`GhzConfig`] for what each means).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `package.Service/Method` or `package.Service.Method`.
    pub call: String,
    /// `host:port`, or a full `http://` or `https://` URI.
    pub host: String,
    /// Plaintext instead of TLS.
    pub insecure: bool,
    /// TLS settings.
    pub tls: TlsOptions,
    /// Concurrent workers (ghz default 50).
    pub concurrency: usize,
    /// Connections the workers are spread over (ghz default 1).
    pub connections: usize,
    /// Requests to make (ghz default 200); ignored when `duration` is set.
    pub total: u64,
    /// Run for this long (`-z`).
    pub duration: Option<Duration>,
    /// Stop after this long even if `total` is not reached (`-x`).
    pub max_duration: Option<Duration>,
    /// What happens to calls in flight when time is up.
    pub duration_stop: DurationStop,
    /// Requests per second over all workers; 0 for no limit.
    pub rps: u64,
    /// Per-call timeout (ghz default 20s).
    pub timeout: Option<Duration>,
    /// Connection timeout (ghz default 10s).
    pub connect_timeout: Duration,
    /// The request as protobuf JSON (object, or array of objects used round-robin), with
    /// templates in its strings.
    pub data: Value,
    /// Metadata: a JSON object of strings, with templates.
    pub metadata: Option<Value>,
    /// Results left out of the tally at the start.
    pub skip_first: u64,
    /// The run's name.
    pub name: String,
    /// Tags copied into the report.
    pub tags: BTreeMap<String, String>,
    /// Worker threads, as reported in `options.CPUs`.
    pub cpus: u64,
    /// Sessions to register first.
    pub prepare: Option<PrepareOptions>,
    /// Show a progress line on standard error, about once a second.
    pub progress: bool,
    /// Keep per-call results (`details`).
    pub details: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            call: String::new(),
            host: String::new(),
            insecure: false,
            tls: TlsOptions::default(),
            concurrency: 50,
            connections: 1,
            total: 200,
            duration: None,
            max_duration: None,
            duration_stop: DurationStop::Close,
            rps: 0,
            timeout: Some(Duration::from_secs(20)),
            connect_timeout: Duration::from_secs(10),
            data: Value::Object(Default::default()),
            metadata: None,
            skip_first: 0,
            name: String::new(),
            tags: BTreeMap::new(),
            cpus: std::thread::available_parallelism()
                .map(|n| n.get() as u64)
                .unwrap_or(1),
            prepare: None,
            progress: false,
            details: false,
        }
    }
}
