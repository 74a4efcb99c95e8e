//! Conversions between the SessionService messages and the session domain types.

use std::{net::IpAddr, time::Duration};

use active_sessions::v1 as pb;

use crate::{
    domain::{
        history::{SecurityEvent, SecurityEventType},
        ids::{RevocationId, SessionId},
        revocation::{Revocation, RevocationScope},
        session::{AuthMethod, ClientKind, Product, RevocationReason, Session, SessionStatus},
        text::{Violations, check_free_text},
    },
    enrich::{DeviceDetails, DeviceType, GeoLocation},
    service::sessions::{LogOutAction, NoLogOutReason, RevokeOutcome, SessionRow, ValidSession},
};

/// Largest page a list call returns.
pub const MAX_PAGE_SIZE: i32 = 100;
/// Page size when the request says 0.
pub const DEFAULT_PAGE_SIZE: i32 = 50;
/// Longest user agent accepted.
pub const MAX_USER_AGENT_LEN: usize = 1024;

/// proto -> domain: product.
pub fn product_from_proto(value: pb::Product) -> Option<Product> {
    match value {
        pb::Product::Unspecified => None,
        pb::Product::Chatgpt => Some(Product::ChatGpt),
        pb::Product::Codex => Some(Product::Codex),
        pb::Product::ApiPlatform => Some(Product::ApiPlatform),
    }
}

/// domain -> proto: product.
pub fn product_to_proto(value: Product) -> pb::Product {
    match value {
        Product::ChatGpt => pb::Product::Chatgpt,
        Product::Codex => pb::Product::Codex,
        Product::ApiPlatform => pb::Product::ApiPlatform,
    }
}

/// An optional product filter: UNSPECIFIED means none.
pub fn product_filter(violations: &mut Violations, field: &str, raw: i32) -> Option<Product> {
    if raw == 0 {
        return None;
    }
    super::proto::required_enum(violations, field, raw, product_from_proto)
}

/// The most entries a product filter may have (the proto comment of
/// `WatchRevocationsRequest.products` says so).
pub const MAX_PRODUCT_FILTER_ENTRIES: usize = 8;

/// A list of products (filters): at most [`MAX_PRODUCT_FILTER_ENTRIES`], each a known, specified
/// value. The length is checked first, so an over-long list is one violation.
pub fn products(violations: &mut Violations, field: &str, raw: &[i32]) -> Vec<Product> {
    if !crate::domain::text::check_list_length(violations, field, raw, MAX_PRODUCT_FILTER_ENTRIES) {
        return Vec::new();
    }
    raw.iter()
        .enumerate()
        .filter_map(|(i, value)| {
            super::proto::required_enum(
                violations,
                &format!("{field}[{i}]"),
                *value,
                product_from_proto,
            )
        })
        .collect()
}

/// proto -> domain: client kind.
pub fn client_kind_from_proto(value: pb::ClientKind) -> Option<ClientKind> {
    Some(match value {
        pb::ClientKind::Unspecified => return None,
        pb::ClientKind::Browser => ClientKind::Browser,
        pb::ClientKind::DesktopApp => ClientKind::DesktopApp,
        pb::ClientKind::MobileApp => ClientKind::MobileApp,
        pb::ClientKind::ThirdPartyApp => ClientKind::ThirdPartyApp,
        pb::ClientKind::ConnectedApp => ClientKind::ConnectedApp,
        pb::ClientKind::SignInWithChatgpt => ClientKind::SignInWithChatGpt,
        pb::ClientKind::Cli => ClientKind::Cli,
    })
}

fn client_kind_to_proto(value: ClientKind) -> pb::ClientKind {
    match value {
        ClientKind::Browser => pb::ClientKind::Browser,
        ClientKind::DesktopApp => pb::ClientKind::DesktopApp,
        ClientKind::MobileApp => pb::ClientKind::MobileApp,
        ClientKind::ThirdPartyApp => pb::ClientKind::ThirdPartyApp,
        ClientKind::ConnectedApp => pb::ClientKind::ConnectedApp,
        ClientKind::SignInWithChatGpt => pb::ClientKind::SignInWithChatgpt,
        ClientKind::Cli => pb::ClientKind::Cli,
    }
}

