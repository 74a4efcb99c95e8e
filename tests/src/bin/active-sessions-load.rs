//! `active-sessions-load`: a load generator for the active-sessions gRPC API that speaks ghz's
//! language (its flags, config-file keys, `{{.RequestNumber}}`-style templates, summary and
//! JSON report) without Go or any download: it builds and runs wherever cargo does.
//!
//! ```text
//! cargo run --release -p active-sessions-e2e --bin active-sessions-load -- \
//!     --insecure --call activesessions.v1.SessionService/ValidateSession \
//!     --prepare-sessions 1000 -d '{"sessionToken":"{{.Token}}"}' \
//!     -c 32 --connections 4 -z 10s 127.0.0.1:50051
//! cargo run --release -p active-sessions-e2e --bin active-sessions-load -- \
//!     --config deploy/ghz/validate.json
//! ```
//!
//! See `deploy/ghz/README.md` for the settings, the templates and the report.

use std::{
    collections::BTreeMap,
    io::{IsTerminal, Read},
    path::PathBuf,
    process::ExitCode,
};

use active_sessions_e2e::load::{self, CancellationToken, Format, GhzConfig, GoDuration};
use anyhow::{Context, Result};
use clap::Parser;
use serde_json::Value;

/// Load-tests the active-sessions gRPC API with ghz's flags and config files.
///
/// Command-line flags win over the config file's keys. Every unary RPC of SessionService,
/// TrustedDeviceService and AccountEligibility can be called, and grpc.health.v1.Health/Check
/// as a baseline.
#[derive(Debug, Parser)]
#[command(name = "active-sessions-load", version)]
struct Cli {
    /// Host and port to test (host:port, or an http:// or https:// URI).
    host: Option<String>,

    /// Path to the JSON or TOML config file with ghz's keys.
    #[arg(long)]
    config: Option<PathBuf>,

    /// Fully-qualified method name: 'package.Service/Method' or 'package.Service.Method'.
    #[arg(long)]
    call: Option<String>,

    /// Number of request workers to run concurrently (default 50).
    #[arg(short = 'c', long)]
    concurrency: Option<u64>,

    /// Number of connections; the workers are spread evenly over them (default 1).
    #[arg(long)]
    connections: Option<u64>,

    /// Number of requests to run (default 200). Ignored with --duration.
    #[arg(short = 'n', long)]
    total: Option<u64>,

    /// Send requests for this long, e.g. 10s or 3m (then --total is ignored).
    #[arg(short = 'z', long, value_parser = go_duration)]
    duration: Option<GoDuration>,

    /// Stop after this long even if --total requests are not done.
    #[arg(short = 'x', long = "max-duration", value_parser = go_duration)]
    max_duration: Option<GoDuration>,

    /// Calls in flight when the duration ends: close (counted as Canceled, the default), wait
    /// (finished and counted) or ignore (left out).
    #[arg(long = "duration-stop")]
    duration_stop: Option<String>,

    /// Requests per second over all workers (default: no limit).
    #[arg(short = 'r', long, alias = "qps")]
    rps: Option<u64>,

    /// Timeout of each request (default 20s; 0 for none).
    #[arg(short = 't', long, value_parser = go_duration)]
    timeout: Option<GoDuration>,

    /// Timeout of the initial connection (default 10s).
    #[arg(long = "connect-timeout", value_parser = go_duration)]
    connect_timeout: Option<GoDuration>,

    /// The call data as JSON, with templates such as {{.RequestNumber}} or {{.Token}}. '@'
    /// reads it from standard input.
    #[arg(short = 'd', long)]
    data: Option<String>,

    /// File holding the call data JSON.
    #[arg(short = 'D', long = "data-file")]
    data_file: Option<String>,

    /// Request metadata as a JSON object of strings (templates allowed), e.g.
    /// '{"authorization":"Bearer TOKEN"}'.
    #[arg(short = 'm', long)]
    metadata: Option<String>,

    /// File holding the metadata JSON.
    #[arg(short = 'M', long = "metadata-file")]
    metadata_file: Option<String>,

    /// Skip the first N results when tallying.
    #[arg(long = "skipFirst")]
    skip_first: Option<u64>,

    /// Plaintext HTTP/2 (no TLS). Needed for a local development server.
    #[arg(long)]
    insecure: bool,

    /// PEM file of the CA that signed the server's certificate (default: the system roots).
    #[arg(long)]
    cacert: Option<String>,

    /// PEM client certificate for mTLS (with --key).
    #[arg(long)]
    cert: Option<String>,

    /// PEM client key for mTLS (with --cert).
    #[arg(long)]
    key: Option<String>,

    /// Server name the certificate must carry (default: the host).
    #[arg(long)]
    cname: Option<String>,

    /// Not supported (refused): certificates are always verified.
    #[arg(long = "skipTLS")]
    skip_tls: bool,

    /// Not supported (refused).
    #[arg(long)]
    authority: Option<String>,

    /// Output format: summary (default), json, pretty or csv.
    #[arg(short = 'O', long)]
    format: Option<String>,

    /// Output file (default: standard output).
    #[arg(short = 'o', long)]
    output: Option<String>,

    /// A name for the run, shown in the report.
    #[arg(long)]
    name: Option<String>,

    /// JSON object of string tags copied into the report.
    #[arg(long)]
    tags: Option<String>,

    /// Worker threads of the generator (default: every core).
    #[arg(long)]
    cpus: Option<u64>,

    /// Ignored: the protos are compiled in.
    #[arg(long)]
    proto: Option<String>,

    /// Ignored: the protos are compiled in.
    #[arg(long)]
    protoset: Option<String>,

