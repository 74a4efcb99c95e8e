//! Correctness under concurrency: real parallel calls against both databases.
//!
//! Every test fires many gRPC calls at once (spawned tasks over clones of the client, on the
//! harness's multi-thread runtime) and then checks what the race may and may not leave behind:
//! idempotent registrations create one session, a log-out of all sessions splits sessions
//! cleanly at its cut-off, paging is stable while rows come and go, a row is logged out once,
//! and database contention never reaches a caller.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use active_sessions_e2e::{SignIn, TestApp, assert_status, by_account, by_token, e2e, pb};
use futures::future::join_all;
use pb::{
    GetRevocationRequest, ListActiveSessionsRequest, ListSecurityEventsRequest, Product,
    RevokeAllSessionsRequest, RevokeOutcome, RevokeSessionRequest, SecurityEventType,
    revoke_session_request::Target,
};
use tokio::task::JoinHandle;
use tonic::{Code, Status};
use tonic_types::StatusExt;

const PRODUCTS: [Product; 3] = [Product::Chatgpt, Product::Codex, Product::ApiPlatform];

/// Microseconds since the epoch of a protobuf timestamp (the server's own unit).
fn micros(ts: Option<&prost_types::Timestamp>) -> i64 {
    let ts = ts.expect("timestamp set");
    ts.seconds * 1_000_000 + i64::from(ts.nanos) / 1_000
}

/// Awaits every task, failing the test if one panicked.
async fn join<T: Send + 'static>(handles: Vec<JoinHandle<T>>) -> Vec<T> {
    join_all(handles)
        .await
        .into_iter()
        .map(|joined| joined.expect("task panicked"))
        .collect()
}

/// The `ErrorInfo` reason of a status, or "" without one.
fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

fn revoke_device(subject: pb::Subject, device: &str) -> RevokeSessionRequest {
    RevokeSessionRequest {
        subject: Some(subject),
        target: Some(Target::DeviceId(device.into())),
        validate_only: false,
    }
}

fn revoke_all(subject: pb::Subject) -> RevokeAllSessionsRequest {
    RevokeAllSessionsRequest {
        subject: Some(subject),
        validate_only: false,
        remove_trusted_devices: false,
        ..Default::default()
    }
}

/// Spawns one registration on its own clone of the client.
fn spawn_register(
    app: &TestApp,
    sign_in: &SignIn,
) -> JoinHandle<Result<pb::RegisterSessionResponse, Status>> {
    let mut client = app.sessions();
    let request = sign_in.request();
    tokio::spawn(async move {
        client
            .register_session(request)
            .await
            .map(tonic::Response::into_inner)
    })
}

/// The account's whole security history (operator view), newest first.
async fn security_events(app: &TestApp, account_id: &str) -> Vec<pb::SecurityEvent> {
    let mut events = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = app
            .sessions()
            .list_security_events(ListSecurityEventsRequest {
                subject: Some(by_account(account_id)),
                page_size: 100,
                page_token,
            })
            .await
            .unwrap_or_else(|status| panic!("history failed: {status:?}"))
            .into_inner();
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            return events;
        }
        page_token = page.next_page_token;
    }
}

fn count_events(events: &[pb::SecurityEvent], kind: SecurityEventType) -> usize {
    events.iter().filter(|e| e.r#type() == kind).count()
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

// --- 1. Idempotent registration under concurrent retries -------------------------------------

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
        let events = security_events(&app, ACCOUNT).await;
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
        let sign_ins = count_events(&security_events(&app, "acct_reuse").await, SecurityEventType::SignIn)
            + count_events(&security_events(&app, "acct_reuse_other").await, SecurityEventType::SignIn);
        assert_eq!(sign_ins, 1);
    }
}

// --- 2. Log out of all sessions racing registrations -----------------------------------------

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
            tokio::spawn(async move { client.revoke_all_sessions(revoke_all(by_account(ACCOUNT))).await })
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
        let events = security_events(&app, ACCOUNT).await;
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
                tokio::spawn(async move { client.revoke_all_sessions(revoke_all(subject)).await })
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
            let counted = security_events(&app, &account)
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
            .revoke_all_sessions(revoke_all(by_account(ACCOUNT)))
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

// --- 3. Paging while rows are added and removed ----------------------------------------------

const ORIGINAL_DEVICES: usize = 60;
const PAGE_SIZE: i32 = 7;
const PAGING_ACCOUNT: &str = "acct_paging";

