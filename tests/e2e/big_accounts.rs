//! Accounts of any size: a device with 100,000 sessions and an account with 10,000 devices are
//! listed in bounded responses (every row exactly once), logged out set-based, and reach the
//! client's validation cache as one bounded device-scoped event. Sessions beyond a few thousand
//! registered through gRPC are inserted in bulk as copies of a registered one.

use std::time::Duration;

use active_sessions_client::{
    ListOptions, LogOutAction, Owner, Product, Registration, RetryPolicy, RevocationScope,
    RevokeAllOptions, RevokeOutcome, SessionClient, TrustedDeviceClient,
};
use active_sessions_e2e::{TestApp, by_token, e2e, live_cache, pb};
use active_sessions_server::store::entity::session;
use prost::Message;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

/// The documented byte budget of a list response or a stream message.
const BUDGET: usize = 1024 * 1024;

/// Registers `count` sessions through the client, 16 at a time; returns their tokens.
pub(crate) async fn register_many(
    sessions: &SessionClient,
    count: usize,
    registration: impl Fn(usize) -> Registration,
) -> Vec<String> {
    let mut tokens = Vec::with_capacity(count);
    let all: Vec<Registration> = (0..count).map(registration).collect();
    for chunk in all.chunks(16) {
        let calls = chunk.iter().map(|r| sessions.register(r.clone()));
        for registered in futures::future::join_all(calls).await {
            tokens.push(registered.expect("registration").token);
        }
    }
    tokens
}

/// How many sessions of the account on the device are not marked revoked.
async fn unrevoked(app: &TestApp, account: &str, device: &str) -> u64 {
    let db = app.connect_database().await;
    let count = session::Entity::find()
        .filter(session::Column::AccountId.eq(account))
        .filter(session::Column::DeviceId.eq(device))
        .filter(session::Column::RevokedAt.is_null())
        .count(&db)
        .await
        .expect("count");
    db.close().await.ok();
    count
}

async fn session_id_of(sessions: &SessionClient, token: &str) -> String {
    sessions
        .validate(token)
        .await
        .unwrap()
        .expect("valid")
        .session_id
}

