//! ghz's settings: its config file keys (JSON or TOML) and the same settings from the command
//! line, merged the way ghz merges them (a flag given on the command line wins over the file),
//! then checked and turned into [`RunOptions`].

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use active_sessions_client::proto as pb;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{
    DurationStop, LoadError, PrepareOptions, RunOptions, TlsOptions, duration::parse_go_duration,
};

/// A duration setting: a Go duration string (`"10s"`) or integer nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoDuration(pub Duration);

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(text) => parse_go_duration(&text)
                .map(GoDuration)
                .map_err(serde::de::Error::custom),
            Value::Number(number) => number
                .as_u64()
                .map(|nanos| GoDuration(Duration::from_nanos(nanos)))
                .ok_or_else(|| serde::de::Error::custom("a duration in nanoseconds must be >= 0")),
            other => Err(serde::de::Error::custom(format!(
                "expected a duration such as \"10s\", got {other}"
            ))),
        }
    }
}

/// Every setting, each optional so that a file and the command line can be merged. The keys
/// are ghz's (`call`, `total`, `concurrency`, `connections`, `rps`, `duration`, `data`,
/// `metadata`, `insecure`, `host`, `skipFirst`, `format`, `output`, ...) plus this tool's
/// `prepare-*` keys, which ghz ignores.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct GhzConfig {
    /// `package.Service/Method` or `package.Service.Method`.
    pub call: Option<String>,
    /// `host:port` (or a full `http://` / `https://` URI).
    pub host: Option<String>,
    /// Ignored: the protos are compiled in.
    pub proto: Option<String>,
    /// Ignored: the protos are compiled in.
    pub protoset: Option<String>,
    /// Ignored: the protos are compiled in.
    #[serde(rename = "import-paths")]
    pub import_paths: Option<Vec<String>>,
    /// PEM file of the CA that signed the server's certificate.
    pub cacert: Option<String>,
    /// PEM client certificate (mTLS).
    pub cert: Option<String>,
    /// PEM client key (mTLS).
    pub key: Option<String>,
    /// The name the server certificate must carry (default: the host).
    pub cname: Option<String>,
    /// Not supported (refused): certificates are always verified.
    #[serde(rename = "skipTLS")]
    pub skip_tls: Option<bool>,
    /// Plaintext HTTP/2.
    pub insecure: Option<bool>,
    /// Not supported (refused).
    pub authority: Option<String>,
    /// Requests to make (default 200). Ignored when `duration` is set.
    pub total: Option<u64>,
    /// Concurrent workers (default 50).
    pub concurrency: Option<u64>,
    /// Connections; the workers are spread over them (default 1).
    pub connections: Option<u64>,
    /// Requests per second over all workers (default: no limit).
    pub rps: Option<u64>,
    /// ghz's older name of `rps`.
    pub qps: Option<u64>,
    /// Run for this long, then stop (`total` is then ignored).
    pub duration: Option<GoDuration>,
    /// Stop after this long even if `total` requests are not done.
    #[serde(rename = "max-duration")]
    pub max_duration: Option<GoDuration>,
    /// What happens to calls in flight when the duration ends: `close` (counted as `Canceled`
    /// errors, ghz's default), `wait` (finished and counted) or `ignore` (dropped).
    #[serde(rename = "duration-stop")]
    pub duration_stop: Option<String>,
    /// Per-call timeout (default 20s; 0 for none).
    pub timeout: Option<GoDuration>,
    /// Connection timeout (default 10s).
    #[serde(rename = "connect-timeout")]
    pub connect_timeout: Option<GoDuration>,
    /// The request as protobuf JSON (an object, or an array of objects used round-robin).
    pub data: Option<Value>,
    /// A file holding `data`.
    #[serde(rename = "data-file")]
    pub data_file: Option<String>,
    /// Request metadata: a JSON object of strings.
    pub metadata: Option<Value>,
    /// A file holding `metadata`.
    #[serde(rename = "metadata-file")]
    pub metadata_file: Option<String>,
    /// Where to write the report (default: standard output).
    pub output: Option<String>,
    /// `summary` (default), `json`, `pretty` or `csv`.
    pub format: Option<String>,
    /// Results to leave out of the tally at the start.
    #[serde(rename = "skipFirst")]
    pub skip_first: Option<u64>,
    /// A name for the run.
    pub name: Option<String>,
    /// String tags copied into the report.
    pub tags: Option<BTreeMap<String, String>>,
    /// Worker threads of the generator (default: every core).
    pub cpus: Option<u64>,
    /// Not supported (ignored).
    #[serde(rename = "enable-compression")]
    pub enable_compression: Option<bool>,
    /// Keep per-call results in the report (`details`).
    pub details: Option<bool>,
    /// Register this many sessions before the run, for `{{.Token}}` and friends.
    #[serde(rename = "prepare-sessions")]
    pub prepare_sessions: Option<u64>,
    /// Account ids of prepared sessions start with this (default: `load-<ULID>-`).
    #[serde(rename = "prepare-account-prefix")]
    pub prepare_account_prefix: Option<String>,
    /// Prepared sessions per account (default 1).
    #[serde(rename = "prepare-sessions-per-account")]
    pub prepare_sessions_per_account: Option<u64>,
    /// Product of prepared sessions (default `PRODUCT_CHATGPT`).
    #[serde(rename = "prepare-product")]
    pub prepare_product: Option<String>,
    /// Client kind of prepared sessions (default `CLIENT_KIND_BROWSER`).
    #[serde(rename = "prepare-client-kind")]
    pub prepare_client_kind: Option<String>,
    /// Concurrent registrations while preparing (default: the run's concurrency, at most 16).
    #[serde(rename = "prepare-concurrency")]
    pub prepare_concurrency: Option<u64>,
    /// Any other key: reported as a warning and otherwise ignored, as ghz ignores it.
    #[serde(flatten)]
    pub unknown: BTreeMap<String, Value>,
}

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// ghz's text summary.
    Summary,
    /// ghz's JSON report on one line.
    Json,
    /// ghz's JSON report, indented.
    Pretty,
    /// One line per call.
    Csv,
}

