//! The token kept for an idempotent registration replay is encrypted under a key held outside
//! the database: no column of any table holds the token or the key, a restart with the same key
//! replays the same token, and a changed key refuses the replay (SEALED_TOKEN_UNAVAILABLE)
//! without touching the session.

use active_sessions_e2e::{Backend, SignIn, TestApp, assert_status, e2e, random_key_hex};
use base64::Engine;
use sea_orm::{ConnectionTrait, Database, Statement};
use tonic::Code;
use tonic_types::StatusExt;

/// Every value of every column of every table, as lowercase hex of its stored bytes (text as
/// UTF-8, binary as is).
async fn every_stored_value(app: &TestApp) -> Vec<(String, String)> {
    let db = Database::connect(app.database_url()).await.unwrap();
    let backend = db.get_database_backend();
    let query = |sql: String| {
        let db = &db;
        async move {
            db.query_all_raw(Statement::from_string(backend, sql))
                .await
                .unwrap()
        }
    };
    let columns: Vec<(String, String, bool)> = match app.backend {
        Backend::Sqlite => {
            let tables = query("SELECT name FROM sqlite_master WHERE type = 'table'".into()).await;
            let mut columns = Vec::new();
            for table in tables {
                let table: String = table.try_get("", "name").unwrap();
                for column in query(format!("PRAGMA table_info(\"{table}\")")).await {
                    columns.push((table.clone(), column.try_get("", "name").unwrap(), false));
                }
            }
            columns
        }
        Backend::Postgres => query(
            "SELECT table_name::text AS t, column_name::text AS c, data_type::text AS d \
             FROM information_schema.columns WHERE table_schema = 'public'"
                .into(),
        )
        .await
        .into_iter()
        .map(|row| {
            let data_type: String = row.try_get("", "d").unwrap();
            (
                row.try_get("", "t").unwrap(),
                row.try_get("", "c").unwrap(),
                data_type == "bytea",
            )
        })
        .collect(),
    };
    assert!(
        columns
            .iter()
            .any(|(t, c, _)| t == "idempotency_records" && c == "sealed_token")
    );
    let mut values = Vec::new();
    for (table, column, bytea) in columns {
        let expression = match (app.backend, bytea) {
            (Backend::Sqlite, _) => format!("lower(hex(\"{column}\"))"),
            (Backend::Postgres, true) => format!("encode(\"{column}\", 'hex')"),
            (Backend::Postgres, false) => {
                format!("encode(convert_to(\"{column}\"::text, 'UTF8'), 'hex')")
            }
        };
        for row in query(format!("SELECT {expression} AS v FROM \"{table}\"")).await {
            let value: Option<String> = row.try_get("", "v").unwrap();
            values.push((format!("{table}.{column}"), value.unwrap_or_default()));
        }
    }
    db.close().await.unwrap();
    values
}

/// The token seal key file the server reads.
fn key_file(app: &TestApp) -> std::path::PathBuf {
    match &app.config().security.token_seal_key_file {
        Some(path) => path.clone(),
        None => {
            let url = app.database_url().trim_start_matches("sqlite://");
            std::path::Path::new(url)
                .parent()
                .unwrap()
                .join("token-seal.key")
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

e2e! {
    async fn no_column_of_any_table_holds_a_replayable_token_or_the_seal_key(app) {
        let (_, token) = app.sign_in(SignIn::browser("acct", "dev").request_id("signin-1")).await;
        let key_path = key_file(&app);
        let key_text = std::fs::read_to_string(&key_path).unwrap();
        let key = key_text.trim();
        assert_eq!(key.len(), 64);
        #[cfg(unix)]
        if app.backend == Backend::Sqlite {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the generated key file is private");
        }
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.trim_start_matches("ast_"))
            .unwrap();
        let needles = [
            ("token", hex(token.as_bytes())),
            ("token secret", hex(&secret)),
            ("seal key", key.to_owned()),
            ("seal key text", hex(key.as_bytes())),
        ];
        let values = every_stored_value(&app).await;
        assert!(values.len() > 20, "{values:?}");
        for (column, value) in &values {
            for (what, needle) in &needles {
                assert!(!value.contains(needle.as_str()), "{column} holds the {what}");
            }
        }
        // The old in-database sealing key is gone.
        assert!(!values.iter().any(|(column, value)| column == "server_settings.name"
            && value == &hex(b"idempotency_seal_key")));
    }
}

e2e! {
    async fn a_replay_after_a_restart_with_the_same_key_returns_the_same_token(app) {
        let sign_in = SignIn::browser("acct", "dev").request_id("signin-1");
        let first = app.sessions().register_session(sign_in.request()).await.unwrap().into_inner();
        app.restart().await;
        let again = app.sessions().register_session(sign_in.request()).await.unwrap().into_inner();
        assert!(again.replayed);
        assert_eq!(again.session_token, first.session_token);
        assert!(app.is_valid(&again.session_token).await);
    }
}

e2e! {
    async fn a_replay_under_another_seal_key_is_refused_and_the_session_stays_valid(app) {
        let sign_in = SignIn::browser("acct", "dev").request_id("signin-1");
        let first = app.sessions().register_session(sign_in.request()).await.unwrap().into_inner();
        let session_id = first.session.unwrap().session_id;
        let other_key = app.key_dir().join("rotated.key");
        std::fs::write(&other_key, random_key_hex()).unwrap();
        app.restart_with(|config| config.security.token_seal_key_file = Some(other_key)).await;
        let status = app.sessions().register_session(sign_in.request()).await.unwrap_err();
        assert_status(&status, Code::FailedPrecondition, Some("SEALED_TOKEN_UNAVAILABLE"));
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.metadata.get("session_id"), Some(&session_id));
        assert!(!status.message().contains("ast_"));
        // The session is untouched, and nothing new was registered.
        assert!(app.is_valid(&first.session_token).await);
        let rows = app.rows_for_account("acct").await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].sessions.len(), 1);
        // A new request id registers as usual under the new key.
        let fresh = app.sessions().register_session(SignIn::browser("acct", "dev").request_id("signin-2").request()).await.unwrap().into_inner();
        assert!(!fresh.replayed);
    }
}
