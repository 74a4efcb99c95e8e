//! The typed client (`active-sessions-client`): typed calls round-trip, errors map to the
//! variants a caller acts on, idempotent calls retry and others never do, and the validation
//! cache never reports a revoked session valid once the revocation has reached its stream,
//! across stream breaks and server restarts too.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use active_sessions_client::{
    AuthMethod, ClientKind, Connection, Error, ListOptions, LogOutAction, Owner, Product,
    Registration, RetryPolicy, RevocationScope, RevokeAllOptions, RevokeOutcome, SecurityEventType,
    SessionClient, SsoProtocol, Trust, TrustMethod, ValidationCache, WorkspaceType,
};
use active_sessions_e2e::{
    Backend, TestApp, TestCaller, by_account, callers_file, e2e, pb, user_agents,
};
use tokio::task::JoinHandle;

const LONDON: IpAddr = IpAddr::V4(Ipv4Addr::new(81, 2, 69, 142));

/// A well-formed session token that no session has.
const UNKNOWN_TOKEN: &str = "ast_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// Writes a test twice, on SQLite and on PostgreSQL, for tests that start their own server.
macro_rules! each_backend {
    ($(#[$meta:meta])* async fn $name:ident($backend:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $backend = Backend::Sqlite;
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $backend = Backend::Postgres;
                $body
            }
        }
    };
}

fn endpoint(app: &TestApp) -> String {
    format!("http://{}", app.addr)
}

async fn connect(app: &TestApp) -> Connection {
    Connection::builder(endpoint(app))
        .user_agent("active-sessions-e2e")
        .connect()
        .await
        .expect("connect")
}

/// Registers a ChatGPT browser sign-in and returns its token.
async fn sign_in(sessions: &SessionClient, account: &str, device: &str) -> (String, String) {
    let registered = sessions
        .register(
            Registration::chatgpt_browser(account, device)
                .user_agent(user_agents::CHROME_MAC)
                .ip(LONDON)
                .auth_method(AuthMethod::Password),
        )
        .await
        .expect("registration");
    (registered.session.session_id, registered.token)
}

/// True when the violations name `field`.
fn names(violations: &[(String, String)], field: &str) -> bool {
    violations.iter().any(|(name, _)| name == field)
}

