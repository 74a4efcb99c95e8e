//! A log-out of all sessions racing registrations: it covers exactly the sessions before its
//! cut-off, leaves no earlier session active, and concurrent sweeps count each session once.

use super::{PRODUCTS, join, spawn_register};
use active_sessions_e2e::{SignIn, TestApp, by_account, e2e, pb, revoke_all_request};
use pb::{GetRevocationRequest, SecurityEventType};

/// Microseconds since the epoch of a protobuf timestamp (the server's own unit).
fn micros(ts: Option<&prost_types::Timestamp>) -> i64 {
    let ts = ts.expect("timestamp set");
    ts.seconds * 1_000_000 + i64::from(ts.nanos) / 1_000
}

async fn get_revocation(app: &TestApp, account_id: &str, revocation_id: &str) -> pb::Revocation {
    app.sessions()
        .get_revocation(GetRevocationRequest {
            subject: Some(by_account(account_id)),
            revocation_id: revocation_id.into(),
        })
        .await
        .unwrap_or_else(|status| panic!("GetRevocation failed: {status:?}"))
        .into_inner()
        .revocation
        .expect("revocation")
}

e2e! {
    async fn revoke_all_racing_registrations_leaves_no_earlier_session_active(app) {
        const ACCOUNT: &str = "acct_race";
        let mut sessions: Vec<(pb::Session, String)> = Vec::new();
        for i in 0..30 {
            let sign_in = SignIn::browser(ACCOUNT, &format!("before_{i:02}")).product(PRODUCTS[i % 3]);
            sessions.push(app.sign_in(sign_in).await);
        }
        let pre_registered: Vec<String> = sessions.iter().map(|(_, token)| token.clone()).collect();
        // Warm the validation cache, so the log-out must invalidate cached entries too.
        for token in &pre_registered {
            assert!(app.is_valid(token).await);
        }

        let during = |i: usize| SignIn::browser(ACCOUNT, &format!("during_{i:02}")).product(PRODUCTS[i % 3]);
        let mut registrations: Vec<_> = (0..15).map(|i| spawn_register(&app, &during(i))).collect();
        let revoke = {
            let mut client = app.sessions();
            tokio::spawn(async move { client.revoke_all_sessions(revoke_all_request(by_account(ACCOUNT))).await })
        };
        registrations.extend((15..30).map(|i| spawn_register(&app, &during(i))));
        // Validations racing the log-out must not plant a stale "valid" in the cache.
        let validations: Vec<_> = pre_registered
            .iter()
            .map(|token| {
                let mut client = app.sessions();
                let request = pb::ValidateSessionRequest { session_token: token.clone() };
                tokio::spawn(async move { client.validate_session(request).await.map(|_| ()) })
            })
            .collect();

        let revocation = revoke
            .await
            .expect("task")
            .unwrap_or_else(|status| panic!("RevokeAllSessions failed: {status:?}"))
            .into_inner()
            .revocation
            .expect("revocation");
        for result in join(registrations).await {
            let response = result.unwrap_or_else(|status| panic!("a registration failed: {status:?}"));
            sessions.push((response.session.expect("session"), response.session_token));
        }
        for result in join(validations).await {
            result.unwrap_or_else(|status| panic!("a validation failed: {status:?}"));
        }

        let cut_off = micros(revocation.revoked_before.as_ref());
        for (session, token) in &sessions {
            let signed_in = micros(session.signed_in_at.as_ref());
            assert_eq!(
                app.is_valid(token).await,
                signed_in >= cut_off,
                "{} signed in at {signed_in}, cut-off {cut_off}",
                session.device_id
            );
        }
        for token in &pre_registered {
            assert!(!app.is_valid(token).await, "a session from before the log-out still validates");
        }
        let before_cut_off = sessions
            .iter()
            .filter(|(s, _)| micros(s.signed_in_at.as_ref()) < cut_off)
            .count();
        let mut after_cut_off: Vec<(String, String)> = sessions
            .iter()
            .filter(|(s, _)| micros(s.signed_in_at.as_ref()) >= cut_off)
            .map(|(s, _)| (s.device_id.clone(), s.session_id.clone()))
            .collect();
        after_cut_off.sort();

        app.services().sessions().sweep_pending().await.unwrap();
        let progress = get_revocation(&app, ACCOUNT, &revocation.revocation_id).await;
        assert!(progress.complete, "the sweep finished: {progress:?}");
        assert_eq!(
            progress.sessions_revoked,
            i64::try_from(before_cut_off).unwrap(),
            "the sweep marks exactly the sessions signed in before the cut-off"
        );
        // What the log-out counted under the account lock is what it ended: a registration that
        // committed after the log-out must not be signed in before its cut-off.
        let events = app.security_events(ACCOUNT).await;
        let log_out_all: Vec<_> = events
            .iter()
            .filter(|e| e.r#type() == SecurityEventType::LogOutAll)
            .collect();
        assert_eq!(log_out_all.len(), 1);
        assert_eq!(
            log_out_all[0].session_count,
            i64::try_from(before_cut_off).unwrap(),
            "the LOG_OUT_ALL event counts every session signed in before the cut-off"
        );

        let mut listed: Vec<(String, String)> = app
            .rows_for_account(ACCOUNT)
            .await
            .into_iter()
            .flat_map(|row| {
                let device = row.device_id;
                row.sessions.into_iter().map(move |s| (device.clone(), s.session_id))
            })
            .collect();
        listed.sort();
        assert_eq!(listed, after_cut_off, "the listing shows exactly the sessions after the cut-off");
    }
}

e2e! {
    async fn log_out_of_all_racing_registrations_covers_exactly_the_sessions_before_its_cut_off(app) {
        // The race of the test above, repeated on fresh accounts. What the log-out counted under
        // the account lock (its LOG_OUT_ALL event), what the sweep marked (sessions_revoked,
        // once GetRevocation says complete) and the sessions signed in before the cut-off must be
        // one and the same set: a registration ordered after the log-out by the account lock must
        // not carry a sign-in time before its cut-off.
        let mut mismatches = Vec::new();
        for round in 0..12 {
            let account = format!("acct_round_{round:02}");
            for i in 0..5 {
                app.sign_in(SignIn::browser(&account, &format!("before_{i}"))).await;
            }
            let sign_in = |i: usize| SignIn::browser(&account, &format!("during_{i:02}")).product(PRODUCTS[i % 3]);
            let mut registrations: Vec<_> = (0..10).map(|i| spawn_register(&app, &sign_in(i))).collect();
            let revoke = {
                let mut client = app.sessions();
                let subject = by_account(&account);
                tokio::spawn(async move { client.revoke_all_sessions(revoke_all_request(subject)).await })
            };
            registrations.extend((10..20).map(|i| spawn_register(&app, &sign_in(i))));
            let revocation = revoke.await.expect("task").unwrap().into_inner().revocation.expect("revocation");
            let cut_off = micros(revocation.revoked_before.as_ref());
            let mut before_cut_off = 5;
            for result in join(registrations).await {
                let session = result.unwrap_or_else(|status| panic!("a registration failed: {status:?}")).session.expect("session");
                if micros(session.signed_in_at.as_ref()) < cut_off {
                    before_cut_off += 1;
                }
            }
            app.services().sessions().sweep_pending().await.unwrap();
            let progress = get_revocation(&app, &account, &revocation.revocation_id).await;
            assert!(progress.complete);
            let counted = app.security_events(&account)
                .await
                .into_iter()
                .find(|e| e.r#type() == SecurityEventType::LogOutAll)
                .expect("LOG_OUT_ALL event")
                .session_count;
            if progress.sessions_revoked != before_cut_off || counted != before_cut_off {
                mismatches.push(format!(
                    "{account}: {before_cut_off} sessions signed in before the cut-off, \
                     {} marked by the sweep, {counted} counted by the log-out",
                    progress.sessions_revoked
                ));
            }
        }
        assert!(mismatches.is_empty(), "log-outs of all sessions that did not cover their cut-off:\n{}", mismatches.join("\n"));
    }
}

e2e! {
    async fn concurrent_sweeps_of_one_log_out_of_all_count_each_session_once(app) {
        // Several replicas (here: several callers of the sweep beside the background sweeper,
        // started a little apart so that they overlap) may pick up the same unfinished log-out
        // of all sessions; each session is marked, and counted, once.
        const ACCOUNT: &str = "acct_sweep";
        const SESSIONS: usize = 300;
        for chunk in (0..SESSIONS).collect::<Vec<_>>().chunks(50) {
            let handles: Vec<_> = chunk
                .iter()
                .map(|i| spawn_register(&app, &SignIn::browser(ACCOUNT, &format!("dev_{i:03}"))))
                .collect();
            for result in join(handles).await {
                result.unwrap_or_else(|status| panic!("registration failed: {status:?}"));
            }
        }
        let revocation = app
            .sessions()
            .revoke_all_sessions(revoke_all_request(by_account(ACCOUNT)))
            .await
            .unwrap()
            .into_inner()
            .revocation
            .unwrap();
        let sweeps: Vec<_> = (0..6_u64)
            .map(|k| {
                let sessions = app.services().sessions().clone();
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_micros(500 * k)).await;
                    sessions.sweep_pending().await.map_err(|err| err.to_string())
                })
            })
            .collect();
        let marked: Vec<u64> = join(sweeps)
            .await
            .into_iter()
            .map(|r| r.unwrap_or_else(|err| panic!("a sweep failed: {err}")))
            .collect();
        let progress = get_revocation(&app, ACCOUNT, &revocation.revocation_id).await;
        assert!(progress.complete);
        assert_eq!(
            progress.sessions_revoked,
            i64::try_from(SESSIONS).unwrap(),
            "each session is counted once (the sweeps here reported marking {marked:?})"
        );
        assert!(marked.iter().sum::<u64>() <= SESSIONS as u64, "sessions marked twice: {marked:?}");
        assert!(app.rows_for_account(ACCOUNT).await.is_empty());
    }
}