    /// Ignored: the protos are compiled in.
    #[arg(short = 'i', long = "import-paths")]
    import_paths: Option<String>,

    /// Not supported (ignored with a warning).
    #[arg(short = 'e', long = "enable-compression")]
    enable_compression: bool,

    /// Register N sessions first; {{.Token}}, {{.AccountId}}, {{.SessionId}} and {{.DeviceId}}
    /// then cycle through them (call n uses session n % N).
    #[arg(long = "prepare-sessions", value_name = "N")]
    prepare_sessions: Option<u64>,

    /// Account ids of prepared sessions start with this (default: load-<ULID>-).
    #[arg(long = "prepare-account-prefix", value_name = "PREFIX")]
    prepare_account_prefix: Option<String>,

    /// Prepared sessions per account, each on its own device (default 1).
    #[arg(long = "prepare-sessions-per-account", value_name = "K")]
    prepare_sessions_per_account: Option<u64>,

    /// Product of prepared sessions (default PRODUCT_CHATGPT).
    #[arg(long = "prepare-product", value_name = "PRODUCT")]
    prepare_product: Option<String>,

    /// Client kind of prepared sessions (default CLIENT_KIND_BROWSER).
    #[arg(long = "prepare-client-kind", value_name = "KIND")]
    prepare_client_kind: Option<String>,

    /// Registrations in flight while preparing (default: the concurrency, at most 16).
    #[arg(long = "prepare-concurrency", value_name = "N")]
    prepare_concurrency: Option<u64>,

    /// No progress line (it is shown only when standard error is a terminal anyway).
    #[arg(long = "no-progress")]
    no_progress: bool,

    /// Keep per-request results in the JSON report (`details`).
    #[arg(long)]
    details: bool,
}

fn go_duration(text: &str) -> Result<GoDuration, String> {
    load::parse_go_duration(text).map(GoDuration)
}

fn parse_json(flag: &str, text: &str) -> Result<Value> {
    serde_json::from_str(text).with_context(|| format!("error unmarshaling {flag} '{text}'"))
}

impl Cli {
    /// The settings given on the command line (the unset ones stay `None`).
    fn settings(&self) -> Result<GhzConfig> {
        let data = match self.data.as_deref().map(str::trim) {
            None | Some("") => None,
            Some("@") => {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("reading the data from standard input")?;
                Some(parse_json("data", &text)?)
            }
            Some(text) => Some(parse_json("data", text)?),
        };
        let metadata = match self.metadata.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(parse_json("metadata", text)?),
        };
        let tags = match self.tags.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(
                serde_json::from_str::<BTreeMap<String, String>>(text)
                    .with_context(|| format!("error unmarshaling tags '{text}'"))?,
            ),
        };
        Ok(GhzConfig {
            call: self.call.clone(),
            host: self.host.clone(),
            proto: self.proto.clone(),
            protoset: self.protoset.clone(),
            import_paths: self
                .import_paths
                .as_ref()
                .map(|paths| paths.split(',').map(str::to_owned).collect()),
            cacert: self.cacert.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            cname: self.cname.clone(),
            skip_tls: self.skip_tls.then_some(true),
            insecure: self.insecure.then_some(true),
            authority: self.authority.clone(),
            total: self.total,
            concurrency: self.concurrency,
            connections: self.connections,
            rps: self.rps,
            qps: None,
            duration: self.duration,
            max_duration: self.max_duration,
            duration_stop: self.duration_stop.clone(),
            timeout: self.timeout,
            connect_timeout: self.connect_timeout,
            data,
            data_file: self.data_file.clone(),
            metadata,
            metadata_file: self.metadata_file.clone(),
            output: self.output.clone(),
            format: self.format.clone(),
            skip_first: self.skip_first,
            name: self.name.clone(),
            tags,
            cpus: self.cpus,
            enable_compression: self.enable_compression.then_some(true),
            details: self.details.then_some(true),
            prepare_sessions: self.prepare_sessions,
            prepare_account_prefix: self.prepare_account_prefix.clone(),
            prepare_sessions_per_account: self.prepare_sessions_per_account,
            prepare_product: self.prepare_product.clone(),
            prepare_client_kind: self.prepare_client_kind.clone(),
            prepare_concurrency: self.prepare_concurrency,
            unknown: BTreeMap::new(),
        })
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    let from_command_line = cli.settings()?;
    // As with ghz, a flag given on the command line wins over the config file.
    let settings = match &cli.config {
        Some(path) => GhzConfig::load(path)?.merge(from_command_line),
        None => from_command_line,
    };
    let mut plan = settings.resolve()?;
    for warning in &plan.warnings {
        eprintln!("warning: {warning}");
    }
    plan.run.progress = !cli.no_progress && std::io::stderr().is_terminal();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(plan.cpus)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(async {
        let cancel = CancellationToken::new();
        let on_interrupt = cancel.clone();
        tokio::spawn(async move {
            // The first Ctrl-C ends the run and still prints its report; a second one exits.
            if tokio::signal::ctrl_c().await.is_ok() {
                on_interrupt.cancel();
            }
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        });
        load::run(&plan.run, cancel).await
    })?;

    let mut text = match plan.format {
        Format::Summary => report.to_summary(),
        Format::Json => report.to_json(),
        Format::Pretty => report.to_pretty_json(),
        Format::Csv => report.to_csv(),
    };
    match &plan.output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("writing the report to {}", path.display()))?,
        None => {
            if !text.ends_with('\n') {
                text.push('\n');
            }
            print!("{text}");
        }
    }
    Ok(())
}
