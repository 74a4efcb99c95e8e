//! The same row logged out by many callers at once, or racing the heartbeat flush: it is
//! revoked once and no call fails.

use super::{PRODUCTS, join, reason};
use active_sessions_e2e::{SignIn, by_account, by_token, e2e, pb, revoke_device_request};
use pb::{
    Product, RevokeOutcome, RevokeSessionRequest, SecurityEventType, revoke_session_request::Target,
};

e2e! {
    async fn concurrent_log_outs_of_the_same_row_revoke_it_once(app) {
        const ACCOUNT: &str = "acct_row";
        let (_, owner) = app.sign_in(SignIn::browser(ACCOUNT, "mine")).await;
        let (laptop_chatgpt, laptop_chatgpt_token) = app.sign_in(SignIn::browser(ACCOUNT, "laptop")).await;
        let (laptop_api, laptop_api_token) =
            app.sign_in(SignIn::browser(ACCOUNT, "laptop").product(Product::ApiPlatform)).await;
        let (tablet, tablet_token) = app.sign_in(SignIn::browser(ACCOUNT, "tablet").product(Product::Codex)).await;

        // Ten callers log out the laptop row (operators and the owner, interleaved), then ten log
        // out the tablet's one session by id.
        let targets = [
            Target::DeviceId("laptop".into()),
            Target::SessionId(tablet.session_id.clone()),
        ];
        let mut expected_ids = [
            vec![laptop_chatgpt.session_id.clone(), laptop_api.session_id.clone()],
            vec![tablet.session_id.clone()],
        ];
        for (target, expected) in targets.into_iter().zip(expected_ids.iter_mut()) {
            let handles: Vec<_> = (0..10)
                .map(|i| {
                    let mut client = app.sessions();
                    let subject = if i % 2 == 0 { by_account(ACCOUNT) } else { by_token(&owner) };
                    let request = RevokeSessionRequest { subject: Some(subject), target: Some(target.clone()), validate_only: false };
                    tokio::spawn(async move { client.revoke_session(request).await.map(tonic::Response::into_inner) })
                })
                .collect();
            let responses: Vec<pb::RevokeSessionResponse> = join(handles)
                .await
                .into_iter()
                .map(|r| r.unwrap_or_else(|status| panic!("a concurrent log-out failed: {status:?}")))
                .collect();
            let logged_out: Vec<_> = responses.iter().filter(|r| r.outcome() == RevokeOutcome::LoggedOut).collect();
            assert_eq!(logged_out.len(), 1, "exactly one call logs the row out: {responses:?}");
            let mut ids = logged_out[0].session_ids.clone();
            ids.sort();
            expected.sort();
            assert_eq!(&ids, expected);
            let revocation = logged_out[0].revocation.as_ref().expect("the log-out records a revocation");
            assert!(revocation.complete);
            for other in responses.iter().filter(|r| r.outcome() != RevokeOutcome::LoggedOut) {
                assert_eq!(other.outcome(), RevokeOutcome::AlreadyLoggedOut);
                assert!(other.revocation.is_none() && other.session_ids.is_empty(), "{other:?}");
            }
        }

        for token in [&laptop_chatgpt_token, &laptop_api_token, &tablet_token] {
            assert!(!app.is_valid(token).await);
        }
        assert!(app.is_valid(&owner).await);
        let rows = app.rows_for_account(ACCOUNT).await;
        assert_eq!(rows.iter().map(|r| r.device_id.as_str()).collect::<Vec<_>>(), ["mine"]);
        let events = app.security_events(ACCOUNT).await;
        let log_outs: Vec<_> = events.iter().filter(|e| e.r#type() == SecurityEventType::LogOut).collect();
        assert_eq!(log_outs.len(), 2, "one LOG_OUT per row or session, however many callers: {log_outs:?}");
        let laptop_event = log_outs.iter().find(|e| e.device_id == "laptop").expect("laptop log-out event");
        assert_eq!(laptop_event.session_count, 2);
        let tablet_event = log_outs.iter().find(|e| e.device_id == "tablet").expect("tablet log-out event");
        assert_eq!((tablet_event.session_count, tablet_event.session_id.as_str()), (1, tablet.session_id.as_str()));
    }
}

e2e! {
    async fn log_outs_racing_the_heartbeat_flush_never_fail(app) {
        // The heartbeat flush writes many session rows in one transaction while rows are being
        // logged out: neither may fail (on PostgreSQL: no deadlock between the two).
        const ACCOUNT: &str = "acct_flush";
        let mut devices: Vec<(String, Vec<String>)> = Vec::new();
        for d in 0..30 {
            let device = format!("dev_{d:02}");
            let mut tokens = Vec::new();
            for product in PRODUCTS {
                tokens.push(app.sign_in(SignIn::browser(ACCOUNT, &device).product(product)).await.1);
            }
            devices.push((device, tokens));
        }
        let mut failures = Vec::new();
        for round in 0..3 {
            // Heartbeats for every session still signed in, waiting in the buffer.
            for (_, tokens) in &devices[round * 10..] {
                for token in tokens {
                    app.sessions()
                        .touch_session(pb::TouchSessionRequest { session_token: token.clone(), ip_address: "81.2.69.142".into() })
                        .await
                        .unwrap();
                }
            }
            let server = app.services().sessions().clone();
            let flush = tokio::spawn(async move { server.flush_activity().await.map_err(|err| err.to_string()) });
            let log_outs: Vec<_> = devices[round * 10..round * 10 + 10]
                .iter()
                .map(|(device, _)| {
                    let mut client = app.sessions();
                    let request = revoke_device_request(by_account(ACCOUNT), device, false);
                    let device = device.clone();
                    tokio::spawn(async move { (device, client.revoke_session(request).await) })
                })
                .collect();
            if let Err(err) = flush.await.expect("task") {
                failures.push(format!("round {round}: flush_activity: {err}"));
            }
            for (device, result) in join(log_outs).await {
                match result {
                    Ok(response) => assert_eq!(response.into_inner().outcome(), RevokeOutcome::LoggedOut, "{device}"),
                    Err(status) => failures.push(format!(
                        "round {round}: RevokeSession {device}: {:?} {:?} (reason {:?})",
                        status.code(),
                        status.message(),
                        reason(&status)
                    )),
                }
            }
        }
        assert!(failures.is_empty(), "calls failed while the flush ran:\n{}", failures.join("\n"));
        for (_, tokens) in &devices {
            for token in tokens {
                assert!(!app.is_valid(token).await);
            }
        }
        assert!(app.rows_for_account(ACCOUNT).await.is_empty());
    }
}
