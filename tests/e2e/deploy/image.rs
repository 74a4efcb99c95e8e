//! The Dockerfile: the image runs the real binary on port 50051 with a health probe, and its
//! dependency layer stubs every workspace target.

use std::{collections::BTreeMap, path::Path};

use super::{ConfigFacts, GRPC_PORT, read, repo, strings, subcommand};
use active_sessions_server::config::{Cli, Command};
use clap::Parser;
use serde_norway::Value;

pub(super) struct Dockerfile {
    /// Instructions of the final stage, continuation lines joined: (keyword, arguments).
    runtime: Vec<(String, String)>,
    /// The whole file, continuation lines joined.
    text: String,
}

impl Dockerfile {
    pub(super) fn read() -> Self {
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
    pub(super) fn env(&self) -> BTreeMap<String, String> {
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
    pub(super) fn command(&self) -> Vec<String> {
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
pub(super) fn binary_name() -> String {
    let manifest: toml::Table = read("server/Cargo.toml")
        .parse()
        .expect("server/Cargo.toml");
    let bins = manifest["bin"].as_array().expect("server declares [[bin]]");
    assert_eq!(bins.len(), 1, "one binary");
    bins[0]["name"].as_str().expect("bin name").to_owned()
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
    assert!(
        layer.contains("COPY .cargo/config.toml .cargo/config.toml"),
        "the dependency layer builds with the workspace's build settings (SQLite's flags)"
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
