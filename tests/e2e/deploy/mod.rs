//! The deployment files in `deploy/` against the code, without a container engine: the image's
//! command and the one the READMEs document, the Compose stack, the OpenTelemetry collector,
//! the Kubernetes manifests and the example callers files. Variable and flag names come from
//! clap's own description of the server's command line, and settings are parsed by the server's
//! own command line parser, so a renamed variable or a bad value fails here before it fails a
//! deploy. One deployment file (or family) a module; this module holds the readers and the
//! command line facts they share.

mod callers_files;
mod compose;
mod config_scan;
mod documented_commands;
mod image;
mod kubernetes;
mod kubernetes_resources;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::Duration,
};

use active_sessions::service_names;
use active_sessions_server::config::{Cli, Command};
use clap::{CommandFactory, Parser};
use serde::Deserialize;
use serde_norway::Value;

/// The port every deployment serves gRPC on.
const GRPC_PORT: u16 = 50051;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo().join(relative)).unwrap_or_else(|err| panic!("{relative}: {err}"))
}

/// Every YAML document in a file (empty documents skipped).
fn yaml_documents(relative: &str) -> Vec<Value> {
    let text = read(relative);
    serde_norway::Deserializer::from_str(&text)
        .map(|document| {
            Value::deserialize(document).unwrap_or_else(|err| panic!("{relative}: {err}"))
        })
        .filter(|document| !document.is_null())
        .collect()
}

fn yaml(relative: &str) -> Value {
    let mut documents = yaml_documents(relative);
    assert_eq!(documents.len(), 1, "{relative}: expected one YAML document");
    documents.remove(0)
}

/// The value at a dotted path of mapping keys; fails the test when a key is missing.
fn at<'a>(value: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .fold(value, |value, key| match value.get(key) {
            Some(found) => found,
            None => panic!("missing `{key}` (of `{path}`) in {value:?}"),
        })
}

fn text_at<'a>(value: &'a Value, path: &str) -> &'a str {
    at(value, path)
        .as_str()
        .unwrap_or_else(|| panic!("`{path}` is not a string"))
}

fn number_at(value: &Value, path: &str) -> u64 {
    at(value, path)
        .as_u64()
        .unwrap_or_else(|| panic!("`{path}` is not a number"))
}

fn list_at<'a>(value: &'a Value, path: &str) -> &'a [Value] {
    at(value, path)
        .as_sequence()
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("`{path}` is not a list"))
}

fn strings(values: &[Value]) -> Vec<String> {
    values
        .iter()
        .map(|value| match value {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            other => panic!("not a string: {other:?}"),
        })
        .collect()
}

/// A mapping of strings (labels, selectors, ConfigMap data, Compose environment).
fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_mapping()
        .unwrap_or_else(|| panic!("not a mapping: {value:?}"))
        .iter()
        .map(|(key, value)| {
            let key = key.as_str().expect("string key").to_owned();
            let value = match value {
                Value::String(text) => text.clone(),
                Value::Number(number) => number.to_string(),
                Value::Bool(flag) => flag.to_string(),
                other => panic!("{key}: not a scalar: {other:?}"),
            };
            (key, value)
        })
        .collect()
}

/// A duration written as whole seconds or minutes (`15s`, `2m`), as Compose and these files do.
fn seconds(text: &str) -> Duration {
    let (digits, unit) = text.split_at(text.trim_end_matches(char::is_alphabetic).len());
    let count: u64 = digits
        .parse()
        .unwrap_or_else(|_| panic!("not a duration: {text}"));
    match unit {
        "s" | "" => Duration::from_secs(count),
        "m" => Duration::from_secs(count * 60),
        _ => panic!("unsupported duration unit in {text}"),
    }
}

/// What the server's command line declares: each environment variable with its flag, and the
/// subcommands.
struct ConfigFacts {
    flag_of_env: BTreeMap<String, String>,
    subcommands: BTreeSet<String>,
}

impl ConfigFacts {
    fn scan() -> Self {
        // clap's own description of the command line: every argument with its variable, and
        // the subcommands.
        let command = Cli::command();
        let flag_of_env = command
            .get_arguments()
            .filter_map(|arg| {
                let env = arg.get_env()?.to_str()?.to_owned();
                let long = arg
                    .get_long()
                    .unwrap_or_else(|| panic!("{env} has no long flag"));
                Some((env, long.to_owned()))
            })
            .collect();
        let subcommands = command
            .get_subcommands()
            .map(|subcommand| subcommand.get_name().to_owned())
            .collect();
        Self {
            flag_of_env,
            subcommands,
        }
    }

    /// Parses a container's environment and arguments with the server's own parser, the way
    /// the binary would (variables become the flags they stand for; flags win, as in clap).
    fn parse(&self, env: &BTreeMap<String, String>, args: &[String], context: &str) -> Cli {
        let mut argv = vec!["active-sessions".to_owned()];
        for (name, value) in env {
            if !name.starts_with("ACTIVE_SESSIONS_") {
                continue;
            }
            let flag = self
                .flag_of_env
                .get(name)
                .unwrap_or_else(|| panic!("{context}: {name} is not a server variable"));
            match value.as_str() {
                "true" => argv.push(format!("--{flag}")),
                "false" => {}
                _ => argv.push(format!("--{flag}={value}")),
            }
        }
        argv.extend(args.iter().cloned());
        Cli::try_parse_from(&argv)
            .unwrap_or_else(|err| panic!("{context}: the server refuses {argv:?}: {err}"))
    }
}

fn subcommand(cli: &Cli) -> &'static str {
    match cli.command {
        None | Some(Command::Serve) => "serve",
        Some(Command::Migrate) => "migrate",
        Some(Command::Health(_)) => "health",
        Some(Command::Prune(_)) => "prune",
    }
}

/// Checks what `Application::build` checks before it serves: beyond loopback, a callers file.
fn assert_serves_on_grpc_port(cli: &Cli, context: &str) {
    assert_eq!(
        cli.config.listen.port(),
        GRPC_PORT,
        "{context}: listen port"
    );
    assert!(
        cli.config.listen.ip().is_loopback() || cli.config.security.callers_file.is_some(),
        "{context}: listening on {} without a callers file is refused at start",
        cli.config.listen
    );
}

/// Every text file under `deploy/`, except `deploy/ghz/` (load-test material kept elsewhere).
fn deploy_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                if path.file_name().is_some_and(|name| name == "ghz") {
                    continue;
                }
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo().join("deploy"), &mut files);
    files.sort();
    files
}

fn is_service_name(value: &str) -> bool {
    value.is_empty() || service_names::ALL.contains(&value)
}
