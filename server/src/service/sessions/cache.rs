//! The server-side validation cache: token hash -> what validation needs to know of a session,
//! so that a repeated ValidateSession costs no database read.
//!
//! Correctness rests on two rules. Every revocation invalidates the entries it covers after its
//! transaction commits and before the revoking call returns (and revocations made by other
//! replicas are applied as the revocation feed reads them from the log). And a validation that
//! read the database only inserts its result if no invalidation happened since it started
//! (`epoch`), so a read that raced a revocation can never plant a stale "valid" entry. Other
//! replicas' revocations arrive through the feed, so validation asks the cache only while the
//! feed is fresh (`RevocationFeed::is_fresh`); a log-out of all is matched by generation.
//! Entries are bounded in number and age (first in, first out); the age uses the injected clock.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{
        Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::{
    clock::Timestamp,
    domain::{
        ids::{AccountId, DeviceId, SessionId},
        revocation::{Revocation, RevocationScope},
        session::{GenerationCut, SessionValidity},
        token::TokenHash,
    },
};

/// What a cache hit needs: the session as read, and the account's cut-off at the time.
#[derive(Debug, Clone)]
pub struct CachedSession {
    /// The session as last read.
    pub session: SessionValidity,
    /// The account's log-out-of-all cut-offs when read.
    pub cut: GenerationCut,
}

#[derive(Debug)]
struct Entry {
    cached: CachedSession,
    inserted_at: Timestamp,
}

#[derive(Debug, Default)]
struct Inner {
    by_hash: HashMap<TokenHash, Entry>,
    by_session: HashMap<SessionId, TokenHash>,
    by_account: HashMap<AccountId, HashSet<SessionId>>,
    order: VecDeque<(TokenHash, Timestamp)>,
}

/// Hit and miss counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Validations answered from memory.
    pub hits: u64,
    /// Validations that read the database.
    pub misses: u64,
}

