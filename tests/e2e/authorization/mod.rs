//! The authorization matrix: every RPC, called by every role (a product backend of the
//! target's product and of another product, the settings backend, the identity system, an
//! operator, and no credential at all), against the caller's own account and another account,
//! on the real server over real gRPC. Owner-facing calls are also made against an account linked
//! to organisation SSO (operators may act on it: break-glass; the settings role may not) and with
//! the caller's own token of a hidden kind (a CLI session, which does not prove the owner). The
//! observed table must equal the expected one, and docs/authorization.md must show it (run with
//! UPDATE_AUTHORIZATION_DOC=1 to rewrite it).
//!
//! The observed table is rendered here and compared with the expected one ([`expected`]); the
//! fixture ([`fixture`]) and the calls ([`calls`]) have their own files.

mod calls;
mod expected;
mod fixture;

use active_sessions_client::{ListOptions, Owner, RevokeAllOptions, SecurityEventType};
use active_sessions_e2e::{Backend, SignIn, TestApp, TestCaller, e2e};
use calls::call;
use expected::EXPECTED;
use fixture::fixture;

/// The columns: who calls.
const ROLES: [&str; 6] = [
    "none",
    "product (own)",
    "product (other)",
    "settings",
    "identity",
    "operator",
];

/// Which account a row is about, and how the settings caller presents its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Alice, through her browser session's token.
    Own,
    /// Bob: another account.
    Other,
    /// Carol, whose account is linked to organisation SSO.
    SsoLinked,
    /// Alice, through the token of her CLI session (a hidden kind).
    HiddenToken,
}

impl Target {
    fn parse(label: &str) -> Self {
        match label {
            "own" => Self::Own,
            "other" => Self::Other,
            "SSO-linked" => Self::SsoLinked,
            "own, CLI token" => Self::HiddenToken,
            other => panic!("no target {other}"),
        }
    }
}

fn render(rows: &[(String, String, Vec<String>)]) -> String {
    let mut table = format!(
        "| RPC | account | {} |\n|---|---|{}\n",
        ROLES.join(" | "),
        "---|".repeat(ROLES.len())
    );
    for (rpc, account, cells) in rows {
        table.push_str(&format!("| {rpc} | {account} | {} |\n", cells.join(" | ")));
    }
    table
}

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/authorization.md");
const BEGIN: &str = "<!-- matrix:begin -->\n";
const END: &str = "<!-- matrix:end -->";

async fn run_matrix(backend: Backend) {
    let callers = vec![
        TestCaller::new("chatgpt-web", &["product"], &["CHATGPT"]),
        TestCaller::new("codex", &["product"], &["CODEX"]),
        TestCaller::new("settings", &["settings"], &[]),
        TestCaller::new("identity", &["identity"], &[]),
        TestCaller::new("operator", &["operator"], &[]),
    ];
    let Some(app) = TestApp::spawn_with_callers(backend, callers).await else {
        return;
    };
    let operator = app.connect_as("operator").await;
    let fixture = fixture(&operator).await;
    let connections = [
        app.connect_with_token(None).await,
        app.connect_as("chatgpt-web").await,
        app.connect_as("codex").await,
        app.connect_as("settings").await,
        app.connect_as("identity").await,
        operator.clone(),
    ];
    let mut observed = Vec::new();
    for (rpc, account, _) in EXPECTED {
        let mut cells = Vec::new();
        for (i, connection) in connections.iter().enumerate() {
            cells.push(
                call(
                    rpc,
                    connection,
                    ROLES[i] == "settings",
                    Target::parse(account),
                    &fixture,
                )
                .await,
            );
        }
        observed.push(((*rpc).to_owned(), (*account).to_owned(), cells));
    }
    let expected: Vec<_> = EXPECTED
        .iter()
        .map(|(rpc, account, cells)| {
            (
                (*rpc).to_owned(),
                (*account).to_owned(),
                cells.iter().map(|c| (*c).to_owned()).collect(),
            )
        })
        .collect();
    let table = render(&observed);
    assert_eq!(
        table,
        render(&expected),
        "observed matrix differs from the expected one:\n{table}"
    );

    // Operators' actions are in the account's history under the operator's name, and
    // break-glass on the SSO-linked account is recorded too.
    let by_operator = |account: &str, kind: SecurityEventType| {
        let sessions = operator.sessions();
        let owner = Owner::account(account);
        async move {
            sessions
                .list_security_events(owner, ListOptions::default())
                .await
                .unwrap()
                .events
                .iter()
                .any(|event| event.kind == kind && event.actor == "operator:operator")
        }
    };
    assert!(by_operator("alice", SecurityEventType::LogOut).await);
    assert!(by_operator("carol", SecurityEventType::DeviceTrustRemoved).await);

    let doc = std::fs::read_to_string(DOC).unwrap_or_default();
    if std::env::var("UPDATE_AUTHORIZATION_DOC").is_ok() {
        let (head, rest) = doc
            .split_once(BEGIN)
            .expect("matrix markers in docs/authorization.md");
        let (_, tail) = rest.split_once(END).expect("matrix end marker");
        std::fs::write(DOC, format!("{head}{BEGIN}{table}{END}{tail}")).unwrap();
    } else {
        assert!(
            doc.contains(&format!("{BEGIN}{table}{END}")),
            "docs/authorization.md is out of date; rerun with UPDATE_AUTHORIZATION_DOC=1"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix_sqlite() {
    run_matrix(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix_postgres() {
    run_matrix(Backend::Postgres).await;
}

e2e! {
    async fn local_development_mode_allows_every_call_as_the_local_operator(app) {
        let (_, token) = app.sign_in(SignIn::browser("acct", "dev")).await;
        assert!(app.is_valid(&token).await);
        let sessions = app.connect_with_token(None).await.sessions();
        sessions.revoke_all(Owner::account("acct"), RevokeAllOptions::confirmed()).await.unwrap();
        let events = sessions.list_security_events(Owner::account("acct"), ListOptions::default()).await.unwrap().events;
        assert_eq!(events[0].actor, "operator:local");
    }
}
