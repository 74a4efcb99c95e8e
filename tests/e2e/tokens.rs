//! Registration, tokens and validation: tokens are minted by the server and stored only as
//! hashes; registration is idempotent on its request id; validation refuses what is not signed
//! in; heartbeats are coalesced; bad input is INVALID_ARGUMENT naming the field.

use std::time::Duration;

use active_sessions_e2e::{SignIn, assert_status, by_account, by_token, e2e, pb, violated_fields};
use pb::{
    ListActiveSessionsRequest, RegisterSessionRequest, TouchSessionRequest, ValidateSessionRequest,
};
use sea_orm::{ConnectionTrait, Database, Statement};
use sha2::{Digest, Sha256};
use tonic::Code;

const DAY: Duration = Duration::from_secs(86_400);

async fn stored_column(app: &active_sessions_e2e::TestApp, sql: &str) -> Vec<sea_orm::QueryResult> {
    let db = Database::connect(app.database_url()).await.unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap();
    db.close().await.unwrap();
    rows
}

e2e! {
    async fn tokens_are_random_prefixed_and_only_their_hash_is_stored(app) {
        let (first, token) = app.sign_in(SignIn::browser("acct", "dev").request_id("req-1")).await;
        let (_, other) = app.sign_in(SignIn::browser("acct", "dev")).await;
        assert_ne!(token, other);
        assert!(token.starts_with("ast_") && token.len() == 47, "{token}");
        let rows = stored_column(&app, &format!("SELECT token_hash FROM sessions WHERE session_id = '{}'", first.session_id)).await;
        let hash: Vec<u8> = rows[0].try_get("", "token_hash").unwrap();
        assert_eq!(hash, Sha256::digest(token.as_bytes()).to_vec());
        // No table holds the token or its secret bytes in clear.
        let sealed = stored_column(&app, "SELECT sealed_token FROM idempotency_records").await;
        let sealed: Vec<u8> = sealed[0].try_get("", "sealed_token").unwrap();
        assert_eq!(sealed.len(), 12 + 32 + 16, "nonce, ciphertext and tag");
        assert!(!token.as_bytes().windows(8).any(|w| sealed.windows(8).any(|s| s == w)));
    }
}

e2e! {
    async fn registration_is_idempotent_on_its_request_id(app) {
        let sign_in = SignIn::browser("acct", "dev").request_id("req-42");
        let first = app.sessions().register_session(sign_in.request()).await.unwrap().into_inner();
        let again = app.sessions().register_session(sign_in.request()).await.unwrap().into_inner();
        assert!(!first.replayed);
        assert!(again.replayed);
        assert_eq!(first.session_token, again.session_token);
        assert_eq!(first.session.unwrap().session_id, again.session.unwrap().session_id);
        assert_eq!(app.rows_for_account("acct").await[0].sessions.len(), 1);
        let status = app
            .sessions()
            .register_session(SignIn::browser("acct", "another_device").request_id("req-42").request())
            .await
            .unwrap_err();
        assert_status(&status, Code::AlreadyExists, Some("REQUEST_ID_REUSED"));
        // Request ids are remembered for a while, then forgotten.
        app.clock.advance(2 * DAY);
        let later = app.sessions().register_session(sign_in.request()).await.unwrap().into_inner();
        assert!(!later.replayed);
    }
}

e2e! {
    async fn validation_refuses_unknown_revoked_and_expired_tokens_and_malformed_ones_early(app) {
        let (session, token) = app.sign_in(SignIn { lifetime: Some(2 * DAY), ..SignIn::browser("acct", "dev") }).await;
        let valid = app.sessions().validate_session(ValidateSessionRequest { session_token: token.clone() }).await.unwrap().into_inner();
        assert!(valid.valid);
        assert_eq!(valid.session_id, session.session_id);
        assert_eq!(valid.account_id, "acct");
        assert_eq!(valid.product(), pb::Product::Chatgpt);
        assert_eq!(valid.expires_at, session.expires_at);
        // Validate twice more: the second is answered from the cache, with the same answer.
        assert!(app.is_valid(&token).await && app.is_valid(&token).await);
        let unknown = "ast_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(!app.is_valid(unknown).await);
        for malformed in ["", "ast_short", "Bearer ast_x", "ast_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\0"] {
            let status = app.sessions().validate_session(ValidateSessionRequest { session_token: malformed.into() }).await.unwrap_err();
            assert_status(&status, Code::InvalidArgument, None);
            assert_eq!(violated_fields(&status), ["session_token"]);
            assert!(!status.message().contains(malformed) || malformed.is_empty(), "token echoed in {status:?}");
        }
        app.clock.advance(3 * DAY);
        assert!(!app.is_valid(&token).await, "expired session still valid");
    }
}

