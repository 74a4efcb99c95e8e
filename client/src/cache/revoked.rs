//! What a revocation covers, and the memory of recent ones. [`Covered::of`] reads an event from
//! the stream as the sessions it ends: named sessions, a device's sessions up to an instant, or
//! an account's sessions below a cut (a generation, or an instant from servers without
//! generations). [`Revoked`] remembers recent revocations for a while, so an answer the server
//! gave around one is vetted before it is cached; cut-offs only ever grow.

use std::{
    collections::{HashMap, VecDeque},
    hash::Hash,
    time::{Duration, Instant, SystemTime},
};

use crate::{RevocationEvent, ValidSession, proto::RevocationScope};

/// How long revocations are remembered to vet answers fetched around them.
const RETENTION: Duration = Duration::from_secs(300);
/// Revocations remembered at least, whatever the cache's size.
const MIN_REMEMBERED: usize = 1_024;

/// What one revocation covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Covered {
    Sessions(Vec<String>),
    /// Every session of the account on the device signed in at or before the instant.
    Device(String, String, SystemTime),
    /// Every session of the account the cut ends.
    Account(String, Cut),
}

impl Covered {
    pub(super) fn of(event: RevocationEvent) -> Self {
        match event.scope {
            RevocationScope::Device => match (event.device_id, event.revoked_before) {
                (Some(device), Some(before)) => Self::Device(event.account_id, device, before),
                _ if !event.session_ids.is_empty() => Self::Sessions(event.session_ids),
                _ => Self::Account(event.account_id, Cut::Everything),
            },
            RevocationScope::Session if !event.session_ids.is_empty() => {
                Self::Sessions(event.session_ids)
            }
            RevocationScope::All => {
                let cut = Cut::of(event.cut_generation, event.revoked_before);
                Self::Account(event.account_id, cut)
            }
            // Unknown scopes, or no session named: drop the whole account to be safe.
            _ => Self::Account(event.account_id, Cut::Everything),
        }
    }

    /// True when it ends `session`.
    pub(super) fn ends(&self, session: &ValidSession) -> bool {
        match self {
            Self::Sessions(ids) => ids.contains(&session.session_id),
            Self::Device(account, device, before) => {
                session.account_id == *account
                    && session.device_id == *device
                    && session.signed_in_at <= *before
            }
            Self::Account(account, cut) => session.account_id == *account && cut.ends(session),
        }
    }
}

/// What a log-out of all sessions ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cut {
    /// Every session of the account (an event the cache cannot read precisely).
    Everything,
    /// Every session born in a generation below this one.
    Generation(i64),
    /// Every session signed in at or before this instant (servers without generations).
    Before(SystemTime),
}

impl Cut {
    fn of(cut_generation: i64, revoked_before: Option<SystemTime>) -> Self {
        if cut_generation > 0 {
            Self::Generation(cut_generation)
        } else {
            revoked_before.map_or(Self::Everything, Self::Before)
        }
    }

    fn ends(self, session: &ValidSession) -> bool {
        match self {
            Self::Everything => true,
            Self::Generation(cut) => session.generation < cut,
            Self::Before(before) => session.signed_in_at <= before,
        }
    }

    /// The cut covering both; cuts only grow.
    fn merge(self, other: Self) -> Self {
        match (self, other) {
            (Self::Generation(a), Self::Generation(b)) => Self::Generation(a.max(b)),
            (Self::Before(a), Self::Before(b)) => Self::Before(a.max(b)),
            _ => Self::Everything,
        }
    }
}

#[derive(Debug)]
struct Tombstone {
    seq: u64,
    at: Instant,
    covered: Covered,
}

/// Recent revocations, oldest first, and what they cover by session, by device and by
/// account, each with the sequence number of the latest revocation that set it.
#[derive(Debug, Default)]
pub(super) struct Revoked {
    tombstones: VecDeque<Tombstone>,
    sessions: HashMap<String, u64>,
    /// Per (account, device): the latest device log-out's cut-off.
    device_cut_offs: HashMap<(String, String), (SystemTime, u64)>,
    cut_offs: HashMap<String, (Cut, u64)>,
    /// Revocations up to this sequence number have been forgotten.
    floor: u64,
}

impl Revoked {
    /// Remembers revocation number `seq`.
    pub(super) fn remember(&mut self, covered: Covered, seq: u64) {
        match &covered {
            Covered::Sessions(ids) => {
                for id in ids {
                    self.sessions.insert(id.clone(), seq);
                }
            }
            Covered::Device(account, device, before) => {
                let slot = (account.clone(), device.clone());
                let merged = self
                    .device_cut_offs
                    .get(&slot)
                    .map_or(*before, |(old, _)| (*old).max(*before));
                self.device_cut_offs.insert(slot, (merged, seq));
            }
            Covered::Account(account, cut) => {
                let merged = match self.cut_offs.get(account) {
                    Some((old, _)) => old.merge(*cut),
                    None => *cut,
                };
                self.cut_offs.insert(account.clone(), (merged, seq));
            }
        }
        self.tombstones.push_back(Tombstone {
            seq,
            at: Instant::now(),
            covered,
        });
    }

    /// True when a remembered revocation covers `session`.
    pub(super) fn covers(&self, session: &ValidSession) -> bool {
        self.sessions.contains_key(&session.session_id)
            || self
                .device_cut_offs
                .get(&(session.account_id.clone(), session.device_id.clone()))
                .is_some_and(|(before, _)| session.signed_in_at <= *before)
            || self
                .cut_offs
                .get(&session.account_id)
                .is_some_and(|(cut, _)| cut.ends(session))
    }

    /// The sequence number up to which revocations have been forgotten: an answer fetched
    /// before it cannot be vetted.
    pub(super) fn floor(&self) -> u64 {
        self.floor
    }

    /// Forgets revocations older than the retention, or beyond `max_entries` (at least 1 024).
    pub(super) fn prune(&mut self, max_entries: usize) {
        let max = max_entries.max(MIN_REMEMBERED);
        while let Some(oldest) = self.tombstones.front() {
            if self.tombstones.len() <= max && oldest.at.elapsed() < RETENTION {
                break;
            }
            let Some(oldest) = self.tombstones.pop_front() else {
                break;
            };
            self.floor = oldest.seq;
            let seq = oldest.seq;
            match oldest.covered {
                Covered::Sessions(ids) => {
                    for id in ids {
                        if self.sessions.get(&id) == Some(&seq) {
                            self.sessions.remove(&id);
                        }
                    }
                }
                Covered::Device(account, device, _) => {
                    forget(&mut self.device_cut_offs, (account, device), seq);
                }
                Covered::Account(account, _) => forget(&mut self.cut_offs, account, seq),
            }
        }
    }

    /// The cut remembered for `account`.
    #[cfg(test)]
    pub(super) fn cut_of(&self, account: &str) -> Option<Cut> {
        self.cut_offs.get(account).map(|(cut, _)| *cut)
    }
}

/// Removes `key` unless a later revocation than `seq` set it again.
fn forget<K: Hash + Eq, T>(map: &mut HashMap<K, (T, u64)>, key: K, seq: u64) {
    if map.get(&key).is_some_and(|(_, set_by)| *set_by == seq) {
        map.remove(&key);
    }
}
