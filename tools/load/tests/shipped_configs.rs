//! Every ghz config under `deploy/ghz/` is ghz's: only the keys of ghz's `runner/config.go`,
//! only the template fields and functions of ghz's `runner/calldata.go`, and data that is an
//! object or an array of objects. Its `data-file`, when it has one, is one that `prepare`
//! writes, and the data makes valid requests for the config's call.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};

use active_sessions_load::{RunConfig, ghz, prepare};
use serde_json::Value;

fn shipped_configs() -> Vec<(PathBuf, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/ghz");
    let mut configs: Vec<(PathBuf, Value)> = std::fs::read_dir(&dir)
        .expect("deploy/ghz")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let config = serde_json::from_slice(&std::fs::read(&path).unwrap())
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            (path, config)
        })
        .collect();
    configs.sort_by(|a, b| a.0.cmp(&b.0));
    configs
}

#[test]
fn every_shipped_config_uses_only_ghz_keys_and_template_fields() {
    let configs = shipped_configs();
    assert_eq!(
        configs.len(),
        4,
        "validate, register, list, check_eligibility"
    );
    for (path, config) in configs {
        assert_eq!(
            ghz::check_config(&config),
            Vec::<String>::new(),
            "{}",
            path.display()
        );
    }
}

#[test]
fn every_shipped_config_reads_with_data_that_prepare_writes() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = vec!["ast_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned()];
    let accounts = vec!["load-1".to_owned()];
    let written: Vec<&str> = prepare::data_files(&tokens, &accounts)
        .into_iter()
        .map(|(name, elements)| {
            prepare::write_data_file(&dir.path().join(name), &elements).unwrap();
            assert!(ghz::check_data(&Value::from(elements)).is_empty());
            name
        })
        .collect();
    for (path, mut config) in shipped_configs() {
        if let Some(data_file) = config.get("data-file").and_then(Value::as_str) {
            let name = data_file
                .strip_prefix("ghz-data/")
                .unwrap_or_else(|| panic!("{}: data-file outside ghz-data/", path.display()));
            assert!(
                written.contains(&name),
                "{}: prepare writes no {name}",
                path.display()
            );
            config["data-file"] = dir.path().join(name).to_str().unwrap().into();
        }
        RunConfig::from_ghz(&config)
            .unwrap_or_else(|error| panic!("{}: {error:#}", path.display()));
    }
}
