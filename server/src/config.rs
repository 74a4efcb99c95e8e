//! Configuration: command-line flags, each with an environment variable of the same meaning
//! (`ACTIVE_SESSIONS_*`). Flags win over the environment; defaults make `cargo run` work on a
//! fresh machine with nothing else installed.
//!
//! Secrets (the database URL's password) never print: [`SecretUrl`]'s `Debug` and `Display`
//! hide them.

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The default database: a SQLite file under `./data/`, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/active-sessions.db";

/// active-sessions: the sign-in sessions of an account across first-party products.
#[derive(Debug, Parser)]
#[command(name = "active-sessions", version, about, long_about = None)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings for `serve` (also accepted without the subcommand).
    #[command(flatten)]
    pub config: Config,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gRPC server (the default). Migrates the database first.
    Serve,
    /// Bring the database schema up to date, then exit.
    Migrate,
    /// Ask a running server for its health, as a container health check or an exec probe does:
    /// exit status 0 when SERVING, 1 otherwise.
    Health(HealthProbe),
    /// Delete what is past its retention now (as the server's background pruner does), or with
    /// `--dry-run` only count it; prints one line per table. Takes the same settings as `serve`.
    Prune(PruneArgs),
}

/// What `active-sessions prune` does.
#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    /// Only count what would be deleted.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
}

/// What `active-sessions health` asks, and where.
#[derive(Debug, Clone, Args)]
pub struct HealthProbe {
    /// The server's gRPC address.
    #[arg(long = "addr", default_value = "127.0.0.1:50051")]
    pub addr: String,
    /// The health name: `liveness` (the process alone), `""` (the whole server, database
    /// included) or a service's full name.
    #[arg(long = "service", default_value = "")]
    pub service: String,
    /// How long to wait for the answer.
    #[arg(long = "timeout", default_value = "3s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Everything the server needs to run.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on for gRPC (HTTP/2, plaintext).
    #[arg(
        long,
        env = "ACTIVE_SESSIONS_LISTEN",
        default_value = "127.0.0.1:50051"
    )]
    pub listen: SocketAddr,

    /// Database settings.
    #[command(flatten)]
    pub database: DatabaseConfig,

    /// Logging settings.
    #[command(flatten)]
    pub log: LogConfig,

    /// Session lifetime policy.
    #[command(flatten)]
    pub sessions: SessionPolicy,

    /// How long ended sessions, security events and the revocation log are kept.
    #[command(flatten)]
    pub retention: RetentionPolicy,

    /// Path of a MaxMind-format city database (GeoIP2 or GeoLite2 City) used to show an
    /// approximate location for IP addresses. Without it locations stay empty.
    #[arg(long, env = "ACTIVE_SESSIONS_GEOIP_DATABASE")]
    pub geoip_database: Option<PathBuf>,

    /// Callers, limits and TLS.
    #[command(flatten)]
    pub security: SecurityConfig,

    /// How long in-flight calls may run after a shutdown signal before they are cut off.
    #[arg(long, env = "ACTIVE_SESSIONS_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// How long a client connection may live: then the server asks the client to reconnect
    /// (HTTP/2 GOAWAY), so that a client behind one address spreads over replicas added since it
    /// connected. Calls in flight get `--max-connection-age-grace` to finish; a revocation
    /// stream then resumes on the new connection from its cursor.
    #[arg(long, env = "ACTIVE_SESSIONS_MAX_CONNECTION_AGE", default_value = "5m", value_parser = parse_duration)]
    pub max_connection_age: Duration,

    /// How long calls in flight on a connection past its age may still run.
    #[arg(long, env = "ACTIVE_SESSIONS_MAX_CONNECTION_AGE_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub max_connection_age_grace: Duration,
}

