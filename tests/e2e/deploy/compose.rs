//! Docker Compose and the OpenTelemetry collector: the stack runs the server on PostgreSQL
//! with telemetry.

use super::image::Dockerfile;
use super::{
    ConfigFacts, assert_serves_on_grpc_port, at, is_service_name, list_at, repo, seconds,
    string_map, strings, subcommand, text_at, yaml,
};
use active_sessions_server::config::{Cli, Command};
use clap::Parser;
use serde_norway::Value;

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
