//! One cell of the matrix: calls an RPC as a role against a target account and names the
//! outcome (`OK`, `OK (not valid)` or the status code).

use super::{Target, fixture::Fixture};
use active_sessions_client::Connection;
use active_sessions_e2e::{SignIn, by_account, by_token, pb};
use futures::StreamExt;
use tonic::Code;

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
pub(super) async fn call(
    rpc: &str,
    conn: &Connection,
    settings: bool,
    target: Target,
    f: &Fixture,
) -> String {
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
