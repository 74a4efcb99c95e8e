//! The authorization matrix: every RPC, called by every role (a product backend of the
//! target's product and of another product, the settings backend, the identity system, an
//! operator, and no credential at all), against the caller's own account and another account,
//! on the real server over real gRPC. Owner-facing calls are also made against an account linked
//! to organisation SSO (operators may act on it: break-glass; the settings role may not) and with
//! the caller's own token of a hidden kind (a CLI session, which does not prove the owner). The
//! observed table must equal the expected one, and docs/authorization.md must show it (run with
//! UPDATE_AUTHORIZATION_DOC=1 to rewrite it).

use active_sessions_client::Connection;
use active_sessions_e2e::{Backend, SignIn, TestApp, TestCaller, by_account, by_token, e2e, pb};
use futures::StreamExt;
use tonic::Code;

/// The columns: who calls.
const ROLES: [&str; 6] = [
    "none",
    "product (own)",
    "product (other)",
    "settings",
    "identity",
    "operator",
];

/// Which account a row is about, and how the settings caller presents its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Alice, through her browser session's token.
    Own,
    /// Bob: another account.
    Other,
    /// Carol, whose account is linked to organisation SSO.
    SsoLinked,
    /// Alice, through the token of her CLI session (a hidden kind).
    HiddenToken,
}

impl Target {
    fn parse(label: &str) -> Self {
        match label {
            "own" => Self::Own,
            "other" => Self::Other,
            "SSO-linked" => Self::SsoLinked,
            "own, CLI token" => Self::HiddenToken,
            other => panic!("no target {other}"),
        }
    }
}

/// What the test fixture holds: three accounts (carol's linked to SSO), sessions, a revocation
/// and a trusted device each, and a CLI session of alice's.
struct Fixture {
    alice_token: String,
    /// Another of alice's sessions (not the one whose token the settings caller presents).
    alice_phone_session: String,
    alice_revocation: String,
    bob_token: String,
    bob_session: String,
    bob_revocation: String,
    carol_token: String,
    carol_session: String,
    carol_revocation: String,
    alice_cli_token: String,
}

