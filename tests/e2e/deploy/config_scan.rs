//! The command line facts the other checks rely on, and every `ACTIVE_SESSIONS_*` variable in
//! `deploy/` being one the server reads.

use std::collections::BTreeSet;

use super::{ConfigFacts, deploy_files};

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
                "{}: {name} is not a variable the server's command line declares",
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
