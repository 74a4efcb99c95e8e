//! Idempotent registration under concurrent retries: duplicates of one registration, or a reused
//! request id with another payload, create exactly one session.

use super::{join, spawn_register};
use active_sessions_e2e::{SignIn, assert_status, e2e, pb};
use pb::SecurityEventType;
use tonic::{Code, Status};

fn count_events(events: &[pb::SecurityEvent], kind: SecurityEventType) -> usize {
    events.iter().filter(|e| e.r#type() == kind).count()
}

e2e! {
    async fn concurrent_duplicate_registrations_create_exactly_one_session(app) {
        const ACCOUNT: &str = "acct_dup";
        // Round 0 is the account's very first sign-in (the account row is created by the race);
        // round 1 races on an account that already exists.
        let mut winners = Vec::new();
        for (round, request_id) in ["req-dup-first", "req-dup-second"].into_iter().enumerate() {
            let sign_in = SignIn::browser(ACCOUNT, &format!("laptop_{round}")).request_id(request_id);
            let handles: Vec<_> = (0..20).map(|_| spawn_register(&app, &sign_in)).collect();
            let responses: Vec<pb::RegisterSessionResponse> = join(handles)
                .await
                .into_iter()
                .map(|r| r.unwrap_or_else(|status| panic!("duplicate registration failed: {status:?}")))
                .collect();
            let session_id = responses[0].session.as_ref().expect("session").session_id.clone();
            let token = responses[0].session_token.clone();
            for response in &responses {
                assert_eq!(response.session.as_ref().expect("session").session_id, session_id, "round {round}");
                assert_eq!(response.session_token, token, "round {round}: a replay returned another token");
            }
            let originals = responses.iter().filter(|r| !r.replayed).count();
            assert_eq!(originals, 1, "round {round}: exactly one call creates, the rest replay");
            assert!(app.is_valid(&token).await);
            winners.push(session_id);
        }

        let rows = app.rows_for_account(ACCOUNT).await;
        let mut listed: Vec<String> = rows
            .iter()
            .flat_map(|row| row.sessions.iter().map(|s| s.session_id.clone()))
            .collect();
        listed.sort();
        winners.sort();
        assert_eq!(listed, winners, "one session per request id, nothing else");
        assert_eq!(rows.len(), 2);
        let events = app.security_events(ACCOUNT).await;
        assert_eq!(count_events(&events, SecurityEventType::SignIn), 2, "one sign-in event per request id");
    }
}

e2e! {
    async fn concurrent_registrations_reusing_a_request_id_with_another_payload_create_exactly_one_session(app) {
        // Three payloads under one request id: the same account on two devices, and another
        // account (request ids are one namespace, so that is a different payload too).
        let groups = [
            SignIn::browser("acct_reuse", "laptop").request_id("req-shared"),
            SignIn::browser("acct_reuse", "phone").request_id("req-shared"),
            SignIn::browser("acct_reuse_other", "laptop").request_id("req-shared"),
        ];
        let handles: Vec<_> = (0..21).map(|i| spawn_register(&app, &groups[i % 3])).collect();
        let results: Vec<(usize, Result<pb::RegisterSessionResponse, Status>)> =
            join(handles).await.into_iter().enumerate().map(|(i, r)| (i % 3, r)).collect();

        let created: Vec<&(usize, Result<pb::RegisterSessionResponse, Status>)> = results
            .iter()
            .filter(|(_, r)| r.as_ref().is_ok_and(|ok| !ok.replayed))
            .collect();
        assert_eq!(created.len(), 1, "exactly one call creates a session: {results:?}");
        let (winner, Ok(original)) = created[0] else { unreachable!() };
        let session_id = original.session.as_ref().expect("session").session_id.clone();
        for (group, result) in &results {
            match result {
                Ok(response) => {
                    assert_eq!(group, winner, "a call with another payload succeeded: {response:?}");
                    assert_eq!(response.session.as_ref().expect("session").session_id, session_id);
                    assert_eq!(response.session_token, original.session_token);
                }
                Err(status) => {
                    assert_ne!(group, winner, "a call with the winning payload was refused: {status:?}");
                    assert_status(status, Code::AlreadyExists, Some("REQUEST_ID_REUSED"));
                }
            }
        }
        assert_eq!(results.iter().filter(|(_, r)| r.is_ok()).count(), 7);

        let mut sessions = Vec::new();
        for account in ["acct_reuse", "acct_reuse_other"] {
            for row in app.rows_for_account(account).await {
                sessions.extend(row.sessions.into_iter().map(|s| s.session_id));
            }
        }
        assert_eq!(sessions, [session_id], "exactly one session exists");
        let sign_ins = count_events(&app.security_events("acct_reuse").await, SecurityEventType::SignIn)
            + count_events(&app.security_events("acct_reuse_other").await, SecurityEventType::SignIn);
        assert_eq!(sign_ins, 1);
    }
}
