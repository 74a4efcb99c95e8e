//! API Platform in a browser that is also signed in to ChatGPT: both products register
//! against the same device cookie id, so the Active sessions page shows the browser as one row
//! with two products. Logging out of all sessions ends both.
//!
//! ```text
//! cargo run -p active-sessions-server -- --database-url sqlite:///tmp/as/db.sqlite --listen 127.0.0.1:50051 &
//! ACTIVE_SESSIONS_ENDPOINT=http://127.0.0.1:50051 cargo run -p active-sessions-client --example api_platform
//! ```

mod common;

use std::process::ExitCode;

use active_sessions_client::{
    AuthMethod, ListOptions, Owner, Product, Registration, RevokeAllOptions,
};
use common::{LONDON, Result};

#[tokio::main]
async fn main() -> ExitCode {
    common::bounded(run()).await
}

async fn run() -> Result<()> {
    let connection = common::connect("api-platform").await?;
    let sessions = connection.sessions();
    let account = common::unique("platform-user");
    // One browser: one device cookie, shared by every first-party product on it.
    let cookie = common::unique("browser");

    let chatgpt = sessions
        .register(
            Registration::chatgpt_browser(&account, &cookie)
                .user_agent(common::CHROME_MAC)
                .ip(LONDON)
                .auth_method(AuthMethod::Google),
        )
        .await?;
    println!(
        "signed in to ChatGPT: session {}",
        chatgpt.session.session_id
    );
    let platform = sessions
        .register(
            Registration::api_platform_browser(&account, &cookie)
                .user_agent(common::CHROME_MAC)
                .ip(LONDON)
                .auth_method(AuthMethod::Google),
        )
        .await?;
    println!(
        "signed in to API Platform: session {}",
        platform.session.session_id
    );

    // API Platform validates its own requests.
    let valid = sessions
        .validate(&platform.token)
        .await?
        .ok_or("the API Platform session is not valid")?;
    println!("validated: {} on {:?}", valid.account_id, valid.product);

    // The settings page, opened from API Platform.
    let me = Owner::token(&platform.token);
    let eligibility = connection.eligibility().check(me.clone()).await?;
    println!(
        "Active sessions available for {}: {}",
        eligibility.account_id, eligibility.eligible
    );
    let page = sessions.list_rows(me.clone(), ListOptions::new()).await?;
    println!("settings page: {} row(s)", page.rows.len());
    for row in &page.rows {
        println!(
            "  {} ({}): {:?}, {} session(s), current={}",
            row.device.description,
            common::place(&row.location),
            row.products,
            row.sessions.len(),
            row.current
        );
    }
    let [row] = page.rows.as_slice() else {
        return Err("expected one row for the browser".into());
    };
    if row.products != [Product::Chatgpt, Product::ApiPlatform] {
        return Err(format!("expected two products on the row, got {:?}", row.products).into());
    }
    let only_platform = sessions
        .list_rows(me.clone(), ListOptions::new().product(Product::ApiPlatform))
        .await?;
    println!(
        "filtered to API Platform: {} row(s)",
        only_platform.rows.len()
    );

    // Log out of all sessions: the confirmation, then both products end.
    let preview = sessions
        .revoke_all(me.clone(), RevokeAllOptions::preview())
        .await?;
    println!(
        "confirm: log out of all sessions ({} session(s))?",
        preview.sessions_revoked
    );
    let done = sessions
        .revoke_all(me, RevokeAllOptions::confirmed())
        .await?;
    println!(
        "logged out of all sessions (revocation {})",
        done.revocation_id
    );
    for (product, token) in [
        ("ChatGPT", &chatgpt.token),
        ("API Platform", &platform.token),
    ] {
        let valid = sessions.validate(token).await?.is_some();
        println!("{product} session valid: {valid}");
        if valid {
            return Err(format!("{product} is still signed in").into());
        }
    }
    let history = sessions
        .list_security_events(Owner::account(&account), ListOptions::new())
        .await?;
    println!("security history:");
    for event in history.events.iter().rev() {
        println!("  {:?} {:?} by {}", event.kind, event.product, event.actor);
    }
    Ok(())
}
