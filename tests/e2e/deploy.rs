//! The deployment files in `deploy/` against the code, without a container engine: the image's
//! command and the one the READMEs document, the Compose stack, the OpenTelemetry collector,
//! the Kubernetes manifests and the example callers files. Variable and flag names come from
//! clap's own description of the server's command line, and settings are parsed by the server's
//! own command line parser, so a renamed variable or a bad value fails here before it fails a
//! deploy.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::Duration,
};

use active_sessions::service_names;
use active_sessions_server::{
    auth::CallerRegistry,
    config::{Cli, Command},
};
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

// ---------------------------------------------------------------------------------------------
// The Dockerfile.

struct Dockerfile {
    /// Instructions of the final stage, continuation lines joined: (keyword, arguments).
    runtime: Vec<(String, String)>,
    /// The whole file, continuation lines joined.
    text: String,
}

impl Dockerfile {
    fn read() -> Self {
        let text = read("deploy/Dockerfile")
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
            .replace("\\\n", " ");
        let mut stages: Vec<Vec<(String, String)>> = Vec::new();
        for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
            let (keyword, arguments) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let keyword = keyword.to_ascii_uppercase();
            if keyword == "FROM" {
                stages.push(Vec::new());
            }
            if let Some(stage) = stages.last_mut() {
                stage.push((keyword, arguments.trim().to_owned()));
            }
        }
        assert!(stages.len() >= 2, "a builder stage and a runtime stage");
        Self {
            runtime: stages.pop().expect("a runtime stage"),
            text,
        }
    }

    fn last(&self, keyword: &str) -> &str {
        self.runtime
            .iter()
            .rev()
            .find(|(k, _)| k == keyword)
            .map(|(_, arguments)| arguments.as_str())
            .unwrap_or_else(|| panic!("the runtime stage has no {keyword}"))
    }

    /// ENTRYPOINT or CMD in exec (JSON array) form.
    fn exec_form(&self, keyword: &str) -> Vec<String> {
        let arguments = self.last(keyword);
        let parsed: Value = serde_norway::from_str(arguments)
            .unwrap_or_else(|err| panic!("{keyword} {arguments}: {err}"));
        strings(
            parsed
                .as_sequence()
                .unwrap_or_else(|| panic!("{keyword} must be in exec form: {arguments}")),
        )
    }

    /// The image's environment (`ENV NAME=value`).
    fn env(&self) -> BTreeMap<String, String> {
        self.runtime
            .iter()
            .filter(|(k, _)| k == "ENV")
            .flat_map(|(_, arguments)| arguments.split_whitespace())
            .filter_map(|pair| pair.split_once('='))
            .map(|(name, value)| (name.to_owned(), value.trim_matches('"').to_owned()))
            .collect()
    }

    /// The command the image runs: the ENTRYPOINT's program name, then ENTRYPOINT arguments
    /// and CMD.
    fn command(&self) -> Vec<String> {
        let entrypoint = self.exec_form("ENTRYPOINT");
        let program = Path::new(&entrypoint[0])
            .file_name()
            .expect("a program")
            .to_string_lossy()
            .into_owned();
        std::iter::once(program)
            .chain(entrypoint[1..].iter().cloned())
            .chain(self.exec_form("CMD"))
            .collect()
    }
}

/// The binary's name, from `server/Cargo.toml`'s `[[bin]]`.
fn binary_name() -> String {
    let manifest: toml::Table = read("server/Cargo.toml")
        .parse()
        .expect("server/Cargo.toml");
    let bins = manifest["bin"].as_array().expect("server declares [[bin]]");
    assert_eq!(bins.len(), 1, "one binary");
    bins[0]["name"].as_str().expect("bin name").to_owned()
}

#[test]
fn the_config_scan_finds_every_variable_and_subcommand() {
    let facts = ConfigFacts::scan();
    for (env, flag) in [
        ("ACTIVE_SESSIONS_LISTEN", "listen"),
        ("ACTIVE_SESSIONS_DATABASE_URL", "database-url"),
        ("ACTIVE_SESSIONS_DATABASE_URL_FILE", "database-url-file"),
        ("ACTIVE_SESSIONS_CALLERS_FILE", "callers-file"),
        ("ACTIVE_SESSIONS_SHUTDOWN_GRACE", "shutdown-grace"),
        ("ACTIVE_SESSIONS_LOG", "log-level"),
    ] {
        assert_eq!(facts.flag_of_env.get(env).map(String::as_str), Some(flag));
    }
    assert_eq!(
        facts.subcommands,
        BTreeSet::from(["serve", "migrate", "health", "prune"].map(str::to_owned))
    );
}

