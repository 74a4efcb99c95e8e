//! CPU and memory read from /proc around each measurement window.
//!
//! Server CPU: the server runs in this process on a tokio runtime of its own whose threads
//! (workers and blocking pool) are named [`SERVER_THREAD`]; SQLite connections run on sqlx's
//! worker threads (`sqlx-sqlite-worker-N`, whose comm reads `sqlx-sqlite-wor`). The load
//! generator runs on another runtime ([`LOAD_THREAD`]), so a sample sums utime + stime of the
//! server's threads alone from `/proc/self/task/*/stat` (clock ticks of 10 ms: windows of
//! seconds keep that well under 1%). The bench's own SQLite seeding connections are closed
//! before any window, so every sqlx worker alive in a window is the server's. A thread that
//! ends inside a window takes its CPU with it; [`Cpu::lost_threads`] counts those.
//!
//! Database CPU: on PostgreSQL, the same sum over the backend processes serving the bench's
//! database (their command line names it), beside the server's.
//!
//! Memory: the process's resident set (`VmRSS`), server and load generator together.

use std::{collections::HashMap, time::Duration};

/// The name of the server runtime's threads.
pub const SERVER_THREAD: &str = "as-server";
/// The name of the load generator's threads.
pub const LOAD_THREAD: &str = "bench-load";
/// What sqlx's SQLite worker threads show as comm (truncated to 15 bytes).
const SQLITE_WORKER: &str = "sqlx-sqlite-wor";
/// `USER_HZ`: the unit of utime and stime.
const TICKS_PER_SECOND: u64 = 100;

/// Which threads and processes a sample counts.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    /// The PostgreSQL database whose backends count as database CPU.
    pub database: Option<String>,
}

/// CPU counters at one instant.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Ticks of each server thread, by thread id.
    server: HashMap<u32, u64>,
    /// Ticks of each PostgreSQL backend of the database, by process id.
    database: Option<HashMap<u32, u64>>,
}

/// CPU spent between two samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    pub server: Duration,
    pub database: Option<Duration>,
    /// Server threads (or backends) that ended between the samples, their CPU uncounted.
    pub lost_threads: usize,
}

impl Probe {
    pub fn sample(&self) -> Sample {
        let server = tasks("/proc/self/task")
            .into_iter()
            .filter(|(_, comm, _)| comm == SERVER_THREAD || comm == SQLITE_WORKER)
            .map(|(tid, _, ticks)| (tid, ticks))
            .collect();
        let database = self.database.as_ref().map(|name| postgres_backends(name));
        Sample { server, database }
    }
}

impl Sample {
    /// The CPU spent since `earlier`.
    pub fn since(&self, earlier: &Self) -> Cpu {
        let (server, lost) = spent(&earlier.server, &self.server);
        let database = match (&earlier.database, &self.database) {
            (Some(before), Some(after)) => Some(spent(before, after)),
            _ => None,
        };
        Cpu {
            server,
            database: database.map(|(cpu, _)| cpu),
            lost_threads: lost + database.map_or(0, |(_, lost)| lost),
        }
    }
}

/// Ticks spent from `before` to `after` (threads born in between count from zero), and how
/// many of `before`'s threads are gone.
fn spent(before: &HashMap<u32, u64>, after: &HashMap<u32, u64>) -> (Duration, usize) {
    let ticks: u64 = after
        .iter()
        .map(|(id, now)| now.saturating_sub(before.get(id).copied().unwrap_or(0)))
        .sum();
    let lost = before.keys().filter(|id| !after.contains_key(id)).count();
    (
        Duration::from_millis(ticks * 1_000 / TICKS_PER_SECOND),
        lost,
    )
}

/// The CPU this whole process has spent so far (every thread, the load generator's included).
pub fn process_cpu() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| parse_stat(&stat))
        .map_or(0, |(_, ticks)| ticks);
    Duration::from_millis(ticks * 1_000 / TICKS_PER_SECOND)
}

/// (id, comm, utime + stime) of every entry of a `/proc/.../task` or `/proc` directory.
fn tasks(dir: &str) -> Vec<(u32, String, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let id: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let (comm, ticks) = parse_stat(&stat)?;
            Some((id, comm, ticks))
        })
        .collect()
}

/// The comm and utime + stime of a `stat` line (`pid (comm) state ppid ...`: utime and stime
/// are fields 14 and 15; comm may hold spaces and parentheses, so split at the last `)`).
fn parse_stat(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let mut fields = stat.get(close + 1..)?.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((comm, utime + stime))
}

/// Ticks of the PostgreSQL backends serving `database` (a backend's command line reads
/// `postgres: CLUSTER: USER DATABASE HOST(PORT) STATE`).
fn postgres_backends(database: &str) -> HashMap<u32, u64> {
    let needle = format!(" {database} ");
    tasks("/proc")
        .into_iter()
        .filter(|(_, comm, _)| comm == "postgres")
        .filter(|(pid, _, _)| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|line| String::from_utf8_lossy(&line).contains(&needle))
        })
        .map(|(pid, _, ticks)| (pid, ticks))
        .collect()
}

/// The process's resident set now, in bytes.
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map_or(0, |kib| kib * 1024)
}

/// How many of this process's threads have each comm (a line for the bench's header).
pub fn thread_census() -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for (_, comm, _) in tasks("/proc/self/task") {
        match counts.iter_mut().find(|(name, _)| *name == comm) {
            Some((_, count)) => *count += 1,
            None => counts.push((comm, 1)),
        }
    }
    counts.sort();
    counts
        .iter()
        .map(|(name, count)| format!("{name} x{count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The load averages, for the header and footer.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}
