//! A lock-free latency histogram that every load worker records into: 1 µs buckets below
//! 128 µs, then 64 buckets per power of two (under 1.6% apart), up to about 12 days. A window
//! is the difference of two snapshots, so percentiles cover exactly the calls it counted.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

const LINEAR: u64 = 128;
const PER_OCTAVE: u64 = 64;
const OCTAVES: u64 = 34;
const BUCKETS: usize = (LINEAR + PER_OCTAVE * OCTAVES) as usize;

/// The live histogram.
#[derive(Debug)]
pub struct Histogram(Vec<AtomicU64>);

/// Counts per bucket at one instant, or over a window.
#[derive(Debug, Clone, Default)]
pub struct Counts(Vec<u64>);

impl Histogram {
    pub fn new() -> Self {
        Self((0..BUCKETS).map(|_| AtomicU64::new(0)).collect())
    }

    pub fn record(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.0[bucket(micros)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Counts {
        Counts(self.0.iter().map(|b| b.load(Ordering::Relaxed)).collect())
    }
}

impl Counts {
    /// What was recorded since `earlier`.
    pub fn since(&self, earlier: &Self) -> Self {
        Self(
            self.0
                .iter()
                .enumerate()
                .map(|(i, n)| n - earlier.0.get(i).copied().unwrap_or(0))
                .collect(),
        )
    }

    /// Adds another window's counts.
    pub fn merge(&mut self, other: &Self) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (mine, theirs) in self.0.iter_mut().zip(&other.0) {
            *mine += theirs;
        }
    }

    /// The nearest-rank percentile (`p` in 0..=1), as its bucket's lower bound; `None` when
    /// nothing was recorded.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        let total: u64 = self.0.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((p * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        self.0.iter().enumerate().find_map(|(i, n)| {
            seen += n;
            (seen >= rank).then(|| Duration::from_micros(lower_bound(i as u64)))
        })
    }
}

fn bucket(micros: u64) -> usize {
    if micros < LINEAR {
        return micros as usize;
    }
    let octave = u64::from(63 - micros.leading_zeros()) - 7;
    let sub = (micros >> (octave + 1)) & (PER_OCTAVE - 1);
    (LINEAR + octave * PER_OCTAVE + sub).min(BUCKETS as u64 - 1) as usize
}

fn lower_bound(bucket: u64) -> u64 {
    if bucket < LINEAR {
        return bucket;
    }
    let octave = (bucket - LINEAR) / PER_OCTAVE;
    let sub = (bucket - LINEAR) % PER_OCTAVE;
    (PER_OCTAVE + sub) << (octave + 1)
}
