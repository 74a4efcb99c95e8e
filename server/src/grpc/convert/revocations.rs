//! SessionService's log-out and revocation calls: RevokeSession, RevokeAllSessions,
//! GetRevocation and WatchRevocations requests into their commands' inputs, and log-outs and
//! revocations back into messages (a recorded revocation, a preview that recorded nothing, a
//! stream event).

use active_sessions::v1 as pb;

use super::{
    enums::{number, product_numbers},
    fields::{count, device_id, id_strings, or_empty, products, session_id, subject},
};
use crate::{
    domain::{
        ids::{RevocationId, SessionId},
        modes::{Effect, HiddenKinds, TrustedDevices},
        revocation::{Revocation, RevocationScope},
        session::{Product, RevocationReason},
        subject::Subject,
        text::Violations,
    },
    service::sessions::{LogOutAllRequest, RevokeResult, RevokeTarget},
};

/// A RevokeSession request, validated.
#[derive(Debug, Clone)]
pub struct RevokeSession {
    /// Whose session or row.
    pub subject: Subject,
    /// The row or the session.
    pub target: RevokeTarget,
    /// Log out, or only report.
    pub effect: Effect,
}

impl TryFrom<pb::RevokeSessionRequest> for RevokeSession {
    type Error = Violations;

    fn try_from(request: pb::RevokeSessionRequest) -> Result<Self, Violations> {
        let mut v = Violations::new();
        let subject = subject(&mut v, "subject", request.subject.as_ref());
        let target = match &request.target {
            None => {
                v.add("target", "must set device_id or session_id");
                None
            }
            Some(pb::revoke_session_request::Target::DeviceId(device)) => {
                device_id(&mut v, "device_id", device).map(RevokeTarget::Device)
            }
            Some(pb::revoke_session_request::Target::SessionId(id)) => {
                session_id(&mut v, "session_id", id).map(RevokeTarget::Session)
            }
        };
        v.complete(|| {
            Some(Self {
                subject: subject?,
                target: target?,
                effect: request.validate_only.into(),
            })
        })
    }
}

/// A RevokeAllSessions request, validated.
#[derive(Debug, Clone)]
pub struct RevokeAllSessions {
    /// Whose sessions.
    pub subject: Subject,
    /// Log out, or only report.
    pub effect: Effect,
    /// Whether the trusted devices go too.
    pub trusted_devices: TrustedDevices,
    /// The identity system's or an operator's reason, if given.
    pub reason: Option<RevocationReason>,
    /// The session kept signed in ("log out of all other sessions").
    pub keep_session: Option<SessionId>,
    /// Whether the hidden kinds end too.
    pub hidden_kinds: HiddenKinds,
}

impl RevokeAllSessions {
    /// The log-out of all command's input.
    pub fn command(&self) -> LogOutAllRequest {
        LogOutAllRequest {
            effect: self.effect,
            trusted_devices: self.trusted_devices,
            reason: self.reason,
            keep_session: self.keep_session,
            hidden_kinds: self.hidden_kinds,
        }
    }
}

impl TryFrom<pb::RevokeAllSessionsRequest> for RevokeAllSessions {
    type Error = Violations;

    fn try_from(request: pb::RevokeAllSessionsRequest) -> Result<Self, Violations> {
        let mut v = Violations::new();
        let subject = subject(&mut v, "subject", request.subject.as_ref());
        let reason = identity_reason(&mut v, "reason", request.reason);
        let keep_session = if request.keep_session_id.is_empty() {
            Some(None)
        } else {
            session_id(&mut v, "keep_session_id", &request.keep_session_id).map(Some)
        };
        v.complete(|| {
            Some(Self {
                subject: subject?,
                effect: request.validate_only.into(),
                trusted_devices: request.remove_trusted_devices.into(),
                reason: reason?,
                keep_session: keep_session?,
                hidden_kinds: request.include_hidden_kinds.into(),
            })
        })
    }
}

/// The reason a caller may give RevokeAllSessions: none (UNSPECIFIED), or one of the identity
/// system's.
fn identity_reason(
    violations: &mut Violations,
    field: &str,
    raw: i32,
) -> Option<Option<RevocationReason>> {
    match pb::RevocationReason::try_from(raw) {
        Ok(pb::RevocationReason::Unspecified) => Some(None),
        Ok(value) => match RevocationReason::try_from(value) {
            Ok(reason) if reason.is_identity_reason() => Some(Some(reason)),
            _ => {
                violations.add(
                    field,
                    "must be PASSWORD_CHANGED, FACTOR_CHANGED, ACCOUNT_DISABLED or SECURITY_RESET",
                );
                None
            }
        },
        Err(_) => {
            violations.add(field, "is not a known value");
            None
        }
    }
}