/// Database connection settings.
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// Database URL: `sqlite://PATH` (created if missing) or `postgres://USER@HOST:PORT/DB`.
    #[arg(long = "database-url", env = "ACTIVE_SESSIONS_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub url: SecretUrl,

    /// A file holding the database URL (a mounted Kubernetes Secret, a Docker secret), so that
    /// no password sits in the environment. When set it takes the place of `--database-url`.
    /// Alternatively keep the password out of the URL and give it in libpq's password file
    /// (`PGPASSFILE`).
    #[arg(long = "database-url-file", env = "ACTIVE_SESSIONS_DATABASE_URL_FILE")]
    pub url_file: Option<PathBuf>,

    /// Largest number of pooled database connections [default: 16 on PostgreSQL; on SQLite the
    /// number of CPU cores, at least 2, since SQLite reads run on this host's cores and more
    /// connections than cores only contend].
    #[arg(
        long = "database-max-connections",
        env = "ACTIVE_SESSIONS_DATABASE_MAX_CONNECTIONS"
    )]
    pub max_connections: Option<u32>,

    /// How long to wait when opening a database connection.
    #[arg(long = "database-connect-timeout", env = "ACTIVE_SESSIONS_DATABASE_CONNECT_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// How long a request waits for a pooled connection before failing with UNAVAILABLE.
    #[arg(long = "database-acquire-timeout", env = "ACTIVE_SESSIONS_DATABASE_ACQUIRE_TIMEOUT", default_value = "3s", value_parser = parse_duration)]
    pub acquire_timeout: Duration,

    /// A pooled connection left unused this long is checked with a round trip to the database
    /// before a call uses it, so one the database or a proxy closed while it sat idle is
    /// replaced instead of failing the call. A connection in steady use goes straight to its
    /// statement: checking it on every call would add a round trip to each (0s: check every
    /// time).
    #[arg(long = "database-check-idle-after", env = "ACTIVE_SESSIONS_DATABASE_CHECK_IDLE_AFTER", default_value = "500ms", value_parser = parse_duration)]
    pub check_idle_after: Duration,

    /// Log every SQL statement at debug level (off by default: it is loud and slow).
    #[arg(
        long = "database-log-statements",
        env = "ACTIVE_SESSIONS_DATABASE_LOG_STATEMENTS",
        default_value_t = false
    )]
    pub log_statements: bool,
}

/// Who may call, how much, and over what transport.
#[derive(Debug, Clone, Args)]
pub struct SecurityConfig {
    /// The callers file (TOML: each calling service's name, roles, products and credential).
    /// Without it the server runs in local development mode: every call is allowed, and only
    /// a loopback listen address is accepted. Re-read on SIGHUP.
    #[arg(long = "callers-file", env = "ACTIVE_SESSIONS_CALLERS_FILE")]
    pub callers_file: Option<PathBuf>,

    /// Calls per second each caller may make, unless its entry says otherwise (0: no limit).
    #[arg(
        long = "caller-rate-limit",
        env = "ACTIVE_SESSIONS_CALLER_RATE_LIMIT",
        default_value_t = 5_000
    )]
    pub caller_rate_limit: u32,

    /// Calls in flight across all connections; more are refused at once with UNAVAILABLE.
    #[arg(
        long = "max-concurrent-calls",
        env = "ACTIVE_SESSIONS_MAX_CONCURRENT_CALLS",
        default_value_t = 1_024
    )]
    pub max_concurrent_calls: usize,

    /// Largest request message accepted, in bytes.
    #[arg(long = "max-message-bytes", env = "ACTIVE_SESSIONS_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub max_message_bytes: usize,

    /// Longest a unary call may take, whatever deadline the client sent.
    #[arg(long = "request-timeout", env = "ACTIVE_SESSIONS_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// File holding the token seal key (64 hexadecimal characters, e.g. `openssl rand -hex 32`),
    /// which encrypts the tokens kept for idempotent registration replays; never stored in the
    /// database. Without it, SQLite generates `token-seal.key` beside the database file; a
    /// PostgreSQL deployment with a callers file refuses to start.
    #[arg(
        long = "token-seal-key-file",
        env = "ACTIVE_SESSIONS_TOKEN_SEAL_KEY_FILE"
    )]
    pub token_seal_key_file: Option<PathBuf>,

    /// PEM certificate chain: serve TLS with it (requires --tls-key).
    #[arg(
        long = "tls-cert",
        env = "ACTIVE_SESSIONS_TLS_CERT",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(
        long = "tls-key",
        env = "ACTIVE_SESSIONS_TLS_KEY",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// PEM CA certificate(s): require client certificates signed by it (mTLS).
    #[arg(
        long = "tls-client-ca",
        env = "ACTIVE_SESSIONS_TLS_CLIENT_CA",
        requires = "tls_cert"
    )]
    pub tls_client_ca: Option<PathBuf>,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            callers_file: None,
            caller_rate_limit: 5_000,
            max_concurrent_calls: 1_024,
            max_message_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            token_seal_key_file: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
        }
    }
}

/// Logging settings.
#[derive(Debug, Clone, Args)]
pub struct LogConfig {
    /// Log filter: a level (`info`) or per-target directives (`info,active_sessions_server=debug`).
    #[arg(
        long = "log-level",
        env = "ACTIVE_SESSIONS_LOG",
        default_value = "info"
    )]
    pub level: String,

    /// Log line format.
    #[arg(long = "log-format", env = "ACTIVE_SESSIONS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// How long sessions live.
