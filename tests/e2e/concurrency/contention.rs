//! Database contention never reaches a caller: concurrent writes never surface busy errors.

use std::collections::HashMap;

use super::{PRODUCTS, join, reason};
use active_sessions_e2e::{
    SignIn, by_account, by_token, e2e, pb, revoke_all_request, revoke_device_request,
};
use pb::{ListActiveSessionsRequest, Product};
use tokio::task::JoinHandle;
use tonic::{Code, Status};

/// What a call may legitimately answer besides OK: (code, ErrorInfo reason).
type Allowed = &'static [(Code, &'static str)];

/// An OK (or an allowed refusal) is fine; anything else is described.
fn judge<T>(label: String, result: Result<T, Status>, allowed: Allowed) -> Result<(), String> {
    match result {
        Ok(_) => Ok(()),
        Err(status)
            if allowed
                .iter()
                .any(|(code, r)| status.code() == *code && reason(&status) == *r) =>
        {
            Ok(())
        }
        Err(status) => Err(format!(
            "{label}: {:?} {:?} (reason {:?})",
            status.code(),
            status.message(),
            reason(&status)
        )),
    }
}

const NO_REFUSAL: Allowed = &[];
const TOUCH_REFUSALS: Allowed = &[(Code::NotFound, "NOT_FOUND")];
const OWNER_CALL_REFUSALS: Allowed = &[
    (Code::FailedPrecondition, "ACCOUNT_SSO_LINKED"),
    (Code::Unauthenticated, "SESSION_NOT_VALID"),
];

e2e! {
    async fn writes_never_surface_database_busy_errors(app) {
        // Four accounts with five two-product devices each; acct_2 is linked to SSO during the
        // storm, so owner calls on it may be refused, which is the documented answer.
        let accounts = ["acct_0", "acct_1", "acct_2", "acct_3"];
        let mut tokens: HashMap<&str, Vec<(String, String)>> = HashMap::new();
        for account in accounts {
            for device in 0..5 {
                for product in [Product::Chatgpt, Product::Codex] {
                    let (session, token) =
                        app.sign_in(SignIn::browser(account, &format!("dev_{device}")).product(product)).await;
                    tokens.entry(account).or_default().push((session.device_id, token));
                }
            }
        }
        // Heartbeats waiting in the buffer, so that the flushes below write while rows are
        // logged out.
        for (_, token) in tokens.values().flatten() {
            app.sessions()
                .touch_session(pb::TouchSessionRequest { session_token: token.clone(), ip_address: "81.2.69.142".into() })
                .await
                .unwrap();
        }

        let mut calls: Vec<JoinHandle<Result<(), String>>> = Vec::new();
        for round in 0..2_usize {
            for i in 0..100_usize {
                let account = accounts[i % 4];
                let own = &tokens[account];
                let mut sessions = app.sessions();
                let mut eligibility = app.eligibility();
                let label = format!("round {round} call {i}");
                let handle = match i % 10 {
                    0..=2 => {
                        // Registrations: existing accounts, brand-new ones, with and without request id.
                        let sign_in = if i % 20 == 0 {
                            SignIn::browser(&format!("acct_new_{round}_{i}"), "dev").request_id(&format!("req-{round}-{i}"))
                        } else {
                            SignIn::browser(account, &format!("storm_{round}_{i}")).product(PRODUCTS[i % 3])
                        };
                        let request = sign_in.request();
                        tokio::spawn(async move {
                            judge(format!("{label} RegisterSession"), sessions.register_session(request).await, NO_REFUSAL)
                        })
                    }
                    3 | 4 => {
                        let token = own[(i / 10 + round) % own.len()].1.clone();
                        tokio::spawn(async move {
                            let request = pb::TouchSessionRequest { session_token: token, ip_address: "89.160.20.112".into() };
                            judge(format!("{label} TouchSession"), sessions.touch_session(request).await, TOUCH_REFUSALS)
                        })
                    }
                    5 | 6 => {
                        // Log out a row, as the operator or as the owner from another device.
                        let device = format!("dev_{}", (i / 10 + 2 * round) % 5);
                        let subject = if i % 2 == 0 {
                            by_account(account)
                        } else {
                            let (_, token) = own.iter().find(|(d, _)| *d != device).expect("another device");
                            by_token(token)
                        };
                        tokio::spawn(async move {
                            let result = sessions.revoke_session(revoke_device_request(subject, &device, false)).await;
                            judge(format!("{label} RevokeSession {device}"), result, OWNER_CALL_REFUSALS)
                        })
                    }
                    7 => {
                        if i % 20 == 7 {
                            let account = accounts[1 + (i / 20) % 3];
                            tokio::spawn(async move {
                                let result = sessions.revoke_all_sessions(revoke_all_request(by_account(account))).await;
                                judge(format!("{label} RevokeAllSessions {account}"), result, OWNER_CALL_REFUSALS)
                            })
                        } else {
                            tokio::spawn(async move {
                                let request = ListActiveSessionsRequest { subject: Some(by_account(account)), page_size: 3, ..Default::default() };
                                judge(format!("{label} ListActiveSessions"), sessions.list_active_sessions(request).await, OWNER_CALL_REFUSALS)
                            })
                        }
                    }
                    8 => {
                        // The identity system writing account facts at the same time.
                        let target = if i % 40 == 8 { "acct_2".to_owned() } else { format!("acct_sso_{round}_{i}") };
                        tokio::spawn(async move {
                            let request = pb::SetSsoLinkRequest {
                                account_id: target.clone(),
                                protocol: pb::SsoProtocol::Saml as i32,
                                organization_id: "org_acme".into(),
                            };
                            judge(format!("{label} SetSsoLink {target}"), eligibility.set_sso_link(request).await, NO_REFUSAL)?;
                            let request = pb::SetWorkspaceTypeRequest {
                                account_id: target.clone(),
                                workspace_type: pb::WorkspaceType::Managed as i32,
                            };
                            judge(format!("{label} SetWorkspaceType {target}"), eligibility.set_workspace_type(request).await, NO_REFUSAL)
                        })
                    }
                    _ => {
                        // The server's own background writers, run now: heartbeat flush and sweep.
                        let server = app.services().sessions().clone();
                        if i % 20 == 9 {
                            tokio::spawn(async move {
                                server.flush_activity().await.map(|_| ()).map_err(|err| format!("{label} flush_activity: {err}"))
                            })
                        } else {
                            tokio::spawn(async move {
                                server.sweep_pending().await.map(|_| ()).map_err(|err| format!("{label} sweep_pending: {err}"))
                            })
                        }
                    }
                };
                calls.push(handle);
            }
            // More heartbeats in the middle of the storm, for the later flushes to write.
            if round == 0 {
                for (_, token) in tokens.values().flatten().step_by(2) {
                    let mut client = app.sessions();
                    let token = token.clone();
                    calls.push(tokio::spawn(async move {
                        let request = pb::TouchSessionRequest { session_token: token, ip_address: String::new() };
                        judge("heartbeat".into(), client.touch_session(request).await, TOUCH_REFUSALS)
                    }));
                }
            }
        }
        let total = calls.len();
        let failures: Vec<String> = join(calls).await.into_iter().filter_map(Result::err).collect();
        assert!(failures.is_empty(), "{} of {total} calls failed:\n{}", failures.len(), failures.join("\n"));

        // Still consistent afterwards: the stored state answers and the flush is clean.
        app.services().sessions().flush_activity().await.unwrap();
        app.services().sessions().sweep_pending().await.unwrap();
        for account in ["acct_0", "acct_1", "acct_3"] {
            app.rows_for_account(account).await;
        }
    }
}
