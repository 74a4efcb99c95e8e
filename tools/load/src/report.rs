//! ghz's JSON report (`-O json`): the `Report` of ghz's `runner/reporter.go`, its field names
//! and units (durations as integer nanoseconds, histogram marks in seconds), built from the
//! calls' results the way `Reporter.Finalize` builds it: the average over every call, the
//! fastest, slowest, histogram and percentiles over the successful ones.

use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime},
};

use serde::Serialize;
use serde_json::Value;
use tonic::Code;

/// The percentiles ghz reports (`latencies` in `runner/reporter.go`).
pub const PERCENTILES: [u32; 7] = [10, 25, 50, 75, 90, 95, 99];

/// At most this many results are kept in `details` (ghz's `maxResult`).
pub const MAX_DETAILS: usize = 1_000_000;

/// One call's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallResult {
    /// When the call started.
    pub timestamp: SystemTime,
    /// How long it took.
    pub latency: Duration,
    /// Its status.
    pub code: Code,
    /// grpc-go's text of the error (`rpc error: code = … desc = …`); `None` on success.
    pub error: Option<String>,
}

/// ghz's report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The run's name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `normal` (all requests made), `timeout` (the duration ran out) or `cancel`.
    pub end_reason: String,
    /// The run's settings, with ghz's keys (`Options` in `runner/reporter.go`).
    pub options: Value,
    /// When the report was made, RFC 3339.
    pub date: String,
    /// Calls counted.
    pub count: u64,
    /// Wall time of the run, nanoseconds.
    pub total: u64,
    /// Mean latency over every call, nanoseconds.
    pub average: u64,
    /// Fastest successful call, nanoseconds.
    pub fastest: u64,
    /// Slowest successful call, nanoseconds.
    pub slowest: u64,
    /// Calls per second.
    pub rps: f64,
    /// Error text to count.
    pub error_distribution: BTreeMap<String, u64>,
    /// Status name (Go's spelling) to count.
    pub status_code_distribution: BTreeMap<String, u64>,
    /// The percentiles of the successful calls; `null` when none succeeded.
    pub latency_distribution: Option<Vec<LatencyDistribution>>,
    /// 11 buckets over the successful calls; `null` when none succeeded.
    pub histogram: Option<Vec<Bucket>>,
    /// Every call (at most [`MAX_DETAILS`]); `null` when there were none.
    pub details: Option<Vec<Detail>>,
    /// As given.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// One percentile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyDistribution {
    /// 10, 25, 50, 75, 90, 95 or 99.
    pub percentage: u32,
    /// Nanoseconds.
    pub latency: u64,
}

/// One histogram bucket.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bucket {
    /// The bucket's upper mark, seconds.
    pub mark: f64,
    /// Calls in the bucket.
    pub count: u64,
    /// `count` over the successful calls, 0 to 1.
    pub frequency: f64,
}

/// One call in `details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detail {
    /// When it started, RFC 3339 with nanoseconds.
    pub timestamp: String,
    /// Nanoseconds.
    pub latency: u64,
    /// The error text, empty on success.
    pub error: String,
    /// The status name.
    pub status: String,
}

