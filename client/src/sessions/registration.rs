//! Sign-ins: a [`Registration`] to record, built from a product preset, and what registering
//! it returned ([`Registered`], whose `Debug` hides the token).

use std::{fmt, net::IpAddr, time::Duration};

#[cfg(doc)]
use crate::SessionClient;
use crate::{
    Error,
    call::required,
    proto::{self, AuthMethod, ClientKind, Product},
    types::wire_duration,
};

use super::Session;

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

    /// The request, with the request id given or a generated one: retries reuse it, so a
    /// repeated registration never creates a second session.
    pub(crate) fn into_proto(self) -> proto::RegisterSessionRequest {
        proto::RegisterSessionRequest {
            request_id: self
                .request_id
                .unwrap_or_else(|| format!("req_{}", ulid::Ulid::generate())),
            account_id: self.account_id,
            product: self.product as i32,
            client_kind: self.client_kind as i32,
            device_id: self.device_id,
            user_agent: self.user_agent,
            ip_address: self.ip.map(|ip| ip.to_string()).unwrap_or_default(),
            auth_method: self.auth_method as i32,
            // A lifetime beyond the wire range is sent as the largest one, which the server
            // refuses as longer than its maximum.
            lifetime: self.lifetime.map(wire_duration),
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

impl Registered {
    /// The registration's answer to the request made with `request_id`.
    pub(crate) fn from_response(
        response: proto::RegisterSessionResponse,
        request_id: String,
    ) -> Result<Self, Error> {
        Ok(Self {
            session: required(response.session, "session")?.into(),
            token: response.session_token,
            replayed: response.replayed,
            request_id,
        })
    }
}
