//! The callers file: reloading it adds and removes callers (a bad file keeps the old ones), and
//! start-up refuses a public listen address without one and a malformed or missing one, naming
//! the path and line.

use std::path::Path;

use super::{
    CallersFile, assert_caller_unauthenticated, product_caller, register, unknown_token_validation,
};
use active_sessions_e2e::{TestApp, TestCaller, callers_file, on_each_database};
use active_sessions_server::{Application, app::StartError, config::Config};

/// A callers file whose third line names an unknown role.
fn callers_file_with_unknown_role_on_line_3(rest: &[TestCaller]) -> String {
    let wizard = TestCaller::new("wizard", &["wizard"], &[]);
    let text = format!("{}{}", callers_file(&[wizard]), callers_file(rest));
    assert!(
        text.lines()
            .nth(2)
            .is_some_and(|line| line.contains("wizard")),
        "{text}"
    );
    text
}

on_each_database! {
    async fn reloading_the_callers_file_adds_and_removes_callers_and_a_bad_file_keeps_the_old_ones(backend) {
        let a = product_caller("caller-a");
        let b = product_caller("caller-b");
        let Some(app) = TestApp::spawn_with_callers(backend, vec![a.clone()]).await else {
            return;
        };
        let path = app.callers_file_path();
        let registry = app.services().callers().expect("callers file in force").clone();
        let conn_a = app.connect_with_token(Some(&a.token)).await;
        let conn_b = app.connect_with_token(Some(&b.token)).await;

        register(&conn_a, "acct-reload", "device-a").await.expect("A calls");
        assert_caller_unauthenticated(register(&conn_b, "acct-reload", "device-b").await);

        // Adding B.
        std::fs::write(&path, callers_file(&[a.clone(), b.clone()])).unwrap();
        assert_eq!(registry.reload().expect("a good file reloads"), 2);
        register(&conn_b, "acct-reload", "device-b").await.expect("B calls after the reload");

        // A malformed file is refused with its path and line; A and B keep working.
        std::fs::write(&path, callers_file_with_unknown_role_on_line_3(std::slice::from_ref(&a))).unwrap();
        let err = registry.reload().expect_err("a malformed file is refused");
        assert_eq!(err.path, path);
        assert_eq!(err.line, Some(3), "{err}");
        let message = err.to_string();
        assert!(message.starts_with(&format!("{}:3: ", path.display())), "{message}");
        assert!(message.contains("unknown role"), "{message}");
        register(&conn_a, "acct-reload", "device-a2").await.expect("A still calls");
        register(&conn_b, "acct-reload", "device-b2").await.expect("B still calls");

        // A file that cannot be read is refused too, naming it; the callers stay.
        std::fs::remove_file(&path).unwrap();
        let err = registry.reload().expect_err("a missing file is refused");
        assert!(err.to_string().starts_with(&path.display().to_string()), "{err}");
        register(&conn_b, "acct-reload", "device-b3").await.expect("B still calls");

        // Removing B: its token, even on its already-open connection, is refused from now on.
        std::fs::write(&path, callers_file(std::slice::from_ref(&a))).unwrap();
        assert_eq!(registry.reload().expect("a good file reloads"), 1);
        assert_caller_unauthenticated(register(&conn_b, "acct-reload", "device-b4").await);
        assert_caller_unauthenticated(
            app.connect_with_token(Some(&b.token))
                .await
                .session_service()
                .validate_session(unknown_token_validation())
                .await,
        );
        register(&conn_a, "acct-reload", "device-a3").await.expect("A still calls");

        app.stop().await;
    }
}

fn sqlite_config(dir: &Path, listen: &str) -> Config {
    Config::new(
        listen.parse().unwrap(),
        format!("sqlite://{}", dir.join("sessions.db").display()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_refuses_a_public_listen_address_without_a_callers_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = Application::build(sqlite_config(dir.path(), "0.0.0.0:0"))
        .await
        .expect_err("no callers file on a public address");
    assert!(
        matches!(err, StartError::UnauthenticatedPublicListen(addr) if addr.ip().is_unspecified()),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("without a callers file"), "{message}");
    assert!(message.contains("0.0.0.0"), "{message}");
    assert!(message.contains("--callers-file"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_refuses_a_malformed_or_missing_callers_file_naming_the_path_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = CallersFile::new(&callers_file_with_unknown_role_on_line_3(&[
        product_caller("web"),
    ]));
    let mut config = sqlite_config(dir.path(), "127.0.0.1:0");
    config.security.callers_file = Some(file.path.clone());
    let err = Application::build(config)
        .await
        .expect_err("a malformed callers file");
    let StartError::Callers(ref callers) = err else {
        panic!("not a callers-file error: {err:?}");
    };
    assert_eq!(callers.line, Some(3), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&format!("{}:3: ", file.path.display())),
        "{message}"
    );
    assert!(message.contains("unknown role \"wizard\""), "{message}");

    let missing = dir.path().join("no-such-callers.toml");
    let mut config = sqlite_config(dir.path(), "127.0.0.1:0");
    config.security.callers_file = Some(missing.clone());
    let err = Application::build(config)
        .await
        .expect_err("a missing callers file");
    assert!(matches!(err, StartError::Callers(_)), "{err:?}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
}