/// proto -> domain: auth method (UNSPECIFIED means not known, which is allowed).
pub fn auth_method(violations: &mut Violations, field: &str, raw: i32) -> Option<AuthMethod> {
    let Ok(value) = pb::AuthMethod::try_from(raw) else {
        violations.add(field, format!("unknown value {raw}"));
        return None;
    };
    Some(match value {
        pb::AuthMethod::Unspecified => AuthMethod::Unknown,
        pb::AuthMethod::Password => AuthMethod::Password,
        pb::AuthMethod::Passkey => AuthMethod::Passkey,
        pb::AuthMethod::EmailCode => AuthMethod::EmailCode,
        pb::AuthMethod::PhoneCode => AuthMethod::PhoneCode,
        pb::AuthMethod::Google => AuthMethod::Google,
        pb::AuthMethod::Microsoft => AuthMethod::Microsoft,
        pb::AuthMethod::Apple => AuthMethod::Apple,
        pb::AuthMethod::SsoSaml => AuthMethod::SsoSaml,
        pb::AuthMethod::SsoOidc => AuthMethod::SsoOidc,
    })
}

fn auth_method_to_proto(value: AuthMethod) -> pb::AuthMethod {
    match value {
        AuthMethod::Unknown => pb::AuthMethod::Unspecified,
        AuthMethod::Password => pb::AuthMethod::Password,
        AuthMethod::Passkey => pb::AuthMethod::Passkey,
        AuthMethod::EmailCode => pb::AuthMethod::EmailCode,
        AuthMethod::PhoneCode => pb::AuthMethod::PhoneCode,
        AuthMethod::Google => pb::AuthMethod::Google,
        AuthMethod::Microsoft => pb::AuthMethod::Microsoft,
        AuthMethod::Apple => pb::AuthMethod::Apple,
        AuthMethod::SsoSaml => pb::AuthMethod::SsoSaml,
        AuthMethod::SsoOidc => pb::AuthMethod::SsoOidc,
    }
}

/// An optional IP address field: empty means unknown.
pub fn ip_address(violations: &mut Violations, field: &str, raw: &str) -> Option<Option<IpAddr>> {
    if raw.is_empty() {
        return Some(None);
    }
    if raw.len() > 45 {
        violations.add(field, "must be an IPv4 or IPv6 address");
        return None;
    }
    match raw.parse::<IpAddr>() {
        Ok(ip) => Some(Some(ip)),
        Err(_) => {
            violations.add(field, "must be an IPv4 or IPv6 address");
            None
        }
    }
}

/// Free text such as a user agent.
pub fn free_text(
    violations: &mut Violations,
    field: &str,
    raw: &str,
    max: usize,
) -> Option<String> {
    violations
        .check(field, check_free_text(raw, max))
        .map(|()| raw.to_owned())
}

/// An optional positive duration.
pub fn optional_duration(
    violations: &mut Violations,
    field: &str,
    raw: Option<&prost_types::Duration>,
) -> Option<Option<Duration>> {
    let Some(raw) = raw else {
        return Some(None);
    };
    match Duration::try_from(*raw) {
        Ok(duration) if !duration.is_zero() => Some(Some(duration)),
        _ => {
            violations.add(field, "must be a positive duration");
            None
        }
    }
}

/// A page size: 0 means the default; otherwise 1 to 100.
pub fn page_size(violations: &mut Violations, field: &str, raw: i32) -> Option<u64> {
    match raw {
        0 => Some(DEFAULT_PAGE_SIZE as u64),
        1..=MAX_PAGE_SIZE => Some(raw as u64),
        _ => {
            violations.add(field, format!("must be between 0 and {MAX_PAGE_SIZE}"));
            None
        }
    }
}

/// A page token: empty means the first page.
pub fn page_token(raw: &str) -> Option<&str> {
    (!raw.is_empty()).then_some(raw)
}