e2e! {
    async fn heartbeats_keep_a_session_from_idling_out_and_are_written_in_batches(app) {
        let (session, token) = app.sign_in(SignIn { lifetime: Some(90 * DAY), ..SignIn::browser("acct", "dev") }).await;
        let touch = |ip: &str| TouchSessionRequest { session_token: token.clone(), ip_address: ip.into() };
        for _ in 0..3 {
            app.clock.advance(10 * DAY);
            app.sessions().touch_session(touch("216.160.83.56")).await.unwrap();
            // Not yet flushed, yet not idle: validation sees the buffered heartbeat.
            assert!(app.is_valid(&token).await);
        }
        let stored = stored_column(&app, &format!("SELECT last_active_at FROM sessions WHERE session_id = '{}'", session.session_id)).await;
        let before: i64 = stored[0].try_get("", "last_active_at").unwrap();
        let flushed = app.services().sessions().flush_activity().await.unwrap();
        assert_eq!(flushed, 1, "three heartbeats, one write");
        let stored = stored_column(&app, &format!("SELECT last_active_at, city FROM sessions WHERE session_id = '{}'", session.session_id)).await;
        let after: i64 = stored[0].try_get("", "last_active_at").unwrap();
        let city: Option<String> = stored[0].try_get("", "city").unwrap();
        assert!(after > before + (29 * DAY).as_micros() as i64);
        assert_eq!(city.as_deref(), Some("Milton"));
        let rows = app.rows_for_token(&token).await;
        assert_eq!(rows[0].location.as_ref().unwrap().city, "Milton");
        // A session idle for longer than the timeout cannot be touched back to life.
        app.clock.advance(15 * DAY);
        let status = app.sessions().touch_session(touch("")).await.unwrap_err();
        assert_status(&status, Code::NotFound, Some("NOT_FOUND"));
    }
}

e2e! {
    async fn another_accounts_session_is_not_found_exactly_like_a_missing_one(app) {
        let (_, alice) = app.sign_in(SignIn::browser("alice", "alice_dev")).await;
        let (bob_session, _) = app.sign_in(SignIn::browser("bob", "bob_dev")).await;
        let mut sessions = app.sessions();
        let foreign = sessions
            .revoke_session(pb::RevokeSessionRequest {
                subject: Some(by_token(&alice)),
                target: Some(pb::revoke_session_request::Target::SessionId(bob_session.session_id.clone())),
                validate_only: false,
            })
            .await
            .unwrap_err();
        let missing = sessions
            .revoke_session(pb::RevokeSessionRequest {
                subject: Some(by_token(&alice)),
                target: Some(pb::revoke_session_request::Target::SessionId(ulid::Ulid::generate().to_string())),
                validate_only: false,
            })
            .await
            .unwrap_err();
        assert_status(&foreign, Code::NotFound, Some("NOT_FOUND"));
        assert_eq!((foreign.code(), foreign.message()), (missing.code(), missing.message()));
        let foreign_row = sessions
            .revoke_session(pb::RevokeSessionRequest {
                subject: Some(by_token(&alice)),
                target: Some(pb::revoke_session_request::Target::DeviceId("bob_dev".into())),
                validate_only: false,
            })
            .await
            .unwrap_err();
        assert_eq!(foreign_row.code(), Code::NotFound);
        assert_eq!(app.rows_for_account("bob").await.len(), 1);
    }
}

