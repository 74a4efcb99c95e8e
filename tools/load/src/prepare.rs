//! `prepare`: registers sessions across accounts through the real client and writes ghz data
//! files, JSON arrays of request messages that ghz cycles through with `-D` (call `n` sends
//! element `n % len`, ghz's `runner/worker.go`):
//!
//! | file | one element per | element |
//! | --- | --- | --- |
//! | `validate.json` | session | `{"sessionToken": "ast_…"}` |
//! | `list.json` | session | `{"subject": {"sessionToken": "ast_…"}, "pageSize": 50}` |
//! | `check_eligibility.json` | account | `{"subject": {"accountId": "…"}}` |
//!
//! The files hold live session tokens: keep them with the test server, not in the repository
//! (the default folder, `ghz-data/`, is ignored by git).

use std::{
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use active_sessions_client::{AuthMethod, ClientKind, Connection, Product, Registration};
use anyhow::{Context, bail};
use serde_json::{Value, json};

/// What to register and where to write the data files.
#[derive(Debug, Clone)]
pub struct Prepare {
    /// The server, `host:port` (plaintext) or an `http://` or `https://` URI (TLS with the
    /// system's roots).
    pub host: String,
    /// A caller's bearer token, for a server with a callers file (the caller needs `product`).
    pub bearer_token: Option<String>,
    /// Sessions to register.
    pub sessions: usize,
    /// Accounts they are spread over (session `i` belongs to account `i % accounts`).
    pub accounts: usize,
    /// Account ids are `<prefix><number>`.
    pub account_prefix: String,
    /// Registrations in flight.
    pub concurrency: usize,
    /// The folder the data files are written to.
    pub out_dir: PathBuf,
}

impl Prepare {
    /// `sessions` sessions over `accounts` accounts on `host`, written to `out_dir`, with fresh
    /// account ids (`load-<ULID>-<number>`).
    pub fn new(host: impl Into<String>, sessions: usize, accounts: usize, out_dir: &Path) -> Self {
        Self {
            host: host.into(),
            bearer_token: None,
            sessions,
            accounts,
            account_prefix: format!("load-{}-", ulid::Ulid::generate()),
            concurrency: 16,
            out_dir: out_dir.to_owned(),
        }
    }
}

/// The data files written, by name (`validate.json`, `list.json`, `check_eligibility.json`).
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Paths of the files written.
    pub files: Vec<PathBuf>,
}

/// Registers the sessions and writes the data files.
pub async fn prepare(settings: &Prepare) -> anyhow::Result<Prepared> {
    if settings.sessions == 0 || settings.accounts == 0 || settings.accounts > settings.sessions {
        bail!("need 1 ≤ accounts ≤ sessions");
    }
    let endpoint = if settings.host.contains("://") {
        settings.host.clone()
    } else {
        format!("http://{}", settings.host)
    };
    let mut builder = Connection::builder(endpoint)
        .connect_timeout(Duration::from_secs(10))
        .request_timeout(Duration::from_secs(20));
    if settings.host.starts_with("https://") {
        builder = builder.tls_system_roots();
    }
    if let Some(token) = &settings.bearer_token {
        builder = builder.bearer_token(token.clone());
    }
    let connection = builder
        .connect()
        .await
        .with_context(|| format!("cannot connect to {}", settings.host))?;
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..settings.concurrency.clamp(1, settings.sessions) {
        let (sessions, next, settings) = (connection.sessions(), next.clone(), settings.clone());
        tasks.spawn(async move {
            let mut registered = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= settings.sessions {
                    return anyhow::Ok(registered);
                }
                let account = account_id(&settings, index);
                let device = format!("{}device-{index}", settings.account_prefix);
                let registration =
                    Registration::new(account, Product::Chatgpt, ClientKind::Browser, device)
                        .user_agent("Mozilla/5.0 (X11; Linux x86_64) active-sessions-load")
                        .ip(IpAddr::V4(Ipv4Addr::new(81, 2, 69, 142)))
                        .auth_method(AuthMethod::Password);
                let session = sessions
                    .register(registration)
                    .await
                    .with_context(|| format!("registering session {index}"))?;
                registered.push((index, session.token));
            }
        });
    }
    let mut tokens = vec![String::new(); settings.sessions];
    while let Some(outcome) = tasks.join_next().await {
        for (index, token) in outcome.context("a registration task panicked")?? {
            tokens[index] = token;
        }
    }
    let accounts: Vec<String> = (0..settings.accounts)
        .map(|index| account_id(settings, index))
        .collect();
    std::fs::create_dir_all(&settings.out_dir)
        .with_context(|| format!("creating {}", settings.out_dir.display()))?;
    let mut files = Vec::new();
    for (name, elements) in data_files(&tokens, &accounts) {
        let path = settings.out_dir.join(name);
        write_data_file(&path, &elements)?;
        files.push(path);
    }
    Ok(Prepared { files })
}

/// The data files for these session tokens and account ids: (file name, elements).
pub fn data_files(tokens: &[String], accounts: &[String]) -> [(&'static str, Vec<Value>); 3] {
    [
        (
            "validate.json",
            tokens.iter().map(|t| json!({"sessionToken": t})).collect(),
        ),
        (
            "list.json",
            tokens
                .iter()
                .map(|t| json!({"subject": {"sessionToken": t}, "pageSize": 50}))
                .collect(),
        ),
        (
            "check_eligibility.json",
            accounts
                .iter()
                .map(|a| json!({"subject": {"accountId": a}}))
                .collect(),
        ),
    ]
}

/// Writes `elements` as a ghz data file at `path`: a JSON array, one element per line.
pub fn write_data_file(path: &Path, elements: &[Value]) -> anyhow::Result<()> {
    std::fs::write(path, array_text(elements))
        .with_context(|| format!("writing {}", path.display()))
}

fn account_id(settings: &Prepare, index: usize) -> String {
    format!("{}{}", settings.account_prefix, index % settings.accounts)
}

/// A JSON array with one element per line.
fn array_text(elements: &[Value]) -> String {
    let lines: Vec<String> = elements.iter().map(Value::to_string).collect();
    format!("[\n{}\n]\n", lines.join(",\n"))
}