e2e! {
    async fn a_device_with_100000_sessions_is_listed_bounded_logged_out_at_once_and_reaches_the_cache(app) with |config| {
        config.sessions.max_sessions_per_account = 0;
    }, {
        let connection = app.connect_with_token(None).await;
        let sessions = connection.sessions();
        let me = sessions.register(Registration::chatgpt_browser("acct", "laptop")).await.unwrap().token;
        let owner = Owner::token(me.clone());
        // A product process caches validations of the flood's sessions.
        let cache = live_cache(&connection).await;
        let bots = register_many(&sessions, 500, |_| Registration::chatgpt_browser("acct", "bot")).await;
        for token in &bots[..20] {
            assert!(cache.validate(token).await.unwrap().is_some());
        }
        assert_eq!(cache.len(), 20);
        let template = session_id_of(&sessions, &bots[0]).await;
        app.insert_session_copies(&template, 99_500, |_| "bot".into()).await;
        let mut stream = app.sessions().watch_revocations(pb::WatchRevocationsRequest::default()).await.unwrap().into_inner();
        assert!(stream.message().await.unwrap().unwrap().events.is_empty(), "caught up");

        // The page loads: two rows, the flooded one carrying counts and a sample.
        let page = app.sessions().list_active_sessions(pb::ListActiveSessionsRequest {
            subject: Some(by_token(&me)), page_size: 100, ..Default::default()
        }).await.unwrap().into_inner();
        assert!(page.encoded_len() < BUDGET, "{} bytes", page.encoded_len());
        assert_eq!(page.rows.len(), 2);
        let rows = sessions.list_rows(owner.clone(), ListOptions::new()).await.unwrap().rows;
        let bot = rows.iter().find(|row| row.device_id == "bot").unwrap();
        assert_eq!(bot.session_count, 100_000);
        assert_eq!(bot.product_counts, vec![(Product::Chatgpt, 100_000)]);
        assert!(bot.sessions.len() <= 10);
        assert_eq!(bot.log_out_action, LogOutAction::LogOut);
        // Every session of the row can be read a page at a time.
        let first = sessions.list_device_sessions(owner.clone(), "bot", ListOptions::new().page_size(100)).await.unwrap();
        let token = first.next_page_token.clone().expect("more pages");
        let second = sessions.list_device_sessions(owner.clone(), "bot", ListOptions::new().page_size(100).page_token(token)).await.unwrap();
        assert_eq!((first.sessions.len(), second.sessions.len()), (100, 100));
        assert!(first.sessions.last().unwrap().session_id > second.sessions[0].session_id, "newest first, no repeat");

        // Logging the row out works: counts and a bounded sample, every session marked. (The
        // deadline leaves room for a loaded CI machine; the benchmark measures the time.)
        let sessions = connection.sessions().with_retry_policy(RetryPolicy::no_retries().deadline(Duration::from_secs(60)));
        let preview = sessions.revoke_row(owner.clone(), "bot", false).await.unwrap();
        assert_eq!((preview.session_count, preview.session_ids.len()), (100_000, 100));
        let logged_out = sessions.revoke_row(owner.clone(), "bot", true).await.unwrap();
        assert_eq!(logged_out.outcome, RevokeOutcome::LoggedOut);
        assert_eq!(logged_out.session_count, 100_000);
        assert_eq!(logged_out.session_ids.len(), 100);
        let revocation = logged_out.revocation.unwrap();
        assert_eq!(revocation.sessions_revoked, 100_000);
        assert!(revocation.session_ids.is_empty(), "no id list as long as the device");
        assert_eq!(revocation.device_id.as_deref(), Some("bot"));
        assert_eq!(unrevoked(&app, "acct", "bot").await, 0);
        for token in bots.iter().step_by(97) {
            assert!(sessions.validate(token).await.unwrap().is_none());
        }

        // The stream carries one bounded device-scoped event.
        let message = loop {
            let message = stream.message().await.unwrap().unwrap();
            if !message.events.is_empty() {
                break message;
            }
        };
        assert!(message.encoded_len() < 4 * 1024, "{} bytes", message.encoded_len());
        let event = &message.events[0];
        assert_eq!(event.scope(), pb::RevocationScope::Device);
        assert_eq!(event.device_id, "bot");
        assert!(event.session_ids.is_empty() && event.revoked_before.is_some());
        // The product's cache applies it by device: nothing of the row answers from memory.
        tokio::time::timeout(Duration::from_secs(5), async {
            while cache.stats().revocations_applied == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }).await.expect("the revocation reaches the cache");
        assert_eq!(cache.len(), 0);
        for token in &bots[..20] {
            assert!(cache.validate(token).await.unwrap().is_none());
        }
        assert!(cache.validate(&me).await.unwrap().is_some(), "the laptop stays signed in");
        assert_eq!(sessions.list_all_rows(owner.clone(), None).await.unwrap().len(), 1);
        let again = sessions.revoke_row(owner, "bot", true).await.unwrap();
        assert_eq!(again.outcome, RevokeOutcome::AlreadyLoggedOut);
    }
}