async fn fixture(operator: &Connection) -> Fixture {
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

fn code_name(code: Code) -> String {
    format!("{code:?}")
        .chars()
        .enumerate()
        .flat_map(|(i, c)| {
            let sep = (i > 0 && c.is_uppercase()).then_some('_');
            sep.into_iter().chain(c.to_uppercase())
        })
        .collect()
}

fn outcome<T>(result: Result<tonic::Response<T>, tonic::Status>) -> String {
    match result {
        Ok(_) => "OK".into(),
        Err(status) => code_name(status.code()),
    }
}

/// Calls `rpc` as the caller on `conn`, against the target's account. The settings caller acts
/// through alice's token (carol's for the SSO-linked account, alice's CLI token for the hidden
/// kind); every other caller names accounts by id.
async fn call(rpc: &str, conn: &Connection, settings: bool, target: Target, f: &Fixture) -> String {
    let mut sessions = conn.session_service();
    let mut trust = conn.trusted_device_service();
    let mut eligibility = conn.account_eligibility();
    // `session` is the target of RevokeSession: for alice, not the session whose token the
    // settings caller presents (that one is the current session, refused with CURRENT_SESSION).
    let (account, token, session, revocation, device) = match target {
        Target::Other => (
            "bob",
            &f.bob_token,
            &f.bob_session,
            &f.bob_revocation,
            "bob_laptop",
        ),
        Target::SsoLinked => (
            "carol",
            &f.carol_token,
            &f.carol_session,
            &f.carol_revocation,
            "carol_laptop",
        ),
        Target::Own | Target::HiddenToken => (
            "alice",
            &f.alice_token,
            &f.alice_phone_session,
            &f.alice_revocation,
            "alice_laptop",
        ),
    };
    let settings_token = match target {
        Target::SsoLinked => &f.carol_token,
        Target::HiddenToken => &f.alice_cli_token,
        Target::Own | Target::Other => &f.alice_token,
    };
    // Calls that take a subject: the settings caller presents alice's token and names the
    // target (a session, revocation or device) of the row's account; calls whose only target is
    // the subject name the other account by id, which the settings role may not do.
    let owner = match (settings, target) {
        (true, _) => by_token(settings_token),
        (false, Target::SsoLinked) => by_account("carol"),
        (false, _) => by_account("alice"),
    };
    let whole_account = if settings && target != Target::Other {
        by_token(settings_token)
    } else {
        by_account(account)
    };
    match rpc {
        "RegisterSession" => outcome(
            sessions
                .register_session(SignIn::browser(account, "new_device").request())
                .await,
        ),
        "ValidateSession" => match sessions
            .validate_session(pb::ValidateSessionRequest {
                session_token: token.clone(),
            })
            .await
        {
            Ok(response) if response.get_ref().valid => "OK".into(),
            Ok(_) => "OK (not valid)".into(),
            Err(status) => code_name(status.code()),
        },
        "TouchSession" => outcome(
            sessions
                .touch_session(pb::TouchSessionRequest {
                    session_token: token.clone(),
                    ip_address: String::new(),
                })
                .await,
        ),
        "ListActiveSessions" => outcome(
            sessions
                .list_active_sessions(pb::ListActiveSessionsRequest {
                    subject: Some(whole_account),
                    ..Default::default()
                })
                .await,
        ),
        "ListDeviceSessions" => outcome(
            sessions
                .list_device_sessions(pb::ListDeviceSessionsRequest {
                    subject: Some(whole_account),
                    device_id: device.into(),
                    ..Default::default()
                })
                .await,
        ),
        "RevokeSession" => outcome(
            sessions
                .revoke_session(pb::RevokeSessionRequest {
                    subject: Some(owner),
                    target: Some(pb::revoke_session_request::Target::SessionId(
                        session.clone(),
                    )),
                    validate_only: true,
                })
                .await,
        ),
        "RevokeAllSessions" => outcome(
            sessions
                .revoke_all_sessions(pb::RevokeAllSessionsRequest {
                    subject: Some(whole_account),
                    validate_only: true,
                    remove_trusted_devices: false,
                    ..Default::default()
                })
                .await,
        ),
        // The identity system's log-out: the account by id, with a reason.
        "RevokeAllSessions with a reason" => outcome(
            sessions
                .revoke_all_sessions(pb::RevokeAllSessionsRequest {
                    subject: Some(whole_account),
                    validate_only: true,
                    reason: pb::RevocationReason::PasswordChanged as i32,
                    ..Default::default()
                })
                .await,
        ),
        "GetRevocation" => outcome(
            sessions
                .get_revocation(pb::GetRevocationRequest {
                    subject: Some(owner),
                    revocation_id: revocation.clone(),
                })
                .await,
        ),
        "WatchRevocations" => match sessions
            .watch_revocations(pb::WatchRevocationsRequest {
                cursor: String::new(),
                products: vec![pb::Product::Chatgpt as i32],
            })
            .await
        {
            Ok(response) => match response.into_inner().next().await {
                Some(Ok(_)) => "OK".into(),
                Some(Err(status)) => code_name(status.code()),
                None => "closed".into(),
            },
            Err(status) => code_name(status.code()),
        },
        "ListSecurityEvents" => outcome(
            sessions
                .list_security_events(pb::ListSecurityEventsRequest {
                    subject: Some(whole_account),
                    ..Default::default()
                })
                .await,
        ),
        "TrustDevice" => outcome(
            trust
                .trust_device(pb::TrustDeviceRequest {
                    account_id: account.into(),
                    device_id: device.into(),
                    method: pb::TrustMethod::Totp as i32,
                    duration: None,
                    product: pb::Product::Chatgpt as i32,
                })
                .await,
        ),
        "ListTrustedDevices" => outcome(
            trust
                .list_trusted_devices(pb::ListTrustedDevicesRequest {
                    subject: Some(whole_account),
                    ..Default::default()
                })
                .await,
        ),
        "RemoveTrustedDevice" => outcome(
            trust
                .remove_trusted_device(pb::RemoveTrustedDeviceRequest {
                    subject: Some(owner),
                    device_id: device.into(),
                    log_out_sessions: false,
                })
                .await,
        ),
        "CheckDeviceTrust" => outcome(
            trust
                .check_device_trust(pb::CheckDeviceTrustRequest {
                    account_id: account.into(),
                    device_id: device.into(),
                })
                .await,
        ),
        "CheckEligibility" => outcome(
            eligibility
                .check_eligibility(pb::CheckEligibilityRequest {
                    subject: Some(whole_account),
                })
                .await,
        ),
        "GetAccount" => outcome(
            eligibility
                .get_account(pb::GetAccountRequest {
                    account_id: account.into(),
                })
                .await,
        ),
        "SetWorkspaceType" => outcome(
            eligibility
                .set_workspace_type(pb::SetWorkspaceTypeRequest {
                    account_id: account.into(),
                    workspace_type: pb::WorkspaceType::Personal as i32,
                })
                .await,
        ),
        // Linking and unlinking in one cell, so the accounts stay eligible for the other rows.
        "SetSsoLink / ClearSsoLink" => {
            let set = outcome(
                eligibility
                    .set_sso_link(pb::SetSsoLinkRequest {
                        account_id: account.into(),
                        protocol: pb::SsoProtocol::Saml as i32,
                        organization_id: "org".into(),
                    })
                    .await,
            );
            let clear = outcome(
                eligibility
                    .clear_sso_link(pb::ClearSsoLinkRequest {
                        account_id: account.into(),
                    })
                    .await,
            );
            assert_eq!(set, clear, "{rpc}");
            set
        }
        // Disabling and enabling in one cell, so the account is enabled again for the next.
        "DisableAccount / EnableAccount" => {
            let disable = outcome(
                eligibility
                    .disable_account(pb::DisableAccountRequest {
                        account_id: account.into(),
                    })
                    .await,
            );
            let enable = outcome(
                eligibility
                    .enable_account(pb::EnableAccountRequest {
                        account_id: account.into(),
                    })
                    .await,
            );
            assert_eq!(disable, enable, "{rpc}");
            disable
        }
        // An account never seen, so that the other rows keep their accounts.
        "DeleteAccount" => outcome(
            eligibility
                .delete_account(pb::DeleteAccountRequest {
                    account_id: format!("{account}-never-seen"),
                })
                .await,
        ),
        other => panic!("no call for {other}"),
    }
}

/// The expected table: (RPC, account) -> one outcome per role in [`ROLES`] order.
const EXPECTED: &[(&str, &str, [&str; 6])] = &[
    (
        "RegisterSession",
        "own",
        [
            "UNAUTHENTICATED",
            "OK",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "RegisterSession",
        "other",
        [
            "UNAUTHENTICATED",
            "OK",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "ValidateSession",
        "own",
        [
            "UNAUTHENTICATED",
            "OK",
            "OK (not valid)",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "ValidateSession",
        "other",
        [
            "UNAUTHENTICATED",
            "OK",
            "OK (not valid)",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "TouchSession",
        "own",
        [
            "UNAUTHENTICATED",
            "OK",
            "NOT_FOUND",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "TouchSession",
        "other",
        [
            "UNAUTHENTICATED",
            "OK",
            "NOT_FOUND",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "WatchRevocations",
        "own",
        [
            "UNAUTHENTICATED",
            "OK",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "WatchRevocations",
        "other",
        [
            "UNAUTHENTICATED",
            "OK",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "ListActiveSessions",
        "own",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "ListActiveSessions",
        "other",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "ListActiveSessions",
        "SSO-linked",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "FAILED_PRECONDITION",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "ListActiveSessions",
        "own, CLI token",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "ListDeviceSessions",
        "own",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "ListDeviceSessions",
        "other",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "ListDeviceSessions",
        "SSO-linked",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "FAILED_PRECONDITION",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "ListDeviceSessions",
        "own, CLI token",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "RevokeSession",
        "own",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "RevokeSession",
        "other",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "NOT_FOUND",
            "PERMISSION_DENIED",
            "NOT_FOUND",
        ],
    ),
    (
        "RevokeSession",
        "SSO-linked",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "FAILED_PRECONDITION",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "RevokeSession",
        "own, CLI token",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "RevokeAllSessions",
        "own",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "RevokeAllSessions",
        "other",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "RevokeAllSessions",
        "SSO-linked",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "FAILED_PRECONDITION",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "RevokeAllSessions",
        "own, CLI token",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "RevokeAllSessions with a reason",
        "own",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
            "OK",
        ],
    ),
    (
        "RevokeAllSessions with a reason",
        "other",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
            "OK",
        ],
    ),
    (
        "GetRevocation",
        "own",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "GetRevocation",
        "other",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "NOT_FOUND",
            "PERMISSION_DENIED",
            "NOT_FOUND",
        ],
    ),
    (
        "GetRevocation",
        "SSO-linked",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "FAILED_PRECONDITION",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "GetRevocation",
        "own, CLI token",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "ListSecurityEvents",
        "own",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "ListSecurityEvents",
        "other",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "ListSecurityEvents",
        "SSO-linked",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "FAILED_PRECONDITION",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "ListSecurityEvents",
        "own, CLI token",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "TrustDevice",
        "own",
        [
            "UNAUTHENTICATED",
            "OK",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "TrustDevice",
        "other",
        [
            "UNAUTHENTICATED",
            "OK",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "CheckDeviceTrust",
        "own",
        [
            "UNAUTHENTICATED",
            "OK",
            "OK",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "CheckDeviceTrust",
        "other",
        [
            "UNAUTHENTICATED",
            "OK",
            "OK",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "ListTrustedDevices",
        "own",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "ListTrustedDevices",
        "other",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "ListTrustedDevices",
        "SSO-linked",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "FAILED_PRECONDITION",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "ListTrustedDevices",
        "own, CLI token",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "RemoveTrustedDevice",
        "own",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "RemoveTrustedDevice",
        "other",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "NOT_FOUND",
            "PERMISSION_DENIED",
            "NOT_FOUND",
        ],
    ),
    (
        "RemoveTrustedDevice",
        "SSO-linked",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "FAILED_PRECONDITION",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "RemoveTrustedDevice",
        "own, CLI token",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
        ],
    ),
    (
        "CheckEligibility",
        "own",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
            "OK",
            "OK",
        ],
    ),
    (
        "CheckEligibility",
        "other",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
            "OK",
        ],
    ),
    (
        "CheckEligibility",
        "SSO-linked",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
            "OK",
            "OK",
        ],
    ),
    (
        "CheckEligibility",
        "own, CLI token",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
            "OK",
        ],
    ),
    (
        "GetAccount",
        "own",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
            "OK",
        ],
    ),
    (
        "GetAccount",
        "other",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
            "OK",
        ],
    ),
    (
        "SetWorkspaceType",
        "own",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
            "OK",
        ],
    ),
    (
        "SetWorkspaceType",
        "other",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
            "OK",
        ],
    ),
    (
        "SetSsoLink / ClearSsoLink",
        "own",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
            "OK",
        ],
    ),
    (
        "SetSsoLink / ClearSsoLink",
        "other",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
            "OK",
        ],
    ),
    (
        "DisableAccount / EnableAccount",
        "own",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
            "OK",
        ],
    ),
    (
        "DisableAccount / EnableAccount",
        "other",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
            "OK",
        ],
    ),
    (
        "DeleteAccount",
        "own",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
            "OK",
        ],
    ),
    (
        "DeleteAccount",
        "other",
        [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "OK",
            "OK",
        ],
    ),
];

