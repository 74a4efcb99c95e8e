//! SessionService behaviour, one test per requirement S1–S15 of the design (S10 lives with the
//! trusted-device tests), plus the token, validation and bad-input rules.

use std::time::Duration;

use active_sessions_e2e::{
    SignIn, assert_status, by_account, by_token, e2e, pb, revoke_all_request,
    revoke_device_request, user_agents,
};
use pb::{
    ClientKind, GetRevocationRequest, ListActiveSessionsRequest, ListSecurityEventsRequest,
    LogOutAction, NoLogOutReason, Product, RevokeAllSessionsRequest, RevokeOutcome,
    RevokeSessionRequest, SecurityEventType, SessionStatus, revoke_session_request::Target,
};
use tonic::Code;

const DAY: Duration = Duration::from_secs(86_400);

e2e! {
    async fn s1_row_shows_device_product_location_sign_in_time_and_current(app) {
        let (session, token) = app.sign_in(SignIn::browser("acct", "dev_mac")).await;
        let rows = app.rows_for_token(&token).await;
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.device_id, "dev_mac");
        assert_eq!(row.products().collect::<Vec<_>>(), [Product::Chatgpt]);
        let device = row.device.as_ref().unwrap();
        assert_eq!((device.browser.as_str(), device.os.as_str()), ("Chrome", "Mac OSX"));
        assert_eq!(device.device_type(), pb::DeviceType::Desktop);
        assert_eq!(device.description, "Chrome on Mac OSX");
        let location = row.location.as_ref().unwrap();
        assert_eq!((location.city.as_str(), location.country_code.as_str()), ("London", "GB"));
        assert_eq!(row.signed_in_at, session.signed_in_at);
        assert!(row.current);
        assert!(!row.trusted);
        assert_eq!(row.status(), SessionStatus::Active);
        assert_eq!(row.sessions.len(), 1);
        assert!(row.sessions[0].current);
        assert_eq!(row.sessions[0].session_id, session.session_id);
    }
}

e2e! {
    async fn s2_missing_details_are_empty_and_known_ones_are_marked_approximate(app) {
        let bare = SignIn { user_agent: String::new(), ip_address: String::new(), ..SignIn::browser("acct", "dev_bare") };
        let (_, token) = app.sign_in(bare).await;
        app.sign_in(SignIn::browser("acct", "dev_full").ip("2001:480:10::1")).await;
        let rows = app.rows_for_token(&token).await;
        let bare = rows.iter().find(|r| r.device_id == "dev_bare").unwrap();
        let (device, location) = (bare.device.as_ref().unwrap(), bare.location.as_ref().unwrap());
        assert_eq!(device.browser, "");
        assert!(!device.approximate);
        assert_eq!(location.city, "");
        assert!(!location.approximate);
        let full = rows.iter().find(|r| r.device_id == "dev_full").unwrap();
        let location = full.location.as_ref().unwrap();
        assert_eq!(location.city, "San Diego");
        assert!(location.approximate);
        assert!(full.device.as_ref().unwrap().approximate);
        // A private address has no location, and that is fine.
        app.sign_in(SignIn::browser("acct", "dev_private").ip("10.1.2.3")).await;
        let rows = app.rows_for_token(&token).await;
        let private = rows.iter().find(|r| r.device_id == "dev_private").unwrap();
        assert_eq!(private.location.as_ref().unwrap().country_code, "");
    }
}