#[derive(Debug, Clone, Args)]
pub struct SessionPolicy {
    /// Lifetime of a session registered without one.
    #[arg(long = "session-lifetime", env = "ACTIVE_SESSIONS_SESSION_LIFETIME", default_value = "30days", value_parser = parse_duration)]
    pub default_lifetime: Duration,

    /// Longest lifetime a registration may ask for.
    #[arg(long = "session-max-lifetime", env = "ACTIVE_SESSIONS_SESSION_MAX_LIFETIME", default_value = "400days", value_parser = parse_duration)]
    pub max_lifetime: Duration,

    /// A session with no recorded activity for this long is no longer valid.
    #[arg(long = "session-idle-timeout", env = "ACTIVE_SESSIONS_SESSION_IDLE_TIMEOUT", default_value = "14days", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// How often coalesced activity heartbeats are written to the database.
    #[arg(long = "touch-flush-interval", env = "ACTIVE_SESSIONS_TOUCH_FLUSH_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub touch_flush_interval: Duration,

    /// How long a registration request id is remembered.
    #[arg(long = "request-id-retention", env = "ACTIVE_SESSIONS_REQUEST_ID_RETENTION", default_value = "24h", value_parser = parse_duration)]
    pub request_id_retention: Duration,

    /// Most validations kept in the server's validation cache (0 turns it off).
    #[arg(
        long = "validation-cache-entries",
        env = "ACTIVE_SESSIONS_VALIDATION_CACHE_ENTRIES",
        default_value_t = 100_000
    )]
    pub validation_cache_entries: usize,

    /// Longest a validation stays in the server's cache.
    #[arg(long = "validation-cache-ttl", env = "ACTIVE_SESSIONS_VALIDATION_CACHE_TTL", default_value = "60s", value_parser = parse_duration)]
    pub validation_cache_ttl: Duration,

    /// How long a device stays trusted when TrustDevice names no duration.
    #[arg(long = "trust-duration", env = "ACTIVE_SESSIONS_TRUST_DURATION", default_value = "30days", value_parser = parse_duration)]
    pub trust_duration: Duration,

    /// Longest trust a TrustDevice call may ask for.
    #[arg(long = "trust-max-duration", env = "ACTIVE_SESSIONS_TRUST_MAX_DURATION", default_value = "365days", value_parser = parse_duration)]
    pub trust_max_duration: Duration,

    /// Most active visible sessions one account may hold (0: no limit). At the limit, a sign-in
    /// ends the account's oldest active visible session.
    #[arg(
        long = "max-sessions-per-account",
        env = "ACTIVE_SESSIONS_MAX_SESSIONS_PER_ACCOUNT",
        default_value_t = 10_000
    )]
    pub max_sessions_per_account: u64,

    /// How often the revocation log is read for revocations made by other replicas.
    #[arg(long = "revocation-poll-interval", env = "ACTIVE_SESSIONS_REVOCATION_POLL_INTERVAL", default_value = "250ms", value_parser = parse_duration)]
    pub revocation_poll_interval: Duration,
}

/// How long what is kept; the background pruner deletes the rest.
#[derive(Debug, Clone, Args)]
pub struct RetentionPolicy {
    /// How long a session row is kept after it was revoked or passed its absolute expiry.
    #[arg(long = "revoked-session-retention", env = "ACTIVE_SESSIONS_REVOKED_SESSION_RETENTION", default_value = "30days", value_parser = parse_duration)]
    pub revoked_session: Duration,

    /// How long a security event (the account's history) is kept.
    #[arg(long = "security-event-retention", env = "ACTIVE_SESSIONS_SECURITY_EVENT_RETENTION", default_value = "400days", value_parser = parse_duration)]
    pub security_event: Duration,

    /// How long an entry of the revocation log is kept: a WatchRevocations cursor older than
    /// this cannot resume (OUT_OF_RANGE) and its cache resynchronises.
    #[arg(long = "revocation-log-retention", env = "ACTIVE_SESSIONS_REVOCATION_LOG_RETENTION", default_value = "30days", value_parser = parse_duration)]
    pub revocation_log: Duration,

    /// How often the background pruner runs.
    #[arg(long = "prune-interval", env = "ACTIVE_SESSIONS_PRUNE_INTERVAL", default_value = "10m", value_parser = parse_duration)]
    pub interval: Duration,

