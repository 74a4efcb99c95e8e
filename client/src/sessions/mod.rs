//! [`SessionClient`]: registering, validating and listing sessions, log-outs, and the
//! revocation stream. The client's methods are here; what they take and return is in the
//! submodules, one per kind of thing.

mod history;
mod registration;
mod revocation;
mod session;
mod stream;

use std::net::IpAddr;

pub use history::{SecurityEvent, SecurityEventsPage};
pub use registration::{Registered, Registration};
pub use revocation::{AccountLogOut, Revocation, RevokeAllOptions, RevokeResult};
pub use session::{RowsPage, Session, SessionRow, SessionsPage, ValidSession};
pub use stream::{RevocationBatch, RevocationEvent, RevocationStream};

use crate::{
    Connection, Error, Owner, RetryPolicy, Transport,
    call::{Caller, required},
    proto::{self, Product, session_service_client::SessionServiceClient},
    retry::Idempotency::{Idempotent, Once},
    types::{ListOptions, well_formed_token},
};

type Service = SessionServiceClient<Transport>;

/// The typed client of `SessionService`. Cheap to clone; clones share the connection.
///
/// Validation, listings, reads and registration (with its request id) are retried according
/// to the [`RetryPolicy`]; touch and log-outs make exactly one attempt.
#[derive(Debug, Clone)]
pub struct SessionClient {
    caller: Caller<Service>,
}

impl SessionClient {
    /// A client over `connection`, with the connection's retry policy.
    pub fn new(connection: &Connection) -> Self {
        Self {
            caller: Caller::new(connection.session_service(), connection.retry_policy()),
        }
    }

    /// This client with another retry policy.
    pub fn with_retry_policy(self, policy: RetryPolicy) -> Self {
        Self {
            caller: self.caller.with_retry_policy(policy),
        }
    }

    /// Records a sign-in and returns the session and its token (retried safely: the request id,
    /// given or generated, makes a repeat return the same session).
    pub async fn register(&self, registration: Registration) -> Result<Registered, Error> {
        let message = registration.into_proto();
        let request_id = message.request_id.clone();
        let response = self
            .caller
            .call(Idempotent, message, Service::register_session)
            .await?;
        Registered::from_response(response, request_id)
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
        match self
            .caller
            .call(Idempotent, message, Service::validate_session)
            .await
        {
            Ok(response) => Ok(ValidSession::from_response(response)),
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
        match self
            .caller
            .call(Once, message, Service::touch_session)
            .await
        {
            Ok(response) => Ok(response.session_id),
            Err(Error::SessionNotValid) => Err(Error::NotFound),
            Err(err) => Err(err),
        }
    }

    /// One page of the owner's Active sessions rows, most recent activity first.
    pub async fn list_rows(&self, owner: Owner, options: ListOptions) -> Result<RowsPage, Error> {
        let message = proto::ListActiveSessionsRequest {
            subject: Some(owner.subject()),
            page_size: options.wire_page_size(),
            product: options.wire_product(),
            page_token: options.page_token.unwrap_or_default(),
        };
        self.caller
            .call(Idempotent, message, Service::list_active_sessions)
            .await
            .map(RowsPage::from)
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
            product: options.wire_product(),
            page_token: options.page_token.unwrap_or_default(),
        };
        self.caller
            .call(Idempotent, message, Service::list_device_sessions)
            .await
            .map(SessionsPage::from)
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
        let target = proto::revoke_session_request::Target::DeviceId(device_id.to_owned());
        self.revoke(owner, target, confirm).await
    }

    /// Logs out one session by id (never retried); `confirm` as for
    /// [`revoke_row`](Self::revoke_row).
    pub async fn revoke_session(
        &self,
        owner: Owner,
        session_id: &str,
        confirm: bool,
    ) -> Result<RevokeResult, Error> {
        let target = proto::revoke_session_request::Target::SessionId(session_id.to_owned());
        self.revoke(owner, target, confirm).await
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
        self.caller
            .call(Once, message, Service::revoke_session)
            .await
            .map(RevokeResult::from)
    }

    /// Logs out every session of the owner on every device, the current one included (never
    /// retried). Validation refuses them as soon as this returns.
    pub async fn revoke_all(
        &self,
        owner: Owner,
        options: RevokeAllOptions,
    ) -> Result<Revocation, Error> {
        self.revoke_all_sessions(proto::RevokeAllSessionsRequest {
            subject: Some(owner.subject()),
            validate_only: !options.confirm,
            remove_trusted_devices: options.remove_trusted_devices,
            ..Default::default()
        })
        .await
    }

    /// Ends an account's sessions for the identity system (or an operator), with a reason:
    /// all of them, or all but one (never retried). Validation refuses them as soon as this
    /// returns; the history records who and why.
    pub async fn end_account_sessions(
        &self,
        account_id: &str,
        log_out: AccountLogOut,
    ) -> Result<Revocation, Error> {
        self.revoke_all_sessions(log_out.into_proto(account_id))
            .await
    }

    async fn revoke_all_sessions(
        &self,
        message: proto::RevokeAllSessionsRequest,
    ) -> Result<Revocation, Error> {
        let response = self
            .caller
            .call(Once, message, Service::revoke_all_sessions)
            .await?;
        required(response.revocation, "revocation").map(Revocation::from)
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
        let response = self
            .caller
            .call(Idempotent, message, Service::get_revocation)
            .await?;
        required(response.revocation, "revocation").map(Revocation::from)
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
            page_token: options.page_token.unwrap_or_default(),
        };
        self.caller
            .call(Idempotent, message, Service::list_security_events)
            .await
            .map(SecurityEventsPage::from)
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
        self.caller
            .for_stream()
            .call(Idempotent, message, Service::watch_revocations)
            .await
            .map(RevocationStream::new)
    }
}
