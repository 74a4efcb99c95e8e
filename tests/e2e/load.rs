//! Load testing with ghz against a real server: `prepare` registers sessions and writes ghz data
//! files, and every shipped config under `deploy/ghz/` runs against them through the project's
//! own runner (bounded counts on loopback), with ghz's JSON report.

use std::{collections::BTreeMap, path::Path};

use active_sessions_e2e::{Backend, TestApp};
use active_sessions_load::{Prepare, Report, RunConfig, prepare, run};
use serde_json::{Value, json};

const CALLS: u64 = 60;

fn shipped_config(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/ghz")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).expect("shipped config")).expect("JSON")
}

/// A shipped config pointed at `app`, bounded to `CALLS` calls on 4 workers, with its data file
/// (if it has one) taken from `data_dir`.
fn bounded(name: &str, app: &TestApp, data_dir: &Path) -> Value {
    let mut config = shipped_config(name);
    let object = config.as_object_mut().expect("object");
    object.remove("duration");
    object.insert("host".into(), app.addr.to_string().into());
    object.insert("total".into(), CALLS.into());
    object.insert("concurrency".into(), 4.into());
    object.insert("connections".into(), 2.into());
    if let Some(file) = object.get("data-file").and_then(Value::as_str) {
        let name = Path::new(file).file_name().expect("file name");
        let local = data_dir.join(name).to_str().expect("UTF-8").to_owned();
        object.insert("data-file".into(), local.into());
    }
    config
}

async fn play(config: &Value) -> Report {
    let config = RunConfig::from_ghz(config).unwrap_or_else(|error| panic!("{error:#}"));
    run(config)
        .await
        .unwrap_or_else(|error| panic!("run: {error:#}"))
}

