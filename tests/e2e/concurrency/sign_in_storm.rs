//! A storm of sign-ins: concurrent registrations are committed together (group commit), and
//! each is still answered as if it had been alone: new accounts, one busy account, replays of
//! one request id, and a disabled account (whose refusals roll a batch back) all mixed.

use std::collections::HashSet;

use super::{join, reason, spawn_register};
use active_sessions_client::Registration;
use active_sessions_e2e::{SignIn, e2e, pb};
use pb::SecurityEventType;
use tonic::Code;

e2e! {
    async fn sign_ins_committed_together_are_each_answered_as_if_alone(app) {
        let connection = app.connect_with_token(None).await;
        connection.sessions().register(Registration::chatgpt_browser("acct_storm_disabled", "laptop")).await.unwrap();
        connection.eligibility().disable_account("acct_storm_disabled").await.unwrap();

        let mut sign_ins = Vec::new();
        for i in 0..48 {
            sign_ins.push(SignIn::browser(&format!("acct_storm_{i:02}"), "laptop"));
        }
        for device in 0..8 {
            sign_ins.push(SignIn::browser("acct_storm_busy", &format!("device_{device}")));
        }
        for _ in 0..6 {
            sign_ins.push(SignIn::browser("acct_storm_retry", "phone").request_id("req-storm"));
        }
        for device in 0..4 {
            sign_ins.push(SignIn::browser("acct_storm_disabled", &format!("new_{device}")));
        }
        // Interleave the kinds so that batches mix them.
        let order: Vec<usize> = (0..sign_ins.len()).map(|i| (i * 37) % sign_ins.len()).collect();
        assert_eq!(order.iter().collect::<HashSet<_>>().len(), sign_ins.len());
        let handles: Vec<_> = order.iter().map(|&i| spawn_register(&app, &sign_ins[i])).collect();
        let results = join(handles).await;

        let mut tokens = Vec::new();
        let mut replays = Vec::new();
        for (&i, result) in order.iter().zip(results) {
            let sign_in = &sign_ins[i];
            match result {
                Err(status) => {
                    assert!(sign_in.account_id == "acct_storm_disabled", "{i}: {status:?}");
                    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                    assert_eq!(reason(&status), "ACCOUNT_DISABLED");
                }
                Ok(response) => {
                    assert_ne!(sign_in.account_id, "acct_storm_disabled", "a disabled account signed in");
                    let session = response.session.expect("session");
                    assert_eq!(session.account_id, sign_in.account_id);
                    if sign_in.account_id == "acct_storm_retry" {
                        replays.push((session.session_id, response.session_token.clone(), response.replayed));
                    }
                    tokens.push(response.session_token);
                }
            }
        }
        assert_eq!(tokens.len(), 48 + 8 + 6);
        for token in &tokens {
            assert!(app.is_valid(token).await, "a registered session does not validate");
        }
        // One request id: one session, one original, five replays of the same token.
        assert_eq!(replays.iter().map(|(id, token, _)| (id, token)).collect::<HashSet<_>>().len(), 1);
        assert_eq!(replays.iter().filter(|(_, _, replayed)| !replayed).count(), 1);

        let busy = app.rows_for_account("acct_storm_busy").await;
        assert_eq!(busy.len(), 8, "every device of the busy account is a row");
        let sign_in_events = |events: Vec<pb::SecurityEvent>| {
            events.iter().filter(|e| e.r#type() == SecurityEventType::SignIn).count()
        };
        assert_eq!(sign_in_events(app.security_events("acct_storm_busy").await), 8);
        assert_eq!(sign_in_events(app.security_events("acct_storm_retry").await), 1);
        assert_eq!(sign_in_events(app.security_events("acct_storm_07").await), 1);
        assert_eq!(
            sign_in_events(app.security_events("acct_storm_disabled").await),
            1,
            "the refused sign-ins left no event"
        );
        assert_eq!(app.rows_for_account("acct_storm_disabled").await.len(), 0);
    }
}