/// Waits (at most `limit`) until `condition` holds; returns how long it took.
async fn within(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < limit,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

// ---------------------------------------------------------------------------------------------
// Typed calls
// ---------------------------------------------------------------------------------------------

e2e! {
    async fn typed_calls_round_trip(app) {
        let connection = connect(&app).await;
        let sessions = connection.sessions();
        let devices = connection.trusted_devices();
        let eligibility = connection.eligibility();

        // A browser signs in to ChatGPT; a request id is generated.
        let chatgpt = sessions
            .register(
                Registration::chatgpt_browser("acct-typed", "browser-1")
                    .user_agent(user_agents::CHROME_MAC)
                    .ip(LONDON)
                    .auth_method(AuthMethod::Passkey),
            )
            .await
            .unwrap();
        assert!(chatgpt.token.starts_with("ast_"));
        assert!(chatgpt.request_id.starts_with("req_"));
        assert!(!chatgpt.replayed);
        assert!(!format!("{chatgpt:?}").contains(&chatgpt.token), "Debug hides the token");
        let session = &chatgpt.session;
        assert_eq!(session.account_id, "acct-typed");
        assert_eq!(session.product, Product::Chatgpt);
        assert_eq!(session.client_kind, ClientKind::Browser);
        assert_eq!(session.auth_method, AuthMethod::Passkey);
        assert_eq!(session.device.browser, "Chrome");
        assert_eq!(session.location.country_code, "GB");
        assert!(session.signed_in_at.is_some() && session.expires_at.is_some());

        // The same browser signs in to API Platform; a Codex desktop app signs in elsewhere.
        let platform = sessions
            .register(Registration::api_platform_browser("acct-typed", "browser-1").ip(LONDON))
            .await
            .unwrap();
        let codex = sessions
            .register(
                Registration::codex_desktop("acct-typed", "install-1")
                    .user_agent(user_agents::CODEX_MAC_APP)
                    .lifetime(Duration::from_secs(3_600)),
            )
            .await
            .unwrap();

        // A registration retried with its request id returns the original session.
        let first = sessions
            .register(Registration::chatgpt_browser("acct-typed", "browser-2").request_id("signin-42"))
            .await
            .unwrap();
        let again = sessions
            .register(Registration::chatgpt_browser("acct-typed", "browser-2").request_id("signin-42"))
            .await
            .unwrap();
        assert!(again.replayed);
        assert_eq!(again.token, first.token);
        assert_eq!(again.session.session_id, first.session.session_id);

        // Validation.
        let valid = sessions.validate(&chatgpt.token).await.unwrap().expect("valid");
        assert_eq!(valid.session_id, session.session_id);
        assert_eq!(valid.account_id, "acct-typed");
        assert_eq!(valid.device_id, "browser-1");
        assert_eq!(valid.product, Product::Chatgpt);
        assert!(valid.signed_in_at <= valid.valid_until());
        assert!(sessions.validate(UNKNOWN_TOKEN).await.unwrap().is_none());
        assert_eq!(sessions.touch(&chatgpt.token, Some(LONDON)).await.unwrap(), session.session_id);

        // Trust the Codex installation; the rows show it.
        let trusted = devices
            .trust(Trust::new("acct-typed", "install-1", Product::Codex, TrustMethod::Totp))
            .await
            .unwrap();
        assert!(!trusted.renewed);
        assert_eq!(trusted.device.method, TrustMethod::Totp);
        assert!(devices.check("acct-typed", "install-1").await.unwrap().trusted);
        assert!(!devices.check("acct-typed", "browser-1").await.unwrap().trusted);
        let listed = devices.list(Owner::account("acct-typed"), ListOptions::new()).await.unwrap();
        assert_eq!(listed.devices.len(), 1);
        assert_eq!(listed.next_page_token, None);

        // The settings page, as the user of browser-1: one row with two products.
        let owner = Owner::token(&chatgpt.token);
        let rows = sessions.list_all_rows(owner.clone(), None).await.unwrap();
        assert_eq!(rows.len(), 3, "{rows:#?}");
        let browser = rows.iter().find(|row| row.device_id == "browser-1").unwrap();
        assert_eq!(browser.products, [Product::Chatgpt, Product::ApiPlatform]);
        assert_eq!(browser.sessions.len(), 2);
        assert!(browser.current);
        assert_eq!(browser.log_out_action, LogOutAction::None);
        let app_row = rows.iter().find(|row| row.device_id == "install-1").unwrap();
        assert!(app_row.trusted);
        assert_eq!(app_row.log_out_action, LogOutAction::LogOutAndRemove);

        // Paging and filtering.
        let page = sessions.list_rows(owner.clone(), ListOptions::new().page_size(2)).await.unwrap();
        assert_eq!(page.rows.len(), 2);
        let rest = sessions
            .list_rows(owner.clone(), ListOptions::new().page_size(2).page_token(page.next_page_token.unwrap()))
            .await
            .unwrap();
        assert_eq!(rest.rows.len(), 1);
        assert_eq!(rest.next_page_token, None);
        let codex_rows = sessions.list_all_rows(owner.clone(), Some(Product::Codex)).await.unwrap();
        assert_eq!(codex_rows.len(), 1);

        // Log out the Codex row: the confirmation step changes nothing, then it is done.
        let preview = sessions.revoke_row(owner.clone(), "install-1", false).await.unwrap();
        assert_eq!(preview.outcome, RevokeOutcome::LoggedOutAndRemoved);
        assert_eq!(preview.session_ids, std::slice::from_ref(&codex.session.session_id));
        assert!(preview.revocation.is_none());
        assert!(sessions.validate(&codex.token).await.unwrap().is_some());
        let done = sessions.revoke_row(owner.clone(), "install-1", true).await.unwrap();
        assert!(done.trust_removed);
        let revocation = done.revocation.expect("recorded");
        assert_eq!(revocation.scope, RevocationScope::Device);
        assert_eq!(revocation.device_id.as_deref(), Some("install-1"));
        assert!(sessions.validate(&codex.token).await.unwrap().is_none());
        assert!(!devices.check("acct-typed", "install-1").await.unwrap().trusted);
        let fetched = sessions.get_revocation(owner.clone(), &revocation.revocation_id).await.unwrap();
        assert!(fetched.complete);
        assert_eq!(fetched.session_ids, std::slice::from_ref(&codex.session.session_id));

        // Eligibility and the account record.
        let checked = eligibility.check(owner.clone()).await.unwrap();
        assert!(checked.eligible);
        assert_eq!(checked.account_id, "acct-typed");
        let account = eligibility.set_workspace_type("acct-typed", WorkspaceType::Managed).await.unwrap();
        assert_eq!(account.workspace_type, WorkspaceType::Managed);
        assert_eq!(eligibility.get_account("acct-typed").await.unwrap().sso_link, None);

        // Log out of all sessions: the preview records nothing, then everything ends.
        let preview = sessions.revoke_all(owner.clone(), RevokeAllOptions::preview()).await.unwrap();
        assert!(preview.revocation_id.is_empty());
        assert_eq!(preview.sessions_revoked, 3);
        assert!(sessions.validate(&platform.token).await.unwrap().is_some());
        let all = sessions.revoke_all(owner.clone(), RevokeAllOptions::confirmed()).await.unwrap();
        assert_eq!(all.scope, RevocationScope::All);
        assert!(all.revoked_before.is_some());
        for token in [&chatgpt.token, &platform.token, &first.token] {
            assert!(sessions.validate(token).await.unwrap().is_none());
        }

        // The history.
        let history = sessions
            .list_security_events(Owner::account("acct-typed"), ListOptions::new().page_size(100))
            .await
            .unwrap();
        let kinds: Vec<SecurityEventType> = history.events.iter().map(|event| event.kind).collect();
        assert!(kinds.contains(&SecurityEventType::SignIn));
        assert!(kinds.contains(&SecurityEventType::LogOut));
        assert!(kinds.contains(&SecurityEventType::LogOutAll));
        assert!(kinds.contains(&SecurityEventType::DeviceTrusted));
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

e2e! {
    async fn errors_map_to_the_variants_a_caller_acts_on(app) {
        let connection = connect(&app).await;
        let sessions = connection.sessions();
        let eligibility = connection.eligibility();
        let (_, token) = sign_in(&sessions, "acct-errors", "browser-1").await;
        let owner = Owner::token(&token);

        // SSO-linked accounts may not use the page.
        eligibility.set_sso_link("acct-sso", SsoProtocol::Saml, "org-1").await.unwrap();
        let (_, sso_token) = sign_in(&sessions, "acct-sso", "browser-1").await;
        let err = sessions.list_rows(Owner::token(&sso_token), ListOptions::new()).await.unwrap_err();
        assert!(matches!(err, Error::SsoLinked { protocol: SsoProtocol::Saml }), "{err:?}");
        eligibility.set_sso_link("acct-sso", SsoProtocol::Oidc, "org-1").await.unwrap();
        let err = sessions.revoke_all(Owner::token(&sso_token), RevokeAllOptions::confirmed()).await.unwrap_err();
        assert!(matches!(err, Error::SsoLinked { protocol: SsoProtocol::Oidc }), "{err:?}");
        assert!(!eligibility.check(Owner::account("acct-sso")).await.unwrap().eligible);

        // The current session's row.
        let err = sessions.revoke_row(owner.clone(), "browser-1", true).await.unwrap_err();
        assert!(matches!(err, Error::CurrentSession), "{err:?}");
        assert!(!err.is_retryable());

        // A row whose status cannot be confirmed.
        sessions
            .register(Registration::chatgpt_browser("acct-errors", "legacy").status_unavailable())
            .await
            .unwrap();
        let err = sessions.revoke_row(owner.clone(), "legacy", true).await.unwrap_err();
        assert!(matches!(err, Error::StatusUnavailable), "{err:?}");

        // Not found: a device never seen, an account never seen, a token not signed in.
        let err = sessions.revoke_row(owner.clone(), "no-such-device", true).await.unwrap_err();
        assert!(matches!(err, Error::NotFound), "{err:?}");
        let err = eligibility.get_account("acct-never-seen").await.unwrap_err();
        assert!(matches!(err, Error::NotFound), "{err:?}");
        let err = sessions.touch(UNKNOWN_TOKEN, None).await.unwrap_err();
        assert!(matches!(err, Error::NotFound), "{err:?}");

        // Invalid arguments name their fields.
        let err = sessions
            .register(Registration::new("", Product::Unspecified, ClientKind::Browser, ""))
            .await
            .unwrap_err();
        let Error::InvalidArgument { violations } = &err else { panic!("{err:?}") };
        let fields: Vec<&str> = violations.iter().map(|(field, _)| field.as_str()).collect();
        for field in ["account_id", "product", "device_id"] {
            assert!(fields.contains(&field), "{field} missing from {violations:?}");
        }
        assert!(violations.iter().all(|(_, description)| !description.is_empty()));
        // A malformed token is not signed in, not an error: `None`, NOT_FOUND for a touch,
        // and SESSION_NOT_VALID as an owner.
        for malformed in ["not-a-token", "ast_!!!", &format!("ast_{}B", "A".repeat(42))] {
            assert_eq!(sessions.validate(malformed).await.unwrap(), None, "{malformed}");
            let err = sessions.touch(malformed, None).await.unwrap_err();
            assert!(matches!(err, Error::NotFound), "{err:?}");
            let err = sessions
                .list_rows(Owner::token(malformed), ListOptions::new())
                .await
                .unwrap_err();
            assert!(matches!(err, Error::SessionNotValid), "{err:?}");
        }
        let err = sessions
            .list_rows(owner.clone(), ListOptions::new().page_token("forged"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidArgument { violations } if names(violations, "page_token")),
            "{err:?}"
        );

        // A user token that is not signed in.
        let err = sessions.list_rows(Owner::token(UNKNOWN_TOKEN), ListOptions::new()).await.unwrap_err();
        assert!(matches!(err, Error::SessionNotValid), "{err:?}");

        // A request id reused for another sign-in.
        sessions
            .register(Registration::chatgpt_browser("acct-errors", "browser-2").request_id("signin-7"))
            .await
            .unwrap();
        let err = sessions
            .register(Registration::chatgpt_browser("acct-errors", "browser-3").request_id("signin-7"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::RequestIdReused), "{err:?}");

        // A revocation cursor the server has never issued.
        let err = sessions.watch_revocations(Some("999999999"), &[]).await.unwrap_err();
        assert!(matches!(err, Error::CursorExpired), "{err:?}");
    }
}

each_backend! {
    async fn callers_without_a_credential_or_the_role_are_told_apart(backend) {
        let callers = vec![
            TestCaller::new("settings", &["settings"], &[]),
            TestCaller::new("chatgpt", &["product"], &["CHATGPT"]),
        ];
        let Some(app) = TestApp::spawn_with_callers(backend, callers).await else {
            return;
        };

        let anonymous = app.connect_with_token(None).await.sessions();
        let err = anonymous.validate(UNKNOWN_TOKEN).await.unwrap_err();
        assert!(matches!(err, Error::Unauthenticated), "{err:?}");
        let stranger = app.connect_with_token(Some("not-a-known-token")).await.sessions();
        let err = stranger.validate(UNKNOWN_TOKEN).await.unwrap_err();
        assert!(matches!(err, Error::Unauthenticated), "{err:?}");

        // The settings backend may not register sessions; ChatGPT may not act for Codex.
        let settings = app.connect_as("settings").await;
        let err = settings
            .sessions()
            .register(Registration::chatgpt_browser("acct-roles", "browser-1"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::PermissionDenied), "{err:?}");
        let chatgpt = app.connect_as("chatgpt").await.sessions();
        let err = chatgpt
            .register(Registration::codex_desktop("acct-roles", "install-1"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::PermissionDenied), "{err:?}");
        let err = chatgpt.watch_revocations(None, &[Product::Codex]).await.unwrap_err();
        assert!(matches!(err, Error::PermissionDenied), "{err:?}");

        // What each may do still works.
        let (_, token) = sign_in(&chatgpt, "acct-roles", "browser-1").await;
        assert!(chatgpt.validate(&token).await.unwrap().is_some());
        let rows = settings.sessions().list_all_rows(Owner::token(&token), None).await.unwrap();
        assert_eq!(rows.len(), 1);
        let err = settings
            .sessions()
            .list_rows(Owner::account("acct-roles"), ListOptions::new())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::PermissionDenied), "{err:?}");

        app.stop().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Retries
// ---------------------------------------------------------------------------------------------

/// A registration whose request never arrives: it holds one of the server's in-flight slots
/// until it is aborted (or the server's request timeout passes).
fn stalled_registration(
    app: &TestApp,
) -> JoinHandle<Result<pb::RegisterSessionResponse, tonic::Status>> {
    let channel = app.channel.clone();
    tokio::spawn(async move {
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready()
            .await
            .map_err(|err| tonic::Status::unavailable(err.to_string()))?;
        grpc.client_streaming(
            tonic::Request::new(futures::stream::pending::<pb::RegisterSessionRequest>()),
            http::uri::PathAndQuery::from_static(
                "/activesessions.v1.SessionService/RegisterSession",
            ),
            active_sessions::codec::ActiveSessionsCodec::<
                pb::RegisterSessionRequest,
                pb::RegisterSessionResponse,
            >::default(),
        )
        .await
        .map(tonic::Response::into_inner)
    })
}

/// Holds the only in-flight slot of a server started with `max_concurrent_calls = 1`, and
/// returns once a cheap call is being shed.
async fn hold_the_only_slot(
    app: &TestApp,
    probe: &SessionClient,
) -> JoinHandle<Result<pb::RegisterSessionResponse, tonic::Status>> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut holder = stalled_registration(app);
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if holder.is_finished() {
            // Our holder was itself shed by a call still finishing: try again.
            holder = stalled_registration(app);
            continue;
        }
        match probe.validate(UNKNOWN_TOKEN).await {
            Err(Error::Overloaded { .. }) if !holder.is_finished() => return holder,
            other => assert!(Instant::now() < deadline, "never shed: {other:?}"),
        }
    }
}

each_backend! {
    async fn idempotent_calls_retry_through_overload_and_other_calls_never_do(backend) {
        let Some(app) = TestApp::spawn_with(backend, |config| {
            config.security.max_concurrent_calls = 1;
        })
        .await
        else {
            return;
        };
        let patient = RetryPolicy::default()
            .max_attempts(200)
            .backoff(Duration::from_millis(10), Duration::from_millis(50))
            .deadline(Duration::from_secs(20));
        let connection = Connection::builder(endpoint(&app)).retry_policy(patient).connect().await.unwrap();
        let sessions = connection.sessions();
        let (_, token) = sign_in(&sessions, "acct-retry", "browser-1").await;
        let once = sessions.clone().with_retry_policy(RetryPolicy::no_retries());

        let holder = hold_the_only_slot(&app, &once).await;

        // Calls that change state make one attempt, however patient the policy.
        let started = Instant::now();
        let err = sessions.touch(&token, None).await.unwrap_err();
        assert!(matches!(err, Error::Overloaded { retry_after: Some(_) }), "{err:?}");
        assert!(err.is_retryable());
        let err = sessions.revoke_row(Owner::account("acct-retry"), "browser-1", true).await.unwrap_err();
        assert!(matches!(err, Error::Overloaded { .. }), "{err:?}");
        let err = sessions.revoke_all(Owner::account("acct-retry"), RevokeAllOptions::confirmed()).await.unwrap_err();
        assert!(matches!(err, Error::Overloaded { .. }), "{err:?}");
        let err = connection
            .trusted_devices()
            .trust(Trust::new("acct-retry", "browser-1", Product::Chatgpt, TrustMethod::Totp))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Overloaded { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "not retried: {:?}", started.elapsed());
        // An idempotent call with a policy of one attempt fails at once too.
        assert!(matches!(once.validate(&token).await, Err(Error::Overloaded { .. })));

        // Idempotent calls keep trying while the slot is held, and succeed once it is free.
        let validation = tokio::spawn({
            let sessions = sessions.clone();
            let token = token.clone();
            async move { sessions.validate(&token).await }
        });
        let registration = tokio::spawn({
            let sessions = sessions.clone();
            async move { sessions.register(Registration::chatgpt_browser("acct-retry", "browser-2")).await }
        });
        let listing = tokio::spawn({
            let sessions = sessions.clone();
            async move { sessions.list_all_rows(Owner::account("acct-retry"), None).await }
        });
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!validation.is_finished() && !registration.is_finished() && !listing.is_finished());
        holder.abort();

        let released = Instant::now();
        assert!(validation.await.unwrap().unwrap().is_some());
        let registered = registration.await.unwrap().unwrap();
        listing.await.unwrap().unwrap();
        assert!(released.elapsed() < Duration::from_secs(10));
        // The retried registration created exactly one session (its request id made any repeat
        // a replay).
        let rows = sessions.list_all_rows(Owner::account("acct-retry"), None).await.unwrap();
        let browser_2 = rows.iter().find(|row| row.device_id == "browser-2").unwrap();
        assert_eq!(browser_2.sessions.len(), 1);
        assert_eq!(browser_2.sessions[0].session_id, registered.session.session_id);

        // Nothing the refused calls asked for happened.
        assert!(sessions.validate(&token).await.unwrap().is_some());
        assert!(!connection.trusted_devices().check("acct-retry", "browser-1").await.unwrap().trusted);

        app.stop().await;
    }
}