/// The cache. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct ValidationCache {
    inner: Mutex<Inner>,
    epoch: AtomicU64,
    max_entries: usize,
    max_age: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl ValidationCache {
    /// A cache of at most `max_entries`, each kept at most `max_age`. Zero entries disables it.
    pub fn new(max_entries: usize, max_age: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            epoch: AtomicU64::new(0),
            max_entries,
            max_age,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry for a token, if cached and young enough.
    pub fn get(&self, hash: &TokenHash, now: Timestamp) -> Option<CachedSession> {
        let found = {
            let inner = self.lock();
            inner
                .by_hash
                .get(hash)
                .filter(|entry| now < entry.inserted_at.plus(self.max_age))
                .map(|entry| entry.cached.clone())
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Counts a validation that went to the database without asking the cache (the revocation
    /// feed was stale).
    pub fn record_bypass(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    /// The invalidation epoch; read it before a database read whose result may be inserted.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Inserts an entry read from the database, unless an invalidation happened since `epoch`.
    pub fn insert(&self, epoch: u64, hash: TokenHash, cached: CachedSession, now: Timestamp) {
        if self.max_entries == 0 {
            return;
        }
        let mut inner = self.lock();
        // Checked under the lock that invalidations also take, so no invalidation can slip
        // between this check and the insert.
        if self.epoch.load(Ordering::SeqCst) != epoch {
            return;
        }
        let session_id = cached.session.session_id;
        let account_id = cached.session.account_id.clone();
        inner.by_hash.insert(
            hash,
            Entry {
                cached,
                inserted_at: now,
            },
        );
        inner.by_session.insert(session_id, hash);
        inner
            .by_account
            .entry(account_id)
            .or_default()
            .insert(session_id);
        inner.order.push_back((hash, now));
        self.evict(&mut inner, now);
    }

    /// Moves a cached session's last activity forward (after heartbeats are flushed).
    pub fn record_activity(&self, session_id: SessionId, at: Timestamp) {
        let mut inner = self.lock();
        if let Some(hash) = inner.by_session.get(&session_id).copied()
            && let Some(entry) = inner.by_hash.get_mut(&hash)
            && entry.cached.session.facts.last_active_at < at
        {
            entry.cached.session.facts.last_active_at = at;
        }
    }

    /// Drops the entries of these sessions.
    pub fn invalidate_sessions(&self, session_ids: &[SessionId]) {
        let mut inner = self.lock();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for session_id in session_ids {
            remove_session(&mut inner, *session_id);
        }
    }

    /// Drops what a revocation covers: scope ALL every entry of the account, scope DEVICE the
    /// account's entries on the device signed in at or before its cut-off, scope SESSION the
    /// session. A revocation that names neither ids nor a cut-off drops the whole account.
    pub fn apply(&self, revocation: &Revocation) {
        match (
            revocation.scope,
            &revocation.device_id,
            revocation.revoked_before,
        ) {
            (RevocationScope::All, _, _) => self.invalidate_account(&revocation.account_id),
            (RevocationScope::Device, Some(device_id), Some(before)) => {
                self.invalidate_device(&revocation.account_id, device_id, before);
            }
            (RevocationScope::Session | RevocationScope::Device, _, _)
                if !revocation.session_ids.is_empty() =>
            {
                self.invalidate_sessions(&revocation.session_ids);
            }
            _ => self.invalidate_account(&revocation.account_id),
        }
    }

    /// Drops the account's entries on `device_id` signed in at or before `before`.
    pub fn invalidate_device(
        &self,
        account_id: &AccountId,
        device_id: &DeviceId,
        before: Timestamp,
    ) {
        let mut inner = self.lock();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let covered: Vec<SessionId> = inner
            .by_account
            .get(account_id)
            .into_iter()
            .flatten()
            .filter(|session_id| {
                inner
                    .by_session
                    .get(session_id)
                    .and_then(|hash| inner.by_hash.get(hash))
                    .is_some_and(|entry| {
                        entry.cached.session.device_id == *device_id
                            && entry.cached.session.signed_in_at <= before
                    })
            })
            .copied()
            .collect();
        for session_id in covered {
            remove_session(&mut inner, session_id);
        }
    }

    /// Drops every entry of the account.
    pub fn invalidate_account(&self, account_id: &AccountId) {
        let mut inner = self.lock();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(sessions) = inner.by_account.remove(account_id) {
            for session_id in sessions {
                if let Some(hash) = inner.by_session.remove(&session_id) {
                    inner.by_hash.remove(&hash);
                }
            }
        }
    }

    /// Drops everything (the revocation feed lost its place).
    pub fn clear(&self) {
        let mut inner = self.lock();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        *inner = Inner::default();
    }

    /// Hits and misses so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// Removes entries past their age, then the oldest while over the size bound.
    fn evict(&self, inner: &mut Inner, now: Timestamp) {
        while let Some((hash, inserted_at)) = inner.order.front().copied() {
            let expired = now >= inserted_at.plus(self.max_age);
            if !expired
                && inner.by_hash.len() <= self.max_entries
                && inner.order.len() <= self.max_entries * 2
            {
                break;
            }
            inner.order.pop_front();
            // Only remove the entry if this queue slot is still the entry's own (it may have
            // been removed and re-inserted since).
            let current = inner.by_hash.get(&hash).map(|entry| entry.inserted_at);
            if current == Some(inserted_at)
                && let Some(session_id) = inner
                    .by_hash
                    .get(&hash)
                    .map(|entry| entry.cached.session.session_id)
            {
                remove_session(inner, session_id);
            }
        }
    }
}

fn remove_session(inner: &mut Inner, session_id: SessionId) {
    if let Some(hash) = inner.by_session.remove(&session_id)
        && let Some(entry) = inner.by_hash.remove(&hash)
        && let Some(set) = inner.by_account.get_mut(&entry.cached.session.account_id)
    {
        set.remove(&session_id);
        if set.is_empty() {
            inner.by_account.remove(&entry.cached.session.account_id);
        }
    }
}
