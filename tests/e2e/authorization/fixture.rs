//! The matrix's fixture: three accounts (carol's linked to organisation SSO), each with
//! sessions, a logged-out session (a revocation) and a trusted device, and a CLI session of
//! alice's, made by the operator before the matrix runs.

use active_sessions_client::Connection;
use active_sessions_e2e::{SignIn, by_account, pb};

/// What the test fixture holds: three accounts (carol's linked to SSO), sessions, a revocation
/// and a trusted device each, and a CLI session of alice's.
pub(super) struct Fixture {
    pub(super) alice_token: String,
    /// Another of alice's sessions (not the one whose token the settings caller presents).
    pub(super) alice_phone_session: String,
    pub(super) alice_revocation: String,
    pub(super) bob_token: String,
    pub(super) bob_session: String,
    pub(super) bob_revocation: String,
    pub(super) carol_token: String,
    pub(super) carol_session: String,
    pub(super) carol_revocation: String,
    pub(super) alice_cli_token: String,
}

pub(super) async fn fixture(operator: &Connection) -> Fixture {
    let sessions = operator.session_service();
    let register = |account: &str, device: &str| {
        let request = SignIn::browser(account, device).request();
        let mut client = sessions.clone();
        async move { client.register_session(request).await.unwrap().into_inner() }
    };
    let alice = register("alice", "alice_laptop").await;
    let bob = register("bob", "bob_laptop").await;
    let carol = register("carol", "carol_laptop").await;
    let alice_phone = register("alice", "alice_phone").await;
    let carol_phone = register("carol", "carol_phone").await;
    register("alice", "alice_old").await;
    register("bob", "bob_old").await;
    register("carol", "carol_old").await;
    let alice_cli = {
        let request = SignIn::browser("alice", "alice_terminal")
            .kind(pb::ClientKind::Cli)
            .request();
        sessions
            .clone()
            .register_session(request)
            .await
            .unwrap()
            .into_inner()
    };
    let revoke_old = |account: &'static str, device: &'static str| {
        let mut client = sessions.clone();
        async move {
            client
                .revoke_session(pb::RevokeSessionRequest {
                    subject: Some(by_account(account)),
                    target: Some(pb::revoke_session_request::Target::DeviceId(device.into())),
                    validate_only: false,
                })
                .await
                .unwrap()
                .into_inner()
                .revocation
                .unwrap()
                .revocation_id
        }
    };
    let alice_revocation = revoke_old("alice", "alice_old").await;
    let bob_revocation = revoke_old("bob", "bob_old").await;
    let carol_revocation = revoke_old("carol", "carol_old").await;
    let mut trust = operator.trusted_device_service();
    for (account, device) in [
        ("alice", "alice_laptop"),
        ("bob", "bob_laptop"),
        ("carol", "carol_laptop"),
    ] {
        trust
            .trust_device(pb::TrustDeviceRequest {
                account_id: account.into(),
                device_id: device.into(),
                method: pb::TrustMethod::Totp as i32,
                duration: None,
                product: pb::Product::Chatgpt as i32,
            })
            .await
            .unwrap();
    }
    operator
        .account_eligibility()
        .set_sso_link(pb::SetSsoLinkRequest {
            account_id: "carol".into(),
            protocol: pb::SsoProtocol::Saml as i32,
            organization_id: "org".into(),
        })
        .await
        .unwrap();
    Fixture {
        carol_token: carol.session_token,
        carol_session: carol_phone.session.unwrap().session_id,
        carol_revocation,
        alice_cli_token: alice_cli.session_token,
        alice_token: alice.session_token,
        alice_phone_session: alice_phone.session.unwrap().session_id,
        alice_revocation,
        bob_token: bob.session_token,
        bob_session: bob.session.unwrap().session_id,
        bob_revocation,
    }
}
