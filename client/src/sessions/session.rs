//! What the session calls report: a signed-in session as validation sees it, a session and a
//! row of the Active sessions page as listings show them, and their pages, each with its
//! conversion from the wire type.

use std::time::SystemTime;

#[cfg(doc)]
use crate::{ListOptions, SessionClient};
use crate::{
    proto::{
        self, AuthMethod, ClientKind, DeviceInfo, Location, LogOutAction, NoLogOutReason, Product,
        SessionStatus,
    },
    types::{non_empty, time},
};

/// A session that is signed in now, as [`SessionClient::validate`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidSession {
    /// The session id (a ULID).
    pub session_id: String,
    /// The account the session belongs to.
    pub account_id: String,
    /// The product the session is signed in to.
    pub product: Product,
    /// The device id the session was registered with.
    pub device_id: String,
    /// When the session was created (for display; log-outs of all are decided by
    /// [`generation`](Self::generation)).
    pub signed_in_at: SystemTime,
    /// When the session ends regardless of activity.
    pub expires_at: SystemTime,
    /// When the session ends if no further activity is recorded.
    pub idle_expires_at: SystemTime,
    /// The account's log-out-of-all generation the session was born in: a log-out of all whose
    /// `cut_generation` is greater ends it.
    pub generation: i64,
}

impl ValidSession {
    /// The session a validation answered, or `None` when the token is not signed in.
    pub(crate) fn from_response(response: proto::ValidateSessionResponse) -> Option<Self> {
        if !response.valid {
            return None;
        }
        let product = response.product();
        Some(Self {
            session_id: response.session_id,
            account_id: response.account_id,
            product,
            device_id: response.device_id,
            // Missing instants read as the epoch: such an entry is never cached (already
            // expired) and any log-out of all sessions covers it.
            signed_in_at: time(response.signed_in_at).unwrap_or(SystemTime::UNIX_EPOCH),
            expires_at: time(response.expires_at).unwrap_or(SystemTime::UNIX_EPOCH),
            idle_expires_at: time(response.idle_expires_at).unwrap_or(SystemTime::UNIX_EPOCH),
            generation: response.generation,
        })
    }

    /// The earlier of [`expires_at`](Self::expires_at) and
    /// [`idle_expires_at`](Self::idle_expires_at): the session is surely signed out after it.
    pub fn valid_until(&self) -> SystemTime {
        self.expires_at.min(self.idle_expires_at)
    }
}

/// A sign-in session, as listings and registration report it.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// The session id (a ULID).
    pub session_id: String,
    /// The account.
    pub account_id: String,
    /// The product signed in to.
    pub product: Product,
    /// The kind of client holding the session.
    pub client_kind: ClientKind,
    /// The device id it was registered with.
    pub device_id: String,
    /// Device and browser or app, from its user agent.
    pub device: DeviceInfo,
    /// Approximate location of its latest IP address.
    pub location: Location,
    /// How the user signed in.
    pub auth_method: AuthMethod,
    /// When it was created.
    pub signed_in_at: Option<SystemTime>,
    /// When it was last seen active.
    pub last_active_at: Option<SystemTime>,
    /// When it ends regardless of activity.
    pub expires_at: Option<SystemTime>,
    /// Whether its state can be confirmed.
    pub status: SessionStatus,
    /// True when it is the caller's current session.
    pub current: bool,
}

impl From<proto::Session> for Session {
    fn from(session: proto::Session) -> Self {
        Self {
            product: session.product(),
            client_kind: session.client_kind(),
            auth_method: session.auth_method(),
            status: session.status(),
            session_id: session.session_id,
            account_id: session.account_id,
            device_id: session.device_id,
            device: session.device.unwrap_or_default(),
            location: session.location.unwrap_or_default(),
            signed_in_at: time(session.signed_in_at),
            last_active_at: time(session.last_active_at),
            expires_at: time(session.expires_at),
            current: session.current,
        }
    }
}

/// One row of the Active sessions page: every active, visible session on one device.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    /// The device id; pass it to [`SessionClient::revoke_row`] to log the row out.
    pub device_id: String,
    /// The products signed in on the device, in enum order.
    pub products: Vec<Product>,
    /// The row's most recently active sessions (at most 10), most recent first;
    /// [`SessionClient::list_device_sessions`] pages through all of them.
    pub sessions: Vec<Session>,
    /// How many active sessions the row holds.
    pub session_count: i64,
    /// How many per product, in enum order.
    pub product_counts: Vec<(Product, i64)>,
    /// Device and browser or app, from the most recently active session.
    pub device: DeviceInfo,
    /// Approximate location of the most recently active session.
    pub location: Location,
    /// The earliest sign-in among the row's sessions.
    pub signed_in_at: Option<SystemTime>,
    /// The latest activity among the row's sessions.
    pub last_active_at: Option<SystemTime>,
    /// True when the device is trusted now.
    pub trusted: bool,
    /// True when the row holds the caller's current session.
    pub current: bool,
    /// `Unavailable` when a session on the row cannot be confirmed, otherwise `Active`.
    pub status: SessionStatus,
    /// The log-out the row offers.
    pub log_out_action: LogOutAction,
    /// When the row offers no log-out, why (`Unspecified` otherwise).
    pub no_log_out_reason: NoLogOutReason,
    /// True when the device had not been seen on the account before.
    pub new_device: bool,
    /// True when the country had not been seen on the account before.
    pub new_country: bool,
}

impl From<proto::SessionRow> for SessionRow {
    fn from(row: proto::SessionRow) -> Self {
        Self {
            products: row.products().collect(),
            status: row.status(),
            log_out_action: row.log_out_action(),
            no_log_out_reason: row.no_log_out_reason(),
            product_counts: row
                .product_counts
                .iter()
                .map(|count| (count.product(), count.session_count))
                .collect(),
            session_count: row.session_count,
            device_id: row.device_id,
            sessions: row.sessions.into_iter().map(Session::from).collect(),
            device: row.device.unwrap_or_default(),
            location: row.location.unwrap_or_default(),
            signed_in_at: time(row.signed_in_at),
            last_active_at: time(row.last_active_at),
            trusted: row.trusted,
            current: row.current,
            new_device: row.new_device,
            new_country: row.new_country,
        }
    }
}

/// A page of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct RowsPage {
    /// The rows, most recent activity first.
    pub rows: Vec<SessionRow>,
    /// Pass to [`ListOptions::page_token`] for the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}

/// A page of one row's sessions, from [`SessionClient::list_device_sessions`].
#[derive(Debug, Clone, PartialEq)]
pub struct SessionsPage {
    /// The sessions, newest sign-in first.
    pub sessions: Vec<Session>,
    /// Pass to [`ListOptions::page_token`] for the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}

impl From<proto::ListActiveSessionsResponse> for RowsPage {
    fn from(response: proto::ListActiveSessionsResponse) -> Self {
        Self {
            rows: response.rows.into_iter().map(SessionRow::from).collect(),
            next_page_token: non_empty(response.next_page_token),
        }
    }
}

impl From<proto::ListDeviceSessionsResponse> for SessionsPage {
    fn from(response: proto::ListDeviceSessionsResponse) -> Self {
        Self {
            sessions: response.sessions.into_iter().map(Session::from).collect(),
            next_page_token: non_empty(response.next_page_token),
        }
    }
}
