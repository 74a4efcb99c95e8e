//! The Kubernetes resources around the Deployment: the Services, HPA, PodDisruptionBudget and
//! NetworkPolicy fit it, and each pod migrates in an init container (no Job).

use std::collections::BTreeSet;

use super::kubernetes::{Manifests, labels_match, mounted_secret_key};
use super::{ConfigFacts, at, list_at, number_at, string_map, strings, subcommand, text_at};
use serde_norway::Value;

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
