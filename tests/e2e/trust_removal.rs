//! RemoveTrustedDevice is idempotent, as its contract says: removing a device of the account
//! that is not trusted (never trusted, or already removed) succeeds with `removed = false` and
//! changes nothing, so a retry after a lost response succeeds; a device id the account never
//! knew, such as another account's device, is NOT_FOUND, exactly like one that does not exist.

use active_sessions_e2e::{SignIn, TestApp, assert_status, by_token, e2e, pb};
use tonic::Code;

async fn history_len(app: &TestApp, token: &str) -> usize {
    app.sessions()
        .list_security_events(pb::ListSecurityEventsRequest {
            subject: Some(by_token(token)),
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events
        .len()
}

e2e! {
    async fn removing_a_device_that_is_not_trusted_succeeds_and_changes_nothing(app) {
        let (_, token) = app.sign_in(SignIn::browser("acct", "laptop")).await;
        app.sign_in(SignIn::browser("acct", "desktop")).await;
        app.sign_in(SignIn::browser("bob", "bob_device")).await;
        // A device trusted without any session on it (for example trusted at an MFA prompt).
        app.trust("acct", "tablet").await;
        let remove = |device: &str| pb::RemoveTrustedDeviceRequest {
            subject: Some(by_token(&token)),
            device_id: device.into(),
            log_out_sessions: false,
        };
        let mut trust = app.trusted_devices();
        let first = trust.remove_trusted_device(remove("tablet")).await.unwrap().into_inner();
        assert!(first.removed);
        assert!(!app.is_trusted("acct", "tablet").await);
        let events = history_len(&app, &token).await;

        // The retry after a lost response, and a device used but never trusted.
        for device in ["tablet", "tablet", "desktop"] {
            let again = trust.remove_trusted_device(remove(device)).await.unwrap().into_inner();
            assert!(!again.removed, "{device}");
            assert!(again.revoked_session_ids.is_empty() && again.revocation.is_none());
        }
        assert_eq!(history_len(&app, &token).await, events, "nothing recorded");
        assert!(!app.is_trusted("acct", "tablet").await);

        // Trust that expired is not trusted either.
        app.trust("acct", "kiosk").await;
        app.clock.advance(std::time::Duration::from_secs(31 * 86_400));
        let (_, token) = app.sign_in(SignIn::browser("acct", "laptop")).await;
        let expired = trust
            .remove_trusted_device(pb::RemoveTrustedDeviceRequest { subject: Some(by_token(&token)), device_id: "kiosk".into(), log_out_sessions: false })
            .await
            .unwrap()
            .into_inner();
        assert!(!expired.removed);

        // Unknown to the account: another account's device and a device that never existed.
        for device in ["bob_device", "no_such_device"] {
            let status = trust
                .remove_trusted_device(pb::RemoveTrustedDeviceRequest { subject: Some(by_token(&token)), device_id: device.into(), log_out_sessions: false })
                .await
                .unwrap_err();
            assert_status(&status, Code::NotFound, Some("NOT_FOUND"));
        }
    }
}