/// A checked run: what to do and how to print it.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The run.
    pub run: RunOptions,
    /// The report format.
    pub format: Format,
    /// The report file; standard output when `None`.
    pub output: Option<PathBuf>,
    /// Worker threads for the runtime.
    pub cpus: usize,
    /// Settings that were ignored, to tell the user.
    pub warnings: Vec<String>,
}

macro_rules! merge_fields {
    ($base:ident, $over:ident, $($field:ident),* $(,)?) => {
        GhzConfig {
            $($field: $over.$field.or($base.$field),)*
            unknown: {
                let mut unknown = $base.unknown;
                unknown.extend($over.unknown);
                unknown
            },
        }
    };
}

impl GhzConfig {
    /// Reads a config file: JSON (`.json`) or TOML (`.toml`); other names are tried as JSON,
    /// then TOML. Relative file paths inside (`data-file`, `metadata-file`, `cacert`, `cert`,
    /// `key`) are taken relative to the file's folder.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| LoadError::new(format!("cannot read {}: {error}", path.display())))?;
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let value: Value = match extension.as_str() {
            "json" => serde_json::from_str(&text)
                .map_err(|error| LoadError::new(format!("{}: {error}", path.display())))?,
            "toml" => toml::from_str(&text)
                .map_err(|error| LoadError::new(format!("{}: {error}", path.display())))?,
            "yaml" | "yml" => {
                return Err(LoadError::new(format!(
                    "{}: YAML config files are not supported; use JSON or TOML",
                    path.display()
                )));
            }
            _ => match serde_json::from_str(&text) {
                Ok(value) => value,
                Err(json_error) => toml::from_str(&text).map_err(|toml_error| {
                    LoadError::new(format!(
                        "{}: neither JSON ({json_error}) nor TOML ({toml_error})",
                        path.display()
                    ))
                })?,
            },
        };
        let mut config = Self::from_value(value)
            .map_err(|error| LoadError::new(format!("{}: {error}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new(""));
        for file in [
            &mut config.data_file,
            &mut config.metadata_file,
            &mut config.cacert,
            &mut config.cert,
            &mut config.key,
        ]
        .into_iter()
        .flatten()
        {
            if Path::new(file.as_str()).is_relative() && !file.is_empty() {
                *file = base.join(&*file).display().to_string();
            }
        }
        Ok(config)
    }

    /// Reads the settings from a JSON value (a parsed config file).
    pub fn from_value(value: Value) -> Result<Self, String> {
        serde_json::from_value(value).map_err(|error| error.to_string())
    }

    /// `over`'s settings where it has them, these elsewhere.
    pub fn merge(self, over: GhzConfig) -> GhzConfig {
        let base = self;
        merge_fields!(
            base,
            over,
            call,
            host,
            proto,
            protoset,
            import_paths,
            cacert,
            cert,
            key,
            cname,
            skip_tls,
            insecure,
            authority,
            total,
            concurrency,
            connections,
            rps,
            qps,
            duration,
            max_duration,
            duration_stop,
            timeout,
            connect_timeout,
            data,
            data_file,
            metadata,
            metadata_file,
            output,
            format,
            skip_first,
            name,
            tags,
            cpus,
            enable_compression,
            details,
            prepare_sessions,
            prepare_account_prefix,
            prepare_sessions_per_account,
            prepare_product,
            prepare_client_kind,
            prepare_concurrency,
        )
    }

    /// Checks the settings, applies ghz's defaults and rules, and reads the data and metadata
    /// files.
    pub fn resolve(self) -> Result<Plan, LoadError> {
        let mut warnings = Vec::new();
        let fail = |message: String| Err(LoadError::new(message));
        let Some(call) = self.call.filter(|c| !c.trim().is_empty()) else {
            return fail("no call: give --call (or \"call\" in the config file)".into());
        };
        let Some(host) = self.host.filter(|h| !h.trim().is_empty()) else {
            return fail("no host: give host:port (or \"host\" in the config file)".into());
        };
        if self.skip_tls == Some(true) {
            return fail(
                "--skipTLS is not supported: give the server's CA with --cacert, or use \
                 --insecure for a plaintext server"
                    .into(),
            );
        }
        if self.authority.as_deref().is_some_and(|a| !a.is_empty()) {
            return fail("--authority is not supported".into());
        }
        if self.enable_compression == Some(true) {
            warnings
                .push("enable-compression is not supported; requests are sent uncompressed".into());
        }
        if self.proto.is_some() || self.protoset.is_some() || self.import_paths.is_some() {
            warnings.push(
                "proto, protoset and import-paths are ignored: the active-sessions protos are \
                 compiled in"
                    .into(),
            );
        }
        for key in self.unknown.keys() {
            warnings.push(format!("unknown setting {key:?} ignored"));
        }

        let concurrency = self.concurrency.unwrap_or(50);
        let connections = self.connections.unwrap_or(1);
        if concurrency == 0 {
            return fail("concurrency must be at least 1".into());
        }
        if connections == 0 {
            return fail("connections must be at least 1".into());
        }
        if connections > concurrency {
            return fail("number of connections cannot be greater than concurrency".into());
        }
        let total = self.total.unwrap_or(200);
        let duration = self.duration.map(|d| d.0).filter(|d| !d.is_zero());
        let max_duration = self.max_duration.map(|d| d.0).filter(|d| !d.is_zero());
        let skip_first = self.skip_first.unwrap_or(0);
        if duration.is_none() && skip_first > total {
            return fail("you cannot skip more requests than those run".into());
        }
        if duration.is_none() && total == 0 {
            return fail("total must be at least 1 (or give a duration)".into());
        }
        let duration_stop = match self.duration_stop.as_deref().map(str::to_ascii_lowercase) {
            None => DurationStop::Close,
            Some(stop) => match stop.as_str() {
                "close" | "" => DurationStop::Close,
                "wait" => DurationStop::Wait,
                "ignore" => DurationStop::Ignore,
                other => {
                    return fail(format!(
                        "duration-stop {other:?}: expected close, wait or ignore"
                    ));
                }
            },
        };
        let format = match self.format.as_deref().unwrap_or("summary") {
            "" | "summary" => Format::Summary,
            "json" => Format::Json,
            "pretty" => Format::Pretty,
            "csv" => Format::Csv,
            other => {
                return fail(format!(
                    "format {other:?} is not supported (supported: summary, json, pretty, csv)"
                ));
            }
        };

        let data = match (self.data, self.data_file) {
            (Some(data), _) => data,
            (None, Some(file)) => read_json(&file, "data-file")?,
            (None, None) => Value::Object(Default::default()),
        };
        match &data {
            Value::Object(_) => {}
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {}
            _ => {
                return fail(
                    "data must be a JSON object, or a non-empty array of objects (used \
                     round-robin)"
                        .into(),
                );
            }
        }
        let metadata = match (self.metadata, self.metadata_file) {
            (Some(metadata), _) => Some(metadata),
            (None, Some(file)) => Some(read_json(&file, "metadata-file")?),
            (None, None) => None,
        };
        if let Some(metadata) = &metadata {
            let strings = metadata
                .as_object()
                .is_some_and(|map| map.values().all(Value::is_string));
            if !strings {
                return fail("metadata must be a JSON object of strings".into());
            }
        }

        let prepare = match self.prepare_sessions.filter(|n| *n > 0) {
            None => None,
            Some(sessions) => Some(PrepareOptions {
                sessions,
                account_prefix: self.prepare_account_prefix.unwrap_or_else(|| {
                    format!(
                        "load-{}-",
                        ulid::Ulid::generate().to_string().to_ascii_lowercase()
                    )
                }),
                sessions_per_account: self.prepare_sessions_per_account.unwrap_or(1).max(1),
                product: enum_value(
                    self.prepare_product.as_deref(),
                    "PRODUCT_",
                    pb::Product::Chatgpt as i32,
                    |name| pb::Product::from_str_name(name).map(|p| p as i32),
                )
                .map_err(LoadError::new)?,
                client_kind: enum_value(
                    self.prepare_client_kind.as_deref(),
                    "CLIENT_KIND_",
                    pb::ClientKind::Browser as i32,
                    |name| pb::ClientKind::from_str_name(name).map(|k| k as i32),
                )
                .map_err(LoadError::new)?,
                concurrency: usize::try_from(
                    self.prepare_concurrency
                        .unwrap_or(concurrency.min(16))
                        .max(1),
                )
                .unwrap_or(16),
            }),
        };

        let cpus = self
            .cpus
            .and_then(|c| usize::try_from(c).ok())
            .filter(|c| *c > 0)
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(usize::from)
                    .unwrap_or(1)
            });
        let to_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let run = RunOptions {
            call,
            host,
            insecure: self.insecure.unwrap_or(false),
            tls: TlsOptions {
                cacert: self.cacert.filter(|s| !s.is_empty()).map(PathBuf::from),
                cert: self.cert.filter(|s| !s.is_empty()).map(PathBuf::from),
                key: self.key.filter(|s| !s.is_empty()).map(PathBuf::from),
                cname: self.cname.filter(|s| !s.is_empty()),
            },
            concurrency: to_usize(concurrency),
            connections: to_usize(connections),
            total,
            duration,
            max_duration,
            duration_stop,
            rps: self.rps.or(self.qps).unwrap_or(0),
            timeout: Some(self.timeout.map_or(Duration::from_secs(20), |t| t.0))
                .filter(|t| !t.is_zero()),
            connect_timeout: self
                .connect_timeout
                .map_or(Duration::from_secs(10), |t| t.0),
            data,
            metadata,
            skip_first,
            name: self.name.unwrap_or_default(),
            tags: self.tags.unwrap_or_default(),
            cpus: cpus as u64,
            prepare,
            progress: false,
            details: self.details.unwrap_or(false) || format == Format::Csv,
        };
        Ok(Plan {
            run,
            format,
            output: self
                .output
                .filter(|o| !o.trim().is_empty())
                .map(PathBuf::from),
            cpus,
            warnings,
        })
    }
}

