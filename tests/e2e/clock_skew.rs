//! Log out of all across replicas whose clocks disagree. Which sessions a log-out of all ends is
//! decided by the account's generation, taken under the account row lock, never by comparing
//! two replicas' clocks: a log-out on either replica ends every session signed in before it on
//! both, a sign-in right after it is valid at once, and a second log-out never moves the
//! cut-off back. Run twice: in-process replicas with injected clocks 300 s apart (SQLite and
//! PostgreSQL), and real server processes, one of them under libfaketime at +2 s and -2 s
//! (PostgreSQL).

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use active_sessions_client::{Owner, RevokeAllOptions};
use active_sessions_e2e::{
    Backend, POSTGRES_URL_VAR, SignIn, TestApp, by_account, e2e, is_valid_on, pb,
    revoke_all_request,
};
use active_sessions_server::{
    clock::{Clock, ManualClock, Timestamp},
    service::sessions::MAX_FEED_STALENESS,
};
use pb::session_service_client::SessionServiceClient;
use tonic::transport::Channel;

/// Asks until `token` is refused, failing if a validation asked [`MAX_FEED_STALENESS`] or more
/// after `returned` (when the revoking call returned) still says valid.
pub(crate) async fn refused_within_bound(
    client: &SessionServiceClient<Channel>,
    token: &str,
    returned: Instant,
) -> Duration {
    loop {
        let asked = Instant::now();
        if !is_valid_on(client, token).await {
            return asked.duration_since(returned);
        }
        let late = asked.duration_since(returned);
        assert!(
            late < MAX_FEED_STALENESS,
            "still valid {late:?} after the log-out returned"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub(crate) async fn revoke_all(
    client: &SessionServiceClient<Channel>,
    account: &str,
) -> pb::Revocation {
    client
        .clone()
        .revoke_all_sessions(revoke_all_request(by_account(account)))
        .await
        .unwrap_or_else(|status| panic!("log out of all failed: {status:?}"))
        .into_inner()
        .revocation
        .expect("revocation")
}

async fn sign_in(
    client: &SessionServiceClient<Channel>,
    account: &str,
    device: &str,
) -> (pb::Session, String) {
    let response = client
        .clone()
        .register_session(SignIn::browser(account, device).request())
        .await
        .unwrap_or_else(|status| panic!("registration failed: {status:?}"))
        .into_inner();
    (response.session.expect("session"), response.session_token)
}

fn micros(ts: Option<&prost_types::Timestamp>) -> i64 {
    let ts = ts.expect("timestamp");
    ts.seconds * 1_000_000 + i64::from(ts.nanos) / 1_000
}

/// The scenario on two replicas: `fast` and `slow` (whose clock is behind `fast`'s).
async fn log_out_of_all_ignores_the_skew(
    fast: &SessionServiceClient<Channel>,
    slow: &SessionServiceClient<Channel>,
    account: &str,
) {
    let replicas = [fast, slow];
    // Sign-ins on both replicas, cached on both.
    let (_, on_fast) = sign_in(fast, account, "dev_fast").await;
    let (_, on_slow) = sign_in(slow, account, "dev_slow").await;
    for replica in replicas {
        assert!(is_valid_on(replica, &on_fast).await);
        assert!(is_valid_on(replica, &on_slow).await);
    }

    // Log out of all on the slow replica: the session the fast one stamped "later" ends too.
    let first = revoke_all(slow, account).await;
    let returned = Instant::now();
    assert!(!is_valid_on(slow, &on_fast).await && !is_valid_on(slow, &on_slow).await);
    for replica in replicas {
        refused_within_bound(replica, &on_fast, returned).await;
        refused_within_bound(replica, &on_slow, returned).await;
    }
    assert_eq!(first.cut_generation, 1);

    // A sign-in right after it, stamped by the slow clock "before" the cut-off instant the
    // slow replica wrote... or by the fast one: valid at once, everywhere.
    let (_, after_slow) = sign_in(slow, account, "dev_after_slow").await;
    let (_, after_fast) = sign_in(fast, account, "dev_after_fast").await;
    for replica in replicas {
        assert!(
            is_valid_on(replica, &after_slow).await,
            "a sign-in after the log-out is valid"
        );
        assert!(is_valid_on(replica, &after_fast).await);
    }

    // Log out of all on the fast replica: everything so far ends on both.
    let second = revoke_all(fast, account).await;
    let returned = Instant::now();
    for replica in replicas {
        refused_within_bound(replica, &after_slow, returned).await;
        refused_within_bound(replica, &after_fast, returned).await;
    }
    assert_eq!(second.cut_generation, 2);

    // A third log-out from the slow replica never moves the cut-off back: neither the
    // generation nor the instant shown.
    let (_, before_third) = sign_in(fast, account, "dev_before_third").await;
    let third = revoke_all(slow, account).await;
    assert_eq!(third.cut_generation, 3);
    assert!(
        micros(third.revoked_before.as_ref()) >= micros(second.revoked_before.as_ref()),
        "the cut-off shown moved back"
    );
    let returned = Instant::now();
    for replica in replicas {
        refused_within_bound(replica, &before_third, returned).await;
        refused_within_bound(replica, &on_fast, returned).await;
        refused_within_bound(replica, &after_fast, returned).await;
    }
    let (_, latest) = sign_in(slow, account, "dev_latest").await;
    for replica in replicas {
        assert!(is_valid_on(replica, &latest).await);
    }
}

/// A replica whose clock is `ahead` of `app`'s by this many seconds (negative: behind).
fn skewed_clock(app: &TestApp, seconds: i64) -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp::from_micros(
        app.clock.now().as_micros() + seconds * 1_000_000,
    )))
}

