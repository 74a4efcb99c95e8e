//! [`SessionClient`]: registering, validating and listing sessions, log-outs, and the
//! revocation stream.

use std::{
    fmt,
    net::IpAddr,
    time::{Duration, SystemTime},
};

use crate::{
    Connection, Error, Owner, RetryPolicy, Transport,
    proto::{
        self, AuthMethod, ClientKind, DeviceInfo, Location, LogOutAction, NoLogOutReason, Product,
        RevocationReason, RevocationScope, RevokeOutcome, SecurityEventType, SessionStatus,
        session_service_client::SessionServiceClient,
    },
    retry::{self, Idempotency, request},
    types::{ListOptions, next_page, time, well_formed_token},
};

/// The typed client of `SessionService`. Cheap to clone; clones share the connection.
///
/// Validation, listings, reads and registration (with its request id) are retried according
/// to the [`RetryPolicy`]; touch and log-outs make exactly one attempt.
#[derive(Debug, Clone)]
pub struct SessionClient {
    inner: SessionServiceClient<Transport>,
    retry: RetryPolicy,
}

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
    fn from_proto(response: proto::ValidateSessionResponse) -> Option<Self> {
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

impl Session {
    fn from_proto(session: proto::Session) -> Self {
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

impl SessionRow {
    fn from_proto(row: proto::SessionRow) -> Self {
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
            sessions: row.sessions.into_iter().map(Session::from_proto).collect(),
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

impl Revocation {
    pub(crate) fn from_proto(revocation: proto::Revocation) -> Self {
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
            device_id: next_page(revocation.device_id),
            trust_removed: revocation.trust_removed,
            includes_hidden_kinds: revocation.includes_hidden_kinds,
            kept_session_id: next_page(revocation.kept_session_id),
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

/// A sign-in to record with [`SessionClient::register`]. Start from a product preset
/// ([`chatgpt_browser`](Self::chatgpt_browser), [`codex_desktop`](Self::codex_desktop),
/// [`api_platform_browser`](Self::api_platform_browser)) or [`new`](Self::new), then add what
/// is known of the client.
///
/// Without an explicit [`request_id`](Self::request_id), registration generates one before its
/// first attempt and reuses it on every retry, so a retried registration never creates a second
/// session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    account_id: String,
    product: Product,
    client_kind: ClientKind,
    device_id: String,
    user_agent: String,
    ip: Option<IpAddr>,
    auth_method: AuthMethod,
    request_id: Option<String>,
    lifetime: Option<Duration>,
    status_unavailable: bool,
}

impl Registration {
    /// A sign-in of `account_id` to `product` from a client of `client_kind` identified by
    /// `device_id` (a per-browser cookie id or a per-installation id).
    pub fn new(
        account_id: impl Into<String>,
        product: Product,
        client_kind: ClientKind,
        device_id: impl Into<String>,
    ) -> Self {
        Self {
            account_id: account_id.into(),
            product,
            client_kind,
            device_id: device_id.into(),
            user_agent: String::new(),
            ip: None,
            auth_method: AuthMethod::Unspecified,
            request_id: None,
            lifetime: None,
            status_unavailable: false,
        }
    }

    /// ChatGPT in a web browser; `device_id` is the browser's long-lived device cookie.
    pub fn chatgpt_browser(account_id: impl Into<String>, device_id: impl Into<String>) -> Self {
        Self::new(account_id, Product::Chatgpt, ClientKind::Browser, device_id)
    }

    /// The ChatGPT desktop app; `device_id` is the installation id.
    pub fn chatgpt_desktop(account_id: impl Into<String>, device_id: impl Into<String>) -> Self {
        Self::new(
            account_id,
            Product::Chatgpt,
            ClientKind::DesktopApp,
            device_id,
        )
    }

    /// The ChatGPT mobile app; `device_id` is the installation id.
    pub fn chatgpt_mobile(account_id: impl Into<String>, device_id: impl Into<String>) -> Self {
        Self::new(
            account_id,
            Product::Chatgpt,
            ClientKind::MobileApp,
            device_id,
        )
    }

    /// The Codex desktop app; `device_id` is the installation id.
    pub fn codex_desktop(account_id: impl Into<String>, device_id: impl Into<String>) -> Self {
        Self::new(
            account_id,
            Product::Codex,
            ClientKind::DesktopApp,
            device_id,
        )
    }

    /// The Codex CLI (a hidden kind: validated, never listed); `device_id` is the installation
    /// id.
    pub fn codex_cli(account_id: impl Into<String>, device_id: impl Into<String>) -> Self {
        Self::new(account_id, Product::Codex, ClientKind::Cli, device_id)
    }

    /// The API Platform dashboard in a web browser; `device_id` is the browser's device cookie
    /// (the same id as ChatGPT's on that browser, so both show as one row).
    pub fn api_platform_browser(
        account_id: impl Into<String>,
        device_id: impl Into<String>,
    ) -> Self {
        Self::new(
            account_id,
            Product::ApiPlatform,
            ClientKind::Browser,
            device_id,
        )
    }

    /// The client's `User-Agent` header.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// The client's IP address.
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.ip = Some(ip);
        self
    }

    /// How the user signed in.
    pub fn auth_method(mut self, auth_method: AuthMethod) -> Self {
        self.auth_method = auth_method;
        self
    }

    /// The idempotency key of this sign-in (1 to 128 characters). Registering again with the
    /// same key and request returns the original session and token.
    pub fn request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// How long the session may live regardless of activity (default: the server's).
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = Some(lifetime);
        self
    }

    /// Marks a session imported from a store whose state cannot be confirmed: it lists as
    /// "status unavailable" and only logging out of all sessions ends it.
    pub fn status_unavailable(mut self) -> Self {
        self.status_unavailable = true;
        self
    }

    fn to_proto(&self, request_id: String) -> proto::RegisterSessionRequest {
        proto::RegisterSessionRequest {
            request_id,
            account_id: self.account_id.clone(),
            product: self.product as i32,
            client_kind: self.client_kind as i32,
            device_id: self.device_id.clone(),
            user_agent: self.user_agent.clone(),
            ip_address: self.ip.map(|ip| ip.to_string()).unwrap_or_default(),
            auth_method: self.auth_method as i32,
            // A lifetime beyond the wire range is sent as the largest one, which the server
            // refuses as longer than its maximum.
            lifetime: self.lifetime.map(|lifetime| {
                prost_types::Duration::try_from(lifetime).unwrap_or(prost_types::Duration {
                    seconds: i64::MAX,
                    nanos: 0,
                })
            }),
            status_unavailable: self.status_unavailable,
        }
    }
}

/// A registered sign-in. Its `Debug` never shows the token.
#[derive(Clone, PartialEq)]
pub struct Registered {
    /// The session.
    pub session: Session,
    /// The session token: `ast_` and 43 base64url characters. Returned only here; treat it as
    /// a secret (for example the value of an `HttpOnly` cookie).
    pub token: String,
    /// True when the request id had been seen and the original session was returned.
    pub replayed: bool,
    /// The request id the registration was made with (given or generated).
    pub request_id: String,
}

impl fmt::Debug for Registered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registered")
            .field("session", &self.session)
            .field("token", &"<redacted>")
            .field("replayed", &self.replayed)
            .field("request_id", &self.request_id)
            .finish()
    }
}

/// An entry of an account's security history.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityEvent {
    /// The event id (a ULID).
    pub event_id: String,
    /// What happened.
    pub kind: SecurityEventType,
    /// When.
    pub occurred_at: Option<SystemTime>,
    /// The session involved, if one.
    pub session_id: Option<String>,
    /// The product involved (`Unspecified` if none).
    pub product: Product,
    /// The device involved, if one.
    pub device_id: Option<String>,
    /// The device as known at the time.
    pub device: DeviceInfo,
    /// Approximate location at the time.
    pub location: Location,
    /// Who acted: `user`, `operator:NAME` or `service:NAME`.
    pub actor: String,
    /// The revocation, for log-out events.
    pub revocation_id: Option<String>,
    /// How many sessions the event covered (log-outs).
    pub session_count: i64,
    /// Why, for log-outs (`Unspecified` otherwise).
    pub reason: RevocationReason,
}

/// A page of security events.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityEventsPage {
    /// Events, newest first.
    pub events: Vec<SecurityEvent>,
    /// Pass to [`ListOptions::page_token`] for the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}

/// One revocation from [`SessionClient::watch_revocations`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationEvent {
    /// Its position in the revocation log.
    pub cursor: String,
    /// The revocation id.
    pub revocation_id: String,
    /// The account.
    pub account_id: String,
    /// One session, one device or everything.
    pub scope: RevocationScope,
    /// The sessions revoked (scopes `Session` and `Device`) when they are at most 100; empty for
    /// a device log-out of more.
    pub session_ids: Vec<String>,
    /// The products touched.
    pub products: Vec<Product>,
    /// When it took effect.
    pub revoked_at: Option<SystemTime>,
    /// For scope `All`: the cut-off instant, for display; what it revokes is decided by
    /// [`cut_generation`](Self::cut_generation) when the server sends one. For scope `Device`:
    /// every session of the account on `device_id` signed in at or before this instant is
    /// revoked.
    pub revoked_before: Option<SystemTime>,
    /// The device, for scope `Device`.
    pub device_id: Option<String>,
    /// For scope `All`: every session of the account born in a generation below this is
    /// revoked (0 from servers that predate generations).
    pub cut_generation: i64,
    /// For scope `All`: true when the hidden kinds ended too.
    pub includes_hidden_kinds: bool,
    /// For scope `All`: the session kept valid, moved to `cut_generation` (a cache drops its
    /// old entry and validates it again).
    pub kept_session_id: Option<String>,
    /// Why (`Unspecified` from servers that do not send it).
    pub reason: RevocationReason,
}

