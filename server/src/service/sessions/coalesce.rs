//! Miss coalescing: concurrent validations of one token that miss the cache share one database
//! read instead of making N. A validation joins a read in flight only when that read began in
//! the cache's current invalidation epoch, so a read that began before a revocation this replica
//! has applied is never handed to a validation that came after it (the rule the cache's own
//! inserts follow). A validation whose leader failed or was cancelled reads for itself.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Mutex, MutexGuard, PoisonError},
};

use tokio::sync::watch;

use crate::{
    domain::token::TokenHash,
    store::{StoreError, validity::ValidityWithCut},
};

type Answer = Option<Option<ValidityWithCut>>;

#[derive(Debug)]
struct Flight {
    id: u64,
    epoch: u64,
    answer: watch::Receiver<Answer>,
}

#[derive(Debug, Default)]
struct Flights {
    next_id: u64,
    by_hash: HashMap<TokenHash, Flight>,
}

/// The validation reads in flight, by token hash.
#[derive(Debug, Default)]
pub struct InFlightReads {
    flights: Mutex<Flights>,
}

/// Removes the leader's flight when its read ends, however it ends.
struct Leading<'a> {
    reads: &'a InFlightReads,
    hash: TokenHash,
    id: u64,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        let mut flights = self.reads.lock();
        if flights
            .by_hash
            .get(&self.hash)
            .is_some_and(|f| f.id == self.id)
        {
            flights.by_hash.remove(&self.hash);
        }
    }
}

impl InFlightReads {
    fn lock(&self) -> MutexGuard<'_, Flights> {
        self.flights.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads `hash` with `read`, or joins a read of it already in flight in `epoch`.
    pub async fn read<F, Fut>(
        &self,
        hash: TokenHash,
        epoch: u64,
        read: F,
    ) -> Result<Option<ValidityWithCut>, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<ValidityWithCut>, StoreError>>,
    {
        let joined = {
            let mut flights = self.lock();
            match flights.by_hash.get(&hash) {
                Some(flight) if flight.epoch == epoch => Err(flight.answer.clone()),
                _ => {
                    let (sender, answer) = watch::channel(None);
                    flights.next_id = flights.next_id.wrapping_add(1);
                    let id = flights.next_id;
                    flights.by_hash.insert(hash, Flight { id, epoch, answer });
                    Ok((sender, id))
                }
            }
        };
        let (sender, id) = match joined {
            Ok(leading) => leading,
            Err(mut answer) => {
                if let Ok(shared) = answer.wait_for(Option::is_some).await
                    && let Some(found) = shared.as_ref()
                {
                    return Ok(found.clone());
                }
                // The leader failed or was cancelled: read alone.
                return read().await;
            }
        };
        let _leading = Leading {
            reads: self,
            hash,
            id,
        };
        let result = read().await;
        if let Ok(found) = &result {
            // Nobody waiting is not an error.
            let _ = sender.send(Some(found.clone()));
        }
        result
    }
}

#[cfg(test)]
pub(super) mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use tokio::sync::Notify;

    use super::*;
    use crate::{
        clock::Timestamp,
        domain::{
            ids::{AccountId, DeviceId, SessionId, new_ulid},
            session::{ClientKind, GenerationCut, Product, SessionValidity, ValidityFacts},
        },
    };

    pub(in crate::service::sessions) fn found() -> ValidityWithCut {
        let at = Timestamp::from_micros(1_000_000);
        ValidityWithCut {
            session: SessionValidity {
                session_id: SessionId::from_ulid(new_ulid(at)),
                account_id: AccountId::from_stored("acct".to_owned()),
                product: Product::ChatGpt,
                device_id: DeviceId::from_stored("laptop".to_owned()),
                signed_in_at: at,
                facts: ValidityFacts::of(
                    ClientKind::Browser,
                    0,
                    None,
                    at.plus(std::time::Duration::from_secs(60)),
                    at,
                ),
            },
            cut: GenerationCut::default(),
            account_disabled: false,
        }
    }

    /// A read that counts itself and waits until `release` is notified.
    fn gated_read(
        reads: &Arc<AtomicUsize>,
        release: &Arc<Notify>,
    ) -> impl Future<Output = Result<Option<ValidityWithCut>, StoreError>> + use<> {
        let (reads, release) = (reads.clone(), release.clone());
        async move {
            reads.fetch_add(1, Ordering::SeqCst);
            release.notified().await;
            Ok(Some(found()))
        }
    }

    async fn spawn_validations(
        in_flight: &Arc<InFlightReads>,
        epochs: impl IntoIterator<Item = u64>,
        reads: &Arc<AtomicUsize>,
        release: &Arc<Notify>,
    ) -> Vec<tokio::task::JoinHandle<Result<Option<ValidityWithCut>, StoreError>>> {
        let mut tasks = Vec::new();
        for epoch in epochs {
            let (in_flight, reads, release) = (in_flight.clone(), reads.clone(), release.clone());
            tasks.push(tokio::spawn(async move {
                in_flight
                    .read(TokenHash([7; 32]), epoch, || gated_read(&reads, &release))
                    .await
            }));
            tokio::task::yield_now().await;
        }
        // Let every task reach its read or its wait.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        tasks
    }

    #[tokio::test(flavor = "current_thread")]
    async fn concurrent_misses_of_one_token_make_one_read() {
        let (in_flight, reads, release) = Default::default();
        let tasks = spawn_validations(&in_flight, [5; 10], &reads, &release).await;
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        release.notify_waiters();
        for task in tasks {
            assert!(task.await.unwrap().unwrap().is_some());
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        assert!(
            in_flight.lock().by_hash.is_empty(),
            "the flight is forgotten"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_validation_after_an_invalidation_never_joins_an_older_read() {
        let (in_flight, reads, release) = Default::default();
        let tasks = spawn_validations(&in_flight, [5, 5, 6, 6], &reads, &release).await;
        // The first epoch-6 validation reads for itself; the second joins it.
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        release.notify_waiters();
        for task in tasks {
            assert!(task.await.unwrap().unwrap().is_some());
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_cancelled_leader_leaves_its_followers_to_read_alone() {
        let (in_flight, reads, release) = Default::default();
        let mut tasks = spawn_validations(&in_flight, [5, 5, 5], &reads, &release).await;
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        tasks.remove(0).abort();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        // Both followers read alone (neither registered a flight of its own).
        assert_eq!(reads.load(Ordering::SeqCst), 3);
        release.notify_waiters();
        for task in tasks {
            assert!(task.await.unwrap().unwrap().is_some());
        }
    }
}
