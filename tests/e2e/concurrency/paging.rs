//! Paging while rows are added, logged out and signed in again: no duplicates, no gaps.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use super::{PRODUCTS, join, spawn_register};
use active_sessions_e2e::{SignIn, TestApp, by_account, e2e, pb, revoke_device_request};
use pb::{ListActiveSessionsRequest, Product, RevokeOutcome};

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
                        .revoke_session(revoke_device_request(
                            by_account(ACCOUNT),
                            &previous,
                            false,
                        ))
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
                        .revoke_session(revoke_device_request(by_account(ACCOUNT), device, false))
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