/// A status code as Go (and so ghz) names it: `OK`, `Canceled`, `InvalidArgument`, …
pub fn go_code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// grpc-go's text of an error status, which is what ghz's error distribution counts.
pub fn go_error_text(code: Code, message: &str) -> String {
    format!("rpc error: code = {} desc = {message}", go_code_name(code))
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl Report {
    /// The report of `results` (in the order they finished) of a run that took `total`.
    pub fn build(
        name: String,
        end_reason: &str,
        options: Value,
        tags: BTreeMap<String, String>,
        results: &[CallResult],
        total: Duration,
    ) -> Self {
        let mut report = Report {
            name,
            end_reason: end_reason.to_owned(),
            options,
            date: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            count: results.len() as u64,
            total: nanos(total),
            average: 0,
            fastest: 0,
            slowest: 0,
            rps: 0.0,
            error_distribution: BTreeMap::new(),
            status_code_distribution: BTreeMap::new(),
            latency_distribution: None,
            histogram: None,
            details: None,
            tags,
        };
        for result in results {
            *report
                .status_code_distribution
                .entry(go_code_name(result.code).to_owned())
                .or_default() += 1;
            if let Some(error) = &result.error {
                *report.error_distribution.entry(error.clone()).or_default() += 1;
            }
        }
        if results.is_empty() {
            return report;
        }
        let sum: u128 = results.iter().map(|r| r.latency.as_nanos()).sum();
        report.average = u64::try_from(sum / results.len() as u128).unwrap_or(u64::MAX);
        report.rps = results.len() as f64 / total.as_secs_f64().max(f64::MIN_POSITIVE);
        let mut ok: Vec<u64> = results
            .iter()
            .filter(|r| r.error.is_none())
            .map(|r| nanos(r.latency))
            .collect();
        ok.sort_unstable();
        if let (Some(&fastest), Some(&slowest)) = (ok.first(), ok.last()) {
            report.fastest = fastest;
            report.slowest = slowest;
            report.histogram = Some(histogram(&ok, fastest, slowest));
            report.latency_distribution = Some(latencies(&ok));
        }
        report.details = Some(
            results
                .iter()
                .take(MAX_DETAILS)
                .map(|r| Detail {
                    timestamp: humantime::format_rfc3339_nanos(r.timestamp).to_string(),
                    latency: nanos(r.latency),
                    error: r.error.clone().unwrap_or_default(),
                    status: go_code_name(r.code).to_owned(),
                })
                .collect(),
        );
        report
    }
}

/// ghz's percentiles of sorted latencies: the value at 0-based rank `⌊p/100 · n⌋`, one lower
/// when that product is whole (`latencies` in `runner/reporter.go`).
fn latencies(sorted: &[u64]) -> Vec<LatencyDistribution> {
    let n = sorted.len();
    PERCENTILES
        .iter()
        .map(|&percentage| {
            let product = percentage as usize * n;
            let mut rank = product / 100;
            if product.is_multiple_of(100) {
                rank = rank.saturating_sub(1);
            }
            let latency = sorted[rank.min(n - 1)];
            // ghz leaves an entry zero-valued when the latency is 0.
            if latency > 0 {
                LatencyDistribution {
                    percentage,
                    latency,
                }
            } else {
                LatencyDistribution {
                    percentage: 0,
                    latency: 0,
                }
            }
        })
        .collect()
}

/// ghz's histogram: marks at `fastest + i·(slowest − fastest)/10` for i in 0..10, then
/// `slowest`; each latency in the first bucket whose mark is at or above it
/// (`histogram` in `runner/reporter.go`).
fn histogram(sorted: &[u64], fastest: u64, slowest: u64) -> Vec<Bucket> {
    let (fastest_s, slowest_s) = (fastest as f64 / 1e9, slowest as f64 / 1e9);
    let step = (slowest_s - fastest_s) / 10.0;
    let mut marks: Vec<f64> = (0..10).map(|i| fastest_s + step * i as f64).collect();
    marks.push(slowest_s);
    let mut counts = [0u64; 11];
    let mut bucket = 0;
    for &latency in sorted {
        let seconds = latency as f64 / 1e9;
        while seconds > marks[bucket] && bucket < marks.len() - 1 {
            bucket += 1;
        }
        counts[bucket] += 1;
    }
    marks
        .iter()
        .zip(counts)
        .map(|(&mark, count)| Bucket {
            mark,
            count,
            frequency: count as f64 / sorted.len() as f64,
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn ok(ms: u64) -> CallResult {
        CallResult {
            timestamp: SystemTime::now(),
            latency: Duration::from_millis(ms),
            code: Code::Ok,
            error: None,
        }
    }

    #[test]
    fn computes_like_ghz_reporter() {
        let mut results: Vec<CallResult> = (1..=10).map(ok).collect();
        results.push(CallResult {
            error: Some(go_error_text(Code::NotFound, "no such session")),
            code: Code::NotFound,
            ..ok(100)
        });
        let report = Report::build(
            String::new(),
            "normal",
            Value::Null,
            BTreeMap::new(),
            &results,
            Duration::from_secs(1),
        );
        assert_eq!(report.count, 11);
        assert_eq!(report.fastest, 1_000_000);
        assert_eq!(report.slowest, 10_000_000);
        assert_eq!(report.average, 155_000_000 / 11);
        assert_eq!(report.status_code_distribution["OK"], 10);
        assert_eq!(
            report.error_distribution["rpc error: code = NotFound desc = no such session"],
            1
        );
        // 10 sorted values: p10 → rank 0, p25 → rank 2, p50 → rank 4, p99 → rank 9.
        let latencies: Vec<u64> = report
            .latency_distribution
            .unwrap()
            .iter()
            .map(|line| line.latency / 1_000_000)
            .collect();
        assert_eq!(latencies, [1, 3, 5, 8, 9, 10, 10]);
        let histogram = report.histogram.unwrap();
        assert_eq!(histogram.len(), 11);
        assert_eq!(histogram.iter().map(|b| b.count).sum::<u64>(), 10);
        assert_eq!(histogram[0].count, 1);
        assert_eq!(report.details.unwrap().len(), 11);
    }
}