each_backend! {
    async fn rate_limited_reads_wait_for_the_retry_delay_and_writes_report_it(backend) {
        let caller = TestCaller::new("chatgpt", &["product", "settings"], &["CHATGPT"]);
        let scratch = tempfile::tempdir().unwrap();
        let path = scratch.path().join("callers.toml");
        let entry = callers_file(std::slice::from_ref(&caller));
        std::fs::write(&path, format!("{}\nrate_limit_per_second = 1\n", entry.trim_end())).unwrap();
        let Some(app) = TestApp::spawn_with(backend, |config| {
            config.security.callers_file = Some(path.clone());
        })
        .await
        else {
            return;
        };
        let connection = Connection::builder(endpoint(&app))
            .bearer_token(caller.token.clone())
            .retry_policy(RetryPolicy::default().deadline(Duration::from_secs(5)))
            .connect()
            .await
            .unwrap();
        let sessions = connection.sessions();

        // One call a second: the second validation waits for the server's delay, then succeeds.
        assert!(sessions.validate(UNKNOWN_TOKEN).await.unwrap().is_none());
        let started = Instant::now();
        assert!(sessions.validate(UNKNOWN_TOKEN).await.unwrap().is_none());
        assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());

        // Without retries the same call reports the delay; a touch reports it whatever the policy.
        let impatient = sessions.clone().with_retry_policy(RetryPolicy::no_retries());
        let err = impatient.validate(UNKNOWN_TOKEN).await.unwrap_err();
        let Error::RateLimited { retry_after: Some(delay) } = err else { panic!("{err:?}") };
        assert!(delay > Duration::ZERO && delay <= Duration::from_secs(1), "{delay:?}");
        let started = Instant::now();
        let err = sessions.touch(UNKNOWN_TOKEN, None).await.unwrap_err();
        assert!(matches!(err, Error::RateLimited { retry_after: Some(_) }), "{err:?}");
        assert!(err.is_retryable());
        assert!(started.elapsed() < Duration::from_millis(300), "touch was retried");

        app.stop().await;
    }
}

