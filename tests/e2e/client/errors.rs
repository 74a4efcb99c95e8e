//! Errors: refusals map to the client's error variants a caller acts on, and a caller without a
//! credential is told apart from one without the role.

use super::{UNKNOWN_TOKEN, connect, names, sign_in};
use active_sessions_client::{
    ClientKind, Error, ListOptions, Owner, Product, Registration, RevokeAllOptions, SsoProtocol,
};
use active_sessions_e2e::{TestApp, TestCaller, e2e, on_each_database};

e2e! {
    async fn errors_map_to_the_variants_a_caller_acts_on(app) {
        let connection = connect(&app).await;
        let sessions = connection.sessions();
        let eligibility = connection.eligibility();
        let (_, token) = sign_in(&sessions, "acct-errors", "browser-1").await;
        let owner = Owner::token(&token);

        // SSO-linked accounts may not use the page.
        eligibility.set_sso_link("acct-sso", SsoProtocol::Saml, "org-1").await.unwrap();
        let (_, sso_token) = sign_in(&sessions, "acct-sso", "browser-1").await;
        let err = sessions.list_rows(Owner::token(&sso_token), ListOptions::new()).await.unwrap_err();
        assert!(matches!(err, Error::SsoLinked { protocol: SsoProtocol::Saml }), "{err:?}");
        eligibility.set_sso_link("acct-sso", SsoProtocol::Oidc, "org-1").await.unwrap();
        let err = sessions.revoke_all(Owner::token(&sso_token), RevokeAllOptions::confirmed()).await.unwrap_err();
        assert!(matches!(err, Error::SsoLinked { protocol: SsoProtocol::Oidc }), "{err:?}");
        assert!(!eligibility.check(Owner::account("acct-sso")).await.unwrap().eligible);

        // The current session's row.
        let err = sessions.revoke_row(owner.clone(), "browser-1", true).await.unwrap_err();
        assert!(matches!(err, Error::CurrentSession), "{err:?}");
        assert!(!err.is_retryable());

        // A row whose status cannot be confirmed.
        sessions
            .register(Registration::chatgpt_browser("acct-errors", "legacy").status_unavailable())
            .await
            .unwrap();
        let err = sessions.revoke_row(owner.clone(), "legacy", true).await.unwrap_err();
        assert!(matches!(err, Error::StatusUnavailable), "{err:?}");

        // Not found: a device never seen, an account never seen, a token not signed in.
        let err = sessions.revoke_row(owner.clone(), "no-such-device", true).await.unwrap_err();
        assert!(matches!(err, Error::NotFound), "{err:?}");
        let err = eligibility.get_account("acct-never-seen").await.unwrap_err();
        assert!(matches!(err, Error::NotFound), "{err:?}");
        let err = sessions.touch(UNKNOWN_TOKEN, None).await.unwrap_err();
        assert!(matches!(err, Error::NotFound), "{err:?}");

        // Invalid arguments name their fields.
        let err = sessions
            .register(Registration::new("", Product::Unspecified, ClientKind::Browser, ""))
            .await
            .unwrap_err();
        let Error::InvalidArgument { violations } = &err else { panic!("{err:?}") };
        let fields: Vec<&str> = violations.iter().map(|(field, _)| field.as_str()).collect();
        for field in ["account_id", "product", "device_id"] {
            assert!(fields.contains(&field), "{field} missing from {violations:?}");
        }
        assert!(violations.iter().all(|(_, description)| !description.is_empty()));
        // A malformed token is not signed in, not an error: `None`, NOT_FOUND for a touch,
        // and SESSION_NOT_VALID as an owner.
        for malformed in ["not-a-token", "ast_!!!", &format!("ast_{}B", "A".repeat(42))] {
            assert_eq!(sessions.validate(malformed).await.unwrap(), None, "{malformed}");
            let err = sessions.touch(malformed, None).await.unwrap_err();
            assert!(matches!(err, Error::NotFound), "{err:?}");
            let err = sessions
                .list_rows(Owner::token(malformed), ListOptions::new())
                .await
                .unwrap_err();
            assert!(matches!(err, Error::SessionNotValid), "{err:?}");
        }
        let err = sessions
            .list_rows(owner.clone(), ListOptions::new().page_token("forged"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidArgument { violations } if names(violations, "page_token")),
            "{err:?}"
        );

        // A user token that is not signed in.
        let err = sessions.list_rows(Owner::token(UNKNOWN_TOKEN), ListOptions::new()).await.unwrap_err();
        assert!(matches!(err, Error::SessionNotValid), "{err:?}");

        // A request id reused for another sign-in.
        sessions
            .register(Registration::chatgpt_browser("acct-errors", "browser-2").request_id("signin-7"))
            .await
            .unwrap();
        let err = sessions
            .register(Registration::chatgpt_browser("acct-errors", "browser-3").request_id("signin-7"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::RequestIdReused), "{err:?}");

        // A revocation cursor the server has never issued.
        let err = sessions.watch_revocations(Some("999999999"), &[]).await.unwrap_err();
        assert!(matches!(err, Error::CursorExpired), "{err:?}");
    }
}

on_each_database! {
    async fn callers_without_a_credential_or_the_role_are_told_apart(backend) {
        let callers = vec![
            TestCaller::new("settings", &["settings"], &[]),
            TestCaller::new("chatgpt", &["product"], &["CHATGPT"]),
        ];
        let Some(app) = TestApp::spawn_with_callers(backend, callers).await else {
            return;
        };

        let anonymous = app.connect_with_token(None).await.sessions();
        let err = anonymous.validate(UNKNOWN_TOKEN).await.unwrap_err();
        assert!(matches!(err, Error::Unauthenticated), "{err:?}");
        let stranger = app.connect_with_token(Some("not-a-known-token")).await.sessions();
        let err = stranger.validate(UNKNOWN_TOKEN).await.unwrap_err();
        assert!(matches!(err, Error::Unauthenticated), "{err:?}");

        // The settings backend may not register sessions; ChatGPT may not act for Codex.
        let settings = app.connect_as("settings").await;
        let err = settings
            .sessions()
            .register(Registration::chatgpt_browser("acct-roles", "browser-1"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::PermissionDenied), "{err:?}");
        let chatgpt = app.connect_as("chatgpt").await.sessions();
        let err = chatgpt
            .register(Registration::codex_desktop("acct-roles", "install-1"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::PermissionDenied), "{err:?}");
        let err = chatgpt.watch_revocations(None, &[Product::Codex]).await.unwrap_err();
        assert!(matches!(err, Error::PermissionDenied), "{err:?}");

        // What each may do still works.
        let (_, token) = sign_in(&chatgpt, "acct-roles", "browser-1").await;
        assert!(chatgpt.validate(&token).await.unwrap().is_some());
        let rows = settings.sessions().list_all_rows(Owner::token(&token), None).await.unwrap();
        assert_eq!(rows.len(), 1);
        let err = settings
            .sessions()
            .list_rows(Owner::account("acct-roles"), ListOptions::new())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::PermissionDenied), "{err:?}");

        app.stop().await;
    }
}
