//! SessionService's registration, validation and listing calls: their requests into the inputs
//! of the session commands, and sessions, validations and Active sessions rows back into
//! messages. A list page that would encode past the byte budget ends early (`grpc::budget`).

use std::net::IpAddr;

use active_sessions::v1 as pb;

use super::{
    enums::{number, product_numbers},
    fields::{
        account_id, count, device_id, optional_duration, page_size, page_token, product_filter,
        required_enum, session_token, subject,
    },
};
use crate::{
    domain::{
        ids::{DeviceId, RequestId, SessionId},
        session::{AuthMethod, ListedSession, Product, Session},
        subject::Subject,
        text::{Violations, check_free_text},
        token::SessionToken,
    },
    grpc::budget::fit_page,
    service::sessions::{
        DeviceSessionsPage, NewSession, Registered, RowsPage, SessionRow, ValidSession,
    },
};

/// Longest user agent accepted.
pub const MAX_USER_AGENT_LEN: usize = 1024;

/// Longest IP address text accepted (an IPv6 address with an embedded IPv4 one).
const MAX_IP_ADDRESS_LEN: usize = 45;

impl TryFrom<pb::RegisterSessionRequest> for NewSession {
    type Error = Violations;

    fn try_from(request: pb::RegisterSessionRequest) -> Result<Self, Violations> {
        let mut v = Violations::new();
        let request_id = if request.request_id.is_empty() {
            Some(None)
        } else {
            v.check("request_id", RequestId::parse(&request.request_id))
                .map(Some)
        };
        let account_id = account_id(&mut v, "account_id", &request.account_id);
        let product = required_enum(&mut v, "product", request.product);
        let client_kind = required_enum(&mut v, "client_kind", request.client_kind);
        let device_id = device_id(&mut v, "device_id", &request.device_id);
        let user_agent = v
            .check(
                "user_agent",
                check_free_text(&request.user_agent, MAX_USER_AGENT_LEN),
            )
            .map(|()| request.user_agent);
        let ip = ip_address(&mut v, "ip_address", &request.ip_address);
        let auth_method = auth_method(&mut v, "auth_method", request.auth_method);
        let lifetime = optional_duration(&mut v, "lifetime", request.lifetime.as_ref());
        v.complete(|| {
            Some(Self {
                request_id: request_id?,
                account_id: account_id?,
                product: product?,
                client_kind: client_kind?,
                device_id: device_id?,
                user_agent: user_agent?,
                ip: ip?,
                auth_method: auth_method?,
                lifetime: lifetime?,
                status_unavailable: request.status_unavailable,
            })
        })
    }
}

/// How the user signed in: UNSPECIFIED means not known, which is allowed.
fn auth_method(violations: &mut Violations, field: &str, raw: i32) -> Option<AuthMethod> {
    match pb::AuthMethod::try_from(raw) {
        Ok(value) => Some(value.into()),
        Err(_) => {
            violations.add(field, format!("unknown value {raw}"));
            None
        }
    }
}

/// An optional IP address: empty means unknown.
fn ip_address(violations: &mut Violations, field: &str, raw: &str) -> Option<Option<IpAddr>> {
    if raw.is_empty() {
        return Some(None);
    }
    let parsed = (raw.len() <= MAX_IP_ADDRESS_LEN)
        .then(|| raw.parse::<IpAddr>().ok())
        .flatten();
    if parsed.is_none() {
        violations.add(field, "must be an IPv4 or IPv6 address");
    }
    parsed.map(Some)
}

impl TryFrom<pb::ValidateSessionRequest> for SessionToken {
    type Error = Violations;

    fn try_from(request: pb::ValidateSessionRequest) -> Result<Self, Violations> {
        let mut v = Violations::new();
        let token = session_token(&mut v, "session_token", &request.session_token);
        v.complete(|| token)
    }
}

/// A TouchSession request, validated.
#[derive(Debug, Clone)]
pub struct TouchSession {
    /// The session.
    pub token: SessionToken,
    /// The client's IP now, if known.
    pub ip: Option<IpAddr>,
}

impl TryFrom<pb::TouchSessionRequest> for TouchSession {
    type Error = Violations;

    fn try_from(request: pb::TouchSessionRequest) -> Result<Self, Violations> {
        let mut v = Violations::new();
        let token = session_token(&mut v, "session_token", &request.session_token);
        let ip = ip_address(&mut v, "ip_address", &request.ip_address);
        v.complete(|| {
            Some(Self {
                token: token?,
                ip: ip?,
            })
        })
    }
}

/// A ListActiveSessions request, validated.
#[derive(Debug, Clone)]
pub struct ListActiveSessions {
    /// Whose rows.
    pub subject: Subject,
    /// How many rows at most.
    pub size: u64,
    /// Only rows with a session of this product.
    pub product: Option<Product>,
    /// Where to continue (`None`: the first page).
    pub page_token: Option<String>,
}

impl TryFrom<pb::ListActiveSessionsRequest> for ListActiveSessions {
    type Error = Violations;

