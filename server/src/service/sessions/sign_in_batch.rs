//! Group commit for sign-ins. A registration that finds a writer free registers alone, at once,
//! so a quiet server adds no wait. One that finds every writer busy queues, and the next writer
//! to start takes the queue (up to [`MAX_SIGN_INS_PER_BATCH`]) into one transaction: one
//! statement creates or locks every account of the batch (in account order), each sign-in is
//! decided under its account's lock, then the batch's sessions and events are written with one
//! statement each, and one COMMIT makes them all durable. On
//! SQLite (one writer) that is one writer-gate turn, one BEGIN and COMMIT and one WAL append for
//! the batch; on PostgreSQL one commit flush.
//!
//! A batch holds at most one sign-in per account and per request id, so no sign-in in it depends
//! on another's unwritten rows (the session limit, the device and country novelty, replays);
//! the rest wait for the next batch. Each queued call's client deadline is checked before its
//! sign-in joins and again before COMMIT. Nothing is answered before COMMIT: when any part of a
//! batch fails, or a deadline is too near, the batch rolls back and every sign-in in it
//! registers alone (where its own error, retry and deadline rules apply).

use std::{
    collections::HashSet,
    sync::{
        Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use tokio::sync::{Semaphore, oneshot};

use super::{
    Sessions,
    register::{Planned, SignIn, write_sign_ins},
};
use crate::{
    deadline,
    domain::ids::AccountId,
    service::ServiceError,
    store::{StoreError, accounts},
};

/// The most sign-ins one transaction carries.
pub const MAX_SIGN_INS_PER_BATCH: usize = 64;

/// A batch's answer to one sign-in: its plan, committed, or `None`: register alone.
type Answer = Option<Planned>;

#[derive(Debug)]
struct Queued {
    id: u64,
    sign_in: SignIn,
    deadline: Option<Instant>,
    answer: oneshot::Sender<Answer>,
}

/// The sign-ins waiting for a writer, and the writers.
#[derive(Debug)]
pub struct SignInBatcher {
    queue: Mutex<Vec<Queued>>,
    writers: Semaphore,
    next_id: AtomicU64,
}

impl SignInBatcher {
    /// A batcher with `writers` (at least one) transactions at once.
    pub fn new(writers: usize) -> Self {
        Self {
            queue: Mutex::new(Vec::new()),
            writers: Semaphore::new(writers.max(1)),
            next_id: AtomicU64::new(0),
        }
    }

    fn queue(&self) -> MutexGuard<'_, Vec<Queued>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `sign_in`, alone or in a batch. `None`: its batch failed and it was not
    /// recorded; the caller registers it alone.
    pub(super) async fn submit(
        &self,
        sessions: &Sessions,
        sign_in: &SignIn,
    ) -> Option<Result<Planned, ServiceError>> {
        if let Ok(_writer) = self.writers.try_acquire()
            && self.queue().is_empty()
        {
            return Some(sessions.register_alone(sign_in).await);
        }
        let (sender, mut answer) = oneshot::channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.queue().push(Queued {
            id,
            sign_in: sign_in.clone(),
            deadline: deadline::current(),
            answer: sender,
        });
        loop {
            tokio::select! {
                biased;
                answered = &mut answer => return answered.ok().flatten().map(Ok),
                writer = self.writers.acquire() => {
                    let Ok(_writer) = writer else {
                        // The semaphore is never closed; register alone if it were.
                        self.forget(id);
                        return None;
                    };
                    let batch = self.take_batch();
                    if !batch.is_empty() {
                        // Outside this call's deadline: each sign-in's own is checked.
                        deadline::scope(None, commit_batch(sessions, batch)).await;
                    }
                    // Answered (by this batch), or carried by another writer: wait for it.
                    // Still queued (behind a full batch): take the next free writer.
                    if !self.queue().iter().any(|queued| queued.id == id) {
                        break;
                    }
                }
            }
        }
        answer.await.ok().flatten().map(Ok)
    }

    /// Drops a queued sign-in that will register alone.
    fn forget(&self, id: u64) {
        self.queue().retain(|queued| queued.id != id);
    }

    /// Takes the next batch: queued sign-ins in arrival order, one per account and per request
    /// id, at most [`MAX_SIGN_INS_PER_BATCH`]. Sign-ins whose deadline is too near are answered
    /// (alone, they end DEADLINE_EXCEEDED) and not taken.
    fn take_batch(&self) -> Vec<Queued> {
        let mut queue = self.queue();
        let mut accounts = HashSet::new();
        let mut request_ids = HashSet::new();
        let mut batch = Vec::new();
        let mut waiting = Vec::with_capacity(queue.len());
        for queued in queue.drain(..) {
            if deadline::too_late(queued.deadline) {
                let _ = queued.answer.send(None);
                continue;
            }
            let request = &queued.sign_in.request;
            let request_id = request
                .request_id
                .as_ref()
                .map(|id| (queued.sign_in.scope.clone(), id.as_str().to_owned()));
            let fits = batch.len() < MAX_SIGN_INS_PER_BATCH
                && !accounts.contains(&request.account_id)
                && request_id
                    .as_ref()
                    .is_none_or(|id| !request_ids.contains(id));
            if fits {
                accounts.insert(request.account_id.clone());
                request_ids.extend(request_id);
                batch.push(queued);
            } else {
                waiting.push(queued);
            }
        }
        *queue = waiting;
        batch
    }
}

/// Decides, writes and commits a batch, then answers each sign-in: its plan, or `None` (register
/// alone) when the batch did not commit.
async fn commit_batch(sessions: &Sessions, mut batch: Vec<Queued>) {
    // Every batch locks its accounts in one order, so two batches never wait on each other.
    batch.sort_by(|a, b| {
        a.sign_in
            .request
            .account_id
            .as_str()
            .cmp(b.sign_in.request.account_id.as_str())
    });
    let committed = async {
        let txn = sessions.inner.store.write().await?;
        let first_seen_at = sessions.inner.clock.now();
        let account_ids: Vec<&AccountId> = batch
            .iter()
            .map(|queued| &queued.sign_in.request.account_id)
            .collect();
        let locked = accounts::lock_or_create_many(&*txn, &account_ids, first_seen_at).await?;
        let mut planned = Vec::with_capacity(batch.len());
        for queued in &batch {
            let account = locked
                .get(&queued.sign_in.request.account_id)
                .ok_or_else(|| StoreError::corrupt("accounts", "a locked account is missing"))?;
            planned.push(
                sessions
                    .plan_locked_sign_in(&*txn, &queued.sign_in, account, first_seen_at)
                    .await?,
            );
        }
        write_sign_ins(&*txn, &planned).await?;
        if batch
            .iter()
            .any(|queued| deadline::too_late(queued.deadline))
        {
            return Err(ServiceError::Store(StoreError::DeadlineExceeded));
        }
        txn.commit().await?;
        Ok::<_, ServiceError>(planned)
    }
    .await;
    match committed {
        Ok(planned) => {
            crate::telemetry::metrics::metrics().record_sign_in_batch(batch.len());
            for (queued, planned) in batch.into_iter().zip(planned) {
                // A call that stopped waiting is not an error: its sign-in is recorded.
                let _ = queued.answer.send(Some(planned));
            }
        }
        Err(err) => {
            tracing::debug!(error = %err, sign_ins = batch.len(), "a sign-in batch rolled back; each registers alone");
            for queued in batch {
                let _ = queued.answer.send(None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;
    use crate::domain::{
        history::Actor,
        ids::{DeviceId, RequestId},
        session::{AuthMethod, ClientKind, Product},
    };
    use crate::service::sessions::register::NewSession;

    fn sign_in(account: &str, request_id: Option<&str>) -> SignIn {
        SignIn {
            scope: "product".to_owned(),
            request: NewSession {
                request_id: request_id.map(|id| RequestId::parse(id).unwrap()),
                account_id: AccountId::parse(account).unwrap(),
                product: Product::ChatGpt,
                client_kind: ClientKind::Browser,
                device_id: DeviceId::parse("laptop").unwrap(),
                user_agent: String::new(),
                ip: None,
                auth_method: AuthMethod::Password,
                lifetime: None,
                status_unavailable: false,
            },
            lifetime: Duration::from_secs(60),
            actor: Actor::User,
        }
    }

    /// Queues `sign_ins` (with their deadlines) and returns the receivers of their answers.
    fn queue(
        batcher: &SignInBatcher,
        sign_ins: Vec<(SignIn, Option<Instant>)>,
    ) -> Vec<oneshot::Receiver<Answer>> {
        sign_ins
            .into_iter()
            .enumerate()
            .map(|(id, (sign_in, deadline))| {
                let (answer, receiver) = oneshot::channel();
                batcher.queue().push(Queued {
                    id: id as u64,
                    sign_in,
                    deadline,
                    answer,
                });
                receiver
            })
            .collect()
    }

    fn accounts(batch: &[Queued]) -> Vec<&str> {
        batch
            .iter()
            .map(|queued| queued.sign_in.request.account_id.as_str())
            .collect()
    }

    #[test]
    fn a_batch_holds_one_sign_in_per_account_and_per_request_id() {
        let batcher = SignInBatcher::new(1);
        let _answers = queue(
            &batcher,
            vec![
                (sign_in("a", None), None),
                (sign_in("a", None), None),
                (sign_in("b", Some("req-1")), None),
                (sign_in("c", Some("req-1")), None),
                (sign_in("d", Some("req-2")), None),
            ],
        );
        assert_eq!(accounts(&batcher.take_batch()), ["a", "b", "d"]);
        // The rest wait, in order, for the next batch.
        assert_eq!(accounts(&batcher.take_batch()), ["a", "c"]);
        assert!(batcher.take_batch().is_empty());
    }

    #[test]
    fn a_batch_is_bounded() {
        let batcher = SignInBatcher::new(1);
        let many = (0..MAX_SIGN_INS_PER_BATCH + 3)
            .map(|i| (sign_in(&format!("acct-{i}"), None), None))
            .collect();
        let _answers = queue(&batcher, many);
        assert_eq!(batcher.take_batch().len(), MAX_SIGN_INS_PER_BATCH);
        assert_eq!(batcher.take_batch().len(), 3);
    }

    #[test]
    fn a_sign_in_whose_deadline_is_too_near_is_sent_to_register_alone() {
        let batcher = SignInBatcher::new(1);
        let mut answers = queue(
            &batcher,
            vec![
                (sign_in("late", None), Some(Instant::now())),
                (
                    sign_in("on-time", None),
                    Some(Instant::now() + Duration::from_secs(60)),
                ),
            ],
        );
        assert_eq!(accounts(&batcher.take_batch()), ["on-time"]);
        assert!(
            matches!(answers[0].try_recv(), Ok(None)),
            "answered: register alone"
        );
        assert!(
            answers[1].try_recv().is_err(),
            "still waiting for its batch"
        );
    }
}