/// A GetRevocation request, validated.
#[derive(Debug, Clone)]
pub struct GetRevocation {
    /// Whose revocation.
    pub subject: Subject,
    /// Which.
    pub revocation_id: RevocationId,
}

impl TryFrom<pb::GetRevocationRequest> for GetRevocation {
    type Error = Violations;

    fn try_from(request: pb::GetRevocationRequest) -> Result<Self, Violations> {
        let mut v = Violations::new();
        let subject = subject(&mut v, "subject", request.subject.as_ref());
        let revocation_id = v.check("revocation_id", RevocationId::parse(&request.revocation_id));
        v.complete(|| {
            Some(Self {
                subject: subject?,
                revocation_id: revocation_id?,
            })
        })
    }
}

/// A WatchRevocations request, validated.
#[derive(Debug, Clone)]
pub struct WatchRevocations {
    /// Where to resume (`None`: from now).
    pub cursor: Option<i64>,
    /// The products asked for (empty: every product the caller may see).
    pub products: Vec<Product>,
}

impl TryFrom<pb::WatchRevocationsRequest> for WatchRevocations {
    type Error = Violations;

    fn try_from(request: pb::WatchRevocationsRequest) -> Result<Self, Violations> {
        let mut v = Violations::new();
        let cursor = cursor(&mut v, "cursor", &request.cursor);
        let products = products(&mut v, "products", &request.products);
        v.complete(|| {
            Some(Self {
                cursor: cursor?,
                products,
            })
        })
    }
}

/// A revocation stream cursor: empty means "from now".
fn cursor(violations: &mut Violations, field: &str, raw: &str) -> Option<Option<i64>> {
    if raw.is_empty() {
        return Some(None);
    }
    match raw.parse::<i64>() {
        Ok(position) if position >= 0 => Some(Some(position)),
        _ => {
            violations.add(field, "must be a cursor returned by WatchRevocations");
            None
        }
    }
}

impl From<RevokeResult> for pb::RevokeSessionResponse {
    fn from(result: RevokeResult) -> Self {
        Self {
            outcome: number(result.outcome),
            session_ids: id_strings(&result.session_ids),
            products: product_numbers(&result.products),
            trust_removed: result.trust_removed,
            revocation: result.revocation.as_ref().map(Into::into),
            session_count: count(result.session_count),
        }
    }
}

/// A revocation as a call reports it; a preview has no id, since nothing was recorded.
pub fn revocation_message(revocation: &Revocation, effect: Effect) -> pb::Revocation {
    pb::Revocation {
        revocation_id: match effect {
            Effect::Apply => revocation.revocation_id.to_string(),
            Effect::Preview => String::new(),
        },
        account_id: revocation.account_id.to_string(),
        scope: number(revocation.scope),
        reason: number(revocation.reason),
        effective_at: Some(revocation.effective_at.to_proto()),
        revoked_before: revocation.revoked_before.map(|t| t.to_proto()),
        complete: revocation.completed_at.is_some(),
        completed_at: revocation.completed_at.map(|t| t.to_proto()),
        sessions_revoked: revocation.sessions_revoked,
        session_ids: id_strings(&revocation.session_ids),
        device_id: or_empty(revocation.device_id.as_ref()),
        trust_removed: revocation.trust_removed,
        cut_generation: revocation.cut_generation.unwrap_or_default(),
        includes_hidden_kinds: revocation.includes_hidden_kinds,
        kept_session_id: or_empty(revocation.kept_session_id.as_ref()),
    }
}

/// A recorded revocation.
impl From<&Revocation> for pb::Revocation {
    fn from(revocation: &Revocation) -> Self {
        revocation_message(revocation, Effect::Apply)
    }
}

/// A revocation as the stream sends it.
impl From<&Revocation> for pb::RevocationEvent {
    fn from(revocation: &Revocation) -> Self {
        Self {
            cursor: revocation.seq.to_string(),
            revocation_id: revocation.revocation_id.to_string(),
            account_id: revocation.account_id.to_string(),
            scope: number(revocation.scope),
            session_ids: id_strings(&revocation.session_ids),
            products: product_numbers(&revocation.products),
            revoked_at: Some(revocation.effective_at.to_proto()),
            revoked_before: revocation.revoked_before.map(|t| t.to_proto()),
            device_id: match revocation.scope {
                RevocationScope::Device => or_empty(revocation.device_id.as_ref()),
                RevocationScope::Session | RevocationScope::All => String::new(),
            },
            cut_generation: revocation.cut_generation.unwrap_or_default(),
            includes_hidden_kinds: revocation.includes_hidden_kinds,
            kept_session_id: or_empty(revocation.kept_session_id.as_ref()),
            reason: number(revocation.reason),
        }
    }
}
