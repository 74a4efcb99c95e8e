//! The log-out-of-all sweep. RevokeAllSessions only writes the account's cut-off, which makes
//! every earlier session invalid at once; this background task then marks the session rows in
//! batches (one short transaction each, so other writers interleave) and records progress on
//! the revocation, which GetRevocation reports. On PostgreSQL it first marks batch-sized ranges
//! on several connections at once (one core each). It resumes unfinished sweeps after a restart,
//! including those another replica started.

use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use tokio_util::sync::CancellationToken;

use super::Sessions;
use crate::service::ServiceError;
use crate::{
    domain::revocation::Revocation,
    store::{generation_cuts, revocations, security_events, session_sets},
};

/// How often unfinished sweeps are looked for when nothing wakes the sweeper.
const SWEEP_RESCAN_INTERVAL: Duration = Duration::from_secs(5);

impl Sessions {
    /// Sweeps every unfinished log-out of all sessions to completion. Returns how many
    /// sessions were marked.
    pub async fn sweep_pending(&self) -> Result<u64, ServiceError> {
        let mut marked = 0;
        for revocation in revocations::unswept(self.inner.store.reader()).await? {
            marked += self.sweep(&revocation).await?;
        }
        Ok(marked)
    }

    async fn sweep(&self, revocation: &Revocation) -> Result<u64, ServiceError> {
        let (Some(cut_generation), Some(cut_off)) =
            (revocation.cut_generation, revocation.revoked_before)
        else {
            return Ok(0);
        };
        let batch = self.inner.settings.sweep_batch;
        let cut = generation_cuts::SweepCut {
            account_id: &revocation.account_id,
            cut_generation,
            include_hidden: revocation.includes_hidden_kinds,
        };
        let marking = session_sets::Marking {
            at: cut_off,
            reason: revocation.reason,
            revocation_id: revocation.revocation_id,
        };
        let mut total = self.sweep_ranges(revocation, cut, marking).await?;
        loop {
            let txn = self.inner.store.write().await?;
            let marked = generation_cuts::sweep_batch(&*txn, cut, marking, batch).await?;
            // A short batch is not proof of the end: under a concurrent sweeper, PostgreSQL's
            // re-check after a row lock can skip rows and still leave others unmarked. Done
            // means nothing before the cut-off is left unmarked.
            let done = marked < batch
                && generation_cuts::count_before(
                    &*txn,
                    &revocation.account_id,
                    cut_generation,
                    revocation.includes_hidden_kinds,
                )
                .await?
                    == 0;
            let completed_at = done.then(|| self.inner.clock.now());
            let swept_so_far =
                revocations::record_sweep(&*txn, revocation.revocation_id, marked, completed_at)
                    .await?;
            if done {
                // The log-out counted nothing under its lock: its history event gets the count
                // now that every covered session is marked.
                security_events::record_log_out_all_count(
                    &*txn,
                    &revocation.account_id,
                    revocation.revocation_id,
                    swept_so_far,
                )
                .await?;
            }
            txn.commit().await?;
            count_swept(marked);
            total += marked;
            if done {
                tracing::info!(
                    revocation_id = %revocation.revocation_id,
                    account_id = %revocation.account_id,
                    sessions = total,
                    "log-out-of-all sweep finished"
                );
                return Ok(total);
            }
        }
    }

    /// Where the database has concurrent writers (PostgreSQL), splits what the sweep covers into
    /// ranges of about a batch each and marks them on several connections at once, one short
    /// transaction per range: marking is the database's CPU work (every index of a marked row is
    /// written), which one connection does on one core. The batch loop after it stays the judge
    /// of completion. On SQLite (one writer) this does nothing.
    async fn sweep_ranges(
        &self,
        revocation: &Revocation,
        cut: generation_cuts::SweepCut<'_>,
        marking: session_sets::Marking,
    ) -> Result<u64, ServiceError> {
        let writers = self.inner.store.sweep_writers();
        if writers < 2 {
            return Ok(0);
        }
        let starts = generation_cuts::batch_starts(
            self.inner.store.reader(),
            cut,
            self.inner.settings.sweep_batch,
        )
        .await?;
        if starts.len() < 2 {
            return Ok(0);
        }
        let nexts = starts.iter().skip(1).cloned().map(Some).chain([None]);
        let ranges: Vec<(String, Option<String>)> = starts.iter().cloned().zip(nexts).collect();
        futures::stream::iter(ranges)
            .map(|(first, next)| async move {
                let txn = self.inner.store.write().await?;
                let range = (first.as_str(), next.as_deref());
                let marked = generation_cuts::sweep_range(&*txn, cut, marking, range).await?;
                revocations::record_sweep(&*txn, revocation.revocation_id, marked, None).await?;
                txn.commit().await?;
                count_swept(marked);
                Ok::<_, ServiceError>(marked)
            })
            .buffer_unordered(writers)
            .try_fold(0, |total, marked| async move { Ok(total + marked) })
            .await
    }

    /// Runs the sweep whenever a log-out of all sessions is recorded, and periodically.
    pub(super) async fn sweep_until(self, stop: CancellationToken) {
        loop {
            if let Err(err) = self.sweep_pending().await {
                tracing::warn!(error = %err, "log-out-of-all sweep failed; will retry");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.inner.sweep_wake.notified() => {}
                () = tokio::time::sleep(SWEEP_RESCAN_INTERVAL) => {}
            }
        }
    }
}

/// Counts sessions a log-out of all's sweep marked.
fn count_swept(marked: u64) {
    crate::telemetry::metrics::metrics().sessions_revoked.add(
        marked,
        &crate::telemetry::metrics::attribute("scope", "ALL"),
    );
}
