//! Account lifecycle (issue 16): the identity system ends an account's sessions with a reason
//! (all, or all but one), disables and enables the account, and deletes everything kept about
//! it, through the client crate; caches following the revocation stream drop the sessions.

use std::time::Duration;

use active_sessions_client::{
    AccountLogOut, Error, ListOptions, Owner, Registration, RevocationReason, RevocationScope,
    SecurityEventType, ValidationCache,
};
use active_sessions_e2e::e2e;
use sea_orm::{ConnectionTrait, Database, Statement};

/// Rows of `account_id` in every table that holds account data.
async fn rows_of(
    database_url: &str,
    account_id: &str,
    session_ids: &[String],
) -> Vec<(&'static str, i64)> {
    let db = Database::connect(database_url).await.unwrap();
    let mut counts = Vec::new();
    for table in ["accounts", "sessions", "trusted_devices", "security_events"] {
        let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE account_id = '{account_id}'");
        let row = db
            .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .unwrap()
            .unwrap();
        counts.push((table, row.try_get::<i64>("", "n").unwrap()));
    }
    let ids: Vec<String> = session_ids.iter().map(|id| format!("'{id}'")).collect();
    let sql = format!(
        "SELECT COUNT(*) AS n FROM idempotency_records WHERE session_id IN ({})",
        ids.join(", ")
    );
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    counts.push(("idempotency_records", row.try_get::<i64>("", "n").unwrap()));
    counts
}

e2e! {
    async fn a_password_change_ends_every_other_session_at_once_and_keeps_the_named_one(app) {
        let connection = app.connect_with_token(None).await;
        let sessions = connection.sessions();
        let here = sessions.register(Registration::chatgpt_browser("acct", "laptop")).await.unwrap();
        let phone = sessions.register(Registration::chatgpt_mobile("acct", "phone")).await.unwrap();
        let codex = sessions.register(Registration::codex_desktop("acct", "desktop")).await.unwrap();
        let cli = sessions.register(Registration::codex_cli("acct", "terminal")).await.unwrap();
        let cache = ValidationCache::builder(connection.clone()).start().await;
        tokio::time::timeout(Duration::from_secs(10), cache.wait_live()).await.unwrap();
        for token in [&here.token, &phone.token, &codex.token] {
            assert!(cache.validate(token).await.unwrap().is_some());
        }

        let revocation = sessions
            .end_account_sessions(
                "acct",
                AccountLogOut::all_but(RevocationReason::PasswordChanged, &here.session.session_id),
            )
            .await
            .unwrap();
        assert_eq!(revocation.scope, RevocationScope::All);
        assert_eq!(revocation.reason, RevocationReason::PasswordChanged);
        assert_eq!(revocation.kept_session_id.as_deref(), Some(here.session.session_id.as_str()));
        assert!(!revocation.includes_hidden_kinds);
        // At once, on the server...
        assert!(sessions.validate(&phone.token).await.unwrap().is_none());
        assert!(sessions.validate(&codex.token).await.unwrap().is_none());
        let kept = sessions.validate(&here.token).await.unwrap().expect("the named session stays");
        assert_eq!(kept.generation, revocation.cut_generation);
        // ... a password change leaves hidden kinds alone unless asked ...
        assert!(sessions.validate(&cli.token).await.unwrap().is_some());
        // ... and in a product's cache, which validates the kept session again.
        tokio::time::timeout(Duration::from_secs(10), async {
            while cache.validate(&phone.token).await.unwrap().is_some() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap();
        assert!(cache.validate(&codex.token).await.unwrap().is_none());
        assert!(cache.validate(&here.token).await.unwrap().is_some());

        // The history says who and why, and (once the sweep counted them) how many sessions ended.
        app.services().sessions().sweep_pending().await.unwrap();
        let history = sessions.list_security_events(Owner::account("acct"), ListOptions::new()).await.unwrap().events;
        let event = history.iter().find(|e| e.kind == SecurityEventType::LogOutAll).unwrap();
        assert_eq!(event.reason, RevocationReason::PasswordChanged);
        assert_eq!(event.actor, "operator:local");
        assert_eq!(event.session_id.as_deref(), Some(here.session.session_id.as_str()));
        assert_eq!(event.session_count, 2);

        // A session that is not active cannot be kept.
        let err = sessions
            .end_account_sessions("acct", AccountLogOut::all_but(RevocationReason::FactorChanged, &phone.session.session_id))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound), "{err:?}");
        // A security reset ends the hidden kinds too.
        let reset = sessions.end_account_sessions("acct", AccountLogOut::all(RevocationReason::SecurityReset)).await.unwrap();
        assert!(reset.includes_hidden_kinds);
        assert!(sessions.validate(&cli.token).await.unwrap().is_none());
        assert!(sessions.validate(&here.token).await.unwrap().is_none());
    }
}