/// A batch from the revocation stream: revocations in commit order, or none (a keep-alive, and
/// the first message after the stream has caught up), with the cursor after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationBatch {
    /// The revocations; empty in a keep-alive.
    pub events: Vec<RevocationEvent>,
    /// Resume after this cursor.
    pub cursor: String,
}

/// An open `WatchRevocations` stream.
#[derive(Debug)]
pub struct RevocationStream {
    inner: tonic::Streaming<proto::WatchRevocationsResponse>,
}

impl RevocationStream {
    /// The next batch; `Ok(None)` when the server ended the stream (for example on shutdown).
    pub async fn next(&mut self) -> Result<Option<RevocationBatch>, Error> {
        let Some(batch) = self.inner.message().await? else {
            return Ok(None);
        };
        Ok(Some(RevocationBatch {
            cursor: batch.cursor,
            events: batch
                .events
                .into_iter()
                .map(|event| RevocationEvent {
                    scope: event.scope(),
                    reason: event.reason(),
                    includes_hidden_kinds: event.includes_hidden_kinds,
                    kept_session_id: next_page(event.kept_session_id.clone()),
                    products: event.products().collect(),
                    cursor: event.cursor,
                    revocation_id: event.revocation_id,
                    account_id: event.account_id,
                    session_ids: event.session_ids,
                    revoked_at: time(event.revoked_at),
                    revoked_before: time(event.revoked_before),
                    device_id: next_page(event.device_id),
                    cut_generation: event.cut_generation,
                })
                .collect(),
        }))
    }
}