/// A session id.
pub fn session_id(violations: &mut Violations, field: &str, raw: &str) -> Option<SessionId> {
    violations.check(field, SessionId::parse(raw))
}

/// A revocation id.
pub fn revocation_id(violations: &mut Violations, field: &str, raw: &str) -> Option<RevocationId> {
    violations.check(field, RevocationId::parse(raw))
}

/// A revocation stream cursor: empty means "from now".
pub fn cursor(violations: &mut Violations, field: &str, raw: &str) -> Option<Option<i64>> {
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

fn device_type_to_proto(value: DeviceType) -> pb::DeviceType {
    match value {
        DeviceType::Unknown => pb::DeviceType::Unspecified,
        DeviceType::Desktop => pb::DeviceType::Desktop,
        DeviceType::Mobile => pb::DeviceType::Mobile,
        DeviceType::Tablet => pb::DeviceType::Tablet,
    }
}

/// domain -> proto: device details (approximate whenever anything is known).
pub fn device_to_proto(device: &DeviceDetails) -> pb::DeviceInfo {
    let description = device.description();
    pb::DeviceInfo {
        browser: device.browser.clone().unwrap_or_default(),
        browser_version: device.browser_version.clone().unwrap_or_default(),
        os: device.os.clone().unwrap_or_default(),
        os_version: device.os_version.clone().unwrap_or_default(),
        device_type: device_type_to_proto(device.device_type) as i32,
        approximate: description.is_some(),
        description: description.unwrap_or_default(),
    }
}

/// domain -> proto: location (IP-derived, so approximate whenever anything is known).
pub fn location_to_proto(location: &GeoLocation) -> pb::Location {
    pb::Location {
        city: location.city.clone().unwrap_or_default(),
        region: location.region.clone().unwrap_or_default(),
        country_code: location.country_code.clone().unwrap_or_default(),
        country: location.country.clone().unwrap_or_default(),
        approximate: *location != GeoLocation::default(),
    }
}

/// domain -> proto: session. `current` marks the caller's own session.
pub fn session_to_proto(session: &Session, current: bool) -> pb::Session {
    pb::Session {
        session_id: session.session_id.to_string(),
        account_id: session.account_id.to_string(),
        product: product_to_proto(session.product) as i32,
        client_kind: client_kind_to_proto(session.client_kind) as i32,
        device_id: session.device_id.to_string(),
        device: Some(device_to_proto(&session.device)),
        location: Some(location_to_proto(&session.location)),
        auth_method: auth_method_to_proto(session.auth_method) as i32,
        signed_in_at: Some(session.signed_in_at.to_proto()),
        last_active_at: Some(session.last_active_at.to_proto()),
        expires_at: Some(session.expires_at.to_proto()),
        status: status_to_proto(session.status) as i32,
        current,
    }
}

fn status_to_proto(status: SessionStatus) -> pb::SessionStatus {
    match status {
        SessionStatus::Active => pb::SessionStatus::Active,
        SessionStatus::Unavailable => pb::SessionStatus::Unavailable,
    }
}

/// domain -> proto: a valid session.
pub fn valid_session_to_proto(valid: Option<ValidSession>) -> pb::ValidateSessionResponse {
    match valid {
        None => pb::ValidateSessionResponse::default(),
        Some(valid) => pb::ValidateSessionResponse {
            valid: true,
            account_id: valid.account_id.to_string(),
            session_id: valid.session_id.to_string(),
            product: product_to_proto(valid.product) as i32,
            expires_at: Some(valid.expires_at.to_proto()),
            idle_expires_at: Some(valid.idle_expires_at.to_proto()),
            device_id: valid.device_id.to_string(),
            signed_in_at: Some(valid.signed_in_at.to_proto()),
            generation: valid.generation,
        },
    }
}

/// domain -> proto: a row.
pub fn row_to_proto(row: &SessionRow, current_session: Option<SessionId>) -> pb::SessionRow {
    let (action, reason) = match row.action {
        LogOutAction::LogOut => (pb::LogOutAction::LogOut, pb::NoLogOutReason::Unspecified),
        LogOutAction::LogOutAndRemove => (
            pb::LogOutAction::LogOutAndRemove,
            pb::NoLogOutReason::Unspecified,
        ),
        LogOutAction::None(NoLogOutReason::CurrentSession) => {
            (pb::LogOutAction::None, pb::NoLogOutReason::CurrentSession)
        }
        LogOutAction::None(NoLogOutReason::StatusUnavailable) => (
            pb::LogOutAction::None,
            pb::NoLogOutReason::StatusUnavailable,
        ),
    };
    pb::SessionRow {
        device_id: row.device_id.to_string(),
        products: row
            .products
            .iter()
            .map(|p| product_to_proto(*p) as i32)
            .collect(),
        sessions: row
            .sessions
            .iter()
            .map(|s| session_to_proto(s, Some(s.session_id) == current_session))
            .collect(),
        device: Some(device_to_proto(&row.device)),
        location: Some(location_to_proto(&row.location)),
        signed_in_at: Some(row.signed_in_at.to_proto()),
        last_active_at: Some(row.last_active_at.to_proto()),
        trusted: row.trusted,
        current: row.current,
        status: status_to_proto(row.status) as i32,
        log_out_action: action as i32,
        no_log_out_reason: reason as i32,
        new_device: row.new_device,
        new_country: row.new_country,
        session_count: i64::try_from(row.session_count).unwrap_or(i64::MAX),
        product_counts: row
            .product_counts
            .iter()
            .map(|(product, count)| pb::ProductSessionCount {
                product: product_to_proto(*product) as i32,
                session_count: i64::try_from(*count).unwrap_or(i64::MAX),
            })
            .collect(),
    }
}

/// domain -> proto: revoke outcome.
pub fn outcome_to_proto(outcome: RevokeOutcome) -> pb::RevokeOutcome {
    match outcome {
        RevokeOutcome::LoggedOut => pb::RevokeOutcome::LoggedOut,
        RevokeOutcome::LoggedOutAndRemoved => pb::RevokeOutcome::LoggedOutAndRemoved,
        RevokeOutcome::AlreadyLoggedOut => pb::RevokeOutcome::AlreadyLoggedOut,
    }
}

fn scope_to_proto(scope: RevocationScope) -> pb::RevocationScope {
    match scope {
        RevocationScope::Session => pb::RevocationScope::Session,
        RevocationScope::Device => pb::RevocationScope::Device,
        RevocationScope::All => pb::RevocationScope::All,
    }
}

/// domain -> proto: revocation reason.
pub fn reason_to_proto(reason: RevocationReason) -> pb::RevocationReason {
    match reason {
        RevocationReason::PasswordChanged => pb::RevocationReason::PasswordChanged,
        RevocationReason::FactorChanged => pb::RevocationReason::FactorChanged,
        RevocationReason::AccountDisabled => pb::RevocationReason::AccountDisabled,
        RevocationReason::SecurityReset => pb::RevocationReason::SecurityReset,
        RevocationReason::AccountDeleted => pb::RevocationReason::AccountDeleted,
        RevocationReason::UserLogOut => pb::RevocationReason::UserLogOut,
        RevocationReason::UserLogOutAll => pb::RevocationReason::UserLogOutAll,
        RevocationReason::Operator => pb::RevocationReason::Operator,
        RevocationReason::TrustRemoved => pb::RevocationReason::TrustRemoved,
        RevocationReason::SessionLimit => pb::RevocationReason::SessionLimit,
    }
}

/// proto -> domain: the reasons a caller may give RevokeAllSessions (None for UNSPECIFIED and
/// for values it may not give, which the handler refuses).
pub fn identity_reason_from_proto(value: pb::RevocationReason) -> Option<RevocationReason> {
    match value {
        pb::RevocationReason::PasswordChanged => Some(RevocationReason::PasswordChanged),
        pb::RevocationReason::FactorChanged => Some(RevocationReason::FactorChanged),
        pb::RevocationReason::AccountDisabled => Some(RevocationReason::AccountDisabled),
        pb::RevocationReason::SecurityReset => Some(RevocationReason::SecurityReset),
        _ => None,
    }
}

/// domain -> proto: revocation. `recorded` is false for a validate_only preview (no id).
pub fn revocation_to_proto(revocation: &Revocation, recorded: bool) -> pb::Revocation {
    pb::Revocation {
        revocation_id: if recorded {
            revocation.revocation_id.to_string()
        } else {
            String::new()
        },
        account_id: revocation.account_id.to_string(),
        scope: scope_to_proto(revocation.scope) as i32,
        reason: reason_to_proto(revocation.reason) as i32,
        effective_at: Some(revocation.effective_at.to_proto()),
        revoked_before: revocation.revoked_before.map(|t| t.to_proto()),
        complete: revocation.completed_at.is_some(),
        completed_at: revocation.completed_at.map(|t| t.to_proto()),
        sessions_revoked: revocation.sessions_revoked,
        session_ids: revocation
            .session_ids
            .iter()
            .map(ToString::to_string)
            .collect(),
        device_id: revocation
            .device_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        trust_removed: revocation.trust_removed,
        cut_generation: revocation.cut_generation.unwrap_or_default(),
        includes_hidden_kinds: revocation.includes_hidden_kinds,
        kept_session_id: revocation
            .kept_session_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
    }
}

/// domain -> proto: a revocation as the stream sends it.
pub fn revocation_event_to_proto(revocation: &Revocation) -> pb::RevocationEvent {
    pb::RevocationEvent {
        cursor: revocation.seq.to_string(),
        revocation_id: revocation.revocation_id.to_string(),
        account_id: revocation.account_id.to_string(),
        scope: scope_to_proto(revocation.scope) as i32,
        session_ids: revocation
            .session_ids
            .iter()
            .map(ToString::to_string)
            .collect(),
        products: revocation
            .products
            .iter()
            .map(|p| product_to_proto(*p) as i32)
            .collect(),
        revoked_at: Some(revocation.effective_at.to_proto()),
        revoked_before: revocation.revoked_before.map(|t| t.to_proto()),
        device_id: match revocation.scope {
            RevocationScope::Device => revocation
                .device_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            RevocationScope::Session | RevocationScope::All => String::new(),
        },
        cut_generation: revocation.cut_generation.unwrap_or_default(),
        includes_hidden_kinds: revocation.includes_hidden_kinds,
        kept_session_id: revocation
            .kept_session_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        reason: reason_to_proto(revocation.reason) as i32,
    }
}

fn event_type_to_proto(value: SecurityEventType) -> pb::SecurityEventType {
    match value {
        SecurityEventType::SignIn => pb::SecurityEventType::SignIn,
        SecurityEventType::LogOut => pb::SecurityEventType::LogOut,
        SecurityEventType::LogOutAll => pb::SecurityEventType::LogOutAll,
        SecurityEventType::DeviceTrusted => pb::SecurityEventType::DeviceTrusted,
        SecurityEventType::DeviceTrustRemoved => pb::SecurityEventType::DeviceTrustRemoved,
        SecurityEventType::AccountDisabled => pb::SecurityEventType::AccountDisabled,
        SecurityEventType::AccountEnabled => pb::SecurityEventType::AccountEnabled,
    }
}

/// domain -> proto: a security event.
pub fn security_event_to_proto(event: &SecurityEvent) -> pb::SecurityEvent {
    pb::SecurityEvent {
        event_id: event.event_id.to_string(),
        r#type: event_type_to_proto(event.event_type) as i32,
        occurred_at: Some(event.occurred_at.to_proto()),
        session_id: event
            .session_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        product: event
            .product
            .map_or(pb::Product::Unspecified, product_to_proto) as i32,
        device_id: event
            .device_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        device: Some(device_to_proto(&event.device)),
        location: Some(location_to_proto(&event.location)),
        actor: event.actor.clone(),
        revocation_id: event
            .revocation_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        session_count: event.session_count,
        reason: event
            .reason
            .map_or(pb::RevocationReason::Unspecified, reason_to_proto) as i32,
    }
}
