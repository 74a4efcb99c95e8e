//! The pruner: deletes what retention no longer keeps (see `domain::retention`). It runs in the
//! background every `--prune-interval`, in small batches, each its own short transaction, and on
//! PostgreSQL only on the replica holding its advisory lock; it also finishes account deletions
//! that were interrupted. `active-sessions prune --dry-run` reports what it would delete.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{ServiceError, sessions::Sessions};
use crate::{
    clock::{Clock, Timestamp},
    domain::retention::{PruneReport, RetentionSettings},
    store::{
        Store,
        retention::{self, Ended},
    },
};

/// One table the pruner works on.
#[derive(Debug, Clone, Copy)]
enum Pruned {
    Sessions(Ended),
    SecurityEvents,
    Revocations,
}

impl Pruned {
    fn table(self) -> &'static str {
        match self {
            Self::Sessions(_) => "sessions",
            Self::SecurityEvents => "security_events",
            Self::Revocations => "revocations",
        }
    }
}

/// The background pruner. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct Pruner {
    store: Store,
    clock: Arc<dyn Clock>,
    settings: RetentionSettings,
    sessions: Sessions,
}

impl Pruner {
    /// A pruner over the store; `sessions` finishes interrupted deletions.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        settings: RetentionSettings,
        sessions: Sessions,
    ) -> Self {
        Self {
            store,
            clock,
            settings,
            sessions,
        }
    }

    /// The retention in force.
    pub fn settings(&self) -> RetentionSettings {
        self.settings
    }

    fn cutoffs(&self, now: Timestamp) -> (Timestamp, Timestamp, Timestamp) {
        (
            now.minus(self.settings.revoked_session),
            now.minus(self.settings.security_event),
            now.minus(self.settings.revocation_log),
        )
    }

    /// Deletes everything past its retention now, batch by batch. Stops early (with what it
    /// did) when another replica holds the pruner's lock.
    pub async fn prune_once(&self) -> Result<PruneReport, ServiceError> {
        let now = self.clock.now();
        let (sessions_before, events_before, log_before) = self.cutoffs(now);
        let mut report = PruneReport {
            deletions_finished: self.sessions.finish_pending_deletions().await?,
            ..PruneReport::default()
        };
        for pruned in [
            Pruned::Sessions(Ended::RevokedBefore),
            Pruned::Sessions(Ended::ExpiredBefore),
            Pruned::SecurityEvents,
            Pruned::Revocations,
        ] {
            let Some(deleted) = self
                .prune_table(pruned, sessions_before, events_before, log_before)
                .await?
            else {
                tracing::debug!("another replica is pruning");
                return Ok(report);
            };
            match pruned {
                Pruned::Sessions(_) => report.sessions += deleted,
                Pruned::SecurityEvents => report.security_events += deleted,
                Pruned::Revocations => report.revocations += deleted,
            }
        }
        Ok(report)
    }

    /// Deletes one table's expired rows, a batch per transaction; `None` when another replica
    /// holds the pruner's lock.
    async fn prune_table(
        &self,
        pruned: Pruned,
        sessions_before: Timestamp,
        events_before: Timestamp,
        log_before: Timestamp,
    ) -> Result<Option<u64>, ServiceError> {
        let batch = self.settings.batch.max(1);
        let mut total = 0;
        loop {
            let txn = self.store.write().await?;
            if !retention::try_lock_pruner(&*txn).await? {
                return Ok(None);
            }
            let deleted = match pruned {
                Pruned::Sessions(ended) => {
                    retention::prune_sessions(&*txn, ended, sessions_before, batch).await?
                }
                Pruned::SecurityEvents => {
                    retention::prune_security_events(&*txn, events_before, batch).await?
                }
                Pruned::Revocations => {
                    retention::prune_revocation_log(&*txn, log_before, batch).await?
                }
            };
            txn.commit().await?;
            if deleted > 0 {
                crate::telemetry::metrics::metrics().rows_pruned.add(
                    deleted,
                    &crate::telemetry::metrics::attribute("table", pruned.table()),
                );
            }
            total += deleted;
            if deleted < batch {
                return Ok(Some(total));
            }
        }
    }

    /// What [`prune_once`](Self::prune_once) would delete now (the revocation count is an upper
    /// bound: pruning the log stops at an unfinished sweep). Writes nothing.
    pub async fn preview(&self) -> Result<PruneReport, ServiceError> {
        let (sessions_before, events_before, log_before) = self.cutoffs(self.clock.now());
        let reader = self.store.reader();
        Ok(PruneReport {
            sessions: retention::count_ended_sessions(reader, sessions_before).await?,
            security_events: retention::count_security_events(reader, events_before).await?,
            revocations: retention::count_revocations(reader, log_before).await?,
            deletions_finished: 0,
        })
    }

    /// Prunes every interval until `stop`.
    pub async fn run_until(self, stop: CancellationToken) {
        loop {
            match self.prune_once().await {
                Ok(report) if report.total() > 0 || report.deletions_finished > 0 => {
                    tracing::info!(
                        sessions = report.sessions,
                        security_events = report.security_events,
                        revocations = report.revocations,
                        deletions_finished = report.deletions_finished,
                        "pruned rows past their retention"
                    );
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "pruning failed; will retry"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.settings.interval) => {}
            }
        }
    }
}