fn render(rows: &[(String, String, Vec<String>)]) -> String {
    let mut table = format!(
        "| RPC | account | {} |\n|---|---|{}\n",
        ROLES.join(" | "),
        "---|".repeat(ROLES.len())
    );
    for (rpc, account, cells) in rows {
        table.push_str(&format!("| {rpc} | {account} | {} |\n", cells.join(" | ")));
    }
    table
}

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/authorization.md");
const BEGIN: &str = "<!-- matrix:begin -->\n";
const END: &str = "<!-- matrix:end -->";

async fn run_matrix(backend: Backend) {
    let callers = vec![
        TestCaller::new("chatgpt-web", &["product"], &["CHATGPT"]),
        TestCaller::new("codex", &["product"], &["CODEX"]),
        TestCaller::new("settings", &["settings"], &[]),
        TestCaller::new("identity", &["identity"], &[]),
        TestCaller::new("operator", &["operator"], &[]),
    ];
    let Some(app) = TestApp::spawn_with_callers(backend, callers).await else {
        return;
    };
    let operator = app.connect_as("operator").await;
    let fixture = fixture(&operator).await;
    let connections = [
        app.connect_with_token(None).await,
        app.connect_as("chatgpt-web").await,
        app.connect_as("codex").await,
        app.connect_as("settings").await,
        app.connect_as("identity").await,
        operator.clone(),
    ];
    let mut observed = Vec::new();
    for (rpc, account, _) in EXPECTED {
        let mut cells = Vec::new();
        for (i, connection) in connections.iter().enumerate() {
            cells.push(
                call(
                    rpc,
                    connection,
                    ROLES[i] == "settings",
                    Target::parse(account),
                    &fixture,
                )
                .await,
            );
        }
        observed.push(((*rpc).to_owned(), (*account).to_owned(), cells));
    }
    let expected: Vec<_> = EXPECTED
        .iter()
        .map(|(rpc, account, cells)| {
            (
                (*rpc).to_owned(),
                (*account).to_owned(),
                cells.iter().map(|c| (*c).to_owned()).collect(),
            )
        })
        .collect();
    let table = render(&observed);
    assert_eq!(
        table,
        render(&expected),
        "observed matrix differs from the expected one:\n{table}"
    );

    // Operators' actions are in the account's history under the operator's name.
    let history = operator
        .session_service()
        .list_security_events(pb::ListSecurityEventsRequest {
            subject: Some(by_account("alice")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(
        history
            .iter()
            .any(|e| e.r#type() == pb::SecurityEventType::LogOut && e.actor == "operator:operator")
    );

    // Break-glass on the SSO-linked account is recorded too.
    let carol_history = operator
        .session_service()
        .list_security_events(pb::ListSecurityEventsRequest {
            subject: Some(by_account("carol")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(carol_history.iter().any(|e| {
        e.r#type() == pb::SecurityEventType::DeviceTrustRemoved && e.actor == "operator:operator"
    }));

    let doc = std::fs::read_to_string(DOC).unwrap_or_default();
    if std::env::var("UPDATE_AUTHORIZATION_DOC").is_ok() {
        let (head, rest) = doc
            .split_once(BEGIN)
            .expect("matrix markers in docs/authorization.md");
        let (_, tail) = rest.split_once(END).expect("matrix end marker");
        std::fs::write(DOC, format!("{head}{BEGIN}{table}{END}{tail}")).unwrap();
    } else {
        assert!(
            doc.contains(&format!("{BEGIN}{table}{END}")),
            "docs/authorization.md is out of date; rerun with UPDATE_AUTHORIZATION_DOC=1"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix_sqlite() {
    run_matrix(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix_postgres() {
    run_matrix(Backend::Postgres).await;
}

e2e! {
    async fn local_development_mode_allows_every_call_as_the_local_operator(app) {
        let (_, token) = app.sign_in(SignIn::browser("acct", "dev")).await;
        assert!(app.is_valid(&token).await);
        app.sessions().revoke_all_sessions(pb::RevokeAllSessionsRequest { subject: Some(by_account("acct")), ..Default::default() }).await.unwrap();
        let events = app.sessions().list_security_events(pb::ListSecurityEventsRequest { subject: Some(by_account("acct")), ..Default::default() }).await.unwrap().into_inner().events;
        assert_eq!(events[0].actor, "operator:local");
    }
}