e2e! {
    async fn s3_one_browser_signed_in_to_two_products_is_one_row(app) {
        let (_, chatgpt) = app.sign_in(SignIn::browser("acct", "browser_1")).await;
        app.sign_in(SignIn::browser("acct", "browser_1").product(Product::ApiPlatform)).await;
        app.sign_in(SignIn { user_agent: user_agents::SAFARI_IPHONE.into(), ..SignIn::browser("acct", "phone_1") }).await;
        let rows = app.rows_for_token(&chatgpt).await;
        assert_eq!(rows.len(), 2);
        let browser = rows.iter().find(|r| r.device_id == "browser_1").unwrap();
        assert_eq!(browser.products().collect::<Vec<_>>(), [Product::Chatgpt, Product::ApiPlatform]);
        assert_eq!(browser.sessions.len(), 2);
        // Filtering by product keeps only rows with a session in that product.
        let filtered = app
            .sessions()
            .list_active_sessions(ListActiveSessionsRequest {
                subject: Some(by_token(&chatgpt)),
                product: Product::ApiPlatform as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(filtered.rows.len(), 1);
        assert_eq!(filtered.rows[0].products().collect::<Vec<_>>(), [Product::ApiPlatform]);
    }
}

e2e! {
    async fn s4_hidden_kinds_are_never_listed_or_managed_but_still_validate(app) {
        let (_, owner) = app.sign_in(SignIn::browser("acct", "browser")).await;
        let mut hidden = Vec::new();
        for (i, kind) in [ClientKind::ThirdPartyApp, ClientKind::ConnectedApp, ClientKind::SignInWithChatgpt, ClientKind::Cli]
            .into_iter()
            .enumerate()
        {
            let (session, token) = app
                .sign_in(SignIn::browser("acct", &format!("hidden_{i}")).kind(kind).product(Product::Codex))
                .await;
            hidden.push((session, token));
        }
        let rows = app.rows_for_token(&owner).await;
        assert_eq!(rows.iter().map(|r| r.device_id.as_str()).collect::<Vec<_>>(), ["browser"]);
        for (session, token) in &hidden {
            assert!(app.is_valid(token).await);
            let status = app
                .sessions()
                .revoke_session(RevokeSessionRequest {
                    subject: Some(by_token(&owner)),
                    target: Some(Target::SessionId(session.session_id.clone())),
                    validate_only: false,
                })
                .await
                .unwrap_err();
            assert_status(&status, Code::NotFound, Some("NOT_FOUND"));
            let status = app.sessions().revoke_session(revoke_device_request(by_token(&owner), &session.device_id, false)).await.unwrap_err();
            assert_status(&status, Code::NotFound, Some("NOT_FOUND"));
        }
        // Log out of all sessions leaves hidden kinds alone.
        app.sessions().revoke_all_sessions(revoke_all_request(by_account("acct"))).await.unwrap();
        assert!(!app.is_valid(&owner).await);
        for (_, token) in &hidden {
            assert!(app.is_valid(token).await, "hidden session was ended by log out of all");
        }
        // And the history never mentions them.
        let events = app
            .sessions()
            .list_security_events(ListSecurityEventsRequest { subject: Some(by_account("acct")), ..Default::default() })
            .await
            .unwrap()
            .into_inner()
            .events;
        assert!(events.iter().all(|e| !e.device_id.starts_with("hidden_")));
    }
}

e2e! {
    async fn s5_only_active_sessions_are_listed(app) {
        let (_, owner) = app.sign_in(SignIn::browser("acct", "current")).await;
        app.sign_in(SignIn::browser("acct", "revoked")).await;
        app.sign_in(SignIn { lifetime: Some(Duration::from_secs(3600)), ..SignIn::browser("acct", "short_lived") }).await;
        app.sessions().revoke_session(revoke_device_request(by_token(&owner), "revoked", false)).await.unwrap();
        let devices = |rows: Vec<pb::SessionRow>| rows.into_iter().map(|r| r.device_id).collect::<Vec<_>>();
        let mut listed = devices(app.rows_for_token(&owner).await);
        listed.sort();
        assert_eq!(listed, ["current", "short_lived"]);
        app.clock.advance(Duration::from_secs(2 * 3600));
        assert_eq!(devices(app.rows_for_token(&owner).await), ["current"]);
        // Idle for longer than the idle timeout (14 days): not active, not listed, not valid.
        app.sign_in(SignIn::browser("acct", "idle")).await;
        app.clock.advance(15 * DAY);
        assert!(app.rows_for_account("acct").await.is_empty());
        assert!(!app.is_valid(&owner).await);
    }
}

e2e! {
    async fn s6_personal_and_managed_accounts_list_their_sessions(app) {
        for (account, workspace) in [("acct_personal", pb::WorkspaceType::Personal), ("acct_managed", pb::WorkspaceType::Managed)] {
            app.eligibility()
                .set_workspace_type(pb::SetWorkspaceTypeRequest { account_id: account.into(), workspace_type: workspace as i32 })
                .await
                .unwrap();
            let (_, token) = app.sign_in(SignIn::browser(account, "dev")).await;
            assert_eq!(app.rows_for_token(&token).await.len(), 1, "{account}");
        }
    }
}

e2e! {
    async fn s7_sso_linked_account_is_refused_on_owner_calls_but_still_signs_in(app) {
        app.eligibility()
            .set_sso_link(pb::SetSsoLinkRequest {
                account_id: "acct_sso".into(),
                protocol: pb::SsoProtocol::Oidc as i32,
                organization_id: "org".into(),
            })
            .await
            .unwrap();
        // The current session used a password, not SSO: the link still decides.
        let (_, token) = app.sign_in(SignIn::browser("acct_sso", "dev")).await;
        assert!(app.is_valid(&token).await);
        let eligibility = app
            .eligibility()
            .check_eligibility(pb::CheckEligibilityRequest { subject: Some(by_token(&token)) })
            .await
            .unwrap()
            .into_inner();
        assert!(!eligibility.eligible);
        assert_eq!(eligibility.reason(), pb::IneligibilityReason::SsoLinkedOidc);
        let mut sessions = app.sessions();
        // Operators naming the account by id may act on it (break-glass: operator_break_glass).
        for subject in [by_token(&token)] {
            let refusals = [
                sessions.list_active_sessions(ListActiveSessionsRequest { subject: Some(subject.clone()), ..Default::default() }).await.unwrap_err(),
                sessions.revoke_session(revoke_device_request(subject.clone(), "dev", false)).await.unwrap_err(),
                sessions.revoke_all_sessions(revoke_all_request(subject.clone())).await.unwrap_err(),
                sessions.list_security_events(ListSecurityEventsRequest { subject: Some(subject.clone()), ..Default::default() }).await.unwrap_err(),
            ];
            for status in refusals {
                assert_status(&status, Code::FailedPrecondition, Some("ACCOUNT_SSO_LINKED"));
            }
        }
        // Nothing was logged out by the refused calls.
        assert!(app.is_valid(&token).await);
    }
}

e2e! {
    async fn s8_current_session_row_is_marked_and_cannot_be_logged_out_from_its_row(app) {
        let (current, token) = app.sign_in(SignIn::browser("acct", "mine")).await;
        app.sign_in(SignIn::browser("acct", "mine").product(Product::ApiPlatform)).await;
        app.sign_in(SignIn::browser("acct", "other")).await;
        let rows = app.rows_for_token(&token).await;
        let mine = rows.iter().find(|r| r.device_id == "mine").unwrap();
        assert!(mine.current);
        assert_eq!(mine.log_out_action(), LogOutAction::None);
        assert_eq!(mine.no_log_out_reason(), NoLogOutReason::CurrentSession);
        let other = rows.iter().find(|r| r.device_id == "other").unwrap();
        assert!(!other.current);
        assert_eq!(other.log_out_action(), LogOutAction::LogOut);

        let mut sessions = app.sessions();
        let by_row = sessions.revoke_session(revoke_device_request(by_token(&token), "mine", false)).await.unwrap_err();
        assert_status(&by_row, Code::FailedPrecondition, Some("CURRENT_SESSION"));
        let by_id = sessions
            .revoke_session(RevokeSessionRequest {
                subject: Some(by_token(&token)),
                target: Some(Target::SessionId(current.session_id.clone())),
                validate_only: false,
            })
            .await
            .unwrap_err();
        assert_status(&by_id, Code::FailedPrecondition, Some("CURRENT_SESSION"));
        assert!(app.is_valid(&token).await);
        // An operator has no current session and may log the row out.
        sessions.revoke_session(revoke_device_request(by_account("acct"), "mine", false)).await.unwrap();
        assert!(!app.is_valid(&token).await);
    }
}

e2e! {
    async fn s9_validate_only_says_what_a_log_out_would_do_without_doing_it(app) {
        let (_, owner) = app.sign_in(SignIn::browser("acct", "mine")).await;
        let (_, other_chatgpt) = app.sign_in(SignIn::browser("acct", "laptop")).await;
        let (_, other_api) = app.sign_in(SignIn::browser("acct", "laptop").product(Product::ApiPlatform)).await;
        let preview = app.sessions().revoke_session(revoke_device_request(by_token(&owner), "laptop", true)).await.unwrap().into_inner();
        assert_eq!(preview.outcome(), RevokeOutcome::LoggedOut);
        assert_eq!(preview.session_ids.len(), 2);
        assert_eq!(preview.products().collect::<Vec<_>>(), [Product::Chatgpt, Product::ApiPlatform]);
        assert!(preview.revocation.is_none());
        assert!(app.is_valid(&other_chatgpt).await && app.is_valid(&other_api).await);
        assert_eq!(app.rows_for_token(&owner).await.len(), 2);
        let all_preview = app
            .sessions()
            .revoke_all_sessions(RevokeAllSessionsRequest { subject: Some(by_token(&owner)), validate_only: true, remove_trusted_devices: false, ..Default::default() })
            .await
            .unwrap()
            .into_inner()
            .revocation
            .unwrap();
        assert_eq!(all_preview.sessions_revoked, 3);
        assert!(all_preview.revocation_id.is_empty());
        assert!(app.is_valid(&owner).await);

        let done = app.sessions().revoke_session(revoke_device_request(by_token(&owner), "laptop", false)).await.unwrap().into_inner();
        assert_eq!(done.outcome(), RevokeOutcome::LoggedOut);
        assert_eq!(done.session_ids, preview.session_ids);
        assert!(done.revocation.is_some());
        assert!(!app.is_valid(&other_chatgpt).await && !app.is_valid(&other_api).await);
        // Again: already logged out, nothing changes.
        let again = app.sessions().revoke_session(revoke_device_request(by_token(&owner), "laptop", false)).await.unwrap().into_inner();
        assert_eq!(again.outcome(), RevokeOutcome::AlreadyLoggedOut);
        assert!(again.revocation.is_none());
    }
}

e2e! {
    async fn s11_log_out_of_all_ends_every_session_including_the_current_one_at_once(app) {
        let (_, owner) = app.sign_in(SignIn::browser("acct", "mine")).await;
        let mut tokens = vec![owner.clone()];
        for i in 0..5 {
            tokens.push(app.sign_in(SignIn::browser("acct", &format!("dev_{i}")).product(Product::Codex)).await.1);
        }
        let (_, someone_else) = app.sign_in(SignIn::browser("acct_other", "dev")).await;
        let revocation = app.sessions().revoke_all_sessions(revoke_all_request(by_token(&owner))).await.unwrap().into_inner().revocation.unwrap();
        // Refused as soon as the call returns, before any sweep has run.
        for token in &tokens {
            assert!(!app.is_valid(token).await);
        }
        assert!(app.is_valid(&someone_else).await);
        assert!(app.rows_for_account("acct").await.is_empty());
        assert_eq!(revocation.scope(), pb::RevocationScope::All);
        // A sign-in after the cut-off is unaffected.
        let (_, later) = app.sign_in(SignIn::browser("acct", "new_laptop")).await;
        assert!(app.is_valid(&later).await);
        assert_eq!(app.rows_for_token(&later).await.len(), 1);
        // The owner's own token no longer works for owner calls.
        let status = app.sessions().list_active_sessions(ListActiveSessionsRequest { subject: Some(by_token(&owner)), ..Default::default() }).await.unwrap_err();
        assert_status(&status, Code::Unauthenticated, Some("SESSION_NOT_VALID"));
    }
}

e2e! {
    async fn s12_status_unavailable_row_offers_no_log_out_but_log_out_all_ends_it(app) {
        let (_, owner) = app.sign_in(SignIn::browser("acct", "mine")).await;
        let legacy = SignIn { status_unavailable: true, ..SignIn::browser("acct", "legacy") };
        let (_, legacy_token) = app.sign_in(legacy).await;
        let rows = app.rows_for_token(&owner).await;
        let row = rows.iter().find(|r| r.device_id == "legacy").unwrap();
        assert_eq!(row.status(), SessionStatus::Unavailable);
        assert_eq!(row.log_out_action(), LogOutAction::None);
        assert_eq!(row.no_log_out_reason(), NoLogOutReason::StatusUnavailable);
        let status = app.sessions().revoke_session(revoke_device_request(by_token(&owner), "legacy", false)).await.unwrap_err();
        assert_status(&status, Code::FailedPrecondition, Some("STATUS_UNAVAILABLE"));
        assert!(app.is_valid(&legacy_token).await);
        app.sessions().revoke_all_sessions(revoke_all_request(by_token(&owner))).await.unwrap();
        assert!(!app.is_valid(&legacy_token).await);
    }
}

e2e! {
    async fn s13_revocations_report_when_they_are_fully_in_effect(app) {
        let (_, owner) = app.sign_in(SignIn::browser("acct", "mine")).await;
        app.sign_in(SignIn::browser("acct", "laptop")).await;
        let row = app.sessions().revoke_session(revoke_device_request(by_token(&owner), "laptop", false)).await.unwrap().into_inner();
        let row_revocation = row.revocation.unwrap();
        assert!(row_revocation.complete, "a row log-out is complete when it returns");
        assert!(app.rows_for_token(&owner).await.iter().all(|r| r.device_id != "laptop"));

        for i in 0..20 {
            app.sign_in(SignIn::browser("acct", &format!("dev_{i}"))).await;
        }
        let all = app.sessions().revoke_all_sessions(revoke_all_request(by_account("acct"))).await.unwrap().into_inner().revocation.unwrap();
        app.services().sessions().sweep_pending().await.unwrap();
        let progress = app
            .sessions()
            .get_revocation(GetRevocationRequest { subject: Some(by_account("acct")), revocation_id: all.revocation_id.clone() })
            .await
            .unwrap()
            .into_inner()
            .revocation
            .unwrap();
        assert!(progress.complete);
        assert!(progress.completed_at.is_some());
        assert_eq!(progress.sessions_revoked, 21);
        // Another account cannot see it.
        app.sign_in(SignIn::browser("acct_b", "d")).await;
        let status = app
            .sessions()
            .get_revocation(GetRevocationRequest { subject: Some(by_account("acct_b")), revocation_id: all.revocation_id })
            .await
            .unwrap_err();
        assert_status(&status, Code::NotFound, Some("NOT_FOUND"));
    }
}

e2e! {
    async fn s15_security_history_records_sign_ins_and_log_outs_newest_first(app) {
        let (_, owner) = app.sign_in(SignIn::browser("acct", "mine")).await;
        app.sign_in(SignIn::browser("acct", "laptop").ip("89.160.20.112")).await;
        app.sessions().revoke_session(revoke_device_request(by_token(&owner), "laptop", false)).await.unwrap();
        app.sessions().revoke_all_sessions(revoke_all_request(by_account("acct"))).await.unwrap();
        // The log-out of all's event gets its session count from the sweep.
        app.services().sessions().sweep_pending().await.unwrap();
        let mut events = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = app
                .sessions()
                .list_security_events(ListSecurityEventsRequest { subject: Some(by_account("acct")), page_size: 2, page_token })
                .await
                .unwrap()
                .into_inner();
            events.extend(page.events);
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        let types: Vec<_> = events.iter().map(|e| e.r#type()).collect();
        assert_eq!(types, [SecurityEventType::LogOutAll, SecurityEventType::LogOut, SecurityEventType::SignIn, SecurityEventType::SignIn]);
        let sign_in = &events[2];
        assert_eq!(sign_in.device_id, "laptop");
        assert_eq!(sign_in.location.as_ref().unwrap().city, "Linköping");
        assert_eq!(sign_in.product(), Product::Chatgpt);
        assert_eq!(events[1].actor, "user");
        assert_eq!(events[0].actor, "operator:local");
        assert_eq!(events[0].session_count, 1);
        // New device and new country hints on the rows that appear afterwards.
        let (_, token) = app.sign_in(SignIn::browser("acct", "travel").ip("175.16.199.0")).await;
        let rows = app.rows_for_token(&token).await;
        assert!(rows[0].new_device);
        assert!(rows[0].new_country);
        app.sign_in(SignIn::browser("acct", "mine")).await;
        let rows = app.rows_for_token(&token).await;
        let seen = rows.iter().find(|r| r.device_id == "mine").unwrap();
        assert!(!seen.new_device && !seen.new_country);
    }
}
