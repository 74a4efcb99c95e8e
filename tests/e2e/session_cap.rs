//! The per-account session limit (`--max-sessions-per-account`): at the limit a visible sign-in
//! ends the account's oldest active visible session in the same transaction, as a revocation
//! with reason SESSION_LIMIT on the stream and a log-out in the security history; hidden kinds
//! and replayed registrations neither count nor evict.

use std::time::Duration;

use active_sessions_client::{
    ListOptions, Owner, Registration, RevocationReason, RevocationScope, SecurityEventType,
};
use active_sessions_e2e::e2e;

const MINUTE: Duration = Duration::from_secs(60);

e2e! {
    async fn at_the_limit_a_sign_in_ends_the_oldest_session_and_records_it(app) with |config| {
        config.sessions.max_sessions_per_account = 3;
    }, {
        let connection = app.connect_with_token(None).await;
        let sessions = connection.sessions();
        let mut stream = sessions.watch_revocations(None, &[]).await.unwrap();
        assert!(stream.next().await.unwrap().unwrap().events.is_empty(), "caught up");
        let mut tokens = Vec::new();
        for device in ["d1", "d2", "d3"] {
            let registered = sessions.register(Registration::chatgpt_browser("acct", device)).await.unwrap();
            tokens.push((registered.session.session_id, registered.token));
            app.clock.advance(MINUTE);
        }
        // A hidden kind is not on the page: it neither counts nor evicts.
        let cli = sessions.register(Registration::codex_cli("acct", "terminal")).await.unwrap();
        for (_, token) in &tokens {
            assert!(sessions.validate(token).await.unwrap().is_some());
        }

        // The fourth visible sign-in ends the oldest.
        let fourth = Registration::chatgpt_browser("acct", "d4").request_id("sign-in-4");
        let newest = sessions.register(fourth.clone()).await.unwrap();
        assert!(sessions.validate(&tokens[0].1).await.unwrap().is_none(), "the oldest ended");
        for (_, token) in &tokens[1..] {
            assert!(sessions.validate(token).await.unwrap().is_some());
        }
        assert!(sessions.validate(&newest.token).await.unwrap().is_some());
        assert!(sessions.validate(&cli.token).await.unwrap().is_some());
        // A replay of the same registration changes nothing.
        assert!(sessions.register(fourth).await.unwrap().replayed);
        assert!(sessions.validate(&tokens[1].1).await.unwrap().is_some());

        let owner = Owner::account("acct");
        let rows = sessions.list_all_rows(owner.clone(), None).await.unwrap();
        let mut devices: Vec<&str> = rows.iter().map(|row| row.device_id.as_str()).collect();
        devices.sort_unstable();
        assert_eq!(devices, ["d2", "d3", "d4"]);

        // On the stream: one session, the oldest.
        let batch = stream.next().await.unwrap().unwrap();
        assert_eq!(batch.events.len(), 1);
        assert_eq!(batch.events[0].scope, RevocationScope::Session);
        assert_eq!(batch.events[0].session_ids, vec![tokens[0].0.clone()]);
        // In the history: a log-out of that session whose revocation says why.
        let history = sessions.list_security_events(owner.clone(), ListOptions::new()).await.unwrap().events;
        let log_out = history.iter().find(|e| e.kind == SecurityEventType::LogOut).expect("a log-out event");
        assert_eq!(log_out.session_id.as_deref(), Some(tokens[0].0.as_str()));
        assert_eq!(log_out.session_count, 1);
        let revocation = sessions.get_revocation(owner, log_out.revocation_id.as_deref().unwrap()).await.unwrap();
        assert_eq!(revocation.reason, RevocationReason::SessionLimit);
        assert_eq!(revocation.session_ids, vec![tokens[0].0.clone()]);
        // The largest account seen is exported for operators (a process-wide maximum).
        assert!(active_sessions_server::telemetry::metrics::metrics().largest_account_seen() >= 4);
    }
}

e2e! {
    async fn the_limit_counts_only_active_sessions(app) with |config| {
        config.sessions.max_sessions_per_account = 2;
    }, {
        let connection = app.connect_with_token(None).await;
        let sessions = connection.sessions();
        let first = sessions.register(Registration::chatgpt_browser("acct", "d1")).await.unwrap();
        app.clock.advance(MINUTE);
        let second = sessions.register(Registration::chatgpt_browser("acct", "d2")).await.unwrap();
        // Logged out by the owner: no longer counted, so the next sign-in evicts nothing.
        sessions.revoke_row(Owner::account("acct"), "d1", true).await.unwrap();
        app.clock.advance(MINUTE);
        let third = sessions.register(Registration::chatgpt_browser("acct", "d3")).await.unwrap();
        assert!(sessions.validate(&second.token).await.unwrap().is_some());
        assert!(sessions.validate(&third.token).await.unwrap().is_some());
        assert!(sessions.validate(&first.token).await.unwrap().is_none());
        // Another account is not affected by this one's limit.
        let other = sessions.register(Registration::chatgpt_browser("other", "d1")).await.unwrap();
        assert!(sessions.validate(&other.token).await.unwrap().is_some());
        assert!(sessions.validate(&second.token).await.unwrap().is_some());
    }
}
