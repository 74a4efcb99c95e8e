//! Results: what each worker records, and the report built from them in ghz's shape (its
//! summary text, its JSON field names and units, its CSV).

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Write as _,
    time::{Duration, SystemTime},
};

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;
use tonic::Code;

use super::duration::{format_nano_unit, nanos};

/// The percentiles ghz reports.
pub const PERCENTILES: [u32; 7] = [10, 25, 50, 75, 90, 95, 99];

/// At most this many per-request details are kept (ghz's limit too).
const MAX_DETAILS: usize = 1_000_000;

/// Highest latency the histogram tracks exactly (one hour); longer ones count as one hour.
const HISTOGRAM_MAX_NANOS: u64 = 3_600_000_000_000;

/// A gRPC status code as Go (and so ghz) names it: `OK`, `Canceled`, `NotFound`, ...
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

/// The text of an error as grpc-go prints it, which is what ghz's error distribution counts.
pub fn go_error_text(code: Code, message: &str) -> String {
    format!("rpc error: code = {} desc = {message}", go_code_name(code))
}

/// One request's result (`details` in ghz's JSON).
#[derive(Debug, Clone, Serialize)]
pub struct Detail {
    /// When the call started (RFC 3339, UTC).
    pub timestamp: String,
    /// Latency in nanoseconds.
    pub latency: u64,
    /// The error text, empty on success.
    pub error: String,
    /// The status code name (`OK`, `Unavailable`, ...).
    pub status: String,
}

/// What one worker recorded.
#[derive(Debug)]
pub(crate) struct Stats {
    ok: Histogram<u64>,
    ok_min: u64,
    ok_max: u64,
    count: u64,
    latency_sum: u128,
    statuses: BTreeMap<&'static str, u64>,
    errors: HashMap<String, u64>,
    not_valid: u64,
    details: Option<Vec<Detail>>,
}

impl Stats {
    pub(crate) fn new(keep_details: bool) -> Result<Self, String> {
        Ok(Self {
            ok: Histogram::new_with_bounds(1, HISTOGRAM_MAX_NANOS, 3)
                .map_err(|error| format!("latency histogram: {error}"))?,
            ok_min: u64::MAX,
            ok_max: 0,
            count: 0,
            latency_sum: 0,
            statuses: BTreeMap::new(),
            errors: HashMap::new(),
            not_valid: 0,
            details: keep_details.then(Vec::new),
        })
    }

    /// Records one call: its latency and either success (and whether a ValidateSession said
    /// not valid) or the status it failed with.
    pub(crate) fn record(
        &mut self,
        started: SystemTime,
        latency: Duration,
        result: Result<bool, (Code, String)>,
    ) {
        let latency = nanos(latency);
        self.count += 1;
        self.latency_sum += u128::from(latency);
        let (status, error) = match result {
            Ok(not_valid) => {
                self.ok
                    .saturating_record(latency.clamp(1, HISTOGRAM_MAX_NANOS));
                self.ok_min = self.ok_min.min(latency);
                self.ok_max = self.ok_max.max(latency);
                if not_valid {
                    self.not_valid += 1;
                }
                ("OK", String::new())
            }
            Err((code, message)) => {
                let text = go_error_text(code, &message);
                *self.errors.entry(text.clone()).or_default() += 1;
                (go_code_name(code), text)
            }
        };
        *self.statuses.entry(status).or_default() += 1;
        if let Some(details) = &mut self.details
            && details.len() < MAX_DETAILS
        {
            details.push(Detail {
                timestamp: humantime::format_rfc3339_nanos(started).to_string(),
                latency,
                error,
                status: status.to_owned(),
            });
        }
    }

    /// Adds another worker's results to these.
    pub(crate) fn merge(&mut self, other: Stats) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.ok.add(&other.ok);
        self.ok_min = self.ok_min.min(other.ok_min);
        self.ok_max = self.ok_max.max(other.ok_max);
        self.count += other.count;
        self.latency_sum += other.latency_sum;
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        for (error, count) in other.errors {
            *self.errors.entry(error).or_default() += count;
        }
        self.not_valid += other.not_valid;
        if let (Some(mine), Some(theirs)) = (&mut self.details, other.details) {
            let room = MAX_DETAILS.saturating_sub(mine.len());
            mine.extend(theirs.into_iter().take(room));
        }
    }
}

