//! The load generator (`active-sessions-load`) against a real server: bounded runs on
//! loopback that check its counts, its status and error distributions, its ghz-shaped JSON
//! report, and that the ghz config files under `deploy/ghz/` run as shipped.

use std::time::Duration;

use active_sessions_e2e::{
    Backend, TestApp,
    load::{self, CancellationToken, GhzConfig, PrepareOptions, Report, RunOptions},
};
use serde_json::{Value, json};

async fn spawn() -> TestApp {
    TestApp::spawn(Backend::Sqlite)
        .await
        .expect("SQLite server")
}

fn options(app: &TestApp, call: &str, data: Value) -> RunOptions {
    RunOptions {
        call: call.into(),
        host: app.addr.to_string(),
        insecure: true,
        total: 200,
        concurrency: 8,
        connections: 2,
        timeout: Some(Duration::from_secs(10)),
        data,
        ..RunOptions::default()
    }
}

async fn run(options: &RunOptions) -> Report {
    load::run(options, CancellationToken::new())
        .await
        .unwrap_or_else(|error| panic!("load run failed: {error}"))
}

/// The report's counts and distributions when every call succeeded.
fn assert_all_ok(report: &Report, count: u64) {
    assert_eq!(report.count, count);
    assert_eq!(
        report.status_code_distribution,
        [("OK".to_owned(), count)].into_iter().collect(),
        "errors: {:?}",
        report.error_distribution
    );
    assert!(report.error_distribution.is_empty());
    assert!(report.total > 0 && report.rps > 0.0);
    assert!(report.fastest > 0 && report.fastest <= report.slowest);
    let latencies = report.latency_distribution.as_ref().expect("latencies");
    let percentages: Vec<u32> = latencies.iter().map(|line| line.percentage).collect();
    assert_eq!(percentages, [10, 25, 50, 75, 90, 95, 99]);
    assert!(
        latencies
            .windows(2)
            .all(|pair| pair[0].latency <= pair[1].latency)
    );
    assert!(
        latencies
            .iter()
            .all(|line| { (report.fastest..=report.slowest).contains(&line.latency) })
    );
    let histogram = report.histogram.as_ref().expect("histogram");
    assert_eq!(histogram.len(), 11);
    assert_eq!(
        histogram.iter().map(|bucket| bucket.count).sum::<u64>(),
        count
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validates_prepared_sessions_and_reports_like_ghz() {
    let app = spawn().await;
    let options = RunOptions {
        prepare: Some(PrepareOptions::new(20)),
        ..options(
            &app,
            "activesessions.v1.SessionService/ValidateSession",
            json!({"session_token": "{{.Token}}"}),
        )
    };
    let report = run(&options).await;
    assert_all_ok(&report, 200);
    assert_eq!(report.end_reason, "normal");
    assert_eq!(
        report.not_valid_count,
        Some(0),
        "every prepared token validates"
    );

    // ghz's JSON report: its field names, durations as integer nanoseconds.
    let json: Value = serde_json::from_str(&report.to_json()).unwrap();
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
    ] {
        assert!(json.get(field).is_some(), "no {field} in {json}");
    }
    for duration in ["total", "average", "fastest", "slowest"] {
        assert!(
            json[duration].is_u64(),
            "{duration} is not integer nanoseconds"
        );
    }
    assert!(json["rps"].is_f64());
    assert_eq!(json["count"], 200);
    assert_eq!(json["statusCodeDistribution"], json!({"OK": 200}));
    assert_eq!(json["errorDistribution"], json!({}));
    let p50 = &json["latencyDistribution"][2];
    assert_eq!(p50["percentage"], 50);
    assert!(p50["latency"].is_u64());
    let bucket = &json["histogram"][0];
    assert!(bucket["mark"].is_f64() && bucket["count"].is_u64() && bucket["frequency"].is_f64());
    let options = &json["options"];
    assert_eq!(
        options["call"],
        "activesessions.v1.SessionService/ValidateSession"
    );
    assert_eq!(options["host"], app.addr.to_string());
    assert_eq!(options["insecure"], true);
    assert_eq!(options["concurrency"], 8);
    assert_eq!(options["connections"], 2);
    assert_eq!(options["total"], 200);
    assert!(json.get("details").is_none(), "details only when asked for");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_check_is_a_baseline_with_a_ghz_summary() {
    let app = spawn().await;
    let report = run(&options(&app, "grpc.health.v1.Health/Check", json!({}))).await;
    assert_all_ok(&report, 200);
    assert_eq!(report.not_valid_count, None);
    let summary = report.to_summary();
    for line in [
        "Summary:",
        "  Count:\t200",
        "  Requests/sec:\t",
        "Response time histogram:",
        "Latency distribution:",
        "  50 % in ",
        "Status code distribution:",
        "[OK]   200 responses",
    ] {
        assert!(summary.contains(line), "no {line:?} in\n{summary}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_calls_are_counted_by_status_and_error_like_ghz() {
    let app = spawn().await;
    let mut options = options(
        &app,
        "activesessions.v1.SessionService.ValidateSession",
        json!({"sessionToken": "not-a-token-{{.RequestNumber}}"}),
    );
    options.total = 40;
    options.skip_first = 10;
    options.details = true;
    let report = run(&options).await;
    assert_eq!(report.count, 30, "skipFirst leaves the first 10 out");
    assert_eq!(report.status_code_distribution["InvalidArgument"], 30);
    let (error, count) = report.error_distribution.iter().next().unwrap();
    assert_eq!(*count, 30);
    assert!(
        error.starts_with("rpc error: code = InvalidArgument desc = "),
        "{error}"
    );
    assert_eq!(
        report.fastest, 0,
        "fastest and slowest count successes only"
    );
    assert!(report.latency_distribution.is_none());
    let details = report.details.as_ref().unwrap();
    assert_eq!(details.len(), 30);
    assert!(details.iter().all(|d| d.status == "InvalidArgument"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_runs_stop_on_time_and_keep_the_rate() {
    let app = spawn().await;
    let mut options = options(&app, "grpc.health.v1.Health/Check", json!({}));
    options.duration = Some(Duration::from_secs(1));
    options.rps = 50;
    options.duration_stop = load::DurationStop::Wait;
    let report = run(&options).await;
    assert_eq!(report.end_reason, "timeout");
    assert!(
        (20..=60).contains(&report.count),
        "about 50 calls in 1s at 50 rps, got {}",
        report.count
    );
    assert_eq!(report.status_code_distribution["OK"], report.count);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_ghz_configs_run_against_the_server() {
    let app = spawn().await;
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/ghz");
    for file in [
        "validate.json",
        "register.json",
        "list.json",
        "check_eligibility.json",
    ] {
        let mut config = GhzConfig::load(format!("{folder}/{file}").as_ref())
            .unwrap_or_else(|error| panic!("{file}: {error}"));
        assert!(config.unknown.is_empty(), "{file}: {:?}", config.unknown);
        // Small and bounded here: 40 calls instead of the file's duration or total.
        config.host = Some(app.addr.to_string());
        config.duration = None;
        config.total = Some(40);
        config.concurrency = Some(4);
        config.connections = Some(2);
        if config.prepare_sessions.is_some() {
            config.prepare_sessions = Some(10);
        }
        let plan = config
            .resolve()
            .unwrap_or_else(|error| panic!("{file}: {error}"));
        assert!(plan.warnings.is_empty(), "{file}: {:?}", plan.warnings);
        let report = run(&plan.run).await;
        assert_eq!(
            report.status_code_distribution,
            [("OK".to_owned(), 40)].into_iter().collect(),
            "{file}: {:?}",
            report.error_distribution
        );
        if let Some(not_valid) = report.not_valid_count {
            assert_eq!(not_valid, 0, "{file}");
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_streaming_and_unknown_calls_and_missing_sessions() {
    let app = spawn().await;
    let refuse = |call: &str, data: Value| {
        let options = options(&app, call, data);
        async move { load::run(&options, CancellationToken::new()).await }
    };
    let streaming = refuse(
        "activesessions.v1.SessionService/WatchRevocations",
        json!({}),
    )
    .await
    .unwrap_err();
    assert!(streaming.to_string().contains("streaming"), "{streaming}");
    let unknown = refuse("helloworld.Greeter/SayHello", json!({}))
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains("supported calls"), "{unknown}");
    let no_sessions = refuse(
        "activesessions.v1.SessionService/ValidateSession",
        json!({"sessionToken": "{{.Token}}"}),
    )
    .await
    .unwrap_err();
    assert!(
        no_sessions.to_string().contains("--prepare-sessions"),
        "{no_sessions}"
    );
    let bad_field = refuse(
        "activesessions.v1.SessionService/ValidateSession",
        json!({"token": "x"}),
    )
    .await
    .unwrap_err();
    assert!(
        bad_field.to_string().contains("unknown field"),
        "{bad_field}"
    );
    app.stop().await;
}