    /// Rows the pruner deletes per transaction.
    #[arg(
        long = "prune-batch",
        env = "ACTIVE_SESSIONS_PRUNE_BATCH",
        default_value_t = 1_000
    )]
    pub batch: u64,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            revoked_session: Duration::from_secs(30 * 86_400),
            security_event: Duration::from_secs(400 * 86_400),
            revocation_log: Duration::from_secs(30 * 86_400),
            interval: Duration::from_secs(600),
            batch: 1_000,
        }
    }
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            default_lifetime: Duration::from_secs(30 * 86_400),
            max_lifetime: Duration::from_secs(400 * 86_400),
            idle_timeout: Duration::from_secs(14 * 86_400),
            touch_flush_interval: Duration::from_secs(5),
            request_id_retention: Duration::from_secs(86_400),
            validation_cache_entries: 100_000,
            validation_cache_ttl: Duration::from_secs(60),
            trust_duration: Duration::from_secs(30 * 86_400),
            trust_max_duration: Duration::from_secs(365 * 86_400),
            revocation_poll_interval: Duration::from_millis(250),
            max_sessions_per_account: 10_000,
        }
    }
}

impl Config {
    /// The configuration for a server on `listen` with `database_url` and every other setting at
    /// its default. Tests and embedders start from this.
    pub fn new(listen: SocketAddr, database_url: impl Into<String>) -> Self {
        Self {
            listen,
            database: DatabaseConfig {
                url: SecretUrl(database_url.into()),
                url_file: None,
                max_connections: None,
                connect_timeout: Duration::from_secs(5),
                acquire_timeout: Duration::from_secs(3),
                check_idle_after: Duration::from_millis(500),
                log_statements: false,
            },
            log: LogConfig {
                level: "info".into(),
                format: LogFormat::Text,
            },
            sessions: SessionPolicy::default(),
            retention: RetentionPolicy::default(),
            geoip_database: None,
            security: SecurityConfig::default(),
            shutdown_grace: Duration::from_secs(10),
            max_connection_age: Duration::from_secs(300),
            max_connection_age_grace: Duration::from_secs(30),
        }
    }
}

/// A URL that may carry a password. `Debug` and `Display` show it with the password replaced.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// The URL itself, password included: only for opening the connection.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let Some(scheme_end) = url.find("://") else {
            return url.clone();
        };
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => format!(
                "{}{}:***{}",
                &url[..scheme_end + 3],
                &authority[..colon],
                &rest[at..]
            ),
            _ => url.clone(),
        }
    }
}

impl DatabaseConfig {
    /// Reads the URL from [`url_file`](Self::url_file) when one is given (surrounding whitespace,
    /// such as a final newline, is not part of it).
    pub fn resolve_url_file(&mut self) -> Result<(), std::io::Error> {
        if let Some(path) = &self.url_file {
            let text = std::fs::read_to_string(path).map_err(|err| {
                std::io::Error::new(
                    err.kind(),
                    format!("database URL file {}: {err}", path.display()),
                )
            })?;
            self.url = SecretUrl(text.trim().to_owned());
        }
        Ok(())
    }

    /// The pool size: `max_connections` when set, otherwise 16 on PostgreSQL and the number of
    /// CPU cores (at least 2) on SQLite.
    pub fn pool_size(&self, is_sqlite: bool) -> u32 {
        self.max_connections.unwrap_or_else(|| {
            if is_sqlite {
                std::thread::available_parallelism()
                    .map_or(2, |cores| u32::try_from(cores.get()).unwrap_or(u32::MAX))
                    .max(2)
            } else {
                16
            }
        })
    }
}

impl From<String> for SecretUrl {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl std::str::FromStr for SecretUrl {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Parses `30s`, `5m`, `14days`, `24h` and other humantime durations.
fn parse_duration(value: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_password_never_prints() {
        let url = SecretUrl("postgres://app:hunter2@db:5432/sessions".into());
        assert_eq!(format!("{url:?}"), "postgres://app:***@db:5432/sessions");
        assert_eq!(url.to_string(), "postgres://app:***@db:5432/sessions");
        let plain = SecretUrl("sqlite://data/a.db".into());
        assert_eq!(plain.to_string(), "sqlite://data/a.db");
    }

    #[test]
    fn defaults_need_nothing_installed() {
        let cli = Cli::parse_from(["active-sessions"]);
        assert_eq!(cli.config.listen.to_string(), "127.0.0.1:50051");
        assert_eq!(cli.config.database.url.expose(), DEFAULT_DATABASE_URL);
        assert!(cli.command.is_none());
    }
}
