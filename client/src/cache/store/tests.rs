//! The store's rules: what a revocation drops, what a late answer may not bring back, and
//! the bounds on size and age.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::{cache::revoked::Cut, proto::RevocationScope};

pub(in crate::cache) fn limits(max_entries: usize) -> Limits {
    Limits {
        products: Vec::new(),
        max_entries,
        max_age: Duration::from_secs(60),
    }
}

pub(in crate::cache) fn session(id: &str, account: &str, signed_in_secs_ago: u64) -> ValidSession {
    let now = SystemTime::now();
    ValidSession {
        session_id: id.into(),
        account_id: account.into(),
        product: Product::Chatgpt,
        device_id: "d".into(),
        signed_in_at: now - Duration::from_secs(signed_in_secs_ago),
        expires_at: now + Duration::from_secs(3600),
        idle_expires_at: now + Duration::from_secs(3600),
        generation: 0,
    }
}

pub(in crate::cache) fn event(
    scope: RevocationScope,
    account: &str,
    ids: &[&str],
) -> RevocationEvent {
    RevocationEvent {
        cursor: "1".into(),
        revocation_id: "r".into(),
        account_id: account.into(),
        scope,
        session_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
        products: vec![Product::Chatgpt],
        revoked_at: None,
        revoked_before: Some(SystemTime::now() - Duration::from_secs(5)),
        device_id: None,
        cut_generation: 0,
        includes_hidden_kinds: false,
        kept_session_id: None,
        reason: crate::proto::RevocationReason::UserLogOut,
    }
}

/// A ticket taken after `applied` revocations in epoch `epoch`.
fn ticket(applied: u64, epoch: u64) -> Ticket {
    Ticket { applied, epoch }
}

fn revoke(store: &mut Store, events: Vec<RevocationEvent>) {
    for event in events {
        store.revoke(event);
    }
}

#[test]
fn revocations_drop_what_they_cover() {
    let mut store = Store::new(limits(100));
    store.insert(Key::of("a"), &session("s-a", "acct", 60), ticket(0, 0));
    store.insert(Key::of("b"), &session("s-b", "acct", 60), ticket(0, 0));
    store.insert(Key::of("c"), &session("s-c", "acct", 1), ticket(0, 0));
    store.insert(Key::of("d"), &session("s-d", "other", 60), ticket(0, 0));
    assert_eq!(store.len(), 4);

    store.revoke(event(RevocationScope::Session, "acct", &["s-a"]));
    assert!(store.lookup(&Key::of("a")).is_none());
    assert!(store.lookup(&Key::of("b")).is_some());

    // Scope ALL: only what was signed in before the cut-off (5 s ago).
    store.revoke(event(RevocationScope::All, "acct", &[]));
    assert!(store.lookup(&Key::of("b")).is_none());
    assert!(store.lookup(&Key::of("c")).is_some());
    assert!(store.lookup(&Key::of("d")).is_some());
    assert_eq!(store.applied(), 2);
}

#[test]
fn a_log_out_of_all_ends_sessions_by_generation_whatever_the_clocks() {
    let mut store = Store::new(limits(100));
    // Born before the log-out, but stamped by a replica whose clock runs ahead.
    let mut ahead = session("s-ahead", "acct", 0);
    ahead.signed_in_at = SystemTime::now() + Duration::from_secs(300);
    // Born after the log-out, stamped by a replica whose clock runs behind.
    let mut behind = session("s-behind", "acct", 600);
    behind.generation = 1;
    store.insert(Key::of("ahead"), &ahead, ticket(0, 0));
    store.insert(Key::of("behind"), &behind, ticket(0, 0));
    let mut cut = event(RevocationScope::All, "acct", &[]);
    cut.cut_generation = 1;
    store.revoke(cut);
    assert!(store.lookup(&Key::of("ahead")).is_none());
    assert!(store.lookup(&Key::of("behind")).is_some());
    // A later answer for a session born before the cut is refused; one born after is kept.
    store.insert(Key::of("ahead"), &ahead, ticket(1, 0));
    assert!(store.lookup(&Key::of("ahead")).is_none());
    let mut later = session("s-later", "acct", 900);
    later.generation = 1;
    store.insert(Key::of("later"), &later, ticket(1, 0));
    assert!(store.lookup(&Key::of("later")).is_some());
    // An older cut arriving late never moves the remembered one back.
    let mut older = event(RevocationScope::All, "acct", &[]);
    older.cut_generation = 1;
    let mut newer = event(RevocationScope::All, "acct", &[]);
    newer.cut_generation = 2;
    revoke(&mut store, vec![newer, older]);
    assert!(store.lookup(&Key::of("later")).is_none());
    assert_eq!(store.revoked.cut_of("acct"), Some(Cut::Generation(2)));
}