e2e!(
    /// Replicas 300 s apart (injected clocks): log out of all on either ends every session
    /// signed in before it on both; later sign-ins are valid at once; the cut-off never moves
    /// back.
    async fn log_out_of_all_is_ordered_by_generation_not_by_replica_clocks(app) {
        let ahead = app.replica_with(skewed_clock(&app, 300), |_| {}).await;
        log_out_of_all_ignores_the_skew(&ahead.sessions(), &app.sessions(), "acct_ahead").await;
        let behind = app.replica_with(skewed_clock(&app, -300), |_| {}).await;
        log_out_of_all_ignores_the_skew(&app.sessions(), &behind.sessions(), "acct_behind").await;
        ahead.stop().await;
        behind.stop().await;
    }
);

e2e!(
    /// A replica whose clock is behind lists the sessions a replica ahead of it just
    /// registered: the listing's snapshot is never earlier than a committed sign-in.
    async fn listing_shows_sessions_signed_in_on_a_replica_whose_clock_runs_ahead(app) {
        let ahead = app.replica_with(skewed_clock(&app, 300), |_| {}).await;
        let (session, _) = ahead.sign_in(SignIn::browser("acct", "dev_ahead")).await;
        let rows = app.rows_for_account("acct").await;
        assert_eq!(rows.len(), 1, "the session stamped in the future is listed");
        assert_eq!(rows[0].sessions[0].session_id, session.session_id);
        // And still after a log-out of all on the slow replica and a new sign-in there.
        app.connect_with_token(None)
            .await
            .sessions()
            .revoke_all(Owner::account("acct"), RevokeAllOptions::confirmed())
            .await
            .unwrap();
        let (after, _) = app.sign_in(SignIn::browser("acct", "dev_slow")).await;
        let (later, _) = ahead.sign_in(SignIn::browser("acct", "dev_ahead_2")).await;
        let listed = app.session_ids_for_account("acct").await;
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert!(listed.contains(&after.session_id) && listed.contains(&later.session_id));
        ahead.stop().await;
    }
);

use crate::replica_process::{ServerProcess, faketime_available};

/// Two real server processes on one PostgreSQL database, the second under libfaketime.
async fn real_replicas_with_skew(offset: &str, skew_secs: i64) {
    if !faketime_available() {
        return;
    }
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    assert!(std::env::var(POSTGRES_URL_VAR).is_ok());
    let normal = ServerProcess::start(&app, None).await;
    let skewed = ServerProcess::start(&app, Some(offset)).await;

    // The skew took effect: the skewed replica measured its clock against the database's and
    // found it shifted; it corrects by that, so it stamps sign-ins with the database's time.
    let expected_ms = -skew_secs * 1_000;
    let offset_ms = skewed
        .logged_clock_offset_ms()
        .expect("the skewed replica logged its clock offset");
    assert!(
        (offset_ms - expected_ms).abs() < 700,
        "libfaketime did not shift the replica's clock by {offset}: offset {offset_ms} ms"
    );
    let wall = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .expect("after the epoch")
            .as_micros() as i64
    };
    for replica in [&skewed, &normal] {
        let before = wall(SystemTime::now());
        let (stamped, _) = sign_in(&replica.client, "acct_probe", "dev_probe").await;
        let after = wall(SystemTime::now());
        let shift = micros(stamped.signed_in_at.as_ref()) - (before + after) / 2;
        assert!(
            shift.abs() < 500_000,
            "a replica stamps sign-ins {shift} µs off the database's time"
        );
    }

    let (fast, slow) = if skew_secs > 0 {
        (&skewed.client, &normal.client)
    } else {
        (&normal.client, &skewed.client)
    };
    log_out_of_all_ignores_the_skew(fast, slow, "acct").await;

    // The slower replica lists what the faster one just registered.
    let (session, _) = sign_in(fast, "acct_list", "dev_list").await;
    let rows = slow
        .clone()
        .list_active_sessions(pb::ListActiveSessionsRequest {
            subject: Some(by_account("acct_list")),
            page_size: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .rows;
    assert_eq!(rows.len(), 1, "the slower replica hides a live session");
    assert_eq!(rows[0].sessions[0].session_id, session.session_id);

    normal.stop().await;
    skewed.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_out_of_all_holds_with_a_replica_two_seconds_ahead_under_libfaketime() {
    real_replicas_with_skew("+2s", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_out_of_all_holds_with_a_replica_two_seconds_behind_under_libfaketime() {
    real_replicas_with_skew("-2s", -2).await;
}
