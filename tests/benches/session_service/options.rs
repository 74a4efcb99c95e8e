//! The command line: which scenarios run (filters on `BACKEND/SCENARIO`), how long each
//! throughput is measured, and the sizes; `--quick` (and `cargo test --benches`, which passes
//! no `--bench`) shrinks all of them to a smoke run of a couple of minutes.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

/// How a throughput is measured: a warm-up, then rounds of consecutive windows (one window of
/// each arm per round), each window giving one rate.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub warmup: Duration,
    pub window: Duration,
    pub windows: usize,
}

/// The scenarios, in the order they run on each backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    ValidateCached,
    /// Cache-miss validation (the cache off): CPU per call, the pgbench floor, 8 vs 256 in
    /// flight.
    ValidateDb,
    Register,
    List,
    RevokeAll,
    /// RevokeSession of one device with many sessions.
    RevokeRow,
    /// Bulk-seeded sessions validated with Zipf-distributed tokens.
    Fleet,
    RegisterNodelay,
    ListNodelay,
}

impl Scenario {
    pub const ALL: [Self; 9] = [
        Self::ValidateCached,
        Self::ValidateDb,
        Self::Register,
        Self::List,
        Self::RevokeAll,
        Self::RevokeRow,
        Self::Fleet,
        Self::RegisterNodelay,
        Self::ListNodelay,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::ValidateCached => "validate-cached",
            Self::ValidateDb => "validate-db",
            Self::Register => "register",
            Self::List => "list",
            Self::RevokeAll => "revoke-all",
            Self::RevokeRow => "revoke-row",
            Self::Fleet => "fleet",
            Self::RegisterNodelay => "register+nodelay",
            Self::ListNodelay => "list+nodelay",
        }
    }

    pub fn is_nodelay_diagnostic(self) -> bool {
        matches!(self, Self::RegisterNodelay | Self::ListNodelay)
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub help: bool,
    pub quick: bool,
    /// Run in a child process for the parent bench: print rows and checks as lines.
    pub child: bool,
    pub filters: Vec<String>,
    /// In-flight calls during throughput runs.
    pub concurrency: usize,
    /// HTTP/2 connections the in-flight calls are spread over.
    pub connections: usize,
    /// The headline throughputs.
    pub schedule: Schedule,
    /// Diagnostic throughputs (in-process, TCP_NODELAY).
    pub short: Schedule,
    /// Warm-up of each fleet stage (the cache fills from cold).
    pub fleet_warmup: Duration,
    /// Sequential calls per latency measurement.
    pub latency_calls: usize,
    /// Sessions on the account that RevokeAllSessions logs out (and on the flooded device).
    pub revoke_sessions: usize,
    /// Sessions in the fleet after each stage (five to an account).
    pub fleet_stages: Vec<usize>,
}

impl Options {
    pub const USAGE: &'static str = "\
usage: session_service [--quick] [--concurrency N] [--connections N] [FILTER ...]

  FILTER            run the scenarios whose BACKEND/SCENARIO contains it (e.g. validate,
                    sqlite/register, postgres); scenarios: validate-cached validate-db register
                    list revoke-all revoke-row fleet; diagnostics, only when named:
                    register+nodelay list+nodelay
  --quick           short windows and small sizes (a smoke run of a couple of minutes)
  --concurrency N   in-flight calls during throughput runs (default 32)
  --connections N   HTTP/2 connections they are spread over (default 4)
  --child           (internal) print rows and checks as tab-separated lines for the bench
                    that started this one; the fleet runs so, in a process of its own

PostgreSQL runs too when ACTIVE_SESSIONS_TEST_POSTGRES_URL is set.";

    pub fn parse(args: impl Iterator<Item = String>) -> Result<Self> {
        let mut options = Self {
            help: false,
            quick: false,
            child: false,
            filters: Vec::new(),
            concurrency: 32,
            connections: 4,
            schedule: Schedule {
                warmup: Duration::from_millis(500),
                window: Duration::from_secs(2),
                windows: 5,
            },
            short: Schedule {
                warmup: Duration::from_millis(300),
                window: Duration::from_secs(1),
                windows: 3,
            },
            fleet_warmup: Duration::from_secs(5),
            latency_calls: 200,
            revoke_sessions: 100_000,
            fleet_stages: vec![10_000, 100_000, 1_000_000],
        };
        // Cargo passes `--bench` under `cargo bench`; without it (`cargo test --benches`) the
        // binary only smoke-runs.
        let mut bench = false;
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--bench" => bench = true,
                "--quick" => options.quick = true,
                "--child" => options.child = true,
                "-h" | "--help" => options.help = true,
                "--concurrency" | "--connections" => {
                    let value: usize = args
                        .next()
                        .with_context(|| format!("{arg} needs a value"))?
                        .parse()
                        .with_context(|| format!("{arg} needs a positive number"))?;
                    ensure!(value > 0, "{arg} needs a positive number");
                    if arg == "--concurrency" {
                        options.concurrency = value;
                    } else {
                        options.connections = value;
                    }
                }
                flag if flag.starts_with('-') => bail!("unknown flag {flag}\n\n{}", Self::USAGE),
                filter => options.filters.push(filter.to_owned()),
            }
        }
        if options.quick || !bench {
            options.quick = true;
            options.schedule = Schedule {
                warmup: Duration::from_millis(200),
                window: Duration::from_millis(500),
                windows: 3,
            };
            options.short = Schedule {
                warmup: Duration::from_millis(100),
                window: Duration::from_millis(300),
                windows: 2,
            };
            options.fleet_warmup = Duration::from_millis(500);
            options.latency_calls = 20;
            options.revoke_sessions = 10_000;
            options.fleet_stages = vec![1_000, 10_000, 50_000];
        }
        Ok(options)
    }

    pub fn selects(&self, scenario: Scenario, id: &str) -> bool {
        if scenario.is_nodelay_diagnostic() {
            return self
                .filters
                .iter()
                .any(|filter| filter.contains("nodelay") && id.contains(filter.as_str()));
        }
        self.filters.is_empty()
            || self
                .filters
                .iter()
                .any(|filter| id.contains(filter.as_str()))
    }
}
