//! ChatGPT on the web: a browser signs in (its device id is a long-lived cookie), the backend
//! validates each request through the validation cache, and the settings page lists the
//! user's rows and logs out another browser, whose next request is then refused.
//!
//! ```text
//! cargo run -p active-sessions-server -- --database-url sqlite:///tmp/as/db.sqlite --listen 127.0.0.1:50051 &
//! ACTIVE_SESSIONS_ENDPOINT=http://127.0.0.1:50051 cargo run -p active-sessions-client --example chatgpt_web
//! ```

mod common;

use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

use active_sessions_client::{
    AuthMethod, Error, ListOptions, Owner, Product, Registration, RevokeAllOptions, ValidationCache,
};
use common::{LONDON, Result};

#[tokio::main]
async fn main() -> ExitCode {
    common::bounded(run()).await
}

async fn run() -> Result<()> {
    let connection = common::connect("chatgpt-web").await?;
    let sessions = connection.sessions();
    let account = common::unique("chatgpt-user");

    // Sign-in on a laptop: the backend sets a device cookie once per browser, then registers
    // the session and puts its token in an HttpOnly cookie.
    let laptop_cookie = common::unique("browser");
    let laptop = sessions
        .register(
            Registration::chatgpt_browser(&account, &laptop_cookie)
                .user_agent(common::CHROME_MAC)
                .ip(LONDON)
                .auth_method(AuthMethod::Passkey),
        )
        .await?;
    println!(
        "signed in {account} on {} ({}), session {}, request id {}",
        laptop.session.device.description,
        common::place(&laptop.session.location),
        laptop.session.session_id,
        laptop.request_id
    );
    // The same user earlier signed in on a phone.
    let phone_cookie = common::unique("browser");
    let phone = sessions
        .register(
            Registration::chatgpt_browser(&account, &phone_cookie)
                .user_agent(common::SAFARI_IPHONE)
                .auth_method(AuthMethod::Password),
        )
        .await?;
    println!(
        "signed in {account} on {}",
        phone.session.device.description
    );

    // Request validation goes through the cache, which follows the revocation stream.
    let cache = ValidationCache::builder(connection.clone())
        .products([Product::Chatgpt])
        .max_age(Duration::from_secs(60))
        .start()
        .await;
    tokio::time::timeout(Duration::from_secs(5), cache.wait_live())
        .await
        .map_err(|_| "the revocation stream did not go live")?;
    for _ in 0..5 {
        for token in [&laptop.token, &phone.token] {
            if cache.validate(token).await?.is_none() {
                return Err("a fresh session was refused".into());
            }
        }
    }
    sessions.touch(&laptop.token, Some(LONDON)).await?;
    let stats = cache.stats();
    println!(
        "validated 10 requests: {} from the server, {} from the cache",
        stats.misses, stats.hits
    );

    // The settings page, as the user on the laptop.
    let me = Owner::token(&laptop.token);
    let page = sessions.list_rows(me.clone(), ListOptions::new()).await?;
    println!("settings page: {} row(s)", page.rows.len());
    for row in &page.rows {
        println!(
            "  {:<32} {:?} current={} action={:?}",
            row.device.description, row.products, row.current, row.log_out_action
        );
    }

    // The user logs out the phone: first the confirmation, then the log-out.
    let preview = sessions
        .revoke_row(me.clone(), &phone_cookie, false)
        .await?;
    println!(
        "confirm: log out {} session(s) on the phone ({:?})?",
        preview.session_ids.len(),
        preview.outcome
    );
    let logged_out = sessions.revoke_row(me.clone(), &phone_cookie, true).await?;
    let started = Instant::now();
    let revocation_id = logged_out
        .revocation
        .map(|revocation| revocation.revocation_id)
        .unwrap_or_default();
    println!("logged out the phone (revocation {revocation_id})");
    while cache.stats().revocations_applied == stats.revocations_applied {
        if started.elapsed() > Duration::from_secs(2) {
            return Err("the revocation did not reach the cache".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "the revocation reached the cache after {:?}",
        started.elapsed()
    );
    match cache.validate(&phone.token).await? {
        None => println!("the phone's next request is refused"),
        Some(_) => return Err("the phone's session is still valid".into()),
    }
    if cache.validate(&laptop.token).await?.is_none() {
        return Err("the laptop was logged out too".into());
    }

    // The current row cannot be logged out from the page: it signs out instead.
    match sessions.revoke_row(me.clone(), &laptop_cookie, true).await {
        Err(Error::CurrentSession) => println!(
            "the laptop's own row offers no log-out: {}",
            Error::CurrentSession
        ),
        other => return Err(format!("unexpected: {other:?}").into()),
    }
    let rows = sessions.list_all_rows(me.clone(), None).await?;
    println!("settings page now: {} row(s)", rows.len());

    // Finally, "log out of all sessions".
    let all = sessions
        .revoke_all(me, RevokeAllOptions::confirmed())
        .await?;
    println!(
        "logged out of all sessions (revocation {})",
        all.revocation_id
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    if cache.validate(&laptop.token).await?.is_some() {
        return Err("the laptop is still signed in".into());
    }
    let stats = cache.stats();
    println!(
        "cache: {} hits, {} misses, {} revocations applied, {} entries",
        stats.hits, stats.misses, stats.revocations_applied, stats.entries
    );
    Ok(())
}
