//! Activity heartbeats, coalesced. TouchSession records the latest activity of a session in
//! memory; a background task writes everything recorded since the last flush in one
//! transaction, so a heartbeat per request per user is one write per session per interval, not
//! one per request. Validation reads the buffer too, so a session touched but not yet flushed is
//! not taken for idle.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Mutex, MutexGuard, PoisonError},
};

use crate::{clock::Timestamp, domain::ids::SessionId};

/// Activity waiting to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingActivity {
    /// Latest activity.
    pub at: Timestamp,
    /// The latest IP address reported with it.
    pub ip: Option<IpAddr>,
}

/// The in-memory buffer of heartbeats.
#[derive(Debug, Default)]
pub struct ActivityBuffer {
    pending: Mutex<HashMap<SessionId, PendingActivity>>,
}

impl ActivityBuffer {
    fn lock(&self) -> MutexGuard<'_, HashMap<SessionId, PendingActivity>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records activity, keeping the latest time and the latest IP seen.
    pub fn record(&self, session_id: SessionId, at: Timestamp, ip: Option<IpAddr>) {
        let mut pending = self.lock();
        let entry = pending
            .entry(session_id)
            .or_insert(PendingActivity { at, ip });
        if at >= entry.at {
            entry.at = at;
            entry.ip = ip.or(entry.ip);
        }
    }

    /// The latest unflushed activity of a session.
    pub fn latest(&self, session_id: SessionId) -> Option<Timestamp> {
        self.lock().get(&session_id).map(|pending| pending.at)
    }

    /// A copy of everything recorded so far. Entries stay in the buffer until
    /// [`forget_written`](Self::forget_written) confirms their write committed, so validation
    /// never sees a heartbeat vanish between the buffer and the database.
    pub fn snapshot(&self) -> Vec<(SessionId, PendingActivity)> {
        self.lock()
            .iter()
            .map(|(session_id, pending)| (*session_id, *pending))
            .collect()
    }

    /// Removes entries whose write committed, unless newer activity arrived meanwhile.
    pub fn forget_written(&self, written: &[(SessionId, PendingActivity)]) {
        let mut pending = self.lock();
        for (session_id, activity) in written {
            if pending.get(session_id) == Some(activity) {
                pending.remove(session_id);
            }
        }
    }

    /// Number of sessions with unflushed activity.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing waits to be flushed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_activity_and_ip() {
        let buffer = ActivityBuffer::default();
        let id = SessionId::from_ulid(ulid::Ulid::from_parts(1, 1));
        let ip = "81.2.69.142".parse().ok();
        buffer.record(id, Timestamp::from_micros(10), ip);
        buffer.record(id, Timestamp::from_micros(5), None);
        buffer.record(id, Timestamp::from_micros(20), None);
        assert_eq!(buffer.latest(id), Some(Timestamp::from_micros(20)));
        let written = buffer.snapshot();
        assert_eq!(
            written,
            vec![(
                id,
                PendingActivity {
                    at: Timestamp::from_micros(20),
                    ip
                }
            )]
        );
        assert!(!buffer.is_empty(), "kept until the write commits");
        buffer.record(id, Timestamp::from_micros(30), None);
        buffer.forget_written(&written);
        assert_eq!(
            buffer.latest(id),
            Some(Timestamp::from_micros(30)),
            "newer activity kept"
        );
        buffer.forget_written(&buffer.snapshot());
        assert!(buffer.is_empty());
    }
}
