//! The calls a test makes to its server: the generated clients over the app's channel (for
//! what the typed client cannot send), connections of the typed client crate as a known
//! caller or with any token, and the calls most tests repeat (sign in, list every row, check
//! a token or a device) with failures turned into panics that say what failed.

use std::time::Duration;

use active_sessions_client::{
    Connection, Registration, ValidationCache,
    proto::{
        account_eligibility_client::AccountEligibilityClient,
        session_service_client::SessionServiceClient,
        trusted_device_service_client::TrustedDeviceServiceClient,
    },
};
use tonic::transport::Channel;

use crate::{SignIn, TestApp, by_account, by_token, pb};

impl TestApp {
    /// A connection of the typed client that authenticates as the named caller.
    pub async fn connect_as(&self, name: &str) -> Connection {
        let caller = self
            .callers
            .iter()
            .find(|caller| caller.name == name)
            .unwrap_or_else(|| panic!("no caller {name}"));
        self.connect_with_token(Some(&caller.token)).await
    }

    /// A connection of the typed client with this bearer token (or none).
    pub async fn connect_with_token(&self, token: Option<&str>) -> Connection {
        let mut builder = Connection::builder(format!("http://{}", self.addr));
        if let Some(token) = token {
            builder = builder.bearer_token(token);
        }
        builder.connect().await.expect("connect")
    }

    /// An AccountEligibility client.
    pub fn eligibility(&self) -> AccountEligibilityClient<Channel> {
        AccountEligibilityClient::new(self.channel.clone())
    }

    /// A SessionService client.
    pub fn sessions(&self) -> SessionServiceClient<Channel> {
        SessionServiceClient::new(self.channel.clone())
    }

    /// A TrustedDeviceService client.
    pub fn trusted_devices(&self) -> TrustedDeviceServiceClient<Channel> {
        TrustedDeviceServiceClient::new(self.channel.clone())
    }

    /// Trusts a device for an account (TOTP, through ChatGPT, default duration).
    pub async fn trust(&self, account_id: &str, device_id: &str) -> pb::TrustDeviceResponse {
        self.trusted_devices()
            .trust_device(pb::TrustDeviceRequest {
                account_id: account_id.into(),
                device_id: device_id.into(),
                method: pb::TrustMethod::Totp as i32,
                duration: None,
                product: pb::Product::Chatgpt as i32,
            })
            .await
            .unwrap_or_else(|status| panic!("trust failed: {status:?}"))
            .into_inner()
    }

    /// Whether the device is trusted for the account now.
    pub async fn is_trusted(&self, account_id: &str, device_id: &str) -> bool {
        self.trusted_devices()
            .check_device_trust(pb::CheckDeviceTrustRequest {
                account_id: account_id.into(),
                device_id: device_id.into(),
            })
            .await
            .unwrap_or_else(|status| panic!("check failed: {status:?}"))
            .into_inner()
            .trusted
    }

    /// Registers a sign-in and returns the session and its token.
    pub async fn sign_in(&self, sign_in: SignIn) -> (pb::Session, String) {
        let response = self
            .sessions()
            .register_session(sign_in.request())
            .await
            .unwrap_or_else(|status| panic!("registration failed: {status:?}"))
            .into_inner();
        (response.session.expect("session"), response.session_token)
    }

    /// The rows the owner of `token` sees (every page).
    pub async fn rows_for_token(&self, token: &str) -> Vec<pb::SessionRow> {
        self.all_rows(by_token(token)).await
    }

    /// The rows an operator sees for `account_id` (every page).
    pub async fn rows_for_account(&self, account_id: &str) -> Vec<pb::SessionRow> {
        self.all_rows(by_account(account_id)).await
    }

    /// The session ids of every row an operator sees for `account_id`.
    pub async fn session_ids_for_account(&self, account_id: &str) -> Vec<String> {
        self.rows_for_account(account_id)
            .await
            .into_iter()
            .flat_map(|row| row.sessions.into_iter().map(|session| session.session_id))
            .collect()
    }

    async fn all_rows(&self, subject: pb::Subject) -> Vec<pb::SessionRow> {
        let mut rows = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .sessions()
                .list_active_sessions(pb::ListActiveSessionsRequest {
                    subject: Some(subject.clone()),
                    page_size: 100,
                    page_token: page_token.clone(),
                    product: 0,
                })
                .await
                .unwrap_or_else(|status| panic!("listing failed: {status:?}"))
                .into_inner();
            rows.extend(page.rows);
            if page.next_page_token.is_empty() {
                return rows;
            }
            page_token = page.next_page_token;
        }
    }

    /// The account's whole security history as an operator sees it (every page), newest
    /// first.
    pub async fn security_events(&self, account_id: &str) -> Vec<pb::SecurityEvent> {
        let mut events = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .sessions()
                .list_security_events(pb::ListSecurityEventsRequest {
                    subject: Some(by_account(account_id)),
                    page_size: 100,
                    page_token,
                })
                .await
                .unwrap_or_else(|status| panic!("history failed: {status:?}"))
                .into_inner();
            events.extend(page.events);
            if page.next_page_token.is_empty() {
                return events;
            }
            page_token = page.next_page_token;
        }
    }

    /// Whether a token validates now.
    pub async fn is_valid(&self, token: &str) -> bool {
        is_valid_on(&self.sessions(), token).await
    }
}

/// Whether `token` validates now on the server behind `client` (a replica's, say).
pub async fn is_valid_on(client: &SessionServiceClient<Channel>, token: &str) -> bool {
    client
        .clone()
        .validate_session(pb::ValidateSessionRequest {
            session_token: token.into(),
        })
        .await
        .unwrap_or_else(|status| panic!("validation failed: {status:?}"))
        .into_inner()
        .valid
}

/// A ChatGPT browser session of `account` on `device`, registered through the typed client:
/// `(session id, token)`.
pub async fn sign_in_browser(
    connection: &Connection,
    account: &str,
    device: &str,
) -> (String, String) {
    let registered = connection
        .sessions()
        .register(Registration::chatgpt_browser(account, device))
        .await
        .expect("registration");
    (registered.session.session_id, registered.token)
}

/// A validation cache over `connection`, started and live (its revocation stream caught up)
/// within 10 seconds.
pub async fn live_cache(connection: &Connection) -> ValidationCache {
    let cache = ValidationCache::builder(connection.clone()).start().await;
    tokio::time::timeout(Duration::from_secs(10), cache.wait_live())
        .await
        .expect("the cache goes live");
    cache
}