    fn try_from(request: pb::ListActiveSessionsRequest) -> Result<Self, Violations> {
        let mut v = Violations::new();
        let subject = subject(&mut v, "subject", request.subject.as_ref());
        let size = page_size(&mut v, "page_size", request.page_size);
        let product = product_filter(&mut v, "product", request.product);
        v.complete(|| {
            Some(Self {
                subject: subject?,
                size: size?,
                product,
                page_token: page_token(request.page_token),
            })
        })
    }
}

/// A ListDeviceSessions request, validated.
#[derive(Debug, Clone)]
pub struct ListDeviceSessions {
    /// Whose sessions.
    pub subject: Subject,
    /// The row's device.
    pub device_id: DeviceId,
    /// How many sessions at most.
    pub size: u64,
    /// Only this product's sessions.
    pub product: Option<Product>,
    /// Where to continue (`None`: the first page).
    pub page_token: Option<String>,
}

impl TryFrom<pb::ListDeviceSessionsRequest> for ListDeviceSessions {
    type Error = Violations;

    fn try_from(request: pb::ListDeviceSessionsRequest) -> Result<Self, Violations> {
        let mut v = Violations::new();
        let subject = subject(&mut v, "subject", request.subject.as_ref());
        let device_id = device_id(&mut v, "device_id", &request.device_id);
        let size = page_size(&mut v, "page_size", request.page_size);
        let product = product_filter(&mut v, "product", request.product);
        v.complete(|| {
            Some(Self {
                subject: subject?,
                device_id: device_id?,
                size: size?,
                product,
                page_token: page_token(request.page_token),
            })
        })
    }
}

/// A session; `current` marks the caller's own.
fn session_message(session: &Session, current: Option<SessionId>) -> pb::Session {
    listed_message(ListedSession::from(session.clone()), current)
}

/// What a page shows of a session, as the wire carries it.
fn listed_message(session: ListedSession, current: Option<SessionId>) -> pb::Session {
    pb::Session {
        session_id: session.session_id.to_string(),
        account_id: session.account_id.to_string(),
        product: number(session.product),
        client_kind: number(session.client_kind),
        device_id: session.device_id.to_string(),
        device: Some(session.device.into()),
        location: Some(session.location.into()),
        auth_method: number(session.auth_method),
        signed_in_at: Some(session.signed_in_at.to_proto()),
        last_active_at: Some(session.last_active_at.to_proto()),
        expires_at: Some(session.expires_at.to_proto()),
        status: number(session.status),
        current: current == Some(session.session_id),
    }
}

impl From<Registered> for pb::RegisterSessionResponse {
    fn from(registered: Registered) -> Self {
        Self {
            session: Some(session_message(&registered.session, None)),
            session_token: registered.token.expose(),
            replayed: registered.replayed,
        }
    }
}

impl From<ValidSession> for pb::ValidateSessionResponse {
    fn from(valid: ValidSession) -> Self {
        Self {
            valid: true,
            account_id: valid.account_id.into_string(),
            session_id: valid.session_id.to_string(),
            product: number(valid.product),
            expires_at: Some(valid.expires_at.to_proto()),
            idle_expires_at: Some(valid.idle_expires_at.to_proto()),
            device_id: valid.device_id.into_string(),
            signed_in_at: Some(valid.signed_in_at.to_proto()),
            generation: valid.generation,
        }
    }
}

impl From<ValidSession> for pb::TouchSessionResponse {
    fn from(valid: ValidSession) -> Self {
        Self {
            session_id: valid.session_id.to_string(),
        }
    }
}

fn row_message(row: SessionRow, current_session: Option<SessionId>) -> pb::SessionRow {
    pb::SessionRow {
        device_id: row.device_id.into_string(),
        products: product_numbers(&row.products),
        sessions: row
            .sessions
            .into_iter()
            .map(|session| listed_message(session, current_session))
            .collect(),
        device: Some(row.device.into()),
        location: Some(row.location.into()),
        signed_in_at: Some(row.signed_in_at.to_proto()),
        last_active_at: Some(row.last_active_at.to_proto()),
        trusted: row.trusted,
        current: row.current,
        status: number(row.status),
        log_out_action: pb::LogOutAction::from(row.action) as i32,
        no_log_out_reason: pb::NoLogOutReason::from(row.action) as i32,
        new_device: row.new_device,
        new_country: row.new_country,
        session_count: count(row.session_count),
        product_counts: row
            .product_counts
            .iter()
            .map(|(product, sessions)| pb::ProductSessionCount {
                product: number(*product),
                session_count: count(*sessions),
            })
            .collect(),
    }
}

impl From<RowsPage> for pb::ListActiveSessionsResponse {
    fn from(page: RowsPage) -> Self {
        let rows = page
            .rows
            .into_iter()
            .map(|row| row_message(row, page.current_session))
            .collect();
        let (rows, next_page_token) = fit_page(rows, page.tokens_after, page.next_page_token);
        Self {
            rows,
            next_page_token,
        }
    }
}

impl From<DeviceSessionsPage> for pb::ListDeviceSessionsResponse {
    fn from(page: DeviceSessionsPage) -> Self {
        let sessions = page
            .sessions
            .iter()
            .map(|session| session_message(session, page.current_session))
            .collect();
        let (sessions, next_page_token) =
            fit_page(sessions, page.tokens_after, page.next_page_token);
        Self {
            sessions,
            next_page_token,
        }
    }
}
