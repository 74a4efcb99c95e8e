//! A write whose client deadline leaves no time to commit is rolled back, not committed after
//! the client gave up: every log-out made with a 1 ms deadline ends DEADLINE_EXCEEDED (or
//! CANCELLED, tonic's code when its own timer ends the call) and changes nothing, while the same
//! log-out with time to spare commits.

use std::time::Duration;

use active_sessions_e2e::{SignIn, by_account, e2e, pb};
use tonic::Code;

const CALLS: usize = 40;

fn revoke_all(account: &str, timeout: Duration) -> tonic::Request<pb::RevokeAllSessionsRequest> {
    let mut request = tonic::Request::new(pb::RevokeAllSessionsRequest {
        subject: Some(by_account(account)),
        validate_only: false,
        remove_trusted_devices: false,
        ..Default::default()
    });
    request.set_timeout(timeout);
    request
}

e2e! {
    async fn a_write_past_its_client_deadline_is_rolled_back_not_committed(app) {
        let mut tokens = Vec::new();
        for i in 0..CALLS {
            tokens.push(app.sign_in(SignIn::browser(&format!("acct-{i}"), "dev")).await.1);
        }
        let mut sessions = app.sessions();
        let mut answered_ok = Vec::new();
        for i in 0..CALLS {
            match sessions.revoke_all_sessions(revoke_all(&format!("acct-{i}"), Duration::from_millis(1))).await {
                Ok(_) => answered_ok.push(i),
                Err(status) => assert!(
                    matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled | Code::Unknown),
                    "{status:?}"
                ),
            }
        }
        // A write answered with an error changed nothing, and none had time to commit.
        for (i, token) in tokens.iter().enumerate() {
            assert_eq!(app.is_valid(token).await, !answered_ok.contains(&i), "acct-{i}");
        }
        assert!(answered_ok.is_empty(), "{} of {CALLS} committed with a 1 ms deadline", answered_ok.len());
        // With time to spare the same log-out commits.
        sessions.revoke_all_sessions(revoke_all("acct-0", Duration::from_secs(10))).await.unwrap();
        assert!(!app.is_valid(&tokens[0]).await);
    }
}