fn read_json(file: &str, what: &str) -> Result<Value, LoadError> {
    let text = std::fs::read_to_string(file)
        .map_err(|error| LoadError::new(format!("{what} {file}: {error}")))?;
    serde_json::from_str(&text).map_err(|error| LoadError::new(format!("{what} {file}: {error}")))
}

fn enum_value(
    name: Option<&str>,
    prefix: &str,
    default: i32,
    from_name: impl Fn(&str) -> Option<i32>,
) -> Result<i32, String> {
    let Some(name) = name else {
        return Ok(default);
    };
    let upper = name.trim().to_ascii_uppercase();
    from_name(&upper)
        .or_else(|| from_name(&format!("{prefix}{upper}")))
        .ok_or_else(|| format!("unknown value {name:?} (expected a name such as {prefix}…)"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_ghz_keys_and_applies_ghz_rules() {
        let config = GhzConfig::from_value(json!({
            "call": "activesessions.v1.SessionService.ValidateSession",
            "host": "127.0.0.1:50051",
            "insecure": true,
            "total": 1000,
            "concurrency": 32,
            "connections": 4,
            "duration": "10s",
            "rps": 500,
            "skipFirst": 10,
            "data": {"sessionToken": "{{.Token}}"},
            "metadata": {"x-request-id": "{{.UUID}}"},
            "format": "json",
            "prepare-sessions": 100,
            "proto": "x.proto",
            "surprise": 1
        }))
        .unwrap();
        let plan = config.resolve().unwrap();
        assert_eq!(plan.format, Format::Json);
        let run = plan.run;
        assert_eq!(run.concurrency, 32);
        assert_eq!(run.connections, 4);
        assert_eq!(run.duration, Some(Duration::from_secs(10)));
        assert_eq!(run.rps, 500);
        assert_eq!(run.skip_first, 10);
        assert!(run.insecure);
        assert_eq!(run.timeout, Some(Duration::from_secs(20)));
        assert_eq!(run.prepare.unwrap().sessions, 100);
        assert_eq!(plan.warnings.len(), 2, "{:?}", plan.warnings);
    }

    #[test]
    fn command_line_wins_over_the_file() {
        let file =
            GhzConfig::from_value(json!({"call": "a.B/C", "host": "h:1", "total": 5})).unwrap();
        let cli = GhzConfig {
            total: Some(7),
            ..GhzConfig::default()
        };
        let merged = file.merge(cli);
        assert_eq!(merged.total, Some(7));
        assert_eq!(merged.call.as_deref(), Some("a.B/C"));
    }

    #[test]
    fn refuses_what_ghz_refuses() {
        let base = json!({"call": "a.B/C", "host": "h:1"});
        let with = |extra: Value| {
            let mut value = base.clone();
            value
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            GhzConfig::from_value(value).unwrap().resolve()
        };
        assert!(with(json!({"connections": 5, "concurrency": 2})).is_err());
        assert!(with(json!({"skipFirst": 300})).is_err());
        assert!(with(json!({"format": "html"})).is_err());
        assert!(with(json!({"skipTLS": true})).is_err());
        assert!(with(json!({"metadata": {"a": 1}})).is_err());
        assert!(with(json!({"data": "x"})).is_err());
        assert!(GhzConfig::from_value(json!({"duration": "ten"})).is_err());
        assert!(GhzConfig::from_value(json!({})).unwrap().resolve().is_err());
    }
}
