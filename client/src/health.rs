//! [`CacheHealth`]: whether a [`ValidationCache`](crate::ValidationCache) answers from memory
//! or is degraded to asking the server, with one warning when its revocation stream goes down
//! and one when it is back (and, with the `otel` feature, the gauge
//! `active_sessions.client.cache.degraded`).

use std::{
    sync::{Mutex, MutexGuard, PoisonError},
    time::SystemTime,
};

/// The state of a validation cache's revocation stream, and so where its answers come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheHealth {
    /// Started, the stream not caught up yet: every validation goes to the server.
    Starting,
    /// The stream is live: cached sessions are answered from memory.
    Live,
    /// The stream was refused or is down: every validation goes to the server (never to
    /// memory) until the stream has reopened and caught up.
    Degraded {
        /// When it went down.
        since: SystemTime,
        /// Why, as the last failure said (never a token).
        reason: String,
    },
}

impl CacheHealth {
    /// True when the stream is refused or down.
    pub fn is_degraded(&self) -> bool {
        matches!(self, Self::Degraded { .. })
    }
}

/// Tracks the health and says when it changes.
#[derive(Debug)]
pub(crate) struct HealthSignal {
    health: Mutex<CacheHealth>,
    #[cfg(feature = "otel")]
    gauge: opentelemetry::metrics::Gauge<u64>,
}

impl HealthSignal {
    pub(crate) fn new() -> Self {
        Self {
            health: Mutex::new(CacheHealth::Starting),
            #[cfg(feature = "otel")]
            gauge: opentelemetry::global::meter("active-sessions-client")
                .u64_gauge("active_sessions.client.cache.degraded")
                .with_description(
                    "1 while the validation cache's revocation stream is refused or down and \
                     every validation goes to the server, else 0",
                )
                .build(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CacheHealth> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn get(&self) -> CacheHealth {
        self.lock().clone()
    }

    /// The stream is live again (or for the first time).
    pub(crate) fn live(&self) {
        let mut health = self.lock();
        if let CacheHealth::Degraded { since, .. } = &*health {
            let down_for = since.elapsed().unwrap_or_default();
            tracing::warn!(
                down_for = ?down_for,
                "validation cache: revocation stream is back; answering from memory again"
            );
        }
        *health = CacheHealth::Live;
        #[cfg(feature = "otel")]
        self.gauge.record(0, &[]);
    }

    /// The stream was refused or broke: warns the first time only, until it is live again.
    pub(crate) fn down(&self, reason: &str) {
        let mut health = self.lock();
        match &mut *health {
            CacheHealth::Degraded { reason: last, .. } => reason.clone_into(last),
            _ => {
                tracing::warn!(
                    reason,
                    "validation cache: revocation stream is down; every validation goes to the \
                     server until it is back"
                );
                *health = CacheHealth::Degraded {
                    since: SystemTime::now(),
                    reason: reason.to_owned(),
                };
                #[cfg(feature = "otel")]
                self.gauge.record(1, &[]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degraded_until_live_again() {
        let signal = HealthSignal::new();
        assert_eq!(signal.get(), CacheHealth::Starting);
        signal.down("connection refused");
        signal.down("connection refused again");
        let CacheHealth::Degraded { reason, .. } = signal.get() else {
            unreachable!("degraded");
        };
        assert_eq!(reason, "connection refused again");
        assert!(signal.get().is_degraded());
        signal.live();
        assert_eq!(signal.get(), CacheHealth::Live);
    }
}
