//! TrustedDeviceService: trust, renew, expire, list, check and remove, and how trust ties into
//! the session rows (S10: "log out and remove") and log out of all sessions.

use std::time::Duration;

use active_sessions_client::{ListOptions, Owner, RevokeAllOptions, TrustedDevice};
use active_sessions_e2e::{
    SignIn, TestApp, assert_status, by_account, by_token, e2e, pb, violated_fields,
};
use pb::{
    ListTrustedDevicesRequest, LogOutAction, RemoveTrustedDeviceRequest, RevokeOutcome,
    SecurityEventType, TrustDeviceRequest,
};
use tonic::Code;

const DAY: Duration = Duration::from_secs(86_400);

fn remove(
    subject: pb::Subject,
    device: &str,
    log_out_sessions: bool,
) -> RemoveTrustedDeviceRequest {
    RemoveTrustedDeviceRequest {
        subject: Some(subject),
        device_id: device.into(),
        log_out_sessions,
    }
}

/// The first page of the owner's trusted devices, through the typed client.
async fn listed(app: &TestApp, owner: Owner) -> Vec<TrustedDevice> {
    app.connect_with_token(None)
        .await
        .trusted_devices()
        .list(owner, ListOptions::default())
        .await
        .unwrap()
        .devices
}

e2e! {
    async fn trusting_again_renews_the_one_record_and_trust_expires(app) {
        let (_, token) = app.sign_in(SignIn::browser("acct", "laptop")).await;
        let first = app.trust("acct", "laptop").await;
        assert!(!first.renewed);
        let first = first.trusted_device.unwrap();
        assert!(app.is_trusted("acct", "laptop").await);
        app.clock.advance(10 * DAY);
        let again = app.trust("acct", "laptop").await;
        assert!(again.renewed);
        let again = again.trusted_device.unwrap();
        assert_eq!(again.trusted_since, first.trusted_since);
        assert!(again.trusted_until.unwrap().seconds >= first.trusted_until.unwrap().seconds + 10 * 86_400);
        let devices = listed(&app, Owner::token(&token)).await;
        assert_eq!(devices.len(), 1, "one record, not two");
        let device = &devices[0];
        assert_eq!(device.device.description, "Chrome on Mac OSX");
        assert_eq!(device.location.city, "London");
        assert!(device.has_active_session);
        assert_eq!(device.method, pb::TrustMethod::Totp);
        // Thirty days after the renewal the trust has expired: not listed, not trusted.
        app.clock.advance(31 * DAY);
        assert!(!app.is_trusted("acct", "laptop").await);
        assert!(listed(&app, Owner::account("acct")).await.is_empty());
        // Trusting after expiry starts a new trust period.
        let fresh = app.trust("acct", "laptop").await;
        assert!(!fresh.renewed);
        assert!(fresh.trusted_device.unwrap().trusted_since.unwrap().seconds > first.trusted_since.unwrap().seconds);
    }
}

e2e! {
    async fn trust_durations_are_bounded_and_bad_input_names_its_field(app) {
        let mut client = app.trusted_devices();
        let good = TrustDeviceRequest {
            account_id: "acct".into(),
            device_id: "dev".into(),
            method: pb::TrustMethod::Passkey as i32,
            duration: Some(prost_types::Duration { seconds: 7 * 86_400, nanos: 0 }),
            product: pb::Product::Codex as i32,
        };
        let short = client.trust_device(good.clone()).await.unwrap().into_inner().trusted_device.unwrap();
        assert_eq!(short.trusted_until.unwrap().seconds - short.renewed_at.unwrap().seconds, 7 * 86_400);
        let cases: Vec<(TrustDeviceRequest, &[&str])> = vec![
            (TrustDeviceRequest { duration: Some(prost_types::Duration { seconds: 400 * 86_400, nanos: 0 }), ..good.clone() }, &["duration"]),
            (TrustDeviceRequest { method: 0, ..good.clone() }, &["method"]),
            (TrustDeviceRequest { product: 0, ..good.clone() }, &["product"]),
            (TrustDeviceRequest { device_id: "x".repeat(129), ..good.clone() }, &["device_id"]),
            (TrustDeviceRequest { account_id: String::new(), device_id: String::new(), ..good.clone() }, &["account_id", "device_id"]),
        ];
        for (request, fields) in cases {
            let status = client.trust_device(request).await.unwrap_err();
            assert_status(&status, Code::InvalidArgument, None);
            assert_eq!(violated_fields(&status), fields);
        }
        let status = client
            .check_device_trust(pb::CheckDeviceTrustRequest { account_id: "acct".into(), device_id: "dev\0".into() })
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&status), ["device_id"]);
        let status = client
            .list_trusted_devices(ListTrustedDevicesRequest { subject: Some(by_account("acct")), page_size: 1000, page_token: String::new() })
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&status), ["page_size"]);
    }
}

