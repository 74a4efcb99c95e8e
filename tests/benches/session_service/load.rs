//! The load generator: workers that call without pause, counted in consecutive windows, each
//! window carrying its calls, its latency histogram, the server's (and database's) CPU, the
//! validation cache's hits and misses, and the resident set at its end. Rounds alternate
//! several arms (the call, Health/Check, pgbench, the call at another concurrency) so that a
//! noisy machine moves them alike and their ratio is taken round by round.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Result;
use futures::future::{BoxFuture, try_join_all};
use tokio::{runtime::Handle, task::JoinHandle};
use tonic::transport::Channel;

use crate::{
    histogram::{Counts, Histogram},
    options::Schedule,
    pgbench::Pgbench,
    probe::{Cpu, Probe, resident_bytes},
};

/// Load before a window after switching arms.
pub const SWITCH_WARMUP: Duration = Duration::from_millis(200);

/// One call of a worker: (its connection, worker number, the worker's call count so far).
pub type Call = Arc<dyn Fn(Channel, usize, u64) -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// Wraps a closure as a [`Call`].
pub fn call<F, Fut>(f: F) -> Call
where
    F: Fn(Channel, usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    Arc::new(move |channel, worker, i| Box::pin(f(channel, worker, i)))
}

/// Hits and misses of the server's validation cache so far.
pub type CacheCounter = Arc<dyn Fn() -> (u64, u64) + Send + Sync>;

/// Where load runs and what each window reads.
#[derive(Clone)]
pub struct Driver {
    /// The connections; worker `w` uses `w % len`.
    pub channels: Vec<Channel>,
    /// The runtime the workers run on: the load generator's, or the server's for in-process
    /// calls (whose CPU is then the server's).
    pub runtime: Handle,
    pub probe: Probe,
    pub cache: Option<CacheCounter>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("channels", &self.channels.len())
            .field("probe", &self.probe)
            .finish_non_exhaustive()
    }
}

/// What one window measured.
#[derive(Debug, Clone, Default)]
pub struct Window {
    pub calls: u64,
    pub elapsed: Duration,
    pub cpu: Cpu,
    pub latency: Counts,
    /// Validation cache hits and misses within the window.
    pub cache: Option<(u64, u64)>,
    /// The process's resident set at the window's end.
    pub resident: u64,
}

impl Window {
    pub fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Server CPU per completed call (`None` for a window without calls or CPU readings).
    pub fn server_cpu_per_call(&self) -> Option<Duration> {
        (self.calls > 0 && self.cpu.server > Duration::ZERO)
            .then(|| self.cpu.server / u32::try_from(self.calls).unwrap_or(u32::MAX))
    }

    /// Database CPU per completed call (PostgreSQL).
    pub fn database_cpu_per_call(&self) -> Option<Duration> {
        let database = self.cpu.database?;
        (self.calls > 0).then(|| database / u32::try_from(self.calls).unwrap_or(u32::MAX))
    }
}

/// One arm of a round.
#[derive(Clone)]
pub enum Arm<'a> {
    /// `concurrency` workers making `call` through `driver`.
    Calls {
        driver: &'a Driver,
        concurrency: usize,
        call: Call,
    },
    /// A pgbench run as long as a window.
    Pgbench(&'a Pgbench),
}

impl<'a> Arm<'a> {
    pub fn calls(driver: &'a Driver, concurrency: usize, call: Call) -> Self {
        Self::Calls {
            driver,
            concurrency,
            call,
        }
    }

    /// Health/Check, the transport's baseline.
    pub fn health(driver: &'a Driver, concurrency: usize) -> Self {
        Self::calls(driver, concurrency, crate::calls::health_check())
    }
}