/// One line of the latency distribution.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LatencyDistribution {
    /// The percentile (10, 25, 50, 75, 90, 95, 99).
    pub percentage: u32,
    /// The latency in nanoseconds under which that share of the successful calls finished.
    pub latency: u64,
}

/// One bucket of the response-time histogram.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Bucket {
    /// The bucket's upper bound, in seconds.
    pub mark: f64,
    /// Successful calls in the bucket.
    pub count: u64,
    /// Their share of the successful calls, from 0 to 1.
    pub frequency: f64,
}

/// The run's settings as ghz's report echoes them (`options`). Durations in nanoseconds.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ReportOptions {
    /// The call, as given.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub call: String,
    /// The host, as given.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// The CA file, when TLS is verified against one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cacert: String,
    /// The client certificate file.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cert: String,
    /// The client key file.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// The server name the certificate is checked against.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cname: String,
    /// Plaintext.
    pub insecure: bool,
    /// The rate limit (0: none).
    #[serde(skip_serializing_if = "is_zero")]
    pub rps: u64,
    /// Always `const`.
    #[serde(rename = "load-schedule")]
    pub load_schedule: String,
    /// Concurrent workers.
    #[serde(skip_serializing_if = "is_zero")]
    pub concurrency: u64,
    /// Always `const`.
    #[serde(rename = "concurrency-schedule")]
    pub concurrency_schedule: String,
    /// Requests asked for (omitted for duration-bound runs).
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    /// Connections.
    #[serde(skip_serializing_if = "is_zero")]
    pub connections: u64,
    /// Run duration (`-z`), or the maximum (`-x`).
    #[serde(skip_serializing_if = "is_zero")]
    pub duration: u64,
    /// Per-call timeout.
    #[serde(skip_serializing_if = "is_zero")]
    pub timeout: u64,
    /// Connection timeout.
    #[serde(rename = "dial-timeout", skip_serializing_if = "is_zero")]
    pub dial_timeout: u64,
    /// The call data, as given (before templating).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Always false: binary data is not supported.
    pub binary: bool,
    /// The metadata, as given (before templating).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Worker threads of the generator.
    #[serde(rename = "CPUs")]
    pub cpus: u64,
    /// The run's name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Results skipped at the start.
    #[serde(rename = "skipFirst", skip_serializing_if = "is_zero")]
    pub skip_first: u64,
    /// Sessions registered before the run (this tool's addition).
    #[serde(rename = "prepare-sessions", skip_serializing_if = "is_zero")]
    pub prepare_sessions: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// The report of a run, serialised with ghz's JSON field names and units: durations are
/// integer nanoseconds (Go's `time.Duration`), `rps` is a float, histogram marks are seconds.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The run's name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Why the run ended: `normal` (all requests done), `timeout` (duration reached) or
    /// `cancel` (interrupted).
    #[serde(rename = "endReason")]
    pub end_reason: String,
    /// The settings.
    pub options: ReportOptions,
    /// When the run ended (RFC 3339).
    pub date: String,
    /// Calls counted (after `skipFirst`).
    pub count: u64,
    /// Wall time of the run, in nanoseconds.
    pub total: u64,
    /// Mean latency of every counted call, in nanoseconds.
    pub average: u64,
    /// Fastest successful call, in nanoseconds.
    pub fastest: u64,
    /// Slowest successful call, in nanoseconds.
    pub slowest: u64,
    /// Calls per second: `count / total`.
    pub rps: f64,
    /// Error text to count.
    #[serde(rename = "errorDistribution")]
    pub error_distribution: BTreeMap<String, u64>,
    /// Status code name to count.
    #[serde(rename = "statusCodeDistribution")]
    pub status_code_distribution: BTreeMap<String, u64>,
    /// Latency percentiles of the successful calls (`null` when none succeeded).
    #[serde(rename = "latencyDistribution")]
    pub latency_distribution: Option<Vec<LatencyDistribution>>,
    /// Response-time histogram of the successful calls (`null` when none succeeded).
    pub histogram: Option<Vec<Bucket>>,
    /// Per-call results, when asked for (`--details`, or `-O csv`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<Detail>>,
    /// User tags.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// ValidateSession calls that succeeded but answered `valid: false` (this tool's addition,
    /// present for ValidateSession only): a non-zero count means the run measured unknown or
    /// ended tokens, not signed-in sessions.
    #[serde(rename = "notValidCount", skip_serializing_if = "Option::is_none")]
    pub not_valid_count: Option<u64>,
}