e2e! {
    async fn bad_session_input_is_invalid_argument_naming_each_field(app) {
        let good = SignIn::browser("acct", "dev").request();
        let cases: Vec<(RegisterSessionRequest, &[&str])> = vec![
            (RegisterSessionRequest { account_id: "a".repeat(200), ..good.clone() }, &["account_id"]),
            (RegisterSessionRequest { account_id: "nul\0byte".into(), ..good.clone() }, &["account_id"]),
            (RegisterSessionRequest { product: 0, ..good.clone() }, &["product"]),
            (RegisterSessionRequest { client_kind: 42, ..good.clone() }, &["client_kind"]),
            (RegisterSessionRequest { device_id: String::new(), ..good.clone() }, &["device_id"]),
            (RegisterSessionRequest { user_agent: "x".repeat(1025), ..good.clone() }, &["user_agent"]),
            (RegisterSessionRequest { ip_address: "999.1.1.1".into(), ..good.clone() }, &["ip_address"]),
            (RegisterSessionRequest { ip_address: "not an ip".into(), ..good.clone() }, &["ip_address"]),
            (RegisterSessionRequest { auth_method: 77, ..good.clone() }, &["auth_method"]),
            (RegisterSessionRequest { lifetime: Some(prost_types::Duration { seconds: -5, nanos: 0 }), ..good.clone() }, &["lifetime"]),
            (RegisterSessionRequest { lifetime: Some(prost_types::Duration { seconds: 10 * 365 * 86_400, nanos: 0 }), ..good.clone() }, &["lifetime"]),
            (RegisterSessionRequest { request_id: " padded".into(), ..good.clone() }, &["request_id"]),
            (RegisterSessionRequest::default(), &["account_id", "product", "client_kind", "device_id"]),
        ];
        for (request, fields) in cases {
            let status = app.sessions().register_session(request).await.unwrap_err();
            assert_status(&status, Code::InvalidArgument, None);
            assert_eq!(violated_fields(&status), fields);
        }
        // Nothing was stored by any of them.
        assert!(app.rows_for_account("acct").await.is_empty());

        let (_, token) = app.sign_in(SignIn::browser("acct", "dev")).await;
        let list = |subject: Option<pb::Subject>, page_size: i32, page_token: &str, product: i32| ListActiveSessionsRequest {
            subject,
            page_size,
            page_token: page_token.into(),
            product,
        };
        let cases: Vec<(ListActiveSessionsRequest, &[&str])> = vec![
            (list(None, 0, "", 0), &["subject"]),
            (list(Some(by_token(&token)), 101, "", 0), &["page_size"]),
            (list(Some(by_token(&token)), -1, "", 0), &["page_size"]),
            (list(Some(by_token(&token)), 0, "", 9), &["product"]),
            (list(Some(by_account("")), 0, "", 0), &["subject.account_id"]),
            (list(Some(by_token("ast_nope")), 0, "", 0), &["subject.session_token"]),
            (list(Some(by_token(&token)), 0, "forged.token", 0), &["page_token"]),
        ];
        for (request, fields) in cases {
            let status = app.sessions().list_active_sessions(request).await.unwrap_err();
            assert_status(&status, Code::InvalidArgument, None);
            assert_eq!(violated_fields(&status), fields);
        }
        for bad_id in ["", "not-a-ulid", "01ARZ3NDEKTSV4RRFFQ69G5FA!"] {
            let status = app
                .sessions()
                .revoke_session(pb::RevokeSessionRequest {
                    subject: Some(by_token(&token)),
                    target: Some(pb::revoke_session_request::Target::SessionId(bad_id.into())),
                    validate_only: false,
                })
                .await
                .unwrap_err();
            assert_eq!(violated_fields(&status), ["session_id"]);
        }
        let status = app
            .sessions()
            .revoke_session(pb::RevokeSessionRequest { subject: Some(by_token(&token)), target: None, validate_only: false })
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&status), ["target"]);
        assert!(app.is_valid(&token).await);
    }
}
