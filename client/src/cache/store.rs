//! The validation cache's storage: sessions by the SHA-256 of their token, indexed by session
//! and by account, bounded in number (oldest dropped first) and in age. Revocations drop what
//! they cover and are remembered for a while ([`Revoked`]). An answer is cached only with the
//! [`Ticket`] taken before it was fetched: if a revocation since then was forgotten, or the
//! epoch changed (the stream stopped being live, or the cache was reset), it is not cached.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    hash::{BuildHasherDefault, Hash, Hasher},
    time::{Duration, Instant, SystemTime},
};

use sha2::{Digest, Sha256};

use super::revoked::{Covered, Revoked};
use crate::{RevocationEvent, ValidSession, proto::Product};

/// A cache key: the SHA-256 of the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Key([u8; 32]);

impl Key {
    pub(super) fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }
}

impl Hash for Key {
    /// The digest's first eight bytes: already uniformly spread.
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut head = [0; 8];
        head.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(head));
    }
}

/// Hashes a [`Key`] as the number it writes, without rehashing it: a SHA-256 digest needs no
/// keyed hash against collisions, and only sessions the server validated are ever stored.
#[derive(Debug, Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

type ByKey<V> = HashMap<Key, V, BuildHasherDefault<KeyHasher>>;

/// What the store keeps, and for how long.
#[derive(Debug, Clone)]
pub(super) struct Limits {
    /// Only these products' sessions (all when empty).
    pub(super) products: Vec<Product>,
    pub(super) max_entries: usize,
    pub(super) max_age: Duration,
}

/// When an answer was fetched: after `applied` revocations, in epoch `epoch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ticket {
    applied: u64,
    epoch: u64,
}

#[derive(Debug)]
struct Entry {
    id: u64,
    session: ValidSession,
    expires: Instant,
}

#[derive(Debug)]
pub(super) struct Store {
    limits: Limits,
    entries: ByKey<Entry>,
    by_session: HashMap<String, Key>,
    by_account: HashMap<String, HashSet<Key>>,
    /// Keys in insertion order, with the entry id they were inserted as (stale ones skipped).
    order: VecDeque<(Key, u64)>,
    next_id: u64,
    /// Revocation events applied so far; also the sequence number of the latest.
    applied: u64,
    revoked: Revoked,
    /// Bumped whenever the stream stops being live or the cache is reset.
    epoch: u64,
}

impl Store {
    pub(super) fn new(limits: Limits) -> Self {
        Self {
            limits,
            entries: ByKey::default(),
            by_session: HashMap::new(),
            by_account: HashMap::new(),
            order: VecDeque::new(),
            next_id: 0,
            applied: 0,
            revoked: Revoked::default(),
            epoch: 0,
        }
    }

    /// Sessions cached now.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Revocation events applied so far.
    pub(super) fn applied(&self) -> u64 {
        self.applied
    }

    /// Taken before asking the server, and given back to [`insert`](Self::insert) its answer.
    pub(super) fn ticket(&self) -> Ticket {
        Ticket {
            applied: self.applied,
            epoch: self.epoch,
        }
    }

    /// Starts a new epoch: answers fetched before it are never cached.
    pub(super) fn new_epoch(&mut self) {
        self.epoch += 1;
    }

    /// A cached session that is still fresh.
    pub(super) fn lookup(&mut self, key: &Key) -> Option<ValidSession> {
        let entry = self.entries.get(key)?;
        if Instant::now() < entry.expires {
            return Some(entry.session.clone());
        }
        self.remove(key);
        None
    }

    /// Caches `session`, fetched with `ticket`, unless anything since could have made the
    /// answer stale, the limits refuse it, or it expires before it could be used.
    pub(super) fn insert(&mut self, key: Key, session: &ValidSession, ticket: Ticket) {
        self.revoked.prune(self.limits.max_entries);
        let limits = &self.limits;
        if ticket.epoch != self.epoch
            || ticket.applied < self.revoked.floor()
            || limits.max_entries == 0
            || self.revoked.covers(session)
            || (!limits.products.is_empty() && !limits.products.contains(&session.product))
        {
            return;
        }
        let left = session
            .valid_until()
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        let ttl = left.min(limits.max_age);
        if ttl.is_zero() {
            return;
        }
        self.remove(&key);
        self.make_room();
        self.next_id += 1;
        let id = self.next_id;
        self.by_session.insert(session.session_id.clone(), key);
        self.by_account
            .entry(session.account_id.clone())
            .or_default()
            .insert(key);
        self.order.push_back((key, id));
        self.entries.insert(
            key,
            Entry {
                id,
                session: session.clone(),
                expires: Instant::now() + ttl,
            },
        );
        // Stale order records pile up as entries are revoked or replaced; compact now and then.
        if self.order.len() > self.limits.max_entries.saturating_mul(2).max(64) {
            let entries = &self.entries;
            self.order
                .retain(|(key, id)| entries.get(key).is_some_and(|entry| entry.id == *id));
        }
    }

    /// Drops the oldest entries until one more fits.
    fn make_room(&mut self) {
        while self.entries.len() >= self.limits.max_entries {
            let Some((oldest, id)) = self.order.pop_front() else {
                break;
            };
            if self
                .entries
                .get(&oldest)
                .is_some_and(|entry| entry.id == id)
            {
                self.remove(&oldest);
            }
        }
    }

    /// Applies a revocation from the stream: drops what it covers, and remembers it.
    pub(super) fn revoke(&mut self, event: RevocationEvent) {
        let covered = Covered::of(event);
        self.applied += 1;
        let keys: Vec<Key> = match &covered {
            Covered::Sessions(ids) => ids
                .iter()
                .filter_map(|id| self.by_session.get(id).copied())
                .collect(),
            Covered::Device(account, ..) | Covered::Account(account, _) => self
                .by_account
                .get(account)
                .map(|keys| keys.iter().copied().collect())
                .unwrap_or_default(),
        };
        for key in keys {
            if self
                .entries
                .get(&key)
                .is_some_and(|entry| covered.ends(&entry.session))
            {
                self.remove(&key);
            }
        }
        self.revoked.remember(covered, self.applied);
    }

    fn remove(&mut self, key: &Key) {
        let Some(entry) = self.entries.remove(key) else {
            return;
        };
        self.by_session.remove(&entry.session.session_id);
        if let Some(keys) = self.by_account.get_mut(&entry.session.account_id) {
            keys.remove(key);
            if keys.is_empty() {
                self.by_account.remove(&entry.session.account_id);
            }
        }
    }

    /// Forgets every cached session (the revocations stay remembered).
    pub(super) fn clear(&mut self) {
        self.entries.clear();
        self.by_session.clear();
        self.by_account.clear();
        self.order.clear();
    }
}

#[cfg(test)]
pub(super) mod tests;
