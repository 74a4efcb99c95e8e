//! Log-outs: what one records ([`Revocation`]), what a log-out of a row or a session did
//! ([`RevokeResult`]), and how a log-out of all sessions is asked for ([`RevokeAllOptions`] by
//! the user, [`AccountLogOut`] by the identity system).

use std::time::SystemTime;

#[cfg(doc)]
use crate::SessionClient;
use crate::{
    Owner,
    proto::{self, Product, RevocationReason, RevocationScope, RevokeOutcome},
    types::{non_empty, time},
};

/// A recorded log-out and its progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The revocation id (a ULID); empty for a preview.
    pub revocation_id: String,
    /// The account.
    pub account_id: String,
    /// One session, one device or everything.
    pub scope: RevocationScope,
    /// Why.
    pub reason: RevocationReason,
    /// From this instant no covered session validates.
    pub effective_at: Option<SystemTime>,
    /// For scope `All`: the cut-off instant, for display (never moves back).
    pub revoked_before: Option<SystemTime>,
    /// For scope `All`: the generation it set; every session born in an earlier one is revoked.
    pub cut_generation: i64,
    /// True once every covered session is marked revoked.
    pub complete: bool,
    /// When it became complete.
    pub completed_at: Option<SystemTime>,
    /// Sessions marked revoked so far.
    pub sessions_revoked: i64,
    /// For scopes `Session` and `Device`: the sessions covered when they are at most 100 (empty
    /// for a device log-out of more; `sessions_revoked` counts them).
    pub session_ids: Vec<String>,
    /// For scope `Device`: the device.
    pub device_id: Option<String>,
    /// True when trusted devices were removed with it.
    pub trust_removed: bool,
    /// For scope `All`: true when the hidden kinds (third-party apps, CLI, ...) ended too.
    pub includes_hidden_kinds: bool,
    /// For scope `All`: the session kept valid ("log out of all other sessions"), if any.
    pub kept_session_id: Option<String>,
}

impl From<proto::Revocation> for Revocation {
    fn from(revocation: proto::Revocation) -> Self {
        Self {
            scope: revocation.scope(),
            reason: revocation.reason(),
            revocation_id: revocation.revocation_id,
            account_id: revocation.account_id,
            effective_at: time(revocation.effective_at),
            revoked_before: time(revocation.revoked_before),
            cut_generation: revocation.cut_generation,
            complete: revocation.complete,
            completed_at: time(revocation.completed_at),
            sessions_revoked: revocation.sessions_revoked,
            session_ids: revocation.session_ids,
            device_id: non_empty(revocation.device_id),
            trust_removed: revocation.trust_removed,
            includes_hidden_kinds: revocation.includes_hidden_kinds,
            kept_session_id: non_empty(revocation.kept_session_id),
        }
    }
}

/// What a log-out of a row or a session did, or (unconfirmed) would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeResult {
    /// Logged out, logged out and removed from trusted devices, or already logged out.
    pub outcome: RevokeOutcome,
    /// The sessions that were (or would be) logged out: all of them when there are at most 100,
    /// otherwise the 100 newest.
    pub session_ids: Vec<String>,
    /// How many sessions were (or would be) logged out.
    pub session_count: i64,
    /// Their products.
    pub products: Vec<Product>,
    /// True when the device's trust was (or would be) removed.
    pub trust_removed: bool,
    /// The recorded revocation: `None` for a preview or when nothing changed.
    pub revocation: Option<Revocation>,
}

impl From<proto::RevokeSessionResponse> for RevokeResult {
    fn from(response: proto::RevokeSessionResponse) -> Self {
        Self {
            outcome: response.outcome(),
            products: response.products().collect(),
            session_ids: response.session_ids,
            session_count: response.session_count,
            trust_removed: response.trust_removed,
            revocation: response.revocation.map(Revocation::from),
        }
    }
}

/// How [`SessionClient::end_account_sessions`] ends an account's sessions for the identity
/// system: why, and whether one session stays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountLogOut {
    /// Why: `PasswordChanged`, `FactorChanged`, `AccountDisabled` or `SecurityReset`.
    pub reason: RevocationReason,
    /// A session to keep valid (the one where the password was just changed).
    pub keep_session_id: Option<String>,
    /// Also end the hidden kinds (always so for `AccountDisabled` and `SecurityReset`).
    pub include_hidden_kinds: bool,
    /// Also remove every trusted device.
    pub remove_trusted_devices: bool,
}

impl AccountLogOut {
    /// End every session of the account for `reason`.
    pub fn all(reason: RevocationReason) -> Self {
        Self {
            reason,
            keep_session_id: None,
            include_hidden_kinds: false,
            remove_trusted_devices: false,
        }
    }

    /// End every session but `session_id` ("log out of all other sessions").
    pub fn all_but(reason: RevocationReason, session_id: impl Into<String>) -> Self {
        Self {
            keep_session_id: Some(session_id.into()),
            ..Self::all(reason)
        }
    }

    /// The request that ends `account_id`'s sessions this way.
    pub(crate) fn into_proto(self, account_id: &str) -> proto::RevokeAllSessionsRequest {
        proto::RevokeAllSessionsRequest {
            subject: Some(Owner::account(account_id).subject()),
            validate_only: false,
            remove_trusted_devices: self.remove_trusted_devices,
            reason: self.reason as i32,
            keep_session_id: self.keep_session_id.unwrap_or_default(),
            include_hidden_kinds: self.include_hidden_kinds,
        }
    }

    /// Also end the hidden kinds (third-party apps, connected apps, CLI).
    pub fn include_hidden_kinds(mut self) -> Self {
        self.include_hidden_kinds = true;
        self
    }

    /// Also remove every trusted device.
    pub fn remove_trusted_devices(mut self) -> Self {
        self.remove_trusted_devices = true;
        self
    }
}

/// How [`SessionClient::revoke_all`] logs out of all sessions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RevokeAllOptions {
    /// False only reports what would happen (the confirmation step); true does it.
    pub confirm: bool,
    /// Also remove every trusted device of the account.
    pub remove_trusted_devices: bool,
}

impl RevokeAllOptions {
    /// Log out of all sessions now, keeping trusted devices.
    pub fn confirmed() -> Self {
        Self {
            confirm: true,
            remove_trusted_devices: false,
        }
    }

    /// Only report what logging out of all sessions would cover.
    pub fn preview() -> Self {
        Self::default()
    }

    /// Also remove every trusted device.
    pub fn remove_trusted_devices(mut self) -> Self {
        self.remove_trusted_devices = true;
        self
    }
}
