//! Typed calls: every call of the typed client round-trips through the real server.

use std::time::Duration;

use active_sessions_client::{
    AuthMethod, ClientKind, ListOptions, LogOutAction, Owner, Product, Registration,
    RevocationScope, RevokeAllOptions, RevokeOutcome, SecurityEventType, Trust, TrustMethod,
    WorkspaceType,
};
use active_sessions_e2e::{e2e, user_agents};

use super::{LONDON, UNKNOWN_TOKEN, connect};

e2e! {
    async fn typed_calls_round_trip(app) {
        let connection = connect(&app).await;
        let sessions = connection.sessions();
        let devices = connection.trusted_devices();
        let eligibility = connection.eligibility();

        // A browser signs in to ChatGPT; a request id is generated.
        let chatgpt = sessions
            .register(
                Registration::chatgpt_browser("acct-typed", "browser-1")
                    .user_agent(user_agents::CHROME_MAC)
                    .ip(LONDON)
                    .auth_method(AuthMethod::Passkey),
            )
            .await
            .unwrap();
        assert!(chatgpt.token.starts_with("ast_"));
        assert!(chatgpt.request_id.starts_with("req_"));
        assert!(!chatgpt.replayed);
        assert!(!format!("{chatgpt:?}").contains(&chatgpt.token), "Debug hides the token");
        let session = &chatgpt.session;
        assert_eq!(session.account_id, "acct-typed");
        assert_eq!(session.product, Product::Chatgpt);
        assert_eq!(session.client_kind, ClientKind::Browser);
        assert_eq!(session.auth_method, AuthMethod::Passkey);
        assert_eq!(session.device.browser, "Chrome");
        assert_eq!(session.location.country_code, "GB");
        assert!(session.signed_in_at.is_some() && session.expires_at.is_some());

        // The same browser signs in to API Platform; a Codex desktop app signs in elsewhere.
        let platform = sessions
            .register(Registration::api_platform_browser("acct-typed", "browser-1").ip(LONDON))
            .await
            .unwrap();
        let codex = sessions
            .register(
                Registration::codex_desktop("acct-typed", "install-1")
                    .user_agent(user_agents::CODEX_MAC_APP)
                    .lifetime(Duration::from_secs(3_600)),
            )
            .await
            .unwrap();

        // A registration retried with its request id returns the original session.
        let first = sessions
            .register(Registration::chatgpt_browser("acct-typed", "browser-2").request_id("signin-42"))
            .await
            .unwrap();
        let again = sessions
            .register(Registration::chatgpt_browser("acct-typed", "browser-2").request_id("signin-42"))
            .await
            .unwrap();
        assert!(again.replayed);
        assert_eq!(again.token, first.token);
        assert_eq!(again.session.session_id, first.session.session_id);

        // Validation.
        let valid = sessions.validate(&chatgpt.token).await.unwrap().expect("valid");
        assert_eq!(valid.session_id, session.session_id);
        assert_eq!(valid.account_id, "acct-typed");
        assert_eq!(valid.device_id, "browser-1");
        assert_eq!(valid.product, Product::Chatgpt);
        assert!(valid.signed_in_at <= valid.valid_until());
        assert!(sessions.validate(UNKNOWN_TOKEN).await.unwrap().is_none());
        assert_eq!(sessions.touch(&chatgpt.token, Some(LONDON)).await.unwrap(), session.session_id);

        // Trust the Codex installation; the rows show it.
        let trusted = devices
            .trust(Trust::new("acct-typed", "install-1", Product::Codex, TrustMethod::Totp))
            .await
            .unwrap();
        assert!(!trusted.renewed);
        assert_eq!(trusted.device.method, TrustMethod::Totp);
        assert!(devices.check("acct-typed", "install-1").await.unwrap().trusted);
        assert!(!devices.check("acct-typed", "browser-1").await.unwrap().trusted);
        let listed = devices.list(Owner::account("acct-typed"), ListOptions::new()).await.unwrap();
        assert_eq!(listed.devices.len(), 1);
        assert_eq!(listed.next_page_token, None);

        // The settings page, as the user of browser-1: one row with two products.
        let owner = Owner::token(&chatgpt.token);
        let rows = sessions.list_all_rows(owner.clone(), None).await.unwrap();
        assert_eq!(rows.len(), 3, "{rows:#?}");
        let browser = rows.iter().find(|row| row.device_id == "browser-1").unwrap();
        assert_eq!(browser.products, [Product::Chatgpt, Product::ApiPlatform]);
        assert_eq!(browser.sessions.len(), 2);
        assert!(browser.current);
        assert_eq!(browser.log_out_action, LogOutAction::None);
        let app_row = rows.iter().find(|row| row.device_id == "install-1").unwrap();
        assert!(app_row.trusted);
        assert_eq!(app_row.log_out_action, LogOutAction::LogOutAndRemove);

        // Paging and filtering.
        let page = sessions.list_rows(owner.clone(), ListOptions::new().page_size(2)).await.unwrap();
        assert_eq!(page.rows.len(), 2);
        let rest = sessions
            .list_rows(owner.clone(), ListOptions::new().page_size(2).page_token(page.next_page_token.unwrap()))
            .await
            .unwrap();
        assert_eq!(rest.rows.len(), 1);
        assert_eq!(rest.next_page_token, None);
        let codex_rows = sessions.list_all_rows(owner.clone(), Some(Product::Codex)).await.unwrap();
        assert_eq!(codex_rows.len(), 1);

        // Log out the Codex row: the confirmation step changes nothing, then it is done.
        let preview = sessions.revoke_row(owner.clone(), "install-1", false).await.unwrap();
        assert_eq!(preview.outcome, RevokeOutcome::LoggedOutAndRemoved);
        assert_eq!(preview.session_ids, std::slice::from_ref(&codex.session.session_id));
        assert!(preview.revocation.is_none());
        assert!(sessions.validate(&codex.token).await.unwrap().is_some());
        let done = sessions.revoke_row(owner.clone(), "install-1", true).await.unwrap();
        assert!(done.trust_removed);
        let revocation = done.revocation.expect("recorded");
        assert_eq!(revocation.scope, RevocationScope::Device);
        assert_eq!(revocation.device_id.as_deref(), Some("install-1"));
        assert!(sessions.validate(&codex.token).await.unwrap().is_none());
        assert!(!devices.check("acct-typed", "install-1").await.unwrap().trusted);
        let fetched = sessions.get_revocation(owner.clone(), &revocation.revocation_id).await.unwrap();
        assert!(fetched.complete);
        assert_eq!(fetched.session_ids, std::slice::from_ref(&codex.session.session_id));

        // Eligibility and the account record.
        let checked = eligibility.check(owner.clone()).await.unwrap();
        assert!(checked.eligible);
        assert_eq!(checked.account_id, "acct-typed");
        let account = eligibility.set_workspace_type("acct-typed", WorkspaceType::Managed).await.unwrap();
        assert_eq!(account.workspace_type, WorkspaceType::Managed);
        assert_eq!(eligibility.get_account("acct-typed").await.unwrap().sso_link, None);

        // Log out of all sessions: the preview records nothing, then everything ends.
        let preview = sessions.revoke_all(owner.clone(), RevokeAllOptions::preview()).await.unwrap();
        assert!(preview.revocation_id.is_empty());
        assert_eq!(preview.sessions_revoked, 3);
        assert!(sessions.validate(&platform.token).await.unwrap().is_some());
        let all = sessions.revoke_all(owner.clone(), RevokeAllOptions::confirmed()).await.unwrap();
        assert_eq!(all.scope, RevocationScope::All);
        assert!(all.revoked_before.is_some());
        for token in [&chatgpt.token, &platform.token, &first.token] {
            assert!(sessions.validate(token).await.unwrap().is_none());
        }

        // The history.
        let history = sessions
            .list_security_events(Owner::account("acct-typed"), ListOptions::new().page_size(100))
            .await
            .unwrap();
        let kinds: Vec<SecurityEventType> = history.events.iter().map(|event| event.kind).collect();
        assert!(kinds.contains(&SecurityEventType::SignIn));
        assert!(kinds.contains(&SecurityEventType::LogOut));
        assert!(kinds.contains(&SecurityEventType::LogOutAll));
        assert!(kinds.contains(&SecurityEventType::DeviceTrusted));
    }
}
