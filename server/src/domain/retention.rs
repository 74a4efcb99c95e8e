//! Retention: what is deleted, and when. Session rows go `--revoked-session-retention` after
//! they were revoked or passed their absolute expiry (an idle session ends there at the latest),
//! security events `--security-event-retention` after they occurred, and the revocation log
//! `--revocation-log-retention` after each entry took effect (a stream cursor older than what is
//! kept gets OUT_OF_RANGE, reason CURSOR_NOT_RESUMABLE, and resynchronises). The pruner runs in
//! the background every `--prune-interval`, in small batches, each its own short transaction,
//! and on PostgreSQL only on the replica holding its advisory lock; it also finishes account
//! deletions that were interrupted. `active-sessions prune --dry-run` reports what it would
//! delete.

use std::time::Duration;

/// How long what is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSettings {
    /// How long a revoked or expired session row is kept.
    pub revoked_session: Duration,
    /// How long a security event is kept.
    pub security_event: Duration,
    /// How long an entry of the revocation log is kept.
    pub revocation_log: Duration,
    /// How often the pruner runs.
    pub interval: Duration,
    /// Rows deleted per transaction.
    pub batch: u64,
}

/// What one pruning pass deleted (or, for a dry run, would delete).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Session rows.
    pub sessions: u64,
    /// Security events.
    pub security_events: u64,
    /// Revocation log entries.
    pub revocations: u64,
    /// Interrupted account deletions finished.
    pub deletions_finished: u64,
}

impl PruneReport {
    /// Rows in all.
    pub fn total(&self) -> u64 {
        self.sessions + self.security_events + self.revocations
    }
}