e2e! {
    async fn disabling_ends_every_session_hidden_kinds_included_and_refuses_sign_in_until_enabled(app) {
        let connection = app.connect_with_token(None).await;
        let sessions = connection.sessions();
        let eligibility = connection.eligibility();
        let browser = sessions.register(Registration::chatgpt_browser("acct", "laptop")).await.unwrap();
        let cli = sessions.register(Registration::codex_cli("acct", "terminal")).await.unwrap();

        let (account, revocation) = eligibility.disable_account("acct").await.unwrap();
        assert!(account.disabled_at.is_some());
        let revocation = revocation.unwrap();
        assert_eq!(revocation.reason, RevocationReason::AccountDisabled);
        assert!(revocation.includes_hidden_kinds);
        assert!(sessions.validate(&browser.token).await.unwrap().is_none());
        assert!(sessions.validate(&cli.token).await.unwrap().is_none());
        // Disabling again changes nothing.
        assert!(eligibility.disable_account("acct").await.unwrap().1.is_none());

        let refused = sessions.register(Registration::chatgpt_browser("acct", "laptop")).await.unwrap_err();
        assert!(matches!(refused, Error::AccountDisabled), "{refused:?}");
        let refused = sessions.register(Registration::codex_cli("acct", "terminal")).await.unwrap_err();
        assert!(matches!(refused, Error::AccountDisabled), "{refused:?}");
        // Owner-facing calls made with its tokens are refused with the reason.
        let err = sessions.list_rows(Owner::token(&browser.token), ListOptions::new()).await.unwrap_err();
        assert!(matches!(err, Error::AccountDisabled), "{err:?}");
        let checked = eligibility.check(Owner::account("acct")).await.unwrap();
        assert!(!checked.eligible);

        eligibility.enable_account("acct").await.unwrap();
        assert!(sessions.validate(&browser.token).await.unwrap().is_none(), "ended sessions stay ended");
        let again = sessions.register(Registration::chatgpt_browser("acct", "laptop")).await.unwrap();
        assert!(sessions.validate(&again.token).await.unwrap().is_some());
        let history = sessions.list_security_events(Owner::account("acct"), ListOptions::new()).await.unwrap().events;
        assert!(history.iter().any(|e| e.kind == SecurityEventType::AccountDisabled));
        assert!(history.iter().any(|e| e.kind == SecurityEventType::AccountEnabled));
    }
}

e2e! {
    async fn deleting_leaves_no_row_of_the_account_while_a_product_cache_drops_its_sessions(app) {
        let connection = app.connect_with_token(None).await;
        let sessions = connection.sessions();
        let cache = ValidationCache::builder(connection.clone()).start().await;
        tokio::time::timeout(Duration::from_secs(10), cache.wait_live()).await.unwrap();
        let (mut tokens, mut ids) = (Vec::new(), Vec::new());
        for device in ["d1", "d2", "d3"] {
            let registered = sessions
                .register(Registration::chatgpt_browser("gone", device).request_id(format!("sign-in-{device}")))
                .await
                .unwrap();
            tokens.push(registered.token);
            ids.push(registered.session.session_id);
        }
        let cli = sessions.register(Registration::codex_cli("gone", "terminal")).await.unwrap();
        tokens.push(cli.token);
        ids.push(cli.session.session_id);
        app.trust("gone", "d1").await;
        let kept = sessions.register(Registration::chatgpt_browser("stays", "d1")).await.unwrap();
        for token in &tokens {
            assert!(cache.validate(token).await.unwrap().is_some());
        }

        let deleted = connection.eligibility().delete_account("gone").await.unwrap();
        assert!(deleted.existed);
        assert_eq!(deleted.sessions_erased, 4);
        assert_eq!(deleted.trusted_devices_erased, 1);
        assert!(deleted.revocation_id.is_some());
        for (table, count) in rows_of(app.database_url(), "gone", &ids).await {
            assert_eq!(count, 0, "{table} still holds rows of the deleted account");
        }
        for token in &tokens {
            assert!(sessions.validate(token).await.unwrap().is_none());
        }
        tokio::time::timeout(Duration::from_secs(10), async {
            for token in &tokens {
                while cache.validate(token).await.unwrap().is_some() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        })
        .await
        .unwrap();
        // Another account is untouched; deleting again finds nothing.
        assert!(sessions.validate(&kept.token).await.unwrap().is_some());
        assert!(!connection.eligibility().delete_account("gone").await.unwrap().existed);
        // A later registration with the same id starts from nothing.
        let fresh = sessions.register(Registration::chatgpt_browser("gone", "d1")).await.unwrap();
        assert!(sessions.validate(&fresh.token).await.unwrap().is_some());
        let rows = sessions.list_all_rows(Owner::account("gone"), None).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert!(!rows[0].trusted);
    }
}

e2e! {
    async fn the_pruner_leaves_a_deletion_in_progress_to_its_call_and_finishes_an_interrupted_one(app) {
        use active_sessions_server::clock::Clock as _;
        let connection = app.connect_with_token(None).await;
        let sessions = connection.sessions();
        let mut ids = Vec::new();
        for device in ["d1", "d2"] {
            let registered = sessions.register(Registration::chatgpt_browser("halfway", device)).await.unwrap();
            ids.push(registered.session.session_id);
        }
        // A deletion that has just begun: the account is marked, nothing is erased yet.
        let db = Database::connect(app.database_url()).await.unwrap();
        let began = app.clock.now().as_micros();
        db.execute_raw(Statement::from_string(
            db.get_database_backend(),
            format!("UPDATE accounts SET deleted_at = {began} WHERE account_id = 'halfway'"),
        ))
        .await
        .unwrap();
        db.close().await.ok();
        let pruner = app.services().pruner().clone();

        // The call making it erases and counts every row; the pruner does not race it.
        assert_eq!(pruner.prune_once().await.unwrap().deletions_finished, 0);
        let left: Vec<(&str, i64)> = rows_of(app.database_url(), "halfway", &ids).await;
        assert!(left.contains(&("sessions", 2)), "{left:?}");

        // Past the grace, the deletion counts as interrupted and the pruner finishes it.
        app.clock.advance(active_sessions_server::service::sessions::DELETION_GRACE + Duration::from_secs(1));
        assert_eq!(pruner.prune_once().await.unwrap().deletions_finished, 1);
        for (table, count) in rows_of(app.database_url(), "halfway", &ids).await {
            assert_eq!(count, 0, "{table} still holds rows of the deleted account");
        }
    }
}
