//! Real server processes on one test database, for what in-process replicas cannot show: a
//! replica whose wall clock is shifted by libfaketime (Debian's `faketime`), or one whose
//! database connection is cut. Each runs the server binary the workspace builds, with the test
//! database's URL and token seal key; a skewed one logs at warn into a file the test reads.

use std::{
    path::PathBuf,
    process::Stdio,
    sync::OnceLock,
    time::{Duration, Instant, SystemTime},
};

use active_sessions_e2e::{TestApp, pb};
use pb::session_service_client::SessionServiceClient;
use tonic::transport::Channel;

/// libfaketime as Debian's `faketime` package installs it.
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// The newest modification time of the files the server binary is built from.
fn newest_source() -> SystemTime {
    fn walk(path: &std::path::Path, newest: &mut SystemTime) {
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        if meta.is_dir() {
            for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
                walk(&entry.path(), newest);
            }
        } else if let Ok(modified) = meta.modified() {
            *newest = (*newest).max(modified);
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let mut newest = SystemTime::UNIX_EPOCH;
    for part in [
        "server/src",
        "server/Cargo.toml",
        "src",
        "proto",
        "build.rs",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        walk(&root.join(part), &mut newest);
    }
    newest
}

/// The server binary in the target directory (`cargo test --workspace` builds it), built now
/// only if it is missing or older than its sources.
fn server_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("test executable");
            // target/<profile>/deps/e2e-<hash>
            let profile_dir = exe
                .parent()
                .and_then(|deps| deps.parent())
                .expect("target/<profile>")
                .to_owned();
            let binary = profile_dir.join("active-sessions");
            let fresh = std::fs::metadata(&binary)
                .and_then(|meta| meta.modified())
                .is_ok_and(|built| built >= newest_source());
            if fresh {
                return binary;
            }
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = std::process::Command::new(cargo);
            build
                .args(["build", "--quiet", "-p", "active-sessions-server", "--bin"])
                .arg("active-sessions")
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            if profile_dir
                .file_name()
                .is_some_and(|name| name == "release")
            {
                build.arg("--release");
            }
            let status = build.status().expect("run cargo build");
            assert!(status.success(), "building the server binary failed");
            assert!(binary.exists(), "{} is missing", binary.display());
            binary
        })
        .clone()
}

/// A server process on `app`'s database (and token seal key), its clock shifted by `faketime`
/// (e.g. "+2s") when given.
pub(crate) struct ServerProcess {
    child: std::process::Child,
    pub(crate) client: SessionServiceClient<Channel>,
    /// Where a skewed replica's warnings go.
    log: Option<tempfile::NamedTempFile>,
}

impl ServerProcess {
    pub(crate) async fn start(app: &TestApp, faketime: Option<&str>) -> Self {
        let port = {
            let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            socket.local_addr().expect("address").port()
        };
        let mut command = std::process::Command::new(server_binary());
        command
            .env("ACTIVE_SESSIONS_LISTEN", format!("127.0.0.1:{port}"))
            .env("ACTIVE_SESSIONS_DATABASE_URL", app.database_url())
            .env("ACTIVE_SESSIONS_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(key) = &app.config().security.token_seal_key_file {
            command.env("ACTIVE_SESSIONS_TOKEN_SEAL_KEY_FILE", key);
        }
        let mut log = None;
        if let Some(offset) = faketime {
            let file = tempfile::NamedTempFile::new().expect("log file");
            command
                .env("ACTIVE_SESSIONS_LOG", "warn")
                .stderr(file.reopen().expect("log file"));
            log = Some(file);
            command
                .env("LD_PRELOAD", LIBFAKETIME)
                .env("FAKETIME", offset)
                // Timers and the pool's deadlines keep real monotonic time.
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        let child = command.spawn().expect("start the server process");
        let endpoint = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let channel = loop {
            if let Ok(channel) = active_sessions_client::connect(endpoint.clone()).await {
                let mut health =
                    tonic_health::pb::health_client::HealthClient::new(channel.clone());
                if health
                    .check(tonic_health::pb::HealthCheckRequest::default())
                    .await
                    .is_ok_and(|r| r.into_inner().status == 1)
                {
                    break channel;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the server did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        Self {
            child,
            client: SessionServiceClient::new(channel),
            log,
        }
    }

    /// The offset of the database's clock from this replica's, in milliseconds, as the replica
    /// measured and logged it at start-up (a skewed replica only; `None` when it logged none,
    /// i.e. its clock was within a second of the database's).
    pub(crate) fn logged_clock_offset_ms(&self) -> Option<i64> {
        let log = std::fs::read_to_string(self.log.as_ref()?.path()).ok()?;
        let line = log.lines().find(|line| line.contains("offset_ms="))?;
        let value = line.split("offset_ms=").nth(1)?;
        value.split_whitespace().next()?.parse().ok()
    }

    pub(crate) async fn stop(self) {
        drop(self);
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

pub(crate) fn faketime_available() -> bool {
    if std::path::Path::new(LIBFAKETIME).exists() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{LIBFAKETIME} is missing under CI: apt-get install -y faketime");
    }
    eprintln!("skipped: libfaketime is not installed (apt-get install -y faketime)");
    false
}
