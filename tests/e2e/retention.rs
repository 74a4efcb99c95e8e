//! Retention (issue 16): the pruner deletes exactly what is older than each retention on the
//! injected clock, never an active session; a revocation stream resuming from a pruned cursor
//! is told to resynchronise; row counts stay flat under a steady load over simulated months;
//! pruning and sign-ins run side by side without errors.

use std::time::Duration;

use active_sessions_client::{Error, Owner, Registration, RevokeAllOptions, ValidationCache};
use active_sessions_e2e::{TestApp, e2e};
use sea_orm::{ConnectionTrait, Database, Statement};

const DAY: Duration = Duration::from_secs(86_400);

async fn count(app: &TestApp, table: &str) -> i64 {
    let db = Database::connect(app.database_url()).await.unwrap();
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

fn short_retention(config: &mut active_sessions_server::config::Config) {
    config.retention.revoked_session = 30 * DAY;
    config.retention.security_event = 60 * DAY;
    config.retention.revocation_log = 10 * DAY;
    config.retention.interval = 10_000 * DAY;
    config.retention.batch = 2;
    config.sessions.idle_timeout = 200 * DAY;
}

e2e! {
    async fn pruning_removes_exactly_what_is_past_each_retention_and_never_an_active_session(app) with short_retention, {
        let connection = app.connect_with_token(None).await;
        let sessions = connection.sessions();
        let pruner = app.services().pruner().clone();
        let active = sessions
            .register(Registration::chatgpt_browser("acct", "laptop").lifetime(300 * DAY))
            .await
            .unwrap();
        let mut stream = sessions.watch_revocations(None, &[]).await.unwrap();
        let cursor = stream.next().await.unwrap().unwrap().cursor;
        for device in ["old1", "old2", "old3"] {
            sessions.register(Registration::chatgpt_browser("acct", device)).await.unwrap();
            sessions.revoke_row(Owner::account("acct"), device, true).await.unwrap();
        }
        assert_eq!(count(&app, "sessions").await, 4);
        assert_eq!(count(&app, "revocations").await, 3);
        let events = count(&app, "security_events").await;

        // Inside every retention: nothing goes.
        app.clock.advance(9 * DAY);
        assert_eq!(pruner.prune_once().await.unwrap().total(), 0);
        // Past the revocation log's 10 days: the log goes, and a stream resuming before it is
        // told to resynchronise.
        app.clock.advance(2 * DAY);
        let report = pruner.prune_once().await.unwrap();
        assert_eq!((report.sessions, report.security_events, report.revocations), (0, 0, 3));
        assert_eq!(count(&app, "revocations").await, 0);
        let refused = sessions.watch_revocations(Some(&cursor), &[]).await.unwrap_err();
        assert!(matches!(refused, Error::CursorExpired), "{refused:?}");
        // The revoked sessions' 30 days: the revoked rows go (the sign-ins' own lifetime is 30
        // days too, so the expired-rows pass finds nothing more), never the active session.
        app.clock.advance(18 * DAY);
        assert_eq!(pruner.prune_once().await.unwrap().sessions, 0);
        app.clock.advance(2 * DAY);
        assert_eq!(pruner.prune_once().await.unwrap().sessions, 3);
        assert_eq!(count(&app, "sessions").await, 1);
        assert!(sessions.validate(&active.token).await.unwrap().is_some());
        // Security events: 60 days.
        assert_eq!(count(&app, "security_events").await, events);
        app.clock.advance(30 * DAY);
        let later = sessions.register(Registration::chatgpt_browser("acct", "new")).await.unwrap();
        assert_eq!(pruner.preview().await.unwrap().security_events, events as u64);
        assert_eq!(pruner.prune_once().await.unwrap().security_events, events as u64);
        assert_eq!(count(&app, "security_events").await, 1, "only the newest sign-in's event");
        assert!(sessions.validate(&active.token).await.unwrap().is_some());
        assert!(sessions.validate(&later.token).await.unwrap().is_some());
    }
}

fn months_of_load(config: &mut active_sessions_server::config::Config) {
    config.retention.revoked_session = 7 * DAY;
    config.retention.security_event = 30 * DAY;
    config.retention.revocation_log = 3 * DAY;
    config.retention.interval = 10_000 * DAY;
    config.sessions.default_lifetime = 10 * DAY;
}

e2e! {
    async fn row_counts_stay_flat_under_a_steady_sign_in_and_log_out_load_over_simulated_months(app) with months_of_load, {
        let connection = app.connect_with_token(None).await;
        let sessions = connection.sessions();
        let services = app.services().clone();
        let tables = ["sessions", "security_events", "revocations", "idempotency_records"];
        let mut samples: Vec<Vec<i64>> = Vec::new();
        for day in 0..120 {
            for account in ["a1", "a2", "a3"] {
                for device in ["web", "phone"] {
                    sessions.register(Registration::chatgpt_browser(account, device)).await.unwrap();
                }
                sessions.revoke_row(Owner::account(account), "phone", true).await.unwrap();
            }
            if day % 2 == 0 {
                sessions.revoke_all(Owner::account("a1"), RevokeAllOptions::confirmed()).await.unwrap();
            }
            services.sessions().sweep_pending().await.unwrap();
            app.clock.advance(DAY);
            services.pruner().prune_once().await.unwrap();
            if day >= 60 && day % 10 == 0 {
                let mut counts = Vec::new();
                for table in tables {
                    counts.push(count(&app, table).await);
                }
                samples.push(counts);
            }
        }
        assert!(samples[0].iter().all(|n| *n > 0), "{samples:?}");
        for sample in &samples {
            assert_eq!(sample, &samples[0], "row counts grew: {samples:?} ({tables:?})");
        }
    }
}

e2e! {
    async fn the_pruner_and_sign_ins_run_side_by_side_without_errors(app) with months_of_load, {
        let connection = app.connect_with_token(None).await;
        let sessions = connection.sessions();
        for i in 0..40 {
            sessions.register(Registration::chatgpt_browser("acct", format!("d{i}"))).await.unwrap();
            sessions.revoke_row(Owner::account("acct"), &format!("d{i}"), true).await.unwrap();
        }
        app.clock.advance(20 * DAY);
        let pruner = app.services().pruner().clone();
        let pruning = tokio::spawn(async move {
            let mut deleted = 0;
            for _ in 0..20 {
                deleted += pruner.prune_once().await.unwrap().total();
            }
            deleted
        });
        for i in 0..40 {
            let signed_in = sessions.register(Registration::chatgpt_browser("acct", format!("n{i}"))).await.unwrap();
            assert!(sessions.validate(&signed_in.token).await.unwrap().is_some());
            if i % 2 == 0 {
                sessions.revoke_row(Owner::account("acct"), &format!("n{i}"), true).await.unwrap();
            }
        }
        assert!(pruning.await.unwrap() >= 40);
        assert_eq!(count(&app, "sessions").await, 40, "the new sign-ins and their recent log-outs stay");
    }
}

e2e! {
    async fn a_product_cache_whose_cursor_was_pruned_while_it_was_away_resynchronises(app) with short_retention, {
        let connection = app.connect_with_token(None).await;
        let cache = ValidationCache::builder(connection.clone()).start().await;
        tokio::time::timeout(Duration::from_secs(10), cache.wait_live()).await.unwrap();
        let signed_in = connection
            .sessions()
            .register(Registration::chatgpt_browser("acct", "laptop").lifetime(300 * DAY))
            .await
            .unwrap();
        assert!(cache.validate(&signed_in.token).await.unwrap().is_some());
        assert_eq!(cache.len(), 1, "cached before the server goes away");

        // The cache's server goes away. Meanwhile another replica logs the session out and the
        // log is pruned past the cache's cursor, so that revocation can never be replayed.
        app.shut_down().await;
        tokio::time::timeout(Duration::from_secs(10), cache.wait_not_live()).await.unwrap();
        let other = app.replica().await;
        let other_connection = other.connect_with_token(None).await;
        other_connection.sessions().revoke_row(Owner::account("acct"), "laptop", true).await.unwrap();
        app.clock.advance(11 * DAY);
        // Whichever round prunes it (this one, or the replica's own first round, which may run
        // after the clock moved), the revocation leaves the log.
        // A round already in progress keeps its deletion, so wait (bounded) for whichever ends.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        other.services().pruner().prune_once().await.unwrap();
        while count(&app, "revocations").await != 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            other.services().pruner().prune_once().await.unwrap();
        }
        assert_eq!(count(&app, "revocations").await, 0, "the log still holds the revocation");

        // Back on the same address: resuming from the pruned cursor is refused, so the cache
        // forgets what it cannot vet and follows the log from its end.
        app.resume().await;
        tokio::time::timeout(Duration::from_secs(10), cache.wait_live()).await.unwrap();
        assert!(
            cache.validate(&signed_in.token).await.unwrap().is_none(),
            "a session logged out while the cache was away is still valid from memory"
        );
        let last_error = cache.last_stream_error().unwrap_or_default();
        assert!(last_error.contains("cursor"), "{last_error}");
        other.stop().await;
    }
}
