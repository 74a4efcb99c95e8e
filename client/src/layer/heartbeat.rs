//! The coalesced activity heartbeat: at most one `TouchSession` per session per interval,
//! sent in the background so no request waits on it.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use crate::{SessionClient, ValidSession};

/// Sessions remembered at most; past it, those not touched within the interval are forgotten,
/// and if none can be, touches are skipped until some can.
const MAX_TRACKED: usize = 100_000;

pub(super) struct Heartbeat {
    client: SessionClient,
    every: Duration,
    last: Arc<Mutex<HashMap<String, Instant>>>,
}

impl fmt::Debug for Heartbeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Heartbeat")
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl Heartbeat {
    pub(super) fn new(client: SessionClient, every: Duration) -> Self {
        Self {
            client,
            every,
            last: Arc::default(),
        }
    }

    /// Records activity on `session` unless it was recorded within the interval.
    pub(super) fn beat(&self, session: &ValidSession, token: &str) {
        let now = Instant::now();
        {
            let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            if last
                .get(&session.session_id)
                .is_some_and(|at| now.duration_since(*at) < self.every)
            {
                return;
            }
            if last.len() >= MAX_TRACKED {
                last.retain(|_, at| now.duration_since(*at) < self.every);
                if last.len() >= MAX_TRACKED {
                    return;
                }
            }
            last.insert(session.session_id.clone(), now);
        }
        let client = self.client.clone();
        let token = token.to_owned();
        let session_id = session.session_id.clone();
        tokio::spawn(async move {
            if let Err(err) = client.touch(&token, None).await {
                tracing::debug!(session_id, error = %err, "session heartbeat failed");
            }
        });
    }
}
