//! The Kubernetes Deployment: it serves with gRPC probes and the real settings, mounting its
//! Secret's keys where the settings point.

use std::{collections::BTreeMap, path::Path, time::Duration};

use super::image::Dockerfile;
use super::{
    ConfigFacts, assert_serves_on_grpc_port, at, is_service_name, list_at, number_at, repo,
    string_map, strings, subcommand, text_at, yaml, yaml_documents,
};
use active_sessions::service_names;
use serde_norway::Value;

pub(super) struct Manifests {
    pub(super) by_kind: BTreeMap<String, Vec<Value>>,
    pub(super) secret: Value,
}

impl Manifests {
    pub(super) fn read() -> Self {
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

    pub(super) fn one(&self, kind: &str) -> &Value {
        let all = self.all(kind);
        assert_eq!(all.len(), 1, "one {kind}");
        &all[0]
    }

    pub(super) fn all(&self, kind: &str) -> &[Value] {
        self.by_kind
            .get(kind)
            .map(Vec::as_slice)
            .unwrap_or_else(|| panic!("no {kind}"))
    }

    /// A container's environment as the server sees it: the image's ENV, then envFrom (the
    /// ConfigMap), then env (values, and Secret keys resolved from the template).
    pub(super) fn container_env(&self, container: &Value) -> BTreeMap<String, String> {
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

pub(super) fn labels_match(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    selector
        .iter()
        .all(|(key, value)| labels.get(key) == Some(value))
}

/// True when the container mounts the Secret's `key` at `path`.
pub(super) fn mounted_secret_key(
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
