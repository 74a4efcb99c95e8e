//! Retries of idempotent calls: jittered exponential backoff within one overall deadline.

use std::{
    collections::hash_map::RandomState,
    future::Future,
    hash::BuildHasher,
    time::{Duration, Instant},
};

use tonic::Status;

use crate::Error;

/// How the typed clients retry idempotent calls (validation, listings, checks, reads,
/// registration with its request id, and removing a device's trust without logging out its
/// sessions) when the server is unavailable, overloaded or rate limiting. Calls that change
/// state without an idempotency key (touch, log-outs, trusting a device) are never retried: they
/// make one attempt and report the error.
///
/// Between attempts the client sleeps a random time up to `base_backoff * 2^(attempt-1)`
/// (capped at `max_backoff`), and at least as long as the server's `RetryInfo` asks. Every
/// attempt, and the sleeps between them, stay within `deadline`, which is also sent to the
/// server as each attempt's `grpc-timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 means no retry).
    pub max_attempts: u32,
    /// The backoff ceiling after the first failure; it doubles after each further one.
    pub base_backoff: Duration,
    /// The largest backoff ceiling.
    pub max_backoff: Duration,
    /// The time allowed for the whole call, retries included; `None` for no deadline beyond the
    /// connection's request timeout.
    pub deadline: Option<Duration>,
}

impl Default for RetryPolicy {
    /// Four attempts, 50 ms base, 1 s cap, 10 s overall deadline.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            deadline: Some(Duration::from_secs(10)),
        }
    }
}

impl RetryPolicy {
    /// One attempt per call, with the default deadline.
    pub fn no_retries() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// This policy with `attempts` attempts in total (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// This policy with these backoff bounds.
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.base_backoff = base;
        self.max_backoff = max.max(base);
        self
    }

    /// This policy with this overall deadline per call.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// This policy with no overall deadline.
    pub fn without_deadline(mut self) -> Self {
        self.deadline = None;
        self
    }

    /// The sleep before retry number `retry` (1 for the first retry).
    fn delay(&self, retry: u32, server_hint: Option<Duration>) -> Duration {
        let ceiling = self
            .base_backoff
            .saturating_mul(2_u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.max_backoff);
        let jittered = jitter(ceiling);
        server_hint.map_or(jittered, |hint| hint.max(jittered))
    }
}

/// A uniformly random duration in `[0, ceiling]`.
pub(crate) fn jitter(ceiling: Duration) -> Duration {
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    // `RandomState` is seeded randomly per instance: enough randomness for jitter.
    let random = RandomState::new().hash_one(Instant::now());
    Duration::from_nanos(random % (nanos + 1))
}

/// Whether a failed call may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotency {
    /// Repeating the call has the same effect as making it once.
    Idempotent,
    /// One attempt only.
    Once,
}

/// Runs `attempt` (given the time left for it) until it succeeds, fails for good, or the
/// policy is exhausted.
pub(crate) async fn run<T, F, Fut>(
    policy: &RetryPolicy,
    idempotency: Idempotency,
    mut attempt: F,
) -> Result<T, Error>
where
    F: FnMut(Option<Duration>) -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let deadline = policy.deadline.map(|limit| Instant::now() + limit);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let remaining = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
        if remaining == Some(Duration::ZERO) {
            return Err(Error::Other(Status::deadline_exceeded(
                "the call's deadline passed",
            )));
        }
        let err = match attempt(remaining).await {
            Ok(value) => return Ok(value),
            Err(status) => Error::from(status),
        };
        if idempotency == Idempotency::Once
            || !err.is_retryable()
            || attempts >= policy.max_attempts
        {
            return Err(err);
        }
        let delay = policy.delay(attempts, err.retry_after());
        if let Some(deadline) = deadline
            && Instant::now() + delay >= deadline
        {
            return Err(err);
        }
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn fast() -> RetryPolicy {
        RetryPolicy::default().backoff(Duration::from_millis(1), Duration::from_millis(5))
    }

    #[tokio::test]
    async fn idempotent_calls_retry_until_success() {
        let calls = AtomicU32::new(0);
        let result = run(&fast(), Idempotency::Idempotent, |_| async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(Status::unavailable("down"))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn other_calls_make_one_attempt() {
        let calls = AtomicU32::new(0);
        let result: Result<(), Error> = run(&fast(), Idempotency::Once, |_| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Status::unavailable("down"))
        })
        .await;
        assert!(matches!(result, Err(Error::Unavailable { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn final_errors_and_exhaustion_stop_retrying() {
        let calls = AtomicU32::new(0);
        let result: Result<(), Error> = run(&fast(), Idempotency::Idempotent, |_| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Status::not_found("no"))
        })
        .await;
        assert!(matches!(result, Err(Error::NotFound)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let calls = AtomicU32::new(0);
        let result: Result<(), Error> = run(&fast(), Idempotency::Idempotent, |_| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Status::unavailable("down"))
        })
        .await;
        assert!(matches!(result, Err(Error::Unavailable { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), fast().max_attempts);
    }

    #[tokio::test]
    async fn the_deadline_bounds_retries() {
        let policy = RetryPolicy::default()
            .max_attempts(1_000)
            .backoff(Duration::from_millis(20), Duration::from_millis(20))
            .deadline(Duration::from_millis(200));
        let started = Instant::now();
        let mut timeouts = Vec::new();
        let result: Result<(), Error> = run(&policy, Idempotency::Idempotent, |timeout| {
            timeouts.push(timeout);
            async { Err(Status::unavailable("down")) }
        })
        .await;
        assert!(result.is_err());
        assert!(started.elapsed() < Duration::from_millis(400));
        assert!(
            timeouts
                .iter()
                .all(|t| t.is_some_and(|t| t <= Duration::from_millis(200)))
        );
    }

    #[test]
    fn backoff_grows_and_honours_the_server_hint() {
        let policy =
            RetryPolicy::default().backoff(Duration::from_millis(10), Duration::from_millis(40));
        for retry in 1..10 {
            assert!(policy.delay(retry, None) <= Duration::from_millis(40));
        }
        assert!(policy.delay(1, Some(Duration::from_secs(1))) >= Duration::from_secs(1));
    }
}