// ---------------------------------------------------------------------------------------------
// The validation cache
// ---------------------------------------------------------------------------------------------

/// Starts a cache over a fresh connection to `app` and waits until its stream is live.
async fn live_cache(
    app: &TestApp,
    adjust: impl FnOnce(
        active_sessions_client::ValidationCacheBuilder,
    ) -> active_sessions_client::ValidationCacheBuilder,
) -> ValidationCache {
    let cache = adjust(ValidationCache::builder(connect(app).await))
        .start()
        .await;
    tokio::time::timeout(Duration::from_secs(10), cache.wait_live())
        .await
        .expect("the cache's stream goes live");
    cache
}

e2e! {
    async fn the_cache_never_reports_a_revoked_session_valid_once_the_revocation_reached_its_stream(app) {
        let connection = connect(&app).await;
        let sessions = connection.sessions();
        let cache = live_cache(&app, |builder| builder).await;

        // Ten sessions on two accounts; each is validated once (from the server) and then from
        // memory.
        let mut tokens: Vec<(String, String, String, String)> = Vec::new(); // account, device, session, token
        for account in ["acct-1", "acct-2"] {
            for device in ["d0", "d1", "d2", "d3"] {
                let (session, token) = sign_in(&sessions, account, device).await;
                tokens.push((account.into(), device.into(), session, token));
            }
        }
        let codex = sessions.register(Registration::codex_desktop("acct-1", "install")).await.unwrap();
        tokens.push(("acct-1".into(), "install".into(), codex.session.session_id.clone(), codex.token.clone()));
        let hidden = sessions.register(Registration::codex_cli("acct-2", "cli")).await.unwrap();
        tokens.push(("acct-2".into(), "cli".into(), hidden.session.session_id.clone(), hidden.token.clone()));
        for (_, _, session, token) in &tokens {
            assert_eq!(cache.validate(token).await.unwrap().unwrap().session_id, *session);
        }
        let before = cache.stats();
        for (_, _, _, token) in &tokens {
            assert!(cache.validate(token).await.unwrap().is_some());
        }
        let stats = cache.stats();
        assert_eq!(stats.hits - before.hits, tokens.len() as u64, "{stats:?}");
        assert_eq!(stats.entries, tokens.len());

        // A validator hammers the cache throughout. A validation that starts after the
        // revocation of its token reached the stream must not say valid.
        let revoked: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let hammer = tokio::spawn({
            let cache = cache.clone();
            let revoked = revoked.clone();
            let stop = stop.clone();
            let tokens: Vec<String> = tokens.iter().map(|(_, _, _, token)| token.clone()).collect();
            async move {
                let mut checked = 0_u64;
                while !stop.load(Ordering::SeqCst) {
                    for token in &tokens {
                        let applied = cache.stats().revocations_applied;
                        let answer = cache.validate(token).await.expect("validation");
                        let revoked_at = revoked.lock().unwrap().get(token).copied();
                        if let Some(revoked_at) = revoked_at
                            && revoked_at <= applied
                        {
                            assert!(
                                answer.is_none(),
                                "revocation #{revoked_at} had reached the stream, yet the cache said valid"
                            );
                            checked += 1;
                        }
                    }
                }
                checked
            }
        });

        let owner_1 = Owner::account("acct-1");
        let owner_2 = Owner::account("acct-2");
        let devices = connection.trusted_devices();
        devices.trust(Trust::new("acct-2", "d0", Product::Chatgpt, TrustMethod::Passkey)).await.unwrap();
        let mut expected_revoked: Vec<&str> = Vec::new();
        for step in 0..5 {
            let (covered, scope): (Vec<&str>, RevocationScope) = match step {
                0 => {
                    sessions.revoke_session(owner_1.clone(), &tokens[0].2, true).await.unwrap();
                    (vec![tokens[0].3.as_str()], RevocationScope::Session)
                }
                1 => {
                    sessions.revoke_row(owner_1.clone(), "d1", true).await.unwrap();
                    (vec![tokens[1].3.as_str()], RevocationScope::Device)
                }
                2 => {
                    let removed = devices.remove(owner_2.clone(), "d0", true).await.unwrap();
                    assert_eq!(removed.revoked_session_ids, std::slice::from_ref(&tokens[4].2));
                    (vec![tokens[4].3.as_str()], RevocationScope::Device)
                }
                3 => {
                    sessions.revoke_all(owner_2.clone(), RevokeAllOptions::confirmed()).await.unwrap();
                    (vec![tokens[5].3.as_str(), tokens[6].3.as_str(), tokens[7].3.as_str()], RevocationScope::All)
                }
                _ => {
                    sessions.revoke_row(owner_1.clone(), "install", true).await.unwrap();
                    (vec![tokens[8].3.as_str()], RevocationScope::Device)
                }
            };
            let k = step + 1;
            // The revocation reaches the cache within a second of the log-out returning.
            let took = within(Duration::from_secs(1), "the revocation reaching the cache", || {
                cache.stats().revocations_applied >= k
            })
            .await;
            eprintln!("revocation #{k} ({scope:?}) reached the cache after {took:?}");
            {
                let mut revoked = revoked.lock().unwrap();
                for token in &covered {
                    revoked.insert((*token).to_owned(), k);
                }
            }
            expected_revoked.extend(covered);
            // Now: every revoked token is refused (and not from memory), every other one is
            // still valid.
            for (_, _, _, token) in &tokens {
                let answer = cache.validate(token).await.unwrap();
                assert_eq!(answer.is_none(), expected_revoked.contains(&token.as_str()), "after step {k}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.store(true, Ordering::SeqCst);
        let checked = hammer.await.expect("the hammer found no stale answer");
        assert!(checked > 0);

        // Still valid: the sessions no revocation covered, and the hidden CLI session, which a
        // log-out of all sessions does not end. The cache cannot tell a hidden kind apart, so it
        // dropped that one with its account and does not cache it again while it remembers the
        // log-out: it is answered by the server.
        let stats = cache.stats();
        eprintln!("{stats:?}, {checked} checks of revoked tokens");
        assert_eq!(stats.revocations_applied, 5);
        assert!(stats.hits > 0 && stats.live);
        let still_valid: Vec<&str> = tokens
            .iter()
            .map(|(_, _, _, token)| token.as_str())
            .filter(|token| !expected_revoked.contains(token))
            .collect();
        assert_eq!(still_valid, [tokens[2].3.as_str(), tokens[3].3.as_str(), hidden.token.as_str()]);
        assert_eq!(stats.entries, 2);
    }
}

e2e! {
    async fn the_cache_answers_from_the_server_while_its_stream_is_down_and_resumes_from_its_cursor(app) {
        // The cache's connector reads the server's address from here, so a restarted server
        // (on a new port) can be reached once the test says so.
        let address = Arc::new(Mutex::new(endpoint(&app)));
        let cache = ValidationCache::builder_with_connector({
            let address = address.clone();
            move || {
                let endpoint = address.lock().unwrap().clone();
                async move {
                    Connection::builder(endpoint)
                        .retry_policy(RetryPolicy::default().deadline(Duration::from_secs(1)))
                        .connect()
                        .await
                }
            }
        })
        .max_reconnect_delay(Duration::from_millis(200))
        .start()
        .await;
        tokio::time::timeout(Duration::from_secs(10), cache.wait_live()).await.expect("live");

        let sessions = connect(&app).await.sessions();
        let (session_a1, token_a1) = sign_in(&sessions, "acct-a", "d1").await;
        let (_, token_a2) = sign_in(&sessions, "acct-a", "d2").await;
        let (_, token_b1) = sign_in(&sessions, "acct-b", "d1").await;
        let (_, token_b2) = sign_in(&sessions, "acct-b", "d2").await;
        let all = [&token_a1, &token_a2, &token_b1, &token_b2];
        for token in all {
            assert!(cache.validate(token).await.unwrap().is_some());
            assert!(cache.validate(token).await.unwrap().is_some());
        }
        assert_eq!(cache.stats().hits, 4);
        let cursor = cache.cursor().expect("a cursor");

        // The server restarts on a new port: the stream breaks, and the cache stops answering
        // from memory (it cannot reach the server at the old address either).
        app.restart().await;
        tokio::time::timeout(Duration::from_secs(15), cache.wait_not_live()).await.expect("the stream breaks");
        let before = cache.stats();
        let answer = cache.validate(&token_a1).await;
        assert!(answer.is_err(), "answered while the stream was down: {answer:?}");
        let after = cache.stats();
        assert_eq!(after.hits, before.hits, "answered from memory while the stream was down");
        assert_eq!(after.bypassed, before.bypassed + 1);

        // While the stream is down, one session and then a whole account are logged out.
        app.sessions()
            .revoke_session(pb::RevokeSessionRequest {
                subject: Some(by_account("acct-a")),
                target: Some(pb::revoke_session_request::Target::SessionId(session_a1.clone())),
                validate_only: false,
            })
            .await
            .unwrap();
        app.sessions()
            .revoke_all_sessions(pb::RevokeAllSessionsRequest {
                subject: Some(by_account("acct-b")),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(!cache.is_live());
        assert_eq!(cache.len(), 4, "nothing reached the cache yet");
        assert_eq!(cache.stats().revocations_applied, 0);

        // The cache finds the server again and resumes from its cursor: both revocations are
        // applied before it answers from memory.
        *address.lock().unwrap() = endpoint(&app);
        tokio::time::timeout(Duration::from_secs(10), cache.wait_live()).await.expect("live again");
        let stats = cache.stats();
        assert_eq!(stats.revocations_applied, 2, "{stats:?}");
        assert_eq!(stats.streams_opened, 2);
        assert_eq!(stats.entries, 1, "only acct-a's d2 session is left");
        assert_ne!(cache.cursor().unwrap(), cursor);
        for token in [&token_a1, &token_b1, &token_b2] {
            assert!(cache.validate(token).await.unwrap().is_none());
        }
        let hits = cache.stats().hits;
        assert!(cache.validate(&token_a2).await.unwrap().is_some());
        assert_eq!(cache.stats().hits, hits + 1, "the surviving session is answered from memory");
    }
}

e2e! {
    async fn the_cache_is_bounded_in_size_and_age_and_reconnects_on_request(app) {
        let sessions = connect(&app).await.sessions();
        let mut tokens = Vec::new();
        for device in ["d0", "d1", "d2"] {
            tokens.push(sign_in(&sessions, "acct-bounds", device).await.1);
        }
        let codex = sessions.register(Registration::codex_desktop("acct-bounds", "install")).await.unwrap();

        // At most two entries: the oldest goes first.
        let cache = live_cache(&app, |builder| builder.max_entries(2).products([Product::Chatgpt])).await;
        for token in &tokens {
            cache.validate(token).await.unwrap();
        }
        assert_eq!(cache.len(), 2);
        let misses = cache.stats().misses;
        cache.validate(&tokens[0]).await.unwrap();
        assert_eq!(cache.stats().misses, misses + 1, "the oldest entry was dropped");
        // Sessions of products outside the cache's are validated but never cached.
        assert!(cache.validate(&codex.token).await.unwrap().is_some());
        assert!(cache.validate(&codex.token).await.unwrap().is_some());
        assert_eq!(cache.stats().misses, misses + 3);

        // Told to reconnect, the cache reopens its stream from its cursor and keeps its entries.
        cache.reconnect();
        within(Duration::from_secs(5), "the stream reopening", || {
            let stats = cache.stats();
            stats.streams_opened == 2 && stats.live
        })
        .await;
        let hits = cache.stats().hits;
        cache.validate(&tokens[2]).await.unwrap();
        assert_eq!(cache.stats().hits, hits + 1);

        // Entries expire after the maximum age.
        let cache = live_cache(&app, |builder| builder.max_age(Duration::from_millis(300))).await;
        cache.validate(&tokens[0]).await.unwrap();
        cache.validate(&tokens[0]).await.unwrap();
        assert_eq!(cache.stats().hits, 1);
        tokio::time::sleep(Duration::from_millis(400)).await;
        cache.validate(&tokens[0]).await.unwrap();
        assert_eq!(cache.stats().hits, 1, "an entry older than the maximum age is not used");
    }
}

e2e! {
    async fn the_cache_drops_everything_when_the_server_does_not_know_its_cursor(app) {
        let sessions = connect(&app).await.sessions();
        let (_, keep) = sign_in(&sessions, "acct-cursor", "d0").await;
        let (_, gone) = sign_in(&sessions, "acct-cursor", "d1").await;
        sessions.revoke_row(Owner::account("acct-cursor"), "d1", true).await.unwrap();
        assert!(sessions.validate(&gone).await.unwrap().is_none());

        // The cache starts here, then is pointed at a server over another database, whose
        // revocation log is shorter than the cache's cursor.
        let Some(other) = TestApp::spawn(app.backend).await else { return };
        let address = Arc::new(Mutex::new(endpoint(&app)));
        let cache = ValidationCache::builder_with_connector({
            let address = address.clone();
            move || {
                let endpoint = address.lock().unwrap().clone();
                async move { Connection::builder(endpoint).connect().await }
            }
        })
        .max_reconnect_delay(Duration::from_millis(100))
        .start()
        .await;
        tokio::time::timeout(Duration::from_secs(10), cache.wait_live()).await.expect("live");
        cache.validate(&keep).await.unwrap();
        assert_eq!(cache.len(), 1);
        let cursor = cache.cursor().expect("a cursor");

        *address.lock().unwrap() = endpoint(&other);
        cache.reconnect();
        within(Duration::from_secs(10), "the stream opening on the other server", || {
            let stats = cache.stats();
            stats.streams_opened == 2 && stats.live
        })
        .await;
        assert!(cache.is_empty(), "an unknown cursor drops every cached validation");
        assert_ne!(cache.cursor().expect("a new cursor"), cursor);
        assert!(cache.last_stream_error().is_some_and(|err| err.contains("cursor")));
        other.stop().await;
    }
}

e2e! {
    async fn the_cache_stream_outlives_the_connection_request_timeout(app) {
        // A short per-call deadline bounds unary calls, never the long-lived stream.
        let connection = Connection::builder(endpoint(&app))
            .request_timeout(Duration::from_millis(300))
            .connect()
            .await
            .unwrap();
        let cache = ValidationCache::builder(connection.clone()).start().await;
        tokio::time::timeout(Duration::from_secs(10), cache.wait_live()).await.expect("live");
        let (_, token) = sign_in(&connection.sessions(), "acct-deadline", "d0").await;
        cache.validate(&token).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let stats = cache.stats();
        assert!(stats.live && stats.streams_opened == 1, "{stats:?}, {:?}", cache.last_stream_error());
        connection.sessions().revoke_row(Owner::account("acct-deadline"), "d0", true).await.unwrap();
        within(Duration::from_secs(1), "the revocation reaching the cache", || {
            cache.stats().revocations_applied == 1
        })
        .await;
        assert!(cache.validate(&token).await.unwrap().is_none());
    }
}