impl Report {
    pub(crate) fn build(
        stats: Stats,
        total: Duration,
        end_reason: &str,
        options: ReportOptions,
        tags: BTreeMap<String, String>,
        validate: bool,
    ) -> Self {
        let total_nanos = nanos(total);
        let ok_count = stats.ok.len();
        let (fastest, slowest) = if ok_count > 0 {
            (stats.ok_min, stats.ok_max)
        } else {
            (0, 0)
        };
        let (latency_distribution, histogram) = if ok_count > 0 {
            (
                Some(latencies(&stats.ok, fastest, slowest)),
                Some(buckets(&stats.ok, fastest, slowest)),
            )
        } else {
            (None, None)
        };
        let average = if stats.count > 0 {
            u64::try_from(stats.latency_sum / u128::from(stats.count)).unwrap_or(u64::MAX)
        } else {
            0
        };
        let rps = if total_nanos > 0 {
            stats.count as f64 / total.as_secs_f64()
        } else {
            0.0
        };
        Self {
            name: options.name.clone(),
            end_reason: end_reason.into(),
            options,
            date: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            count: stats.count,
            total: total_nanos,
            average,
            fastest,
            slowest,
            rps,
            error_distribution: stats.errors.into_iter().collect(),
            status_code_distribution: stats
                .statuses
                .into_iter()
                .map(|(status, count)| (status.to_owned(), count))
                .collect(),
            latency_distribution,
            histogram,
            details: stats.details,
            tags,
            not_valid_count: validate.then_some(stats.not_valid),
        }
    }

    /// The latency of a percentile (10, 25, 50, 75, 90, 95 or 99), in nanoseconds.
    pub fn percentile(&self, percentage: u32) -> Option<u64> {
        self.latency_distribution
            .as_ref()?
            .iter()
            .find(|line| line.percentage == percentage)
            .map(|line| line.latency)
    }

    /// ghz's JSON report (`-O json`).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// ghz's indented JSON report (`-O pretty`).
    pub fn to_pretty_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// ghz's CSV report (`-O csv`): one line per call, latency in milliseconds.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("duration (ms),status,error");
        for detail in self.details.iter().flatten() {
            let _ = write!(
                out,
                "\n{:.2},{},{}",
                detail.latency as f64 / 1e6,
                detail.status,
                detail.error
            );
        }
        out.push('\n');
        out
    }

    /// ghz's summary (`-O summary`, the default).
    pub fn to_summary(&self) -> String {
        let mut out = String::from("\nSummary:\n");
        if !self.name.is_empty() {
            let _ = writeln!(out, "  Name:\t\t{}", self.name);
        }
        let _ = writeln!(out, "  Count:\t{}", self.count);
        let _ = writeln!(out, "  Total:\t{}", format_nano_unit(self.total));
        let _ = writeln!(out, "  Slowest:\t{}", format_nano_unit(self.slowest));
        let _ = writeln!(out, "  Fastest:\t{}", format_nano_unit(self.fastest));
        let _ = writeln!(out, "  Average:\t{}", format_nano_unit(self.average));
        let _ = writeln!(out, "  Requests/sec:\t{:.2}", self.rps);
        out.push_str("\nResponse time histogram:\n");
        let buckets = self.histogram.as_deref().unwrap_or_default();
        let max_count = buckets.iter().map(|b| b.count).max().unwrap_or(0);
        let mark = |b: &Bucket| format!("{:.3}", b.mark * 1000.0);
        let mark_width = buckets.iter().map(|b| mark(b).len()).max().unwrap_or(0);
        let count_width = max_count.to_string().len();
        for bucket in buckets {
            let bar = (bucket.count * 40 + max_count / 2)
                .checked_div(max_count)
                .unwrap_or(0);
            let _ = writeln!(
                out,
                "  {:<mark_width$} [{:<count_width$}] |{}",
                mark(bucket),
                bucket.count,
                "∎".repeat(usize::try_from(bar).unwrap_or(0))
            );
        }
        out.push_str("\nLatency distribution:");
        for line in self.latency_distribution.iter().flatten() {
            let _ = write!(
                out,
                "\n  {} % in {} ",
                line.percentage,
                format_nano_unit(line.latency)
            );
        }
        out.push_str("\n\n");
        if !self.status_code_distribution.is_empty() {
            out.push_str("Status code distribution:\n");
            let width = self
                .status_code_distribution
                .keys()
                .map(|status| status.len() + 2)
                .max()
                .unwrap_or(0);
            for (status, count) in &self.status_code_distribution {
                let _ = writeln!(
                    out,
                    "  {:<width$}   {count} responses",
                    format!("[{status}]")
                );
            }
        }
        out.push('\n');
        if !self.error_distribution.is_empty() {
            out.push_str("Error distribution:\n");
            let width = self
                .error_distribution
                .values()
                .map(|count| count.to_string().len() + 2)
                .max()
                .unwrap_or(0);
            for (error, count) in &self.error_distribution {
                let _ = writeln!(out, "  {:<width$}   {error}", format!("[{count}]"));
            }
            out.push('\n');
        }
        if let Some(not_valid) = self.not_valid_count.filter(|count| *count > 0) {
            let _ = writeln!(
                out,
                "Note: {not_valid} ValidateSession answers were valid=false (unknown, expired or \
                 revoked tokens).\n"
            );
        }
        out
    }
}

