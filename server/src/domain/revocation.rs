//! Revocations: one session, one device's sessions, or everything an account has. Every
//! revocation is a row of the revocation log, numbered in commit order, which feeds the
//! revocation stream and other replicas' caches.

use super::{
    ids::{AccountId, DeviceId, RevocationId, SessionId},
    session::{Product, RevocationReason},
};
use crate::clock::Timestamp;

/// How much a revocation covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationScope {
    /// One session.
    Session,
    /// Every session on one device.
    Device,
    /// Every visible session of the account signed in before the cut-off.
    All,
}

impl RevocationScope {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "SESSION",
            Self::Device => "DEVICE",
            Self::All => "ALL",
        }
    }

    /// Reads the stored form.
    pub fn from_stored(value: &str) -> Option<Self> {
        match value {
            "SESSION" => Some(Self::Session),
            "DEVICE" => Some(Self::Device),
            "ALL" => Some(Self::All),
            _ => None,
        }
    }
}

/// A recorded revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// Its id.
    pub revocation_id: RevocationId,
    /// Its position in the revocation log (commit order).
    pub seq: i64,
    /// The account.
    pub account_id: AccountId,
    /// What it covers.
    pub scope: RevocationScope,
    /// Why.
    pub reason: RevocationReason,
    /// The device, for scope Device.
    pub device_id: Option<DeviceId>,
    /// The sessions, for scopes Session and Device.
    pub session_ids: Vec<SessionId>,
    /// The products touched.
    pub products: Vec<Product>,
    /// When it took effect for validation.
    pub effective_at: Timestamp,
    /// For scope All: sessions signed in before this instant are revoked.
    pub revoked_before: Option<Timestamp>,
    /// For scope All: the account generation it set; every visible session born in an earlier
    /// generation is revoked. This, not `revoked_before`, decides.
    pub cut_generation: Option<i64>,
    /// Whether trusted devices were removed with it.
    pub trust_removed: bool,
    /// Sessions marked revoked so far.
    pub sessions_revoked: i64,
    /// When every covered session row was marked.
    pub completed_at: Option<Timestamp>,
    /// Who did it (stored form of `history::Actor`).
    pub actor: String,
    /// For scope All: the hidden kinds were cut off too.
    pub includes_hidden_kinds: bool,
    /// For scope All: the session kept valid ("all but one").
    pub kept_session_id: Option<SessionId>,
}
