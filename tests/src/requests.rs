//! The messages tests send: a [`SignIn`] with sensible defaults adjusted per test, the
//! `Subject`s that name an owner by token or an account, the common log-out requests, and real
//! user agents to sign in with.

use crate::pb;

/// A `Subject` naming the owner by session token.
pub fn by_token(token: &str) -> pb::Subject {
    pb::Subject {
        subject: Some(pb::subject::Subject::SessionToken(token.into())),
    }
}

/// A `Subject` naming an account (operators).
pub fn by_account(account_id: &str) -> pb::Subject {
    pb::Subject {
        subject: Some(pb::subject::Subject::AccountId(account_id.into())),
    }
}

/// Real user agents.
pub mod user_agents {
    /// Chrome on macOS.
    pub const CHROME_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36";
    /// Safari on an iPhone.
    pub const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
    /// Firefox on Windows.
    pub const FIREFOX_WINDOWS: &str =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0";
    /// The Codex desktop app on macOS.
    pub const CODEX_MAC_APP: &str = "Codex/0.9.1 (Mac OS X 14.5; arm64)";
}

/// A sign-in to register: sensible defaults, adjusted per test.
#[derive(Debug, Clone)]
pub struct SignIn {
    /// Account.
    pub account_id: String,
    /// Product.
    pub product: pb::Product,
    /// Client kind.
    pub client_kind: pb::ClientKind,
    /// Device id.
    pub device_id: String,
    /// User agent.
    pub user_agent: String,
    /// IP address.
    pub ip_address: String,
    /// Auth method.
    pub auth_method: pb::AuthMethod,
    /// Idempotency key.
    pub request_id: String,
    /// Lifetime.
    pub lifetime: Option<std::time::Duration>,
    /// Legacy import with unknown status.
    pub status_unavailable: bool,
}

impl SignIn {
    /// A ChatGPT browser sign-in by password from London, on `device_id`.
    pub fn browser(account_id: &str, device_id: &str) -> Self {
        Self {
            account_id: account_id.into(),
            product: pb::Product::Chatgpt,
            client_kind: pb::ClientKind::Browser,
            device_id: device_id.into(),
            user_agent: user_agents::CHROME_MAC.into(),
            ip_address: "81.2.69.142".into(),
            auth_method: pb::AuthMethod::Password,
            request_id: String::new(),
            lifetime: None,
            status_unavailable: false,
        }
    }

    /// The same sign-in in another product.
    pub fn product(mut self, product: pb::Product) -> Self {
        self.product = product;
        self
    }

    /// The same sign-in with another client kind.
    pub fn kind(mut self, kind: pb::ClientKind) -> Self {
        self.client_kind = kind;
        self
    }

    /// The same sign-in from another IP.
    pub fn ip(mut self, ip: &str) -> Self {
        self.ip_address = ip.into();
        self
    }

    /// The same sign-in with a request id.
    pub fn request_id(mut self, request_id: &str) -> Self {
        self.request_id = request_id.into();
        self
    }

    /// The request message.
    pub fn request(&self) -> pb::RegisterSessionRequest {
        pb::RegisterSessionRequest {
            request_id: self.request_id.clone(),
            account_id: self.account_id.clone(),
            product: self.product as i32,
            client_kind: self.client_kind as i32,
            device_id: self.device_id.clone(),
            user_agent: self.user_agent.clone(),
            ip_address: self.ip_address.clone(),
            auth_method: self.auth_method as i32,
            lifetime: self
                .lifetime
                .map(|d| prost_types::Duration::try_from(d).expect("duration")),
            status_unavailable: self.status_unavailable,
        }
    }
}

/// Logs out the row of `device` (every session on it); with `validate_only`, only says what it
/// would do.
pub fn revoke_device_request(
    subject: pb::Subject,
    device: &str,
    validate_only: bool,
) -> pb::RevokeSessionRequest {
    pb::RevokeSessionRequest {
        subject: Some(subject),
        target: Some(pb::revoke_session_request::Target::DeviceId(device.into())),
        validate_only,
    }
}

/// Logs out every session of `subject`, keeping trusted devices.
pub fn revoke_all_request(subject: pb::Subject) -> pb::RevokeAllSessionsRequest {
    pb::RevokeAllSessionsRequest {
        subject: Some(subject),
        validate_only: false,
        remove_trusted_devices: false,
        ..Default::default()
    }
}
