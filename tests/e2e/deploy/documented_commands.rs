//! The READMEs: the start command they document is the image's, and the runbook names only
//! real RPCs.

use std::collections::{BTreeMap, BTreeSet};

use super::image::{Dockerfile, binary_name};
use super::{ConfigFacts, read, repo};

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