e2e! {
    async fn removing_trust_keeps_sessions_unless_asked_to_log_them_out(app) {
        let (_, owner) = app.sign_in(SignIn::browser("acct", "mine")).await;
        let (_, laptop) = app.sign_in(SignIn::browser("acct", "laptop")).await;
        let (_, tablet) = app.sign_in(SignIn::browser("acct", "tablet")).await;
        app.trust("acct", "laptop").await;
        app.trust("acct", "tablet").await;
        let kept = app.trusted_devices().remove_trusted_device(remove(by_token(&owner), "laptop", false)).await.unwrap().into_inner();
        assert!(kept.removed);
        assert!(kept.revoked_session_ids.is_empty());
        assert!(!app.is_trusted("acct", "laptop").await);
        assert!(app.is_valid(&laptop).await);

        let logged_out = app.trusted_devices().remove_trusted_device(remove(by_token(&owner), "tablet", true)).await.unwrap().into_inner();
        assert!(logged_out.removed);
        assert_eq!(logged_out.revoked_session_ids.len(), 1);
        assert_eq!(logged_out.revocation.unwrap().reason(), pb::RevocationReason::TrustRemoved);
        assert!(!app.is_trusted("acct", "tablet").await);
        assert!(!app.is_valid(&tablet).await);

        // Removing what is not trusted succeeds and changes nothing.
        let nothing = app.trusted_devices().remove_trusted_device(remove(by_token(&owner), "laptop", false)).await.unwrap().into_inner();
        assert!(!nothing.removed);
        assert!(app.is_valid(&laptop).await);
        // A device the account never used or trusted, such as another account's, is NOT_FOUND.
        app.sign_in(SignIn::browser("acct_other", "their_phone")).await;
        app.trust("acct_other", "their_phone").await;
        let status = app.trusted_devices().remove_trusted_device(remove(by_token(&owner), "their_phone", true)).await.unwrap_err();
        assert_status(&status, Code::NotFound, Some("NOT_FOUND"));
        assert!(app.is_trusted("acct_other", "their_phone").await);
        // Removing trust from the current device with its sessions would end the current session.
        app.trust("acct", "mine").await;
        let status = app.trusted_devices().remove_trusted_device(remove(by_token(&owner), "mine", true)).await.unwrap_err();
        assert_status(&status, Code::FailedPrecondition, Some("CURRENT_SESSION"));
        assert!(app.is_trusted("acct", "mine").await);

        let history = app
            .sessions()
            .list_security_events(pb::ListSecurityEventsRequest { subject: Some(by_account("acct")), ..Default::default() })
            .await
            .unwrap()
            .into_inner()
            .events;
        let removed = history.iter().filter(|e| e.r#type() == SecurityEventType::DeviceTrustRemoved).count();
        let trusted = history.iter().filter(|e| e.r#type() == SecurityEventType::DeviceTrusted).count();
        assert_eq!((trusted, removed), (3, 2));
    }
}

e2e! {
    async fn s10_trusted_device_row_logs_out_and_removes_the_trust_in_one_step(app) {
        let (_, owner) = app.sign_in(SignIn::browser("acct", "mine")).await;
        let (_, chatgpt) = app.sign_in(SignIn::browser("acct", "laptop")).await;
        let (_, api) = app.sign_in(SignIn::browser("acct", "laptop").product(pb::Product::ApiPlatform)).await;
        app.trust("acct", "laptop").await;
        let rows = app.rows_for_token(&owner).await;
        let laptop = rows.iter().find(|r| r.device_id == "laptop").unwrap();
        assert!(laptop.trusted);
        assert_eq!(laptop.log_out_action(), LogOutAction::LogOutAndRemove);
        let sessions = app.connect_with_token(None).await.sessions();
        let preview = sessions.revoke_row(Owner::token(&owner), "laptop", false).await.unwrap();
        assert_eq!(preview.outcome, RevokeOutcome::LoggedOutAndRemoved);
        assert!(preview.trust_removed);
        assert!(app.is_trusted("acct", "laptop").await, "preview changed nothing");
        let done = sessions.revoke_row(Owner::token(&owner), "laptop", true).await.unwrap();
        assert_eq!(done.outcome, RevokeOutcome::LoggedOutAndRemoved);
        assert!(done.revocation.unwrap().trust_removed);
        assert!(!app.is_trusted("acct", "laptop").await);
        assert!(!app.is_valid(&chatgpt).await && !app.is_valid(&api).await);
        assert!(listed(&app, Owner::token(&owner)).await.is_empty());
        // Trust and sessions went together; a later sign-in on the device is a plain row again.
        app.sign_in(SignIn::browser("acct", "laptop")).await;
        let rows = app.rows_for_token(&owner).await;
        let laptop = rows.iter().find(|r| r.device_id == "laptop").unwrap();
        assert!(!laptop.trusted);
        assert_eq!(laptop.log_out_action(), LogOutAction::LogOut);
    }
}

e2e! {
    async fn log_out_of_all_keeps_trust_unless_asked_to_remove_it(app) {
        let (_, owner) = app.sign_in(SignIn::browser("acct", "mine")).await;
        app.sign_in(SignIn::browser("acct", "laptop")).await;
        app.trust("acct", "laptop").await;
        app.trust("acct", "mine").await;
        let sessions = app.connect_with_token(None).await.sessions();
        let kept = sessions.revoke_all(Owner::account("acct"), RevokeAllOptions::confirmed()).await.unwrap();
        assert!(!kept.trust_removed);
        assert!(!app.is_valid(&owner).await);
        assert!(app.is_trusted("acct", "laptop").await && app.is_trusted("acct", "mine").await);
        let removed = sessions
            .revoke_all(Owner::account("acct"), RevokeAllOptions::confirmed().remove_trusted_devices())
            .await
            .unwrap();
        assert!(removed.trust_removed);
        assert!(!app.is_trusted("acct", "laptop").await && !app.is_trusted("acct", "mine").await);
        assert!(listed(&app, Owner::account("acct")).await.is_empty());
    }
}

e2e! {
    async fn trusted_device_owner_calls_refuse_sso_linked_accounts(app) {
        let (_, token) = app.sign_in(SignIn::browser("acct", "laptop")).await;
        app.trust("acct", "laptop").await;
        app.eligibility()
            .set_sso_link(pb::SetSsoLinkRequest { account_id: "acct".into(), protocol: pb::SsoProtocol::Saml as i32, organization_id: "org".into() })
            .await
            .unwrap();
        let list = app
            .trusted_devices()
            .list_trusted_devices(ListTrustedDevicesRequest { subject: Some(by_token(&token)), ..Default::default() })
            .await
            .unwrap_err();
        assert_status(&list, Code::FailedPrecondition, Some("ACCOUNT_SSO_LINKED"));
        let removal = app.trusted_devices().remove_trusted_device(remove(by_token(&token), "laptop", true)).await.unwrap_err();
        assert_status(&removal, Code::FailedPrecondition, Some("ACCOUNT_SSO_LINKED"));
        // Products still trust and check devices for such accounts: their users still sign in.
        assert!(app.is_trusted("acct", "laptop").await);
        assert!(app.trust("acct", "laptop").await.renewed);
    }
}

e2e! {
    async fn trusted_devices_page_in_a_stable_order(app) {
        for i in 0..7 {
            app.trust("acct", &format!("dev_{i}")).await;
        }
        let trusted = app.connect_with_token(None).await.trusted_devices();
        let mut seen = Vec::new();
        let mut options = ListOptions::new().page_size(3);
        loop {
            let page = trusted.list(Owner::account("acct"), options.clone()).await.unwrap();
            seen.extend(page.devices.into_iter().map(|d| d.device_id));
            match page.next_page_token {
                Some(token) => options = options.page_token(token),
                None => break,
            }
        }
        let expected: Vec<String> = (0..7).rev().map(|i| format!("dev_{i}")).collect();
        assert_eq!(seen, expected, "most recently trusted first, each once");
    }
}