#[test]
fn answers_fetched_around_a_revocation_are_not_cached() {
    let mut store = Store::new(limits(100));
    store.revoke(event(RevocationScope::Device, "acct", &["s-a"]));
    store.revoke(event(RevocationScope::All, "acct2", &[]));
    // Fetched before the revocations were applied (applied = 0), or after: both refused.
    store.insert(Key::of("a"), &session("s-a", "acct", 60), ticket(0, 0));
    store.insert(Key::of("a"), &session("s-a", "acct", 60), ticket(2, 0));
    store.insert(Key::of("b"), &session("s-b", "acct2", 60), ticket(2, 0));
    assert_eq!(store.len(), 0);
    // A session signed in after the cut-off is fine.
    store.insert(Key::of("c"), &session("s-c", "acct2", 0), ticket(2, 0));
    assert_eq!(store.len(), 1);
    // A ticket from an earlier epoch: refused.
    store.new_epoch();
    store.insert(Key::of("d"), &session("s-d", "acct3", 60), ticket(2, 0));
    assert_eq!(store.len(), 1);
    assert_eq!(store.ticket(), ticket(2, 1));
}

#[test]
fn a_device_revocation_drops_the_device_by_its_cut_off_without_naming_sessions() {
    let mut store = Store::new(limits(100));
    let on = |id: &str, device: &str, secs_ago: u64| ValidSession {
        device_id: device.into(),
        ..session(id, "acct", secs_ago)
    };
    store.insert(Key::of("a"), &on("s-a", "laptop", 60), ticket(0, 0));
    store.insert(Key::of("b"), &on("s-b", "laptop", 1), ticket(0, 0));
    store.insert(Key::of("c"), &on("s-c", "phone", 60), ticket(0, 0));
    let other_account = ValidSession {
        device_id: "laptop".into(),
        ..session("s-d", "other", 60)
    };
    store.insert(Key::of("d"), &other_account, ticket(0, 0));
    // 100,000 sessions logged out on the laptop: no ids, the device and the cut-off (5 s ago).
    let mut device = event(RevocationScope::Device, "acct", &[]);
    device.device_id = Some("laptop".into());
    store.revoke(device);
    assert!(
        store.lookup(&Key::of("a")).is_none(),
        "signed in before the cut-off"
    );
    assert!(store.lookup(&Key::of("b")).is_some(), "signed in after it");
    assert!(store.lookup(&Key::of("c")).is_some(), "another device");
    assert!(store.lookup(&Key::of("d")).is_some(), "another account");
    // An answer fetched around it is refused for the device, not for others.
    store.insert(Key::of("e"), &on("s-e", "laptop", 30), ticket(0, 0));
    store.insert(Key::of("f"), &on("s-f", "phone", 30), ticket(0, 0));
    assert!(store.lookup(&Key::of("e")).is_none());
    assert!(store.lookup(&Key::of("f")).is_some());
    // Without a device (an older server), no ids: the whole account goes.
    store.revoke(event(RevocationScope::Device, "acct", &[]));
    assert!(store.lookup(&Key::of("c")).is_none());
    assert!(store.lookup(&Key::of("d")).is_some());
}

#[test]
fn size_and_age_are_bounded() {
    let mut store = Store::new(limits(2));
    for (i, token) in ["a", "b", "c"].iter().enumerate() {
        let session = session(&format!("s{i}"), "acct", 60);
        store.insert(Key::of(token), &session, ticket(0, 0));
    }
    assert_eq!(store.len(), 2);
    assert!(
        store.lookup(&Key::of("a")).is_none(),
        "the oldest went first"
    );

    let mut expiring = session("s9", "acct", 60);
    expiring.idle_expires_at = SystemTime::now() - Duration::from_secs(1);
    store.insert(Key::of("z"), &expiring, ticket(0, 0));
    assert!(
        store.lookup(&Key::of("z")).is_none(),
        "never past idle expiry"
    );

    store.limits.max_age = Duration::from_millis(1);
    store.insert(Key::of("y"), &session("s8", "acct", 60), ticket(0, 0));
    std::thread::sleep(Duration::from_millis(5));
    assert!(store.lookup(&Key::of("y")).is_none(), "never past max age");
}
