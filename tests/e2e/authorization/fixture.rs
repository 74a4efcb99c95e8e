//! The matrix's fixture: three accounts (carol's linked to organisation SSO), each with
//! sessions, a logged-out session (a revocation) and a trusted device, and a CLI session of
//! alice's, made by the operator before the matrix runs.

use active_sessions_client::{
    ClientKind, Connection, Owner, Product, Registration, SsoProtocol, Trust, TrustMethod,
};

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
    let sessions = operator.sessions();
    let register = |registration: Registration| {
        let sessions = sessions.clone();
        async move { sessions.register(registration).await.unwrap() }
    };
    let browser =
        |account: &str, device: &str| register(Registration::chatgpt_browser(account, device));
    let alice = browser("alice", "alice_laptop").await;
    let bob = browser("bob", "bob_laptop").await;
    let carol = browser("carol", "carol_laptop").await;
    let alice_phone = browser("alice", "alice_phone").await;
    let carol_phone = browser("carol", "carol_phone").await;
    browser("alice", "alice_old").await;
    browser("bob", "bob_old").await;
    browser("carol", "carol_old").await;
    let alice_cli = register(Registration::new(
        "alice",
        Product::Chatgpt,
        ClientKind::Cli,
        "alice_terminal",
    ))
    .await;
    let revoke_old = |account: &str, device: &str| {
        let sessions = sessions.clone();
        let owner = Owner::account(account);
        let device = device.to_owned();
        async move {
            sessions
                .revoke_row(owner, &device, true)
                .await
                .unwrap()
                .revocation
                .unwrap()
                .revocation_id
        }
    };
    let alice_revocation = revoke_old("alice", "alice_old").await;
    let bob_revocation = revoke_old("bob", "bob_old").await;
    let carol_revocation = revoke_old("carol", "carol_old").await;
    let trust = operator.trusted_devices();
    for (account, device) in [
        ("alice", "alice_laptop"),
        ("bob", "bob_laptop"),
        ("carol", "carol_laptop"),
    ] {
        trust
            .trust(Trust::new(
                account,
                device,
                Product::Chatgpt,
                TrustMethod::Totp,
            ))
            .await
            .unwrap();
    }
    operator
        .eligibility()
        .set_sso_link("carol", SsoProtocol::Saml, "org")
        .await
        .unwrap();
    Fixture {
        carol_token: carol.token,
        carol_session: carol_phone.session.session_id,
        carol_revocation,
        alice_cli_token: alice_cli.token,
        alice_token: alice.token,
        alice_phone_session: alice_phone.session.session_id,
        alice_revocation,
        bob_token: bob.token,
        bob_session: bob.session.session_id,
        bob_revocation,
    }
}
