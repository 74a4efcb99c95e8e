//! Who proves the owner, and which row is current. Only a session of a kind the page shows
//! (browser, first-party app) proves the account's owner on an owner-facing call: a token of a
//! hidden kind is PERMISSION_DENIED (SUBJECT_NOT_OWNER_SESSION) and changes nothing. The
//! current row is one row (S8): every session on the current session's device is refused with
//! CURRENT_SESSION, whether named by device or by session id, whichever its product.

use active_sessions_e2e::{SignIn, TestApp, assert_status, by_account, by_token, e2e, pb};
use pb::revoke_session_request::Target;
use tonic::{Code, Status};

/// Every owner-facing call, through `subject`, each answered with its status (OK as `None`).
async fn owner_calls(
    app: &TestApp,
    subject: &pb::Subject,
    device: &str,
    revocation_id: &str,
) -> Vec<(&'static str, Option<Status>)> {
    let mut sessions = app.sessions();
    let mut trust = app.trusted_devices();
    let mut eligibility = app.eligibility();
    let subject = Some(subject.clone());
    vec![
        (
            "ListActiveSessions",
            sessions
                .list_active_sessions(pb::ListActiveSessionsRequest {
                    subject: subject.clone(),
                    ..Default::default()
                })
                .await
                .err(),
        ),
        (
            "RevokeSession",
            sessions
                .revoke_session(pb::RevokeSessionRequest {
                    subject: subject.clone(),
                    target: Some(Target::DeviceId(device.into())),
                    validate_only: false,
                })
                .await
                .err(),
        ),
        (
            "RevokeAllSessions",
            sessions
                .revoke_all_sessions(pb::RevokeAllSessionsRequest {
                    subject: subject.clone(),
                    validate_only: false,
                    remove_trusted_devices: true,
                    ..Default::default()
                })
                .await
                .err(),
        ),
        (
            "GetRevocation",
            sessions
                .get_revocation(pb::GetRevocationRequest {
                    subject: subject.clone(),
                    revocation_id: revocation_id.into(),
                })
                .await
                .err(),
        ),
        (
            "ListSecurityEvents",
            sessions
                .list_security_events(pb::ListSecurityEventsRequest {
                    subject: subject.clone(),
                    ..Default::default()
                })
                .await
                .err(),
        ),
        (
            "ListTrustedDevices",
            trust
                .list_trusted_devices(pb::ListTrustedDevicesRequest {
                    subject: subject.clone(),
                    ..Default::default()
                })
                .await
                .err(),
        ),
        (
            "RemoveTrustedDevice",
            trust
                .remove_trusted_device(pb::RemoveTrustedDeviceRequest {
                    subject: subject.clone(),
                    device_id: device.into(),
                    log_out_sessions: true,
                })
                .await
                .err(),
        ),
        (
            "CheckEligibility",
            eligibility
                .check_eligibility(pb::CheckEligibilityRequest {
                    subject: subject.clone(),
                })
                .await
                .err(),
        ),
    ]
}

e2e! {
    async fn hidden_kind_tokens_do_not_prove_the_owner_on_any_owner_call(app) {
        let (_, browser) = app.sign_in(SignIn::browser("acct", "laptop")).await;
        app.trust("acct", "laptop").await;
        app.sign_in(SignIn::browser("acct", "old")).await;
        let revocation_id = app
            .sessions()
            .revoke_session(pb::RevokeSessionRequest { subject: Some(by_account("acct")), target: Some(Target::DeviceId("old".into())), validate_only: false })
            .await
            .unwrap()
            .into_inner()
            .revocation
            .unwrap()
            .revocation_id;
        let hidden = [
            pb::ClientKind::ThirdPartyApp,
            pb::ClientKind::ConnectedApp,
            pb::ClientKind::SignInWithChatgpt,
            pb::ClientKind::Cli,
        ];
        for kind in hidden {
            let (_, token) = app.sign_in(SignIn::browser("acct", &format!("{kind:?}")).kind(kind)).await;
            assert!(app.is_valid(&token).await);
            for (call, status) in owner_calls(&app, &by_token(&token), "laptop", &revocation_id).await {
                let status = status.unwrap_or_else(|| panic!("{call} with a {kind:?} token succeeded"));
                assert_status(&status, Code::PermissionDenied, Some("SUBJECT_NOT_OWNER_SESSION"));
            }
        }
        // Nothing was logged out, nothing lost its trust.
        assert!(app.is_valid(&browser).await);
        assert!(app.is_trusted("acct", "laptop").await);
        assert_eq!(app.rows_for_account("acct").await.len(), 1);
        // The browser session proves the owner.
        assert_eq!(app.rows_for_token(&browser).await.len(), 1);
    }
}

e2e! {
    async fn a_session_on_the_current_row_is_refused_whatever_the_target_form(app) {
        let (current, token) = app.sign_in(SignIn::browser("acct", "mine")).await;
        let (api, api_token) = app.sign_in(SignIn::browser("acct", "mine").product(pb::Product::ApiPlatform)).await;
        let (elsewhere, elsewhere_token) = app.sign_in(SignIn::browser("acct", "other")).await;
        let revoke = |target: Target, validate_only: bool| pb::RevokeSessionRequest {
            subject: Some(by_token(&token)),
            target: Some(target),
            validate_only,
        };
        let mut sessions = app.sessions();
        for validate_only in [true, false] {
            for target in [
                Target::SessionId(api.session_id.clone()),
                Target::SessionId(current.session_id.clone()),
                Target::DeviceId("mine".into()),
            ] {
                let status = sessions.revoke_session(revoke(target.clone(), validate_only)).await.unwrap_err();
                assert_status(&status, Code::FailedPrecondition, Some("CURRENT_SESSION"));
            }
        }
        // The other product's session on the current browser is still valid and still listed.
        assert!(app.is_valid(&api_token).await && app.is_valid(&token).await);
        let rows = app.rows_for_token(&token).await;
        let mine = rows.iter().find(|row| row.device_id == "mine").unwrap();
        assert!(mine.current);
        assert_eq!(mine.sessions.len(), 2);
        // A session on another device is logged out by id as before.
        let outcome = sessions.revoke_session(revoke(Target::SessionId(elsewhere.session_id.clone()), false)).await.unwrap().into_inner();
        assert_eq!(outcome.session_ids, vec![elsewhere.session_id]);
        assert!(!app.is_valid(&elsewhere_token).await);
    }
}
