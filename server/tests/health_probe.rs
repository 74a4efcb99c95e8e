//! `active-sessions health`, the image's own probe: exit status 0 and `SERVING` from a running
//! server, for the whole server and for the process-only `liveness` name; exit status 1 when
//! nothing answers or the name is unknown.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    net::{SocketAddr, TcpListener},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn probe(addr: SocketAddr, service: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_active-sessions"))
        .args(["health", "--addr", &addr.to_string(), "--service", service])
        .args(["--timeout", "2s"])
        .output()
        .unwrap()
}

#[test]
fn the_health_subcommand_reports_serving_and_fails_when_nothing_answers() {
    let nobody = free_port();
    let output = probe(nobody, "");
    assert_eq!(output.status.code(), Some(1), "nothing listens on {nobody}");

    let dir = tempfile::tempdir().unwrap();
    let addr = free_port();
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_active-sessions"))
            .args(["--listen", &addr.to_string()])
            .args([
                "--database-url",
                &format!("sqlite://{}", dir.path().join("h.db").display()),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let output = probe(addr, "");
        if output.status.success() {
            assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "SERVING");
            break;
        }
        assert!(Instant::now() < deadline, "the server never became SERVING");
        std::thread::sleep(Duration::from_millis(200));
    }
    let liveness = probe(addr, "liveness");
    assert!(liveness.status.success());
    assert_eq!(String::from_utf8_lossy(&liveness.stdout).trim(), "SERVING");
    assert!(
        probe(addr, "activesessions.v1.SessionService")
            .status
            .success()
    );
    let unknown = probe(addr, "no.such.Service");
    assert_eq!(
        unknown.status.code(),
        Some(1),
        "an unknown name is not healthy"
    );
}
