//! The Codex desktop app: the app signs in (its device id is the installation id, and the
//! registration is safe to retry), records activity, and its installation becomes a trusted
//! device after a second factor, so the next sign-in skips it. From the settings page the
//! app's row then offers "log out and remove", which ends the session and the trust at once.
//!
//! ```text
//! cargo run -p active-sessions-server -- --database-url sqlite:///tmp/as/db.sqlite --listen 127.0.0.1:50051 &
//! ACTIVE_SESSIONS_ENDPOINT=http://127.0.0.1:50051 cargo run -p active-sessions-client --example codex_desktop
//! ```

mod common;

use std::{process::ExitCode, time::Duration};

use active_sessions_client::{
    AuthMethod, ListOptions, LogOutAction, Owner, Product, Registration, Trust, TrustMethod,
};
use common::{LONDON, Result};

#[tokio::main]
async fn main() -> ExitCode {
    common::bounded(run()).await
}

async fn run() -> Result<()> {
    let connection = common::connect("codex-desktop").await?;
    let sessions = connection.sessions();
    let devices = connection.trusted_devices();
    let account = common::unique("codex-user");
    let installation = common::unique("codex-install");

    // First sign-in on this installation: not trusted yet, so the app asks for a second factor.
    let trust = devices.check(&account, &installation).await?;
    println!("installation {installation} trusted: {}", trust.trusted);

    // The app signs in. Its registration carries a request id: sending it twice (say, after a
    // timeout) returns the same session instead of creating another.
    let sign_in = Registration::codex_desktop(&account, &installation)
        .user_agent(common::CODEX_MAC_APP)
        .ip(LONDON)
        .auth_method(AuthMethod::EmailCode)
        .request_id(common::unique("codex-signin"));
    let app = sessions.register(sign_in.clone()).await?;
    let again = sessions.register(sign_in).await?;
    println!(
        "signed in {account} on {} (session {}); the repeated registration replayed it: {}",
        app.session.device.description, app.session.session_id, again.replayed
    );
    if again.session.session_id != app.session.session_id {
        return Err("a retried registration created a second session".into());
    }

    // The app works: validate and record activity.
    let valid = sessions
        .validate(&app.token)
        .await?
        .ok_or("the app's session is not valid")?;
    sessions.touch(&app.token, Some(LONDON)).await?;
    println!(
        "validated session {} of {} ({:?})",
        valid.session_id, valid.account_id, valid.product
    );

    // The user passed a TOTP check: trust the installation for 30 days.
    let trusted = devices
        .trust(
            Trust::new(&account, &installation, Product::Codex, TrustMethod::Totp)
                .duration(Duration::from_secs(30 * 24 * 3600)),
        )
        .await?;
    println!(
        "trusted the installation via {:?} (renewed: {})",
        trusted.device.method, trusted.renewed
    );
    let trust = devices.check(&account, &installation).await?;
    println!(
        "next sign-in on this installation skips the second factor: trusted={} for {} more days",
        trust.trusted,
        trust.trusted_until.map_or(0, common::days_until)
    );

    // The user also uses ChatGPT in a browser, and opens the settings page there.
    let browser = sessions
        .register(
            Registration::chatgpt_browser(&account, common::unique("browser"))
                .user_agent(common::CHROME_MAC),
        )
        .await?;
    let me = Owner::token(&browser.token);
    let rows = sessions.list_all_rows(me.clone(), None).await?;
    let app_row = rows
        .iter()
        .find(|row| row.device_id == installation)
        .ok_or("the app's row is missing")?;
    println!(
        "settings page: the Codex row shows {:?}, trusted={}, action {:?}",
        app_row.products, app_row.trusted, app_row.log_out_action
    );
    if app_row.log_out_action != LogOutAction::LogOutAndRemove {
        return Err("a trusted row should offer log out and remove".into());
    }
    let listed = devices.list(me.clone(), ListOptions::new()).await?;
    println!("trusted devices: {}", listed.devices.len());

    // "Log out and remove": the session ends and the trust goes, in one step.
    let done = sessions.revoke_row(me.clone(), &installation, true).await?;
    println!(
        "log out and remove: {:?}, trust removed: {}",
        done.outcome, done.trust_removed
    );
    let still_valid = sessions.validate(&app.token).await?.is_some();
    let trust = devices.check(&account, &installation).await?;
    println!(
        "the app's session is valid: {still_valid}; the installation is trusted: {}",
        trust.trusted
    );
    if still_valid || trust.trusted {
        return Err("log out and remove left something behind".into());
    }
    let listed = devices.list(me, ListOptions::new()).await?;
    println!("trusted devices now: {}", listed.devices.len());
    Ok(())
}
