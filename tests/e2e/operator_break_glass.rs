//! Break-glass: an operator naming an account by id may act on an account linked to
//! organisation SSO (list, log out a row, remove trust, log out of all, read progress and
//! history), each action recorded in the security history as `operator:<name>`; the owner's own
//! token stays refused there (S7: ACCOUNT_SSO_LINKED).

use active_sessions_e2e::{SignIn, assert_status, by_account, by_token, e2e, pb};
use pb::revoke_session_request::Target;
use tonic::Code;

e2e! {
    async fn operators_act_on_sso_linked_accounts_recorded_as_the_operator(app) {
        let (_, token) = app.sign_in(SignIn::browser("acct", "laptop")).await;
        let (_, phone) = app.sign_in(SignIn::browser("acct", "phone")).await;
        app.trust("acct", "tablet").await;
        app.eligibility()
            .set_sso_link(pb::SetSsoLinkRequest { account_id: "acct".into(), protocol: pb::SsoProtocol::Saml as i32, organization_id: "org".into() })
            .await
            .unwrap();
        let mut sessions = app.sessions();
        let mut trust = app.trusted_devices();

        // The owner's own token stays refused: the account may not use Active sessions.
        let status = sessions
            .list_active_sessions(pb::ListActiveSessionsRequest { subject: Some(by_token(&token)), ..Default::default() })
            .await
            .unwrap_err();
        assert_status(&status, Code::FailedPrecondition, Some("ACCOUNT_SSO_LINKED"));

        // The operator (local development mode's `local`) acts by account id.
        assert_eq!(app.rows_for_account("acct").await.len(), 2);
        let logged_out = sessions
            .revoke_session(pb::RevokeSessionRequest { subject: Some(by_account("acct")), target: Some(Target::DeviceId("phone".into())), validate_only: false })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(logged_out.session_ids.len(), 1);
        assert!(!app.is_valid(&phone).await);
        let removal = trust
            .remove_trusted_device(pb::RemoveTrustedDeviceRequest { subject: Some(by_account("acct")), device_id: "tablet".into(), log_out_sessions: false })
            .await
            .unwrap()
            .into_inner();
        assert!(removal.removed);
        assert!(!app.is_trusted("acct", "tablet").await);
        let all = sessions
            .revoke_all_sessions(pb::RevokeAllSessionsRequest { subject: Some(by_account("acct")), validate_only: false, remove_trusted_devices: false, ..Default::default() })
            .await
            .unwrap()
            .into_inner()
            .revocation
            .unwrap();
        assert!(!app.is_valid(&token).await);
        sessions
            .get_revocation(pb::GetRevocationRequest { subject: Some(by_account("acct")), revocation_id: all.revocation_id.clone() })
            .await
            .unwrap();
        trust
            .list_trusted_devices(pb::ListTrustedDevicesRequest { subject: Some(by_account("acct")), ..Default::default() })
            .await
            .unwrap();
        let history = sessions
            .list_security_events(pb::ListSecurityEventsRequest { subject: Some(by_account("acct")), page_size: 100, ..Default::default() })
            .await
            .unwrap()
            .into_inner()
            .events;
        for kind in [pb::SecurityEventType::LogOut, pb::SecurityEventType::DeviceTrustRemoved, pb::SecurityEventType::LogOutAll] {
            assert!(
                history.iter().any(|event| event.r#type() == kind && event.actor == "operator:local"),
                "{kind:?} by the operator missing from {history:?}"
            );
        }
        // Its users still sign in and validate.
        let (_, again) = app.sign_in(SignIn::browser("acct", "laptop")).await;
        assert!(app.is_valid(&again).await);
    }
}