e2e! {
    async fn an_account_with_10000_devices_pages_every_row_exactly_once_under_the_budget(app) {
        let connection = app.connect_with_token(None).await;
        let sessions = connection.sessions();
        let tokens = register_many(&sessions, 1_000, |i| Registration::chatgpt_browser("acct", format!("device-{i:05}"))).await;
        let template = session_id_of(&sessions, &tokens[0]).await;
        app.insert_session_copies(&template, 9_000, |i| format!("device-{:05}", 1_000 + i)).await;

        let mut seen = std::collections::HashSet::new();
        let mut page_token = String::new();
        let mut pages = 0;
        loop {
            let page = app.sessions().list_active_sessions(pb::ListActiveSessionsRequest {
                subject: Some(by_token(&tokens[1])), page_size: 100, page_token: page_token.clone(), product: 0,
            }).await.unwrap().into_inner();
            assert!(page.encoded_len() < BUDGET, "{} bytes", page.encoded_len());
            pages += 1;
            for row in &page.rows {
                assert!(seen.insert(row.device_id.clone()), "{} listed twice", row.device_id);
                assert_eq!(row.session_count, 1);
            }
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        assert_eq!((seen.len(), pages), (10_000, 100));
        let owner = Owner::account("acct");
        assert_eq!(sessions.list_all_rows(owner.clone(), None).await.unwrap().len(), 10_000);

        // Logging out of everything still works, and the sweep marks every session.
        let revocation = sessions.revoke_all(owner.clone(), RevokeAllOptions::confirmed()).await.unwrap();
        assert_eq!(revocation.scope, RevocationScope::All);
        assert!(sessions.validate(&tokens[0]).await.unwrap().is_none());
        app.services().sessions().sweep_pending().await.unwrap();
        let swept = sessions.get_revocation(owner.clone(), &revocation.revocation_id).await.unwrap();
        assert!(swept.complete);
        assert_eq!(swept.sessions_revoked, 10_000);
        assert!(sessions.list_all_rows(owner, None).await.unwrap().is_empty());
    }
}

e2e! {
    async fn trusted_devices_with_20000_sessions_are_logged_out_and_removed_whole(app) with |config| {
        config.sessions.max_sessions_per_account = 0;
    }, {
        let connection = app.connect_with_token(None).await;
        let sessions = connection.sessions();
        let trust = TrustedDeviceClient::new(&connection);
        let me = sessions.register(Registration::chatgpt_browser("acct", "laptop")).await.unwrap().token;
        let owner = Owner::token(me.clone());
        let mut tokens = Vec::new();
        for device in ["bot-a", "bot-b"] {
            let registered = register_many(&sessions, 500, |_| Registration::chatgpt_browser("acct", device)).await;
            let template = session_id_of(&sessions, &registered[0]).await;
            app.insert_session_copies(&template, 19_500, |_| device.into()).await;
            app.trust("acct", device).await;
            tokens.push(registered);
        }
        let rows = sessions.list_all_rows(owner.clone(), None).await.unwrap();
        let row = rows.iter().find(|row| row.device_id == "bot-a").unwrap();
        assert_eq!((row.log_out_action, row.session_count), (LogOutAction::LogOutAndRemove, 20_000));

        // "Log out and remove" of the row. (The deadline leaves room for a loaded CI machine.)
        let patient = RetryPolicy::no_retries().deadline(Duration::from_secs(60));
        let trust = trust.with_retry_policy(patient);
        let sessions = connection.sessions().with_retry_policy(patient);
        let result = sessions.revoke_row(owner.clone(), "bot-a", true).await.unwrap();
        assert_eq!(result.outcome, RevokeOutcome::LoggedOutAndRemoved);
        assert!(result.trust_removed);
        assert_eq!(result.session_count, 20_000);
        assert!(!app.is_trusted("acct", "bot-a").await);
        assert_eq!(unrevoked(&app, "acct", "bot-a").await, 0);
        // Removing a trusted device with its sessions.
        let removed = trust.remove(owner.clone(), "bot-b", true).await.unwrap();
        assert!(removed.removed);
        assert_eq!((removed.revoked_session_count, removed.revoked_session_ids.len()), (20_000, 100));
        assert_eq!(removed.revocation.unwrap().sessions_revoked, 20_000);
        assert!(!app.is_trusted("acct", "bot-b").await);
        assert_eq!(unrevoked(&app, "acct", "bot-b").await, 0);
        for token in tokens.iter().flatten().step_by(41) {
            assert!(sessions.validate(token).await.unwrap().is_none());
        }
        // The other listings stay under the budget too.
        let events = app.sessions().list_security_events(pb::ListSecurityEventsRequest {
            subject: Some(by_token(&me)), page_size: 100, ..Default::default()
        }).await.unwrap().into_inner();
        assert!(events.encoded_len() < BUDGET && events.events.len() == 100);
        let trusted = app.trusted_devices().list_trusted_devices(pb::ListTrustedDevicesRequest {
            subject: Some(by_token(&me)), page_size: 100, ..Default::default()
        }).await.unwrap().into_inner();
        assert!(trusted.encoded_len() < BUDGET && trusted.trusted_devices.is_empty());
        assert_eq!(sessions.list_all_rows(owner, None).await.unwrap().len(), 1);
    }
}