/// Signs in on 60 devices (`orig_00`..`orig_59`, oldest first); every fifth signs in a second
/// time later, which moves its row up, so the row order is not the device-id order.
async fn register_original_devices(app: &TestApp) -> Vec<String> {
    let originals: Vec<String> = (0..ORIGINAL_DEVICES)
        .map(|i| format!("orig_{i:02}"))
        .collect();
    for (i, device) in originals.iter().enumerate() {
        app.sign_in(SignIn::browser(PAGING_ACCOUNT, device).product(PRODUCTS[i % 3]))
            .await;
    }
    for device in originals.iter().step_by(5) {
        app.sign_in(
            SignIn::browser(PAGING_ACCOUNT, device)
                .product(Product::ApiPlatform)
                .ip("89.160.20.112"),
        )
        .await;
    }
    originals
}

/// One page of the operator listing.
async fn rows_page(app: &TestApp, page_token: &str) -> pb::ListActiveSessionsResponse {
    app.sessions()
        .list_active_sessions(ListActiveSessionsRequest {
            subject: Some(by_account(PAGING_ACCOUNT)),
            page_size: PAGE_SIZE,
            page_token: page_token.into(),
            product: 0,
        })
        .await
        .unwrap_or_else(|status| panic!("listing failed: {status:?}"))
        .into_inner()
}

/// Every device listed twice, and every device of `expected` never listed.
fn duplicates_and_gaps<'a>(
    seen: &[String],
    expected: impl Iterator<Item = &'a String>,
) -> (Vec<String>, Vec<String>) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for device in seen {
        *counts.entry(device.as_str()).or_default() += 1;
    }
    let mut duplicates: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(d, _)| (*d).to_owned())
        .collect();
    duplicates.sort();
    let gaps = expected
        .filter(|device| !counts.contains_key(device.as_str()))
        .cloned()
        .collect();
    (duplicates, gaps)
}