/// `schedule.windows` rounds of one window of each arm in turn; the windows of each arm.
pub async fn rounds(schedule: Schedule, arms: &[Arm<'_>]) -> Result<Vec<Vec<Window>>> {
    let mut windows = vec![Vec::with_capacity(schedule.windows); arms.len()];
    for round in 0..schedule.windows {
        for (i, arm) in arms.iter().enumerate() {
            let warmup = if round == 0 && i == 0 {
                schedule.warmup
            } else {
                SWITCH_WARMUP
            };
            let window = match arm {
                Arm::Calls {
                    driver,
                    concurrency,
                    call,
                } => load(driver, *concurrency, warmup, schedule.window, 1, call).await?,
                Arm::Pgbench(pgbench) => vec![pgbench.window(schedule.window).await?],
            };
            windows[i].extend(window);
        }
    }
    Ok(windows)
}

/// The windows of [`rounds`] of `N` arms, one list per arm.
pub fn per_arm<const N: usize>(windows: Vec<Vec<Window>>) -> Result<[Vec<Window>; N]> {
    <[Vec<Window>; N]>::try_from(windows)
        .map_err(|w| anyhow::anyhow!("{} arms measured, {N} expected", w.len()))
}

/// Consecutive windows of one call after one warm-up.
pub async fn throughput(
    driver: &Driver,
    concurrency: usize,
    schedule: Schedule,
    call: &Call,
) -> Result<Vec<Window>> {
    load(
        driver,
        concurrency,
        schedule.warmup,
        schedule.window,
        schedule.windows,
        call,
    )
    .await
}

/// Runs `call` from `concurrency` workers without pause and measures `windows` consecutive
/// windows after `warmup`.
pub async fn load(
    driver: &Driver,
    concurrency: usize,
    warmup: Duration,
    window: Duration,
    windows: usize,
    call: &Call,
) -> Result<Vec<Window>> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let histogram = Arc::new(Histogram::new());
    let workers: Vec<JoinHandle<Result<()>>> = (0..concurrency)
        .map(|worker| {
            let (call, stop, done) = (call.clone(), stop.clone(), done.clone());
            let histogram = histogram.clone();
            let channel = driver.channels[worker % driver.channels.len()].clone();
            driver.runtime.spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    if let Err(err) = call(channel.clone(), worker, i).await {
                        stop.store(true, Ordering::Relaxed);
                        return Err(err);
                    }
                    histogram.record(started.elapsed());
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                    // A call that completes without waiting (an in-process cache hit) must
                    // still let the runtime's other tasks and timers run.
                    tokio::task::consume_budget().await;
                }
                Ok(())
            })
        })
        .collect();
    tokio::time::sleep(warmup).await;
    let mut measured = Vec::with_capacity(windows);
    for _ in 0..windows {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let reading = Reading::take(driver, &done, &histogram);
        tokio::time::sleep(window).await;
        measured.push(Reading::take(driver, &done, &histogram).since(&reading));
    }
    stop.store(true, Ordering::Relaxed);
    for worker in try_join_all(workers).await? {
        worker?;
    }
    Ok(measured)
}

/// The counters at a window's edge.
struct Reading {
    at: Instant,
    done: u64,
    latency: Counts,
    cpu: crate::probe::Sample,
    cache: Option<(u64, u64)>,
}

impl Reading {
    fn take(driver: &Driver, done: &AtomicU64, histogram: &Histogram) -> Self {
        Self {
            at: Instant::now(),
            done: done.load(Ordering::Relaxed),
            latency: histogram.snapshot(),
            cpu: driver.probe.sample(),
            cache: driver.cache.as_ref().map(|counter| counter()),
        }
    }

    fn since(self, start: &Self) -> Window {
        Window {
            calls: self.done - start.done,
            elapsed: self.at - start.at,
            cpu: self.cpu.since(&start.cpu),
            latency: self.latency.since(&start.latency),
            cache: self
                .cache
                .zip(start.cache)
                .map(|((hits, misses), (h0, m0))| (hits - h0, misses - m0)),
            resident: resident_bytes(),
        }
    }
}

/// Times up to `calls` sequential runs of `call` (after three warm-up runs), stopping early
/// once `budget` is spent.
pub async fn latencies<F, Fut>(calls: usize, budget: Duration, mut call: F) -> Result<Vec<Duration>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    for _ in 0..3 {
        call().await?;
    }
    let started = Instant::now();
    let mut times = Vec::with_capacity(calls);
    while times.len() < calls.max(1) && (times.is_empty() || started.elapsed() < budget) {
        let start = Instant::now();
        call().await?;
        times.push(start.elapsed());
    }
    Ok(times)
}