/// ghz's report schema (`Report` in ghz's `runner/reporter.go`) with every call successful.
fn assert_ghz_report(report: &Report, calls: u64, context: &str) {
    let json = serde_json::to_value(report).expect("serialises");
    for field in [
        "date",
        "endReason",
        "options",
        "count",
        "total",
        "average",
        "fastest",
        "slowest",
        "rps",
        "errorDistribution",
        "statusCodeDistribution",
        "latencyDistribution",
        "histogram",
        "details",
    ] {
        assert!(json.get(field).is_some(), "{context}: no {field} in {json}");
    }
    for nanoseconds in ["total", "average", "fastest", "slowest"] {
        assert!(json[nanoseconds].is_u64(), "{context}: {nanoseconds}");
    }
    assert!(
        json["rps"].as_f64().is_some_and(|rps| rps > 0.0),
        "{context}"
    );
    assert_eq!(json["count"], calls, "{context}");
    assert_eq!(
        json["statusCodeDistribution"],
        json!({"OK": calls}),
        "{context}: {}",
        json["errorDistribution"]
    );
    assert_eq!(json["errorDistribution"], json!({}), "{context}");
    let percentages: Vec<u64> = json["latencyDistribution"]
        .as_array()
        .expect("latencies")
        .iter()
        .map(|line| line["percentage"].as_u64().expect("percentage"))
        .collect();
    assert_eq!(percentages, [10, 25, 50, 75, 90, 95, 99], "{context}");
    let buckets = json["histogram"].as_array().expect("histogram");
    assert_eq!(buckets.len(), 11, "{context}");
    let counted: u64 = buckets.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, calls, "{context}");
    assert!(buckets.iter().all(|b| b["mark"].is_f64()), "{context}");
    let details = json["details"].as_array().expect("details");
    assert_eq!(details.len() as u64, calls, "{context}");
    assert!(
        details
            .iter()
            .all(|d| d["status"] == "OK" && d["error"] == "")
    );
    let options = &json["options"];
    assert_eq!(options["total"], calls, "{context}");
    assert_eq!(options["insecure"], true, "{context}");
    assert!(
        options["call"]
            .as_str()
            .unwrap()
            .starts_with("activesessions.v1.")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shipped_ghz_config_runs_against_prepared_data_files() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = TestApp::spawn(backend).await else {
            continue;
        };
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Prepare::new(app.addr.to_string(), 20, 4, dir.path());
        settings.concurrency = 4;
        let prepared = prepare(&settings).await.expect("prepare");
        let mut lengths = BTreeMap::new();
        for file in &prepared.files {
            let data: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
            let elements = data.as_array().expect("a ghz data file is an array");
            let name = file.file_name().unwrap().to_str().unwrap().to_owned();
            lengths.insert(name, elements.len());
        }
        assert_eq!(
            lengths,
            BTreeMap::from([
                ("check_eligibility.json".to_owned(), 4),
                ("list.json".to_owned(), 20),
                ("validate.json".to_owned(), 20),
            ])
        );
        let validate: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("validate.json")).unwrap())
                .unwrap();
        assert!(
            validate[0]["sessionToken"]
                .as_str()
                .is_some_and(|token| token.starts_with("ast_"))
        );

        for name in [
            "validate.json",
            "list.json",
            "check_eligibility.json",
            "register.json",
        ] {
            let config = bounded(name, &app, dir.path());
            let report = play(&config).await;
            assert_ghz_report(&report, CALLS, &format!("{backend:?} {name}"));
            assert_eq!(report.end_reason, "normal");
            // Inline data is echoed as ghz does; a data file's session tokens are not.
            assert_eq!(
                report.options.get("data").is_some(),
                config.get("data-file").is_none(),
                "{name}"
            );
        }
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duration_run_ends_on_time_and_reports_like_ghz() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("SQLite");
    let mut config = shipped_config("register.json");
    config["host"] = app.addr.to_string().into();
    config["duration"] = "300ms".into();
    config["concurrency"] = 2.into();
    config["connections"] = 1.into();
    let report = play(&config).await;
    assert_eq!(report.end_reason, "timeout");
    assert!(report.count > 0);
    // ghz's `total` option for a duration run is math.MaxInt32; the duration in nanoseconds.
    assert_eq!(report.options["total"], 2_147_483_647u64);
    assert_eq!(report.options["duration"], 300_000_000u64);
    let seconds = report.total as f64 / 1e9;
    assert!((0.3..3.0).contains(&seconds), "ran {seconds} s");
    // Calls cut off at the end are ghz's `Canceled`; all others succeed.
    let others: u64 = report
        .status_code_distribution
        .iter()
        .filter(|(status, _)| !["OK", "Canceled"].contains(&status.as_str()))
        .map(|(_, count)| count)
        .sum();
    assert_eq!(others, 0, "{:?}", report.error_distribution);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_calls_are_counted_by_go_status_name_and_grpc_go_error_text() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("SQLite");
    let mut config = shipped_config("register.json");
    config["host"] = app.addr.to_string().into();
    config["total"] = 10.into();
    config["concurrency"] = 2.into();
    config["connections"] = 1.into();
    // No account id: the server refuses the sign-in.
    config["data"] = json!({"requestId": "{{.UUID}}", "product": "PRODUCT_CHATGPT"});
    let report = play(&config).await;
    assert_eq!(report.count, 10);
    assert_eq!(report.status_code_distribution["InvalidArgument"], 10);
    let (text, count) = report.error_distribution.iter().next().expect("an error");
    assert!(
        text.starts_with("rpc error: code = InvalidArgument desc = "),
        "{text}"
    );
    assert_eq!(*count, 10);
    assert_eq!(report.fastest, 0);
    assert!(report.latency_distribution.is_none() && report.histogram.is_none());
}

#[test]
fn refuses_what_is_not_ghz_or_not_supported() {
    let base = json!({
        "call": "activesessions.v1.SessionService.ValidateSession",
        "host": "127.0.0.1:1",
        "insecure": true,
        "total": 10,
        "concurrency": 2,
    });
    let with = |key: &str, value: Value| {
        let mut config = base.clone();
        config[key] = value;
        RunConfig::from_ghz(&config)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    assert!(with("prepare-sessions", json!(1000)).contains("not a ghz config key"));
    assert!(with("rps", json!(100)).contains("run ghz itself"));
    assert!(with("insecure", json!(false)).contains("plaintext"));
    assert!(with("data", json!({"sessionToken": "{{.Token}}"})).contains("not a ghz template"));
    assert!(with("data", json!({"noSuchField": 1})).contains("not a valid"));
    assert!(
        with(
            "call",
            json!("activesessions.v1.SessionService/WatchRevocations")
        )
        .contains("streaming")
    );
}
