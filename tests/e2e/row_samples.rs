//! A page of rows whatever its devices hold: each row shows its newest sessions (at most 10),
//! and its counts, products and times agree with every active session of its device, whether
//! the page read all of them or only the newest, at exactly a row's worth, one past it, and when
//! a device gained more sessions after the page's snapshot than the page expected to read.

use std::collections::BTreeMap;

use active_sessions_client::{Registration, SessionClient};
use active_sessions_e2e::{e2e, pb};

/// A row shows at most this many sessions.
const ROW_SESSIONS: usize = 10;

fn by_account(account: &str) -> pb::Subject {
    pb::Subject {
        subject: Some(pb::subject::Subject::AccountId(account.to_owned())),
    }
}

/// Registers `count` sessions of `account` on `device`, one after another (so each signs in
/// after the one before); the first `api_platform` of them in API Platform, the rest in
/// ChatGPT. Returns the session ids, oldest first.
async fn sign_in(
    sessions: &SessionClient,
    account: &str,
    device: &str,
    count: usize,
    api_platform: usize,
) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let registration = if i < api_platform {
            Registration::api_platform_browser(account, device)
        } else {
            Registration::chatgpt_browser(account, device)
        };
        ids.push(
            sessions
                .register(registration)
                .await
                .unwrap()
                .session
                .session_id,
        );
    }
    ids
}

/// Every active session of the device, through ListDeviceSessions.
async fn device_sessions(
    app: &active_sessions_e2e::TestApp,
    account: &str,
    device: &str,
) -> Vec<pb::Session> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = app
            .sessions()
            .list_device_sessions(pb::ListDeviceSessionsRequest {
                subject: Some(by_account(account)),
                device_id: device.to_owned(),
                page_size: 100,
                page_token,
                product: 0,
            })
            .await
            .unwrap()
            .into_inner();
        all.extend(page.sessions);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

fn micros(timestamp: Option<&prost_types::Timestamp>) -> i64 {
    let t = timestamp.expect("timestamp");
    t.seconds * 1_000_000 + i64::from(t.nanos / 1_000)
}

/// Checks one row against every active session of its device.
async fn assert_row_agrees(
    app: &active_sessions_e2e::TestApp,
    account: &str,
    row: &pb::SessionRow,
) {
    let all = device_sessions(app, account, &row.device_id).await;
    let device = &row.device_id;
    assert_eq!(
        row.session_count,
        all.len() as i64,
        "{device}: session_count"
    );
    let mut per_product: BTreeMap<i32, i64> = BTreeMap::new();
    for session in &all {
        *per_product.entry(session.product).or_default() += 1;
    }
    let counted: BTreeMap<i32, i64> = row
        .product_counts
        .iter()
        .map(|count| (count.product, count.session_count))
        .collect();
    assert_eq!(counted, per_product, "{device}: product_counts");
    assert_eq!(
        row.products,
        per_product.keys().copied().collect::<Vec<_>>(),
        "{device}: products"
    );
    let first = all.iter().map(|s| micros(s.signed_in_at.as_ref())).min();
    let last_active = all.iter().map(|s| micros(s.last_active_at.as_ref())).max();
    assert_eq!(
        Some(micros(row.signed_in_at.as_ref())),
        first,
        "{device}: signed_in_at"
    );
    assert_eq!(
        Some(micros(row.last_active_at.as_ref())),
        last_active,
        "{device}: last_active_at"
    );

    // The row's sessions are the device's most recently active, most recent first.
    let mut newest: Vec<(i64, String)> = all
        .iter()
        .map(|s| (micros(s.last_active_at.as_ref()), s.session_id.clone()))
        .collect();
    newest.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    newest.truncate(ROW_SESSIONS);
    let shown: Vec<(i64, String)> = row
        .sessions
        .iter()
        .map(|s| (micros(s.last_active_at.as_ref()), s.session_id.clone()))
        .collect();
    assert_eq!(shown, newest, "{device}: the row's sessions");
}

e2e! {
    async fn rows_of_every_size_agree_with_their_sessions(app) {
        let connection = app.connect_with_token(None).await;
        let sessions = connection.sessions();
        let account = "rows-acct";
        // One session; a row's worth exactly (two products); one past it; many.
        sign_in(&sessions, account, "device-one", 1, 0).await;
        sign_in(&sessions, account, "device-ten", 10, 3).await;
        sign_in(&sessions, account, "device-eleven", 11, 1).await;
        sign_in(&sessions, account, "device-many", 27, 5).await;

        let page = app.sessions().list_active_sessions(pb::ListActiveSessionsRequest {
            subject: Some(by_account(account)), page_size: 100, page_token: String::new(), product: 0,
        }).await.unwrap().into_inner();
        let devices: Vec<&str> = page.rows.iter().map(|row| row.device_id.as_str()).collect();
        assert_eq!(devices, ["device-many", "device-eleven", "device-ten", "device-one"]);
        for row in &page.rows {
            assert_row_agrees(&app, account, row).await;
        }
        let shown: Vec<usize> = page.rows.iter().map(|row| row.sessions.len()).collect();
        assert_eq!(shown, [10, 10, 10, 1]);

        // One product only: counts and sessions of that product.
        let chatgpt = app.sessions().list_active_sessions(pb::ListActiveSessionsRequest {
            subject: Some(by_account(account)), page_size: 100, page_token: String::new(),
            product: pb::Product::Chatgpt as i32,
        }).await.unwrap().into_inner();
        let counts: Vec<(&str, i64, usize)> = chatgpt
            .rows
            .iter()
            .map(|row| (row.device_id.as_str(), row.session_count, row.sessions.len()))
            .collect();
        assert_eq!(counts, [("device-many", 22, 10), ("device-eleven", 10, 10), ("device-ten", 7, 7), ("device-one", 1, 1)]);
    }
}

e2e! {
    async fn a_row_that_grew_after_the_snapshot_shows_its_newest_sessions_and_counts_them_all(app) {
        let connection = app.connect_with_token(None).await;
        let sessions = connection.sessions();
        let account = "grown-acct";
        sign_in(&sessions, account, "device-quiet", 1, 0).await;
        sign_in(&sessions, account, "device-b", 2, 0).await;
        sign_in(&sessions, account, "device-c", 3, 0).await;
        let first = app.sessions().list_active_sessions(pb::ListActiveSessionsRequest {
            subject: Some(by_account(account)), page_size: 2, page_token: String::new(), product: 0,
        }).await.unwrap().into_inner();
        assert_eq!(first.rows.len(), 2);
        assert!(!first.next_page_token.is_empty());

        // The quiet device had one session at the snapshot; it now gains far more than a page
        // of one row expects to read.
        let grown = sign_in(&sessions, account, "device-quiet", 30, 0).await;
        let second = app.sessions().list_active_sessions(pb::ListActiveSessionsRequest {
            subject: Some(by_account(account)), page_size: 2, page_token: first.next_page_token, product: 0,
        }).await.unwrap().into_inner();
        assert_eq!(second.rows.len(), 1);
        let row = &second.rows[0];
        assert_eq!(row.device_id, "device-quiet");
        assert_eq!(row.session_count, 31);
        assert_eq!(row.sessions.len(), ROW_SESSIONS);
        assert_eq!(row.sessions[0].session_id, *grown.last().unwrap());
        assert_row_agrees(&app, account, row).await;
    }
}
