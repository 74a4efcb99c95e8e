//! The example callers files (and the Secret template's) load with the server's own parser.

use std::{collections::BTreeSet, path::Path};

use super::{at, read, repo, yaml};
use active_sessions_server::auth::CallerRegistry;
use serde_norway::Value;

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
