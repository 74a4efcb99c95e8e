//! Time, injectable. Every decision that depends on "now" (expiry, idle timeout, trust expiry,
//! revocation cut-offs) reads a [`Clock`], so tests move time with a [`ManualClock`] instead of
//! sleeping. A production server reads an [`AlignedClock`]: the system clock kept on the
//! database's clock, so replicas with skewed clocks still decide expiry alike.

use std::{
    fmt,
    sync::atomic::{AtomicI64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// An instant in UTC, in microseconds since the Unix epoch: the unit every time column uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From microseconds since the epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// This instant plus a duration, saturating.
    pub fn plus(self, duration: Duration) -> Self {
        let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(micros))
    }

    /// This instant minus a duration, saturating.
    pub fn minus(self, duration: Duration) -> Self {
        let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(micros))
    }

    /// As a protobuf timestamp.
    pub fn to_proto(self) -> prost_types::Timestamp {
        prost_types::Timestamp {
            seconds: self.0.div_euclid(1_000_000),
            // Always in 0..1_000_000_000, so the cast cannot truncate.
            nanos: (self.0.rem_euclid(1_000_000) * 1_000) as i32,
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}us", self.0)
    }
}

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Timestamp(i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX))
    }
}

/// The system's wall clock corrected by an offset to a reference clock (the database's, see
/// the `time_alignment` module): every replica reading it agrees on "now" to within the
/// measurement's uncertainty, whatever its own clock says. The offset starts at zero and is
/// replaced by each new measurement.
#[derive(Debug, Default)]
pub struct AlignedClock {
    offset_micros: AtomicI64,
}

impl AlignedClock {
    /// A clock with no correction yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the correction: the reference clock minus the system clock, in microseconds.
    pub fn set_offset_micros(&self, offset: i64) {
        self.offset_micros.store(offset, Ordering::Relaxed);
    }

    /// The correction in force, in microseconds.
    pub fn offset_micros(&self) -> i64 {
        self.offset_micros.load(Ordering::Relaxed)
    }
}

impl Clock for AlignedClock {
    fn now(&self) -> Timestamp {
        let local = SystemClock.now();
        Timestamp(local.0.saturating_add(self.offset_micros()))
    }
}

/// A clock that moves only when told to; for tests. Each reading returns a distinct,
/// increasing instant (one microsecond apart) so that ordering by time stays total.
#[derive(Debug)]
pub struct ManualClock {
    micros: AtomicI64,
}

impl ManualClock {
    /// A clock reading `start` (then one microsecond later at each reading).
    pub fn new(start: Timestamp) -> Self {
        Self {
            micros: AtomicI64::new(start.0),
        }
    }

    /// A clock starting at the current system time.
    pub fn starting_now() -> Self {
        Self::new(SystemClock.now())
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let micros = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.micros.fetch_add(micros, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.micros.fetch_add(1, Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto_conversion_handles_times_before_the_epoch() {
        let ts = Timestamp::from_micros(-1).to_proto();
        assert_eq!((ts.seconds, ts.nanos), (-1, 999_999_000));
        let ts = Timestamp::from_micros(1_500_000).to_proto();
        assert_eq!((ts.seconds, ts.nanos), (1, 500_000_000));
    }

    #[test]
    fn aligned_clock_adds_its_offset_to_the_system_clock() {
        let clock = AlignedClock::new();
        clock.set_offset_micros(-300_000_000);
        let behind = SystemClock.now().as_micros() - clock.now().as_micros();
        assert!((299_000_000..=301_000_000).contains(&behind), "{behind}");
        assert_eq!(clock.offset_micros(), -300_000_000);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp::from_micros(1_000));
        let first = clock.now();
        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.now().as_micros(), first.as_micros() + 1 + 1_000_000);
    }
}
