//! Miss batching: validations of different tokens that miss the cache while the database is
//! busy share one read. At most `parallel` validation reads run at once; a miss that finds one
//! free reads at once, alone, so a quiet server adds no wait. A miss that finds them all busy
//! queues its hash, and the next read to start takes every queued hash (up to
//! [`MAX_HASHES_PER_READ`]) in one statement. Under load one round trip, one statement and one
//! hand-off to the driver then serve many calls, which is where a miss's cost went.
//!
//! Every hash is read by a read that began after it was queued, so a batch never answers a
//! validation with what was read before it started (the rule the cache's inserts and the
//! coalescing of one token's reads keep). When the validation carrying a batch is cancelled, the
//! others it carried read for themselves.

use std::{
    future::Future,
    sync::{
        Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::sync::{Semaphore, oneshot};

use crate::{
    domain::token::TokenHash,
    store::{
        StoreError,
        validity::{MAX_HASHES_PER_READ, ValidityWithCut},
    },
};

type Answer = Result<Option<ValidityWithCut>, StoreError>;

/// A miss waiting for a read to take it.
#[derive(Debug)]
struct Queued {
    id: u64,
    hash: TokenHash,
    answer: oneshot::Sender<Answer>,
}

/// The validation reads' batcher. One per service.
#[derive(Debug)]
pub struct MissBatcher {
    queue: Mutex<Vec<Queued>>,
    readers: Semaphore,
    next_id: AtomicU64,
}

impl MissBatcher {
    /// A batcher that lets `parallel` reads (at least one) run at once.
    pub fn new(parallel: usize) -> Self {
        Self {
            queue: Mutex::new(Vec::new()),
            readers: Semaphore::new(parallel.max(1)),
            next_id: AtomicU64::new(0),
        }
    }

    fn queue(&self) -> MutexGuard<'_, Vec<Queued>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads `hash` with `read` (which answers the sessions of the hashes it is given, each with
    /// its hash), in a batch with the other misses queued when a reader frees up.
    pub async fn read<F, Fut>(&self, hash: TokenHash, read: F) -> Answer
    where
        F: Fn(Vec<TokenHash>) -> Fut,
        Fut: Future<Output = Result<Vec<(TokenHash, ValidityWithCut)>, StoreError>>,
    {
        // A free reader and nobody queued: read alone, now.
        if let Ok(permit) = self.readers.try_acquire()
            && self.queue().is_empty()
        {
            let answer = read(vec![hash]).await.map(|found| pick(found, &hash));
            drop(permit);
            return answer;
        }
        let (sender, mut answer) = oneshot::channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.queue().push(Queued {
            id,
            hash,
            answer: sender,
        });
        loop {
            tokio::select! {
                biased;
                answered = &mut answer => return self.answered(answered, hash, &read).await,
                permit = self.readers.acquire() => {
                    let Ok(_permit) = permit else {
                        // The semaphore is never closed; read alone if it were.
                        break;
                    };
                    let batch: Vec<Queued> = {
                        let mut queue = self.queue();
                        let taken = queue.len().min(MAX_HASHES_PER_READ);
                        queue.drain(..taken).collect()
                    };
                    if !batch.is_empty() {
                        let hashes = batch.iter().map(|queued| queued.hash).collect();
                        let found = read(hashes).await;
                        answer_each(batch, found);
                    }
                    // Answered (by this read), or carried by another read: wait for it. Still
                    // queued (behind a full batch): take the next free reader.
                    if !self.queue().iter().any(|queued| queued.id == id) {
                        break;
                    }
                }
            }
        }
        let answered = answer.await;
        self.answered(answered, hash, &read).await
    }

    /// A queued miss's answer; when the read carrying it was cancelled, it reads alone.
    async fn answered<F, Fut>(
        &self,
        answered: Result<Answer, oneshot::error::RecvError>,
        hash: TokenHash,
        read: &F,
    ) -> Answer
    where
        F: Fn(Vec<TokenHash>) -> Fut,
        Fut: Future<Output = Result<Vec<(TokenHash, ValidityWithCut)>, StoreError>>,
    {
        match answered {
            Ok(answer) => answer,
            Err(_) => read(vec![hash]).await.map(|found| pick(found, &hash)),
        }
    }
}

/// The session read for `hash`, if it was found.
fn pick(found: Vec<(TokenHash, ValidityWithCut)>, hash: &TokenHash) -> Option<ValidityWithCut> {
    found
        .into_iter()
        .find_map(|(read, session)| (read == *hash).then_some(session))
}

/// Sends each queued miss its session (or the read's error).
fn answer_each(batch: Vec<Queued>, found: Result<Vec<(TokenHash, ValidityWithCut)>, StoreError>) {
    for queued in batch {
        let answer = match &found {
            Ok(sessions) => Ok(sessions
                .iter()
                .find(|(read, _)| *read == queued.hash)
                .map(|(_, session)| session.clone())),
            Err(err) => Err(err.clone()),
        };
        // A validation that stopped waiting is not an error.
        let _ = queued.answer.send(answer);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{Arc, atomic::AtomicUsize};

    use tokio::sync::Notify;

    use super::*;
    use crate::service::sessions::coalesce::tests::found;

    type Sizes = Arc<Mutex<Vec<usize>>>;
    type BatchRead = std::pin::Pin<
        Box<dyn Future<Output = Result<Vec<(TokenHash, ValidityWithCut)>, StoreError>> + Send>,
    >;

    /// A read that records the size of each batch it was given, waits for `release`, and finds
    /// every hash but `[0; 32]`.
    fn gated(sizes: Sizes, release: Arc<Notify>) -> impl Fn(Vec<TokenHash>) -> BatchRead + Clone {
        move |hashes: Vec<TokenHash>| {
            let (sizes, release) = (sizes.clone(), release.clone());
            Box::pin(async move {
                sizes.lock().unwrap().push(hashes.len());
                release.notified().await;
                Ok(hashes
                    .into_iter()
                    .filter(|hash| hash.0 != [0; 32])
                    .map(|hash| (hash, found()))
                    .collect())
            })
        }
    }

    /// Starts one validation per byte (hash `[byte; 32]`), letting each reach its read or its
    /// wait before the next starts.
    async fn spawn_reads<F, Fut>(
        batcher: &Arc<MissBatcher>,
        read: &F,
        bytes: impl IntoIterator<Item = u8>,
    ) -> Vec<tokio::task::JoinHandle<Answer>>
    where
        F: Fn(Vec<TokenHash>) -> Fut + Clone + Send + Sync + 'static,
        Fut:
            Future<Output = Result<Vec<(TokenHash, ValidityWithCut)>, StoreError>> + Send + 'static,
    {
        let mut tasks = Vec::new();
        for byte in bytes {
            let (batcher, read) = (batcher.clone(), read.clone());
            tasks.push(tokio::spawn(async move {
                batcher.read(TokenHash([byte; 32]), read).await
            }));
            settle().await;
        }
        tasks
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn misses_queued_behind_a_busy_reader_share_one_read() {
        let batcher = Arc::new(MissBatcher::new(1));
        let (sizes, release): (Sizes, _) = (Arc::default(), Arc::new(Notify::new()));
        let read = gated(sizes.clone(), release.clone());
        let tasks = spawn_reads(&batcher, &read, 0..11u8).await;
        // The first read alone; the ten behind it wait for the one reader.
        assert_eq!(*sizes.lock().unwrap(), vec![1]);
        release.notify_waiters();
        settle().await;
        assert_eq!(*sizes.lock().unwrap(), vec![1, 10]);
        release.notify_waiters();
        for (byte, task) in tasks.into_iter().enumerate() {
            let answer = task.await.unwrap().unwrap();
            assert_eq!(answer.is_some(), byte != 0, "hash {byte}");
        }
        assert_eq!(*sizes.lock().unwrap(), vec![1, 10]);
        assert!(batcher.queue().is_empty());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_free_reader_reads_at_once_and_alone() {
        let batcher = Arc::new(MissBatcher::new(2));
        let (sizes, release): (Sizes, _) = (Arc::default(), Arc::new(Notify::new()));
        let read = gated(sizes.clone(), release.clone());
        let tasks = spawn_reads(&batcher, &read, 1..=2u8).await;
        assert_eq!(*sizes.lock().unwrap(), vec![1, 1]);
        release.notify_waiters();
        for task in tasks {
            assert!(task.await.unwrap().unwrap().is_some());
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn misses_carried_by_a_cancelled_read_read_for_themselves() {
        let batcher = Arc::new(MissBatcher::new(1));
        let (sizes, release): (Sizes, _) = (Arc::default(), Arc::new(Notify::new()));
        let read = gated(sizes.clone(), release.clone());
        let mut tasks = spawn_reads(&batcher, &read, 1..=4u8).await;
        release.notify_waiters();
        settle().await;
        // Hash 1 read alone; one of the others now carries 2, 3 and 4.
        assert_eq!(*sizes.lock().unwrap(), vec![1, 3]);
        assert!(tasks.remove(0).await.unwrap().unwrap().is_some());
        // Cancel every waiter but the last, whichever carries the batch.
        tasks.remove(0).abort();
        tasks.remove(0).abort();
        settle().await;
        release.notify_waiters();
        settle().await;
        release.notify_waiters();
        assert!(tasks.remove(0).await.unwrap().unwrap().is_some());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_read_fails_every_miss_it_carried() {
        let batcher = Arc::new(MissBatcher::new(1));
        let release = Arc::new(Notify::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let read = {
            let (release, calls) = (release.clone(), calls.clone());
            move |_: Vec<TokenHash>| {
                let (release, calls) = (release.clone(), calls.clone());
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    release.notified().await;
                    Err::<Vec<(TokenHash, ValidityWithCut)>, _>(StoreError::Unavailable(
                        "down".to_owned(),
                    ))
                }
            }
        };
        let tasks = spawn_reads(&batcher, &read, 1..=4u8).await;
        release.notify_waiters();
        settle().await;
        release.notify_waiters();
        for task in tasks {
            assert!(task.await.unwrap().unwrap_err().is_transient());
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "one alone, one batch of three"
        );
    }
}