/// ghz's percentiles, from the histogram (within 0.1 % of the exact nearest-rank value).
fn latencies(ok: &Histogram<u64>, fastest: u64, slowest: u64) -> Vec<LatencyDistribution> {
    PERCENTILES
        .iter()
        .map(|&percentage| LatencyDistribution {
            percentage,
            latency: ok
                .value_at_quantile(f64::from(percentage) / 100.0)
                .clamp(fastest, slowest),
        })
        .collect()
}

/// ghz's histogram: 11 marks, `fastest + i * (slowest - fastest) / 10` for i in 0..10 and then
/// `slowest`; each call counts in the first bucket whose mark is at or above its latency.
fn buckets(ok: &Histogram<u64>, fastest: u64, slowest: u64) -> Vec<Bucket> {
    const BUCKETS: usize = 10;
    let step = (slowest - fastest) as f64 / BUCKETS as f64;
    let mut marks: Vec<f64> = (0..BUCKETS)
        .map(|i| fastest as f64 + step * i as f64)
        .collect();
    marks.push(slowest as f64);
    let mut counts = vec![0u64; marks.len()];
    for value in ok.iter_recorded() {
        let latency = ok
            .median_equivalent(value.value_iterated_to())
            .clamp(fastest, slowest) as f64;
        let index = marks
            .iter()
            .position(|mark| latency <= *mark)
            .unwrap_or(BUCKETS);
        counts[index] += value.count_at_value();
    }
    let total = ok.len().max(1) as f64;
    marks
        .into_iter()
        .zip(counts)
        .map(|(mark, count)| Bucket {
            mark: mark / 1e9,
            count,
            frequency: count as f64 / total,
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn builds_ghz_shaped_reports() {
        let mut stats = Stats::new(true).unwrap();
        let now = SystemTime::now();
        for ms in 1..=100u64 {
            stats.record(now, Duration::from_millis(ms), Ok(ms == 100));
        }
        let mut other = Stats::new(true).unwrap();
        other.record(
            now,
            Duration::from_millis(5),
            Err((Code::Unavailable, "down".into())),
        );
        stats.merge(other);
        let report = Report::build(
            stats,
            Duration::from_secs(2),
            "normal",
            ReportOptions::default(),
            BTreeMap::new(),
            true,
        );
        assert_eq!(report.count, 101);
        assert_eq!(report.fastest, 1_000_000);
        assert_eq!(report.slowest, 100_000_000);
        assert!((report.rps - 50.5).abs() < 1e-9);
        assert_eq!(report.status_code_distribution["OK"], 100);
        assert_eq!(report.status_code_distribution["Unavailable"], 1);
        assert_eq!(
            report.error_distribution["rpc error: code = Unavailable desc = down"],
            1
        );
        let p50 = report.percentile(50).unwrap();
        assert!((49_900_000..=50_100_000).contains(&p50), "{p50}");
        let buckets = report.histogram.as_ref().unwrap();
        assert_eq!(buckets.len(), 11);
        assert_eq!(buckets.iter().map(|b| b.count).sum::<u64>(), 100);
        assert_eq!(report.not_valid_count, Some(1));
        assert_eq!(report.details.as_ref().unwrap().len(), 101);
        let summary = report.to_summary();
        assert!(summary.contains("Requests/sec:\t50.50"), "{summary}");
        assert!(summary.contains("[OK]"), "{summary}");
        assert!(report.to_csv().lines().count() == 102);
    }
}
