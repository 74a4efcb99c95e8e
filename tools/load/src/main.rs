//! `active-sessions-load`: `prepare` registers sessions and writes ghz data files, `run` plays a
//! ghz config without Go and writes ghz's JSON report, `check` holds configs to ghz's keys and
//! template fields.

use std::path::PathBuf;

use active_sessions_load::{Prepare, RunConfig, ghz, prepare, run};
use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(name = "active-sessions-load", about, version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Register sessions across accounts and write ghz data files (validate.json, list.json,
    /// check_eligibility.json) for `ghz -D`.
    Prepare {
        /// The server (host:port, plaintext, or an http:// or https:// URI).
        #[arg(long, default_value = "127.0.0.1:50051")]
        host: String,
        /// Sessions to register.
        #[arg(long, default_value_t = 1000)]
        sessions: usize,
        /// Accounts to spread them over.
        #[arg(long, default_value_t = 200)]
        accounts: usize,
        /// Registrations in flight.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// The folder to write the data files to.
        #[arg(long, default_value = "ghz-data")]
        out: PathBuf,
        /// A caller's bearer token, for a server with a callers file.
        #[arg(long, env = "ACTIVE_SESSIONS_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Run a ghz config (plaintext, unary calls) and write ghz's JSON report. Flags are ghz's
    /// and win over the file.
    Run {
        /// The ghz config file.
        #[arg(long)]
        config: PathBuf,
        /// The server, host:port.
        host: Option<String>,
        /// Data file: a JSON object or array of objects (wins over `data`).
        #[arg(short = 'D', long = "data-file")]
        data_file: Option<String>,
        /// Data as JSON.
        #[arg(short = 'd', long)]
        data: Option<String>,
        /// Metadata as a JSON object of strings.
        #[arg(short = 'm', long)]
        metadata: Option<String>,
        /// Requests to make (ignored with a duration).
        #[arg(short = 'n', long)]
        total: Option<u64>,
        /// Workers.
        #[arg(short = 'c', long)]
        concurrency: Option<u64>,
        /// Connections.
        #[arg(long)]
        connections: Option<u64>,
        /// Run this long (10s, 1m).
        #[arg(short = 'z', long)]
        duration: Option<String>,
        /// Report file (stdout by default).
        #[arg(short = 'o', long)]
        output: Option<String>,
        /// Report format: json or pretty.
        #[arg(short = 'O', long)]
        format: Option<String>,
        /// The run's name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Check ghz config files against ghz's keys and template fields.
    Check {
        /// Config files.
        #[arg(required = true)]
        configs: Vec<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Prepare {
            host,
            sessions,
            accounts,
            concurrency,
            out,
            token,
        } => {
            let mut settings = Prepare::new(host, sessions, accounts, &out);
            settings.concurrency = concurrency;
            settings.bearer_token = token;
            let prepared = prepare(&settings).await?;
            for file in prepared.files {
                eprintln!("wrote {}", file.display());
            }
        }
        Command::Run {
            config,
            host,
            data_file,
            data,
            metadata,
            total,
            concurrency,
            connections,
            duration,
            output,
            format,
            name,
        } => {
            let mut merged: Value = serde_json::from_slice(
                &std::fs::read(&config).with_context(|| format!("{}", config.display()))?,
            )
            .with_context(|| format!("{} is not JSON", config.display()))?;
            let parse = |text: Option<String>| -> anyhow::Result<Option<Value>> {
                text.map(|t| serde_json::from_str(&t).context("not JSON"))
                    .transpose()
            };
            let overrides = [
                ("host", host.map(Value::from)),
                ("data-file", data_file.map(Value::from)),
                ("data", parse(data)?),
                ("metadata", parse(metadata)?),
                ("total", total.map(Value::from)),
                ("concurrency", concurrency.map(Value::from)),
                ("connections", connections.map(Value::from)),
                ("duration", duration.map(Value::from)),
                ("output", output.map(Value::from)),
                ("format", format.map(Value::from)),
                ("name", name.map(Value::from)),
            ];
            for (key, value) in overrides {
                if let Some(value) = value {
                    merged[key] = value;
                }
            }
            let run_config = RunConfig::from_ghz(&merged)?;
            let (format, output) = (run_config.format.clone(), run_config.output.clone());
            let report = run(run_config).await?;
            eprintln!(
                "{} calls in {:.2} s, {:.0}/s; status {}",
                report.count,
                report.total as f64 / 1e9,
                report.rps,
                json!(report.status_code_distribution)
            );
            let text = if format == "json" {
                serde_json::to_string(&report)?
            } else {
                serde_json::to_string_pretty(&report)?
            };
            if output.is_empty() {
                println!("{text}");
            } else {
                std::fs::write(&output, text + "\n").with_context(|| output.clone())?;
            }
        }
        Command::Check { configs } => {
            let mut failed = false;
            for path in configs {
                let config: Value = serde_json::from_slice(&std::fs::read(&path)?)
                    .with_context(|| format!("{} is not JSON", path.display()))?;
                for problem in ghz::check_config(&config) {
                    failed = true;
                    eprintln!("{}: {problem}", path.display());
                }
            }
            if failed {
                anyhow::bail!("some configs are not ghz's");
            }
        }
    }
    Ok(())
}