#[test]
fn every_active_sessions_variable_in_deploy_is_one_the_server_reads() {
    let facts = ConfigFacts::scan();
    let mut seen = BTreeSet::new();
    for path in deploy_files() {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for (offset, _) in text.match_indices("ACTIVE_SESSIONS_") {
            let name: String = text[offset..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if name == "ACTIVE_SESSIONS_" && text[offset + name.len()..].starts_with('*') {
                continue; // `ACTIVE_SESSIONS_*`: all of them
            }
            assert!(
                facts.flag_of_env.contains_key(&name),
                "{}: {name} is not a variable of server/src/config.rs",
                path.display()
            );
            seen.insert(name);
        }
    }
    for expected in [
        "ACTIVE_SESSIONS_DATABASE_URL",
        "ACTIVE_SESSIONS_CALLERS_FILE",
        "ACTIVE_SESSIONS_SHUTDOWN_GRACE",
        "ACTIVE_SESSIONS_LISTEN",
    ] {
        assert!(seen.contains(expected), "deploy/ never sets {expected}");
    }
}

#[test]
fn the_image_runs_the_real_binary_on_port_50051_with_a_health_probe() {
    let facts = ConfigFacts::scan();
    let docker = Dockerfile::read();
    let binary = binary_name();

    let entrypoint = docker.exec_form("ENTRYPOINT");
    assert_eq!(entrypoint, [format!("/usr/local/bin/{binary}")]);
    assert!(
        docker.text.contains(&format!("target/release/{binary}")),
        "the builder installs target/release/{binary}"
    );
    assert!(
        docker
            .text
            .contains("cargo build --release --locked -p active-sessions-server"),
        "the builder builds the server package"
    );
    let cmd = docker.exec_form("CMD");
    assert!(
        facts.subcommands.contains(&cmd[0]),
        "CMD {cmd:?} is a subcommand"
    );

    assert!(
        docker
            .last("EXPOSE")
            .split_whitespace()
            .any(|port| port == GRPC_PORT.to_string()),
        "EXPOSE {GRPC_PORT}"
    );
    let env = docker.env();
    assert_eq!(
        env.get("ACTIVE_SESSIONS_LISTEN").map(String::as_str),
        Some("0.0.0.0:50051")
    );
    let cli = facts.parse(&env, &cmd, "Dockerfile");
    assert_eq!(subcommand(&cli), "serve");
    assert_eq!(cli.config.listen.port(), GRPC_PORT);

    // The image probes itself with the server's own `health` subcommand: no downloaded probe.
    let healthcheck = docker.last("HEALTHCHECK");
    let probe: Vec<String> = serde_json::from_str(
        healthcheck
            .split_once("CMD")
            .map(|(_, command)| command.trim())
            .unwrap_or_else(|| panic!("HEALTHCHECK runs a command: {healthcheck}")),
    )
    .expect("HEALTHCHECK CMD in exec form");
    assert_eq!(probe[0], "/usr/local/bin/active-sessions");
    let probe_cli = Cli::try_parse_from(&probe).expect("the probe parses");
    let Some(Command::Health(health)) = probe_cli.command else {
        panic!("HEALTHCHECK runs `health`: {probe:?}");
    };
    assert_eq!(health.addr, "127.0.0.1:50051");
    assert!(
        !docker.text.contains("grpc_health_probe"),
        "no downloaded probe"
    );
    assert!(
        docker.text.contains("--locked"),
        "the build uses Cargo.lock as it is"
    );

    let user = docker.last("USER");
    let uid = user.split(':').next().unwrap_or_default();
    assert!(
        uid != "0" && uid != "root" && uid.parse::<u32>().is_ok(),
        "runs as a numeric non-root user, not {user}"
    );
}

#[test]
fn the_dependency_layer_stubs_every_workspace_target() {
    let docker = Dockerfile::read();
    // The dependency layer: everything up to its `cargo build`.
    let layer = &docker.text[..docker
        .text
        .find("cargo build")
        .expect("the Dockerfile builds")];
    // The members whose `path = "..."` lines the stub step reads (`for member in ...; do`).
    let looped: Vec<&str> = layer
        .split("for member in ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .map(|members| members.split_whitespace().collect())
        .unwrap_or_default();
    assert!(
        layer.contains(r#"sed -n 's/^path = "\(.*\)"$/\1/p' "$member/Cargo.toml""#),
        "the stub step reads target paths from the manifests"
    );
    let root: toml::Table = read("Cargo.toml").parse().expect("Cargo.toml");
    let members = root["workspace"]["members"]
        .as_array()
        .expect("workspace members");
    for member in members {
        let member = member.as_str().expect("member path");
        let dir = if member == "." {
            String::new()
        } else {
            format!("{member}/")
        };
        let manifest = format!("{dir}Cargo.toml");
        assert!(
            docker.text.contains(&format!("COPY {manifest}")),
            "the Dockerfile copies {manifest} before building dependencies"
        );
        let text = read(&manifest);
        let table: toml::Table = text.parse().expect("member manifest");
        // Target paths the manifest names, and those cargo finds by convention.
        let mut named = Vec::new();
        if let Some(lib) = table.get("lib") {
            named.extend(lib.get("path").and_then(toml::Value::as_str));
        }
        for kind in ["bin", "test", "bench", "example"] {
            for target in table
                .get(kind)
                .and_then(toml::Value::as_array)
                .into_iter()
                .flatten()
            {
                named.extend(target.get("path").and_then(toml::Value::as_str));
            }
        }
        let mut stubbed_by_name = vec!["src/lib.rs", "src/main.rs"]
            .into_iter()
            .filter(|path| repo().join(format!("{dir}{path}")).is_file())
            .collect::<Vec<_>>();
        if let Some(build) = table
            .get("package")
            .and_then(|package| package.get("build"))
            .and_then(toml::Value::as_str)
        {
            stubbed_by_name.push(build);
        }
        for path in stubbed_by_name {
            let full = format!("{dir}{path}");
            assert!(
                layer.contains(&format!("> {full}"))
                    || layer.contains(&format!(" {full} "))
                    || layer.contains(&format!(" {full};")),
                "the dependency layer stubs {full}"
            );
        }
        for path in named {
            let full = format!("{dir}{path}");
            let literal =
                layer.contains(&format!("> {full}")) || layer.contains(&format!(" {full};"));
            let read_by_loop = looped.contains(&member)
                && text
                    .lines()
                    .any(|line| line == format!(r#"path = "{path}""#));
            assert!(
                literal || read_by_loop,
                "the dependency layer stubs {full}: name it, or write it as `path = \"{path}\"` \
                 in a manifest the stub loop reads ({looped:?})"
            );
        }
    }
}

/// Commands in the READMEs' code blocks that run the binary (`active-sessions ...`), comments
/// and the prompt removed, whitespace normalised.
fn documented_commands(binary: &str) -> Vec<(String, Vec<String>)> {
    let mut commands = Vec::new();
    for readme in ["README.md", "deploy/README.md"] {
        let mut in_code = false;
        for line in read(readme).lines() {
            let trimmed = line.trim();
            if trimmed.starts_with("```") {
                in_code = !in_code;
                continue;
            }
            if !in_code {
                continue;
            }
            let command = trimmed.trim_start_matches("$ ");
            let command = command.split(" #").next().unwrap_or_default().trim();
            let words: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
            if words.first().map(String::as_str) == Some(binary) {
                commands.push((readme.to_owned(), words));
            }
        }
    }
    commands
}

#[test]
fn the_image_command_is_the_start_command_the_readme_documents() {
    let facts = ConfigFacts::scan();
    let binary = binary_name();
    let documented = documented_commands(&binary);
    assert!(!documented.is_empty(), "the READMEs document the command");
    // Every documented command is one the server accepts.
    for (readme, words) in &documented {
        facts.parse(&BTreeMap::new(), &words[1..], readme);
    }
    let image = Dockerfile::read().command();
    assert!(
        documented.iter().any(|(_, words)| *words == image),
        "the image runs {image:?}, which no README documents: {documented:?}"
    );
    let migrate = [binary.clone(), "migrate".to_owned()];
    assert!(
        documented.iter().any(|(_, words)| *words == migrate),
        "the migration command is documented"
    );
}

#[test]
fn the_runbook_names_only_real_rpcs() {
    let mut rpcs = BTreeSet::new();
    for file in std::fs::read_dir(repo().join("proto/activesessions/v1")).expect("proto dir") {
        let text = std::fs::read_to_string(file.expect("entry").path()).expect("proto");
        let mut service = None;
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("service ") {
                service = rest.split_whitespace().next().map(str::to_owned);
            } else if let (Some(rest), Some(service)) = (line.strip_prefix("rpc "), &service) {
                let method = rest.split('(').next().expect("method").trim();
                rpcs.insert(format!("activesessions.v1.{service}/{method}"));
            }
        }
    }
    rpcs.insert("grpc.health.v1.Health/Check".to_owned());
    let runbook = read("deploy/README.md");
    let mut named = 0;
    for (offset, _) in runbook
        .match_indices("activesessions.v1.")
        .chain(runbook.match_indices("grpc.health.v1."))
    {
        let name: String = runbook[offset..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '/' || *c == '_')
            .collect();
        if !name.contains('/') {
            continue;
        }
        assert!(
            rpcs.contains(&name),
            "deploy/README.md names {name}, which is no RPC"
        );
        named += 1;
    }
    assert!(named >= 6, "the runbook shows the common RPCs");
    for rpc in [
        "SessionService/ListActiveSessions",
        "SessionService/RevokeAllSessions",
        "SessionService/GetRevocation",
        "AccountEligibility/CheckEligibility",
        "grpc.health.v1.Health/Check",
    ] {
        assert!(runbook.contains(rpc), "the runbook shows {rpc}");
    }
    assert!(runbook.contains(r#"-H "authorization: Bearer $OPERATOR_TOKEN""#));
}

// ---------------------------------------------------------------------------------------------
// Docker Compose and the OpenTelemetry collector.

/// Resolves `${NAME:-default}` to its default, as Compose does when NAME is unset.
fn compose_default(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closed ${...}") + start;
        let inner = &rest[start + 2..end];
        out.push_str(
            inner
                .split_once(":-")
                .map(|(_, default)| default)
                .unwrap_or(""),
        );
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Host and port of `scheme://host:port` or `host:port`.
fn host_port(endpoint: &str) -> (String, u16) {
    let address = endpoint.split("://").last().expect("an address");
    let address = address.trim_end_matches('/');
    let (host, port) = address
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{endpoint} has no port"));
    (host.to_owned(), port.parse().expect("a port number"))
}

fn is_service_name(value: &str) -> bool {
    value.is_empty() || service_names::ALL.contains(&value)
}

#[test]
fn the_compose_stack_runs_the_server_on_postgres_with_telemetry() {
    let facts = ConfigFacts::scan();
    let compose = yaml("deploy/compose.yaml");
    let services = at(&compose, "services");
    let server = at(services, "active-sessions");

    // Built from the Dockerfile, with the repository root as context.
    let context = repo().join("deploy").join(text_at(server, "build.context"));
    assert_eq!(
        context.canonicalize().expect("context exists"),
        repo().canonicalize().expect("repository")
    );
    assert!(context.join(text_at(server, "build.dockerfile")).is_file());
    assert_eq!(text_at(server, "build.dockerfile"), "deploy/Dockerfile");

    let mut env = Dockerfile::read().env();
    env.extend(string_map(at(server, "environment")));
    let args = strings(list_at(server, "command"));
    let cli = facts.parse(&env, &args, "compose active-sessions");
    assert_eq!(subcommand(&cli), "serve");
    assert_serves_on_grpc_port(&cli, "compose");
    assert_eq!(
        cli.config.database.url.expose(),
        "postgres://sessions:sessions@postgres:5432/sessions"
    );

    // The database the URL names is the postgres service's, and the server waits for it.
    let postgres = at(services, "postgres");
    assert!(text_at(postgres, "image").starts_with("postgres:16"));
    let postgres_env = string_map(at(postgres, "environment"));
    for (name, value) in [
        ("POSTGRES_USER", "sessions"),
        ("POSTGRES_PASSWORD", "sessions"),
        ("POSTGRES_DB", "sessions"),
    ] {
        assert_eq!(postgres_env.get(name).map(String::as_str), Some(value));
    }
    assert!(at(postgres, "healthcheck.test").is_sequence());
    assert_eq!(
        text_at(server, "depends_on.postgres.condition"),
        "service_healthy"
    );

    // The callers file is the example, mounted where the variable points.
    let callers_file = cli
        .config
        .security
        .callers_file
        .clone()
        .expect("a callers file");
    let mounts = strings(list_at(server, "volumes"));
    let mount = mounts
        .iter()
        .map(|mount| compose_default(mount))
        .find(|mount| mount.split(':').nth(1) == callers_file.to_str())
        .unwrap_or_else(|| panic!("nothing mounted at {}", callers_file.display()));
    let source = mount.split(':').next().expect("a source");
    assert_eq!(source, "./callers.example.toml");
    assert!(repo().join("deploy").join(source).is_file());

    // PostgreSQL with a callers file needs the token seal key: generated once into its own
    // volume (never the database), mounted where the variable points.
    let key_file = cli
        .config
        .security
        .token_seal_key_file
        .clone()
        .expect("a token seal key file");
    let key_volume = mounts
        .iter()
        .find(|mount| key_file.starts_with(mount.split(':').nth(1).unwrap_or("-")))
        .unwrap_or_else(|| panic!("nothing mounted at {}", key_file.display()));
    let key_volume = key_volume.split(':').next().expect("a volume");
    let generator = at(services, "token-seal-key");
    assert!(
        strings(list_at(generator, "volumes"))
            .iter()
            .any(|m| m.starts_with(&format!("{key_volume}:")))
    );
    assert_eq!(
        text_at(server, "depends_on.token-seal-key.condition"),
        "service_completed_successfully"
    );

    // gRPC published on 50051, probed with the server's own `health` subcommand.
    let ports = strings(list_at(server, "ports"));
    assert!(
        ports.iter().any(|port| port.ends_with("50051:50051")),
        "{ports:?}"
    );
    let probe = strings(list_at(server, "healthcheck.test"));
    assert_eq!(probe[0], "CMD");
    let probe_cli = Cli::try_parse_from(&probe[1..]).expect("the probe parses");
    let Some(Command::Health(health)) = probe_cli.command else {
        panic!("the healthcheck runs `health`: {probe:?}");
    };
    assert_eq!(health.addr, "127.0.0.1:50051");
    assert!(health.service.is_empty() || is_service_name(&health.service));

    // Compose waits long enough for the drain before it kills.
    assert!(seconds(text_at(server, "stop_grace_period")) > cli.config.shutdown_grace);

    // Traces and metrics go to the collector service, which sends traces to the trace viewer.
    let (host, port) = host_port(&env["OTEL_EXPORTER_OTLP_ENDPOINT"]);
    assert_eq!((host.as_str(), port), ("otel-collector", 4317));
    let collector = at(services, host.as_str());
    assert!(text_at(collector, "image").starts_with("otel/opentelemetry-collector-contrib"));
    let config_path = strings(list_at(collector, "command"))
        .iter()
        .find_map(|arg| arg.strip_prefix("--config=").map(str::to_owned))
        .expect("the collector names its configuration");
    let collector_mounts = strings(list_at(collector, "volumes"));
    assert!(
        collector_mounts
            .iter()
            .any(|mount| mount.starts_with("./otel-collector.yaml:")
                && mount.split(':').nth(1) == Some(config_path.as_str())),
        "{collector_mounts:?} mounts otel-collector.yaml at {config_path}"
    );
    let viewer = services
        .as_mapping()
        .expect("services")
        .iter()
        .find(|(_, service)| {
            service
                .get("image")
                .and_then(Value::as_str)
                .is_some_and(|image| image.starts_with("jaegertracing/"))
        })
        .map(|(name, _)| name.as_str().expect("service name").to_owned())
        .expect("a Jaeger service");

    let otel = yaml("deploy/otel-collector.yaml");
    let (_, receiver_port) = host_port(text_at(&otel, "receivers.otlp.protocols.grpc.endpoint"));
    assert_eq!(receiver_port, 4317);
    let pipelines = at(&otel, "service.pipelines");
    for (pipeline, component) in [
        ("traces", "receivers"),
        ("traces", "processors"),
        ("traces", "exporters"),
        ("metrics", "receivers"),
        ("metrics", "processors"),
        ("metrics", "exporters"),
    ] {
        for name in strings(list_at(pipelines, &format!("{pipeline}.{component}"))) {
            assert!(
                at(&otel, component).get(name.as_str()).is_some(),
                "{pipeline} uses {component} {name}, which is not defined"
            );
        }
    }
    assert!(strings(list_at(pipelines, "traces.processors")).contains(&"batch".to_owned()));
    let trace_exporters = strings(list_at(pipelines, "traces.exporters"));
    assert!(!trace_exporters.is_empty());
    for exporter in trace_exporters {
        assert!(exporter.starts_with("otlp"), "traces go out over OTLP");
        let (host, port) = host_port(text_at(
            at(&otel, "exporters"),
            &format!("{exporter}.endpoint"),
        ));
        assert_eq!((host.as_str(), port), (viewer.as_str(), 4317));
    }
    let metric_exporters = strings(list_at(pipelines, "metrics.exporters"));
    assert!(
        metric_exporters
            .iter()
            .any(|name| name.starts_with("prometheus") || name.starts_with("debug")),
        "{metric_exporters:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Kubernetes.

struct Manifests {
    by_kind: BTreeMap<String, Vec<Value>>,
    secret: Value,
}

impl Manifests {
    fn read() -> Self {
        let kustomization = yaml("deploy/k8s/kustomization.yaml");
        let resources = strings(list_at(&kustomization, "resources"));
        // Every manifest is a resource, but the Secret template (placeholders, created once per
        // environment so that a deploy never overwrites the real one).
        let mut on_disk: Vec<String> = std::fs::read_dir(repo().join("deploy/k8s"))
            .expect("deploy/k8s")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|name| name.ends_with(".yaml") && name != "kustomization.yaml")
            .collect();
        on_disk.sort();
        let mut expected = resources.clone();
        expected.push("secret.yaml".to_owned());
        expected.sort();
        assert_eq!(on_disk, expected, "kustomization resources");

        let mut by_kind: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for resource in &resources {
            for document in yaml_documents(&format!("deploy/k8s/{resource}")) {
                let kind = text_at(&document, "kind").to_owned();
                text_at(&document, "metadata.name");
                by_kind.entry(kind).or_default().push(document);
            }
        }
        let secret = yaml("deploy/k8s/secret.yaml");
        assert_eq!(text_at(&secret, "kind"), "Secret");
        Self { by_kind, secret }
    }

    fn one(&self, kind: &str) -> &Value {
        let all = self.all(kind);
        assert_eq!(all.len(), 1, "one {kind}");
        &all[0]
    }

    fn all(&self, kind: &str) -> &[Value] {
        self.by_kind
            .get(kind)
            .map(Vec::as_slice)
            .unwrap_or_else(|| panic!("no {kind}"))
    }

    /// A container's environment as the server sees it: the image's ENV, then envFrom (the
    /// ConfigMap), then env (values, and Secret keys resolved from the template).
    fn container_env(&self, container: &Value) -> BTreeMap<String, String> {
        let mut env = Dockerfile::read().env();
        let config_map = self.one("ConfigMap");
        let secret_data = string_map(at(&self.secret, "stringData"));
        for source in list_at(container, "envFrom") {
            assert_eq!(
                text_at(source, "configMapRef.name"),
                text_at(config_map, "metadata.name")
            );
            env.extend(string_map(at(config_map, "data")));
        }
        for variable in list_at(container, "env") {
            let name = text_at(variable, "name").to_owned();
            let value = if let Some(value) = variable.get("value") {
                value.as_str().expect("a string value").to_owned()
            } else if let Some(key) = variable
                .get("valueFrom")
                .and_then(|from| from.get("secretKeyRef"))
            {
                assert_eq!(
                    text_at(key, "name"),
                    text_at(&self.secret, "metadata.name"),
                    "{name} comes from the Secret"
                );
                secret_data
                    .get(text_at(key, "key"))
                    .unwrap_or_else(|| panic!("the Secret has no key for {name}"))
                    .clone()
            } else {
                continue;
            };
            env.insert(name, value);
        }
        env
    }
}

fn labels_match(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector
        .iter()
        .all(|(key, value)| labels.get(key) == Some(value))
}

/// True when the container mounts the Secret's `key` at `path`.
fn mounted_secret_key(
    manifests: &Manifests,
    pod: &Value,
    container: &Value,
    key: &str,
    path: &Path,
) -> bool {
    let volumes = list_at(pod, "volumes");
    list_at(container, "volumeMounts").iter().any(|mount| {
        let Some(volume) = volumes
            .iter()
            .find(|volume| text_at(volume, "name") == text_at(mount, "name"))
        else {
            return false;
        };
        let Some(secret) = volume.get("secret") else {
            return false;
        };
        text_at(secret, "secretName") == text_at(&manifests.secret, "metadata.name")
            && list_at(secret, "items").iter().any(|item| {
                text_at(item, "key") == key
                    && Path::new(text_at(mount, "mountPath")).join(text_at(item, "path")) == path
            })
    })
}

fn grpc_probe<'a>(container: &'a Value, probe: &str) -> (u64, &'a str) {
    let grpc = at(container, &format!("{probe}.grpc"));
    let service = grpc.get("service").map_or("", |service| {
        service.as_str().expect("the probe's service is a string")
    });
    (number_at(grpc, "port"), service)
}

#[test]
fn the_kubernetes_deployment_serves_with_grpc_probes_and_the_real_settings() {
    let facts = ConfigFacts::scan();
    let manifests = Manifests::read();
    let deployment = manifests.one("Deployment");
    assert!(
        deployment["spec"].get("replicas").is_none(),
        "the HPA owns the replica count: a re-apply must not reset it"
    );
    let pod = at(deployment, "spec.template.spec");
    let pod_labels = string_map(at(deployment, "spec.template.metadata.labels"));
    assert!(labels_match(
        &string_map(at(deployment, "spec.selector.matchLabels")),
        &pod_labels
    ));
    let containers = list_at(pod, "containers");
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    assert_eq!(text_at(container, "image"), "active-sessions");

    let ports = list_at(container, "ports");
    assert!(
        ports.iter().any(
            |port| number_at(port, "containerPort") == 50051 && text_at(port, "name") == "grpc"
        )
    );

    // Probes: native gRPC health, readiness on the sessions service (it follows the database),
    // liveness on the process alone (a database failover must not restart every replica).
    let (port, readiness) = grpc_probe(container, "readinessProbe");
    assert_eq!((port, readiness), (50051, service_names::SESSION_SERVICE));
    let (port, liveness) = grpc_probe(container, "livenessProbe");
    assert_eq!((port, liveness), (50051, service_names::LIVENESS));
    let (port, startup) = grpc_probe(container, "startupProbe");
    assert_eq!(port, 50051);
    assert!(is_service_name(startup));

    // The settings parse with the server's own parser and make a server it would start.
    let env = manifests.container_env(container);
    let args = strings(list_at(container, "args"));
    let cli = facts.parse(&env, &args, "Deployment");
    assert_eq!(subcommand(&cli), "serve");
    assert_serves_on_grpc_port(&cli, "Deployment");
    // No secret in an environment value: the database URL is a file from the Secret.
    for container in containers.iter().chain(list_at(pod, "initContainers")) {
        for variable in list_at(container, "env") {
            assert!(
                variable
                    .get("valueFrom")
                    .is_none_or(|from| from.get("secretKeyRef").is_none()),
                "{} takes a secret into the environment",
                text_at(variable, "name")
            );
        }
    }
    let url_file = cli
        .config
        .database
        .url_file
        .clone()
        .expect("the database URL comes from a file");
    assert!(
        mounted_secret_key(&manifests, pod, container, "database-url", &url_file),
        "the Secret's database-url is at {}",
        url_file.display()
    );
    assert!(
        string_map(at(&manifests.secret, "stringData"))["database-url"].starts_with("postgres://")
    );

    // The callers file is the Secret's callers.toml, mounted where the variable points.
    let callers_file = cli
        .config
        .security
        .callers_file
        .clone()
        .expect("callers file");
    assert!(
        mounted_secret_key(&manifests, pod, container, "callers.toml", &callers_file),
        "the Secret's callers.toml is at {}",
        callers_file.display()
    );
    // So is its token seal key: PostgreSQL with a callers file refuses to start without one.
    let key_file = cli
        .config
        .security
        .token_seal_key_file
        .clone()
        .expect("token seal key file");
    let key_mounted = list_at(pod, "volumes").iter().any(|volume| {
        volume.get("secret").is_some_and(|secret| {
            list_at(secret, "items").iter().any(|item| {
                text_at(item, "key") == "token-seal.key"
                    && key_file.file_name() == Some(std::ffi::OsStr::new(text_at(item, "path")))
            })
        })
    });
    assert!(
        key_mounted,
        "the Secret's token-seal.key is at {}",
        key_file.display()
    );
    assert!(string_map(at(&manifests.secret, "stringData")).contains_key("token-seal.key"));

    // Kubernetes waits for the drain (after the preStop pause) before it kills.
    let pre_stop = container
        .get("lifecycle")
        .and_then(|lifecycle| lifecycle.get("preStop"))
        .and_then(|pre_stop| pre_stop.get("sleep"))
        .map_or(0, |sleep| number_at(sleep, "seconds"));
    let termination = number_at(pod, "terminationGracePeriodSeconds");
    assert!(
        Duration::from_secs(termination)
            > cli.config.shutdown_grace + Duration::from_secs(pre_stop),
        "terminationGracePeriodSeconds {termination} must exceed the preStop pause ({pre_stop}s) \
         plus --shutdown-grace {:?}",
        cli.config.shutdown_grace
    );

    // Non-root, read-only root filesystem, CPU requests for the HPA.
    assert_eq!(
        at(pod, "securityContext.runAsNonRoot").as_bool(),
        Some(true)
    );
    let security = at(container, "securityContext");
    assert_eq!(at(security, "runAsNonRoot").as_bool(), Some(true));
    assert_eq!(at(security, "readOnlyRootFilesystem").as_bool(), Some(true));
    assert_eq!(
        at(security, "allowPrivilegeEscalation").as_bool(),
        Some(false)
    );
    assert!(number_at(security, "runAsUser") > 0);
    text_at(container, "resources.requests.cpu");
    text_at(container, "resources.limits.memory");
}

#[test]
fn the_kubernetes_service_hpa_pdb_policy_and_migration_fit_the_deployment() {
    let facts = ConfigFacts::scan();
    let manifests = Manifests::read();
    let deployment = manifests.one("Deployment");
    let deployment_name = text_at(deployment, "metadata.name");
    let pod_labels = string_map(at(deployment, "spec.template.metadata.labels"));
    assert!(
        !manifests.by_kind.contains_key("Job"),
        "no Job: its immutable template would block re-applying the base"
    );

    for service in manifests.all("Service") {
        let selector = string_map(at(service, "spec.selector"));
        assert!(
            labels_match(&selector, &pod_labels),
            "a Service selects the server pods"
        );
        let ports = list_at(service, "spec.ports");
        assert!(ports.iter().any(|port| {
            number_at(port, "port") == 50051
                && matches!(at(port, "targetPort"), Value::String(name) if name == "grpc")
        }));
    }

    let hpa = manifests.one("HorizontalPodAutoscaler");
    assert_eq!(text_at(hpa, "apiVersion"), "autoscaling/v2");
    assert_eq!(text_at(hpa, "spec.scaleTargetRef.kind"), "Deployment");
    assert_eq!(text_at(hpa, "spec.scaleTargetRef.name"), deployment_name);
    assert!(number_at(hpa, "spec.minReplicas") >= 2);
    assert!(number_at(hpa, "spec.maxReplicas") >= number_at(hpa, "spec.minReplicas"));
    assert!(
        list_at(hpa, "spec.metrics")
            .iter()
            .any(|metric| text_at(metric, "resource.name") == "cpu")
    );

    let pdb = manifests.one("PodDisruptionBudget");
    assert_eq!(text_at(pdb, "apiVersion"), "policy/v1");
    let budget = at(pdb, "spec");
    assert!(budget.get("minAvailable").is_some() || budget.get("maxUnavailable").is_some());
    let selector = string_map(at(pdb, "spec.selector.matchLabels"));
    assert!(labels_match(&selector, &pod_labels));

    // Each pod migrates in its init container, with the same image and database as the server.
    let pod = at(deployment, "spec.template.spec");
    let init = list_at(pod, "initContainers");
    assert_eq!(init.len(), 1);
    let container = &init[0];
    let server = &list_at(pod, "containers")[0];
    assert_eq!(text_at(container, "image"), text_at(server, "image"));
    let env = manifests.container_env(container);
    let args = strings(list_at(container, "args"));
    let cli = facts.parse(&env, &args, "migrate init container");
    assert_eq!(subcommand(&cli), "migrate");
    let server_env = manifests.container_env(server);
    assert_eq!(
        env.get("ACTIVE_SESSIONS_DATABASE_URL_FILE"),
        server_env.get("ACTIVE_SESSIONS_DATABASE_URL_FILE")
    );
    let url_file = cli.config.database.url_file.clone().expect("a URL file");
    assert!(mounted_secret_key(
        &manifests,
        pod,
        container,
        "database-url",
        &url_file
    ));
    assert_eq!(
        at(container, "securityContext.readOnlyRootFilesystem").as_bool(),
        Some(true)
    );

    // The NetworkPolicy covers the server pods, admits callers on the gRPC port only, and lets
    // the server reach PostgreSQL, the collector and DNS.
    let policy = manifests.one("NetworkPolicy");
    assert!(labels_match(
        &string_map(at(policy, "spec.podSelector.matchLabels")),
        &pod_labels
    ));
    let types = strings(list_at(policy, "spec.policyTypes"));
    assert!(types.contains(&"Ingress".to_owned()) && types.contains(&"Egress".to_owned()));
    for rule in list_at(policy, "spec.ingress") {
        let ports: Vec<u64> = list_at(rule, "ports")
            .iter()
            .map(|p| number_at(p, "port"))
            .collect();
        assert_eq!(ports, [50051], "ingress only on the gRPC port");
        assert!(
            !list_at(rule, "from").is_empty(),
            "ingress only from named callers"
        );
    }
    let egress_ports: BTreeSet<u64> = list_at(policy, "spec.egress")
        .iter()
        .flat_map(|rule| list_at(rule, "ports").iter().map(|p| number_at(p, "port")))
        .collect();
    assert!(egress_ports.is_superset(&BTreeSet::from([5432, 4317, 53])));
}

// ---------------------------------------------------------------------------------------------
// Callers files.

/// Loads a callers file with the server's parser and checks the example's shape: every role,
/// a product backend per product, and placeholder hashes only.
fn assert_example_callers(path: &Path, text: &str) {
    let registry = CallerRegistry::load(path, Some(5_000))
        .unwrap_or_else(|err| panic!("the server refuses {}: {err}", path.display()));
    let file: toml::Table = text.parse().expect("TOML");
    let callers = file["callers"].as_array().expect("[[callers]]");
    assert_eq!(registry.current().len(), callers.len());

    let mut roles = BTreeSet::new();
    let mut products = BTreeSet::new();
    for caller in callers {
        for role in caller["roles"].as_array().expect("roles") {
            roles.insert(role.as_str().expect("role").to_owned());
        }
        for product in caller
            .get("products")
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
        {
            products.insert(product.as_str().expect("product").to_owned());
        }
    }
    assert_eq!(
        roles,
        BTreeSet::from(["identity", "operator", "product", "settings"].map(str::to_owned))
    );
    assert_eq!(
        products,
        BTreeSet::from(["API_PLATFORM", "CHATGPT", "CODEX"].map(str::to_owned))
    );

    // Placeholders, marked as such: no real credential is ever committed.
    let hash_lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("token_sha256"))
        .collect();
    assert_eq!(hash_lines.len(), callers.len());
    for line in hash_lines {
        assert!(line.contains("PLACEHOLDER"), "unmarked hash: {line}");
        let hash = line.split('"').nth(1).expect("a quoted hash");
        assert_eq!(hash.len(), 64);
        assert!(
            hash.trim_start_matches('0').len() <= 2,
            "not an obvious placeholder: {hash}"
        );
    }
}

#[test]
fn the_example_callers_file_loads_with_the_server_parser() {
    let path = repo().join("deploy/callers.example.toml");
    let text = read("deploy/callers.example.toml");
    assert!(text.contains(r#"printf %s "$TOKEN" | sha256sum"#));
    assert_example_callers(&path, &text);
}

#[test]
fn the_secret_templates_callers_file_loads_with_the_server_parser() {
    let secret = yaml("deploy/k8s/secret.yaml");
    // The key has a dot in it, so no dotted path.
    let text = at(&secret, "stringData")
        .get("callers.toml")
        .and_then(Value::as_str)
        .expect("the Secret template has callers.toml");
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("callers.toml");
    std::fs::write(&path, text).expect("write");
    assert_example_callers(&path, text);
}