/// Registers 60 devices, then pages through them (operator view, 7 rows a page) while another
/// task keeps registering new devices and logging some out: the new ones, and with
/// `revoke_originals` also some of the original 60. Before each next page the pager waits for
/// the churn to have made progress, so every page boundary sees changes.
async fn page_through_during_churn(app: &TestApp, revoke_originals: bool) {
    const ACCOUNT: &str = PAGING_ACCOUNT;
    let originals = register_original_devices(app).await;

    let done = Arc::new(AtomicBool::new(false));
    let (progress_tx, mut progress_rx) = tokio::sync::watch::channel(0_usize);
    let churn = {
        let done = done.clone();
        let app_sessions = app.sessions();
        let originals = originals.clone();
        tokio::spawn(async move {
            let mut client = app_sessions;
            let mut revoked_originals = HashSet::new();
            let mut step = 0_usize;
            while !done.load(Ordering::SeqCst) && step < 1_000 {
                let device = format!("new_{step:03}");
                client
                    .register_session(
                        SignIn::browser(ACCOUNT, &device)
                            .product(PRODUCTS[step % 3])
                            .request(),
                    )
                    .await
                    .unwrap_or_else(|status| panic!("churn registration failed: {status:?}"));
                if step % 2 == 1 {
                    let previous = format!("new_{:03}", step - 1);
                    let outcome = client
                        .revoke_session(revoke_device(by_account(ACCOUNT), &previous))
                        .await
                        .unwrap_or_else(|status| panic!("churn log-out failed: {status:?}"))
                        .into_inner()
                        .outcome();
                    assert_eq!(outcome, RevokeOutcome::LoggedOut);
                }
                if revoke_originals && step.is_multiple_of(3) {
                    // Spread over the whole list: some already paged past, some still ahead.
                    let device = &originals[(step * 7 + 3) % ORIGINAL_DEVICES];
                    revoked_originals.insert(device.clone());
                    client
                        .revoke_session(revoke_device(by_account(ACCOUNT), device))
                        .await
                        .unwrap_or_else(|status| {
                            panic!("churn log-out of {device} failed: {status:?}")
                        });
                }
                step += 1;
                progress_tx.send_replace(step);
            }
            (step, revoked_originals)
        })
    };

    let mut seen: Vec<String> = Vec::new();
    let mut pages = 0;
    let mut churn_stopped_early = false;
    let mut page_token = String::new();
    loop {
        let page = rows_page(app, &page_token).await;
        pages += 1;
        assert!(page.rows.len() <= PAGE_SIZE as usize);
        seen.extend(page.rows.into_iter().map(|row| row.device_id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
        let target = *progress_rx.borrow() + 2;
        if progress_rx.wait_for(|step| *step >= target).await.is_err() {
            churn_stopped_early = true; // the join below reports a panic of the churn task
            break;
        }
    }
    done.store(true, Ordering::SeqCst);
    let (steps, revoked_originals) = churn.await.expect("churn task");
    assert!(
        !churn_stopped_early,
        "the churn stopped before paging finished ({steps} steps)"
    );

    let (duplicates, gaps) = duplicates_and_gaps(
        &seen,
        originals
            .iter()
            .filter(|device| !revoked_originals.contains(*device)),
    );
    assert!(
        duplicates.is_empty(),
        "rows listed twice: {duplicates:?} (pages: {seen:?})"
    );
    assert!(gaps.is_empty(), "rows skipped: {gaps:?} (pages: {seen:?})");
    assert!(
        pages >= ORIGINAL_DEVICES / PAGE_SIZE as usize,
        "only {pages} pages"
    );
    assert!(
        steps >= 2 * (pages - 1),
        "the churn ran during paging ({steps} steps, {pages} pages)"
    );
    if revoke_originals {
        assert!(!revoked_originals.is_empty());
        // Once the dust settles the logged-out originals are gone for good.
        let rows = app.rows_for_account(ACCOUNT).await;
        assert!(
            rows.iter()
                .all(|row| !revoked_originals.contains(&row.device_id))
        );
    }
}

e2e! {
    async fn pagination_during_concurrent_inserts_and_revokes_has_no_duplicates_or_gaps(app) {
        page_through_during_churn(&app, false).await;
    }
}

e2e! {
    async fn pagination_while_original_rows_are_revoked_has_no_duplicates_or_gaps(app) {
        page_through_during_churn(&app, true).await;
    }
}

e2e! {
    async fn pagination_while_listed_devices_sign_in_again_has_no_duplicates_or_gaps(app) {
        // Devices that are on the list throughout sign in again (another product) while the
        // first page is read. Each of the 60 rows existed and stayed active throughout, so each
        // is listed exactly once. Five rounds, each with older devices (which later pages list).
        let originals = register_original_devices(&app).await;
        let mut failures = Vec::new();
        for round in 0..5 {
            let again = |i: usize| {
                SignIn::browser(PAGING_ACCOUNT, &originals[round * 6 + i]).product(Product::Codex).ip("175.16.199.0")
            };
            let mut registrations: Vec<_> = (0..3).map(|i| spawn_register(&app, &again(i))).collect();
            let first_page = {
                let mut client = app.sessions();
                tokio::spawn(async move {
                    client
                        .list_active_sessions(ListActiveSessionsRequest {
                            subject: Some(by_account(PAGING_ACCOUNT)),
                            page_size: PAGE_SIZE,
                            page_token: String::new(),
                            product: 0,
                        })
                        .await
                })
            };
            registrations.extend((3..6).map(|i| spawn_register(&app, &again(i))));
            let first_page = first_page
                .await
                .expect("task")
                .unwrap_or_else(|status| panic!("first page failed: {status:?}"))
                .into_inner();
            for result in join(registrations).await {
                result.unwrap_or_else(|status| panic!("a sign-in failed: {status:?}"));
            }
            let mut seen: Vec<String> = first_page.rows.into_iter().map(|row| row.device_id).collect();
            let mut page_token = first_page.next_page_token;
            while !page_token.is_empty() {
                let page = rows_page(&app, &page_token).await;
                seen.extend(page.rows.into_iter().map(|row| row.device_id));
                page_token = page.next_page_token;
            }
            let (duplicates, gaps) = duplicates_and_gaps(&seen, originals.iter());
            if !duplicates.is_empty() || !gaps.is_empty() {
                failures.push(format!("round {round}: listed twice {duplicates:?}, skipped {gaps:?}"));
            }
        }
        assert!(failures.is_empty(), "rows that existed throughout were not listed exactly once:\n{}", failures.join("\n"));
    }
}

// --- 4. The same row logged out by many callers at once ---------------------------------------

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
        let events = security_events(&app, ACCOUNT).await;
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
                    let request = revoke_device(by_account(ACCOUNT), device);
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

// --- 5. Contention never reaches a caller ----------------------------------------------------

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
                            let result = sessions.revoke_session(revoke_device(subject, &device)).await;
                            judge(format!("{label} RevokeSession {device}"), result, OWNER_CALL_REFUSALS)
                        })
                    }
                    7 => {
                        if i % 20 == 7 {
                            let account = accounts[1 + (i / 20) % 3];
                            tokio::spawn(async move {
                                let result = sessions.revoke_all_sessions(revoke_all(by_account(account))).await;
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