impl SessionClient {
    /// A client over `connection`, with the connection's retry policy.
    pub fn new(connection: &Connection) -> Self {
        Self {
            inner: connection.session_service(),
            retry: connection.retry_policy(),
        }
    }

    /// This client with another retry policy.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Records a sign-in and returns the session and its token (retried safely: the request id,
    /// given or generated, makes a repeat return the same session).
    pub async fn register(&self, registration: Registration) -> Result<Registered, Error> {
        let request_id = registration
            .request_id
            .clone()
            .unwrap_or_else(|| format!("req_{}", ulid::Ulid::generate()));
        let message = registration.to_proto(request_id.clone());
        let response = retry::run(&self.retry, Idempotency::Idempotent, |timeout| {
            let mut client = self.inner.clone();
            let request = request(message.clone(), timeout);
            async move { client.register_session(request).await }
        })
        .await?
        .into_inner();
        let session = response
            .session
            .ok_or_else(|| Error::Other(tonic::Status::internal("no session in the response")))?;
        Ok(Registered {
            session: Session::from_proto(session),
            token: response.session_token,
            replayed: response.replayed,
            request_id,
        })
    }

    /// Whether `token` is signed in now: `Some` with the session, or `None` for anything that
    /// is not a signed-in session: revoked, expired, unknown, another product's, or malformed
    /// (a malformed token is not sent at all). `Err` only for what the caller must handle: the
    /// service unavailable or overloaded, the calling service not authenticated or allowed, the
    /// deadline.
    pub async fn validate(&self, token: &str) -> Result<Option<ValidSession>, Error> {
        if !well_formed_token(token) {
            return Ok(None);
        }
        let message = proto::ValidateSessionRequest {
            session_token: token.to_owned(),
        };
        let response = retry::run(&self.retry, Idempotency::Idempotent, |timeout| {
            let mut client = self.inner.clone();
            let request = request(message.clone(), timeout);
            async move { client.validate_session(request).await }
        })
        .await;
        match response {
            Ok(response) => Ok(ValidSession::from_proto(response.into_inner())),
            // A token the server cannot parse is not signed in.
            Err(Error::SessionNotValid) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Records activity on a signed-in session (never retried). Returns the session id;
    /// [`Error::NotFound`] when the token is not signed in (malformed tokens included).
    pub async fn touch(&self, token: &str, ip: Option<IpAddr>) -> Result<String, Error> {
        if !well_formed_token(token) {
            return Err(Error::NotFound);
        }
        let message = proto::TouchSessionRequest {
            session_token: token.to_owned(),
            ip_address: ip.map(|ip| ip.to_string()).unwrap_or_default(),
        };
        let response = retry::run(&self.retry, Idempotency::Once, |timeout| {
            let mut client = self.inner.clone();
            let request = request(message.clone(), timeout);
            async move { client.touch_session(request).await }
        })
        .await;
        match response {
            Ok(response) => Ok(response.into_inner().session_id),
            Err(Error::SessionNotValid) => Err(Error::NotFound),
            Err(err) => Err(err),
        }
    }

    /// One page of the owner's Active sessions rows, most recent activity first.
    pub async fn list_rows(&self, owner: Owner, options: ListOptions) -> Result<RowsPage, Error> {
        let message = proto::ListActiveSessionsRequest {
            subject: Some(owner.subject()),
            page_size: options.wire_page_size(),
            page_token: options.page_token.clone().unwrap_or_default(),
            product: options.product.unwrap_or_default() as i32,
        };
        let response = retry::run(&self.retry, Idempotency::Idempotent, |timeout| {
            let mut client = self.inner.clone();
            let request = request(message.clone(), timeout);
            async move { client.list_active_sessions(request).await }
        })
        .await?
        .into_inner();
        Ok(RowsPage {
            rows: response
                .rows
                .into_iter()
                .map(SessionRow::from_proto)
                .collect(),
            next_page_token: next_page(response.next_page_token),
        })
    }

    /// Every row of the owner (all pages), optionally only those with a session in `product`.
    pub async fn list_all_rows(
        &self,
        owner: Owner,
        product: Option<Product>,
    ) -> Result<Vec<SessionRow>, Error> {
        let mut rows = Vec::new();
        let mut options = ListOptions {
            page_size: Some(100),
            page_token: None,
            product,
        };
        loop {
            let page = self.list_rows(owner.clone(), options.clone()).await?;
            rows.extend(page.rows);
            match page.next_page_token {
                Some(token) => options.page_token = Some(token),
                None => return Ok(rows),
            }
        }
    }

    /// One page of every active session of one row (`device_id`), newest sign-in first: the way
    /// to read a row past the sessions [`SessionRow::sessions`] carries. `options.product`
    /// keeps one product's sessions.
    pub async fn list_device_sessions(
        &self,
        owner: Owner,
        device_id: &str,
        options: ListOptions,
    ) -> Result<SessionsPage, Error> {
        let message = proto::ListDeviceSessionsRequest {
            subject: Some(owner.subject()),
            device_id: device_id.to_owned(),
            page_size: options.wire_page_size(),
            page_token: options.page_token.clone().unwrap_or_default(),
            product: options.product.unwrap_or_default() as i32,
        };
        let response = retry::run(&self.retry, Idempotency::Idempotent, |timeout| {
            let mut client = self.inner.clone();
            let request = request(message.clone(), timeout);
            async move { client.list_device_sessions(request).await }
        })
        .await?
        .into_inner();
        Ok(SessionsPage {
            sessions: response
                .sessions
                .into_iter()
                .map(Session::from_proto)
                .collect(),
            next_page_token: next_page(response.next_page_token),
        })
    }

    /// Logs out one row: every session on `device_id` (never retried). With `confirm` false it
    /// only reports what it would do (the confirmation step). The current session's row is
    /// [`Error::CurrentSession`]; a row whose status is unavailable is
    /// [`Error::StatusUnavailable`].
    pub async fn revoke_row(
        &self,
        owner: Owner,
        device_id: &str,
        confirm: bool,
    ) -> Result<RevokeResult, Error> {
        self.revoke(
            owner,
            proto::revoke_session_request::Target::DeviceId(device_id.to_owned()),
            confirm,
        )
        .await
    }

    /// Logs out one session by id (never retried); `confirm` as for
    /// [`revoke_row`](Self::revoke_row).
    pub async fn revoke_session(
        &self,
        owner: Owner,
        session_id: &str,
        confirm: bool,
    ) -> Result<RevokeResult, Error> {
        self.revoke(
            owner,
            proto::revoke_session_request::Target::SessionId(session_id.to_owned()),
            confirm,
        )
        .await
    }

    async fn revoke(
        &self,
        owner: Owner,
        target: proto::revoke_session_request::Target,
        confirm: bool,
    ) -> Result<RevokeResult, Error> {
        let message = proto::RevokeSessionRequest {
            subject: Some(owner.subject()),
            target: Some(target),
            validate_only: !confirm,
        };
        let response = retry::run(&self.retry, Idempotency::Once, |timeout| {
            let mut client = self.inner.clone();
            let request = request(message.clone(), timeout);
            async move { client.revoke_session(request).await }
        })
        .await?
        .into_inner();
        Ok(RevokeResult {
            outcome: response.outcome(),
            products: response.products().collect(),
            session_ids: response.session_ids,
            session_count: response.session_count,
            trust_removed: response.trust_removed,
            revocation: response.revocation.map(Revocation::from_proto),
        })
    }

    /// Logs out every session of the owner on every device, the current one included (never
    /// retried). Validation refuses them as soon as this returns.
    pub async fn revoke_all(
        &self,
        owner: Owner,
        options: RevokeAllOptions,
    ) -> Result<Revocation, Error> {
        let message = proto::RevokeAllSessionsRequest {
            subject: Some(owner.subject()),
            validate_only: !options.confirm,
            remove_trusted_devices: options.remove_trusted_devices,
            ..Default::default()
        };
        let response = retry::run(&self.retry, Idempotency::Once, |timeout| {
            let mut client = self.inner.clone();
            let request = request(message.clone(), timeout);
            async move { client.revoke_all_sessions(request).await }
        })
        .await?
        .into_inner();
        required_revocation(response.revocation)
    }

    /// Ends an account's sessions for the identity system (or an operator), with a reason:
    /// all of them, or all but one (never retried). Validation refuses them as soon as this
    /// returns; the history records who and why.
    pub async fn end_account_sessions(
        &self,
        account_id: &str,
        log_out: AccountLogOut,
    ) -> Result<Revocation, Error> {
        let message = proto::RevokeAllSessionsRequest {
            subject: Some(Owner::account(account_id).subject()),
            validate_only: false,
            remove_trusted_devices: log_out.remove_trusted_devices,
            reason: log_out.reason as i32,
            keep_session_id: log_out.keep_session_id.unwrap_or_default(),
            include_hidden_kinds: log_out.include_hidden_kinds,
        };
        let response = retry::run(&self.retry, Idempotency::Once, |timeout| {
            let mut client = self.inner.clone();
            let request = request(message.clone(), timeout);
            async move { client.revoke_all_sessions(request).await }
        })
        .await?
        .into_inner();
        required_revocation(response.revocation)
    }

    /// A revocation and whether it is fully in effect.
    pub async fn get_revocation(
        &self,
        owner: Owner,
        revocation_id: &str,
    ) -> Result<Revocation, Error> {
        let message = proto::GetRevocationRequest {
            subject: Some(owner.subject()),
            revocation_id: revocation_id.to_owned(),
        };
        let response = retry::run(&self.retry, Idempotency::Idempotent, |timeout| {
            let mut client = self.inner.clone();
            let request = request(message.clone(), timeout);
            async move { client.get_revocation(request).await }
        })
        .await?
        .into_inner();
        required_revocation(response.revocation)
    }

    /// One page of the owner's security history, newest first.
    pub async fn list_security_events(
        &self,
        owner: Owner,
        options: ListOptions,
    ) -> Result<SecurityEventsPage, Error> {
        let message = proto::ListSecurityEventsRequest {
            subject: Some(owner.subject()),
            page_size: options.wire_page_size(),
            page_token: options.page_token.clone().unwrap_or_default(),
        };
        let response = retry::run(&self.retry, Idempotency::Idempotent, |timeout| {
            let mut client = self.inner.clone();
            let request = request(message.clone(), timeout);
            async move { client.list_security_events(request).await }
        })
        .await?
        .into_inner();
        Ok(SecurityEventsPage {
            events: response
                .events
                .into_iter()
                .map(|event| SecurityEvent {
                    reason: event.reason(),
                    kind: event.r#type(),
                    product: event.product(),
                    event_id: event.event_id,
                    occurred_at: time(event.occurred_at),
                    session_id: next_page(event.session_id),
                    device_id: next_page(event.device_id),
                    device: event.device.unwrap_or_default(),
                    location: event.location.unwrap_or_default(),
                    actor: event.actor,
                    revocation_id: next_page(event.revocation_id),
                    session_count: event.session_count,
                })
                .collect(),
            next_page_token: next_page(response.next_page_token),
        })
    }

    /// Opens the revocation stream after `cursor` (`None`: from now) for `products` (empty:
    /// every product the caller may see). Opening is retried; the stream itself is not: when
    /// it ends, open it again from the last cursor. A cursor the server no longer has is
    /// [`Error::CursorExpired`].
    pub async fn watch_revocations(
        &self,
        cursor: Option<&str>,
        products: &[Product],
    ) -> Result<RevocationStream, Error> {
        let message = proto::WatchRevocationsRequest {
            cursor: cursor.unwrap_or_default().to_owned(),
            products: products.iter().map(|product| *product as i32).collect(),
        };
        let response = retry::run(&self.retry, Idempotency::Idempotent, |_| {
            let mut client = self.inner.clone();
            // No deadline: the stream is long-lived.
            let request = request(message.clone(), None);
            async move { client.watch_revocations(request).await }
        })
        .await?;
        Ok(RevocationStream {
            inner: response.into_inner(),
        })
    }
}

/// The revocation a response must carry.
fn required_revocation(revocation: Option<proto::Revocation>) -> Result<Revocation, Error> {
    revocation
        .map(Revocation::from_proto)
        .ok_or_else(|| Error::Other(tonic::Status::internal("no revocation in the response")))
}
