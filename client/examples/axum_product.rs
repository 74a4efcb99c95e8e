//! ChatGPT on the web as a real HTTP server: every route sits behind one `SessionLayer`, fed by
//! the revocation-fed validation cache, and `GET /me` says who is signed in. A request without
//! a signed-in ChatGPT session (`Authorization: Bearer <token>` or the `active_session`
//! cookie) gets 401; while the session service cannot be reached, 503 with `Retry-After`.
//!
//! ```text
//! cargo run -p active-sessions-server -- --database-url sqlite:///tmp/as/db.sqlite --listen 127.0.0.1:50051 &
//! ACTIVE_SESSIONS_ENDPOINT=http://127.0.0.1:50051 PRODUCT_LISTEN=127.0.0.1:8080 \
//!   cargo run -p active-sessions-client --features axum --example axum_product &
//! curl -H "Authorization: Bearer $SESSION_TOKEN" http://127.0.0.1:8080/me
//! ```
//!
//! Environment: `ACTIVE_SESSIONS_ENDPOINT` (default `http://127.0.0.1:50051`),
//! `ACTIVE_SESSIONS_TOKEN` (this backend's bearer credential, if the server has a callers
//! file), `PRODUCT_LISTEN` (default `127.0.0.1:8080`).

mod common;

use active_sessions_client::{Product, SessionLayer, SessionValidator, ValidSession};
use axum::{Json, Router, routing::get};
use common::Result;
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<()> {
    let endpoint = common::endpoint();
    let listen = common::listen("127.0.0.1:8080");
    // The connection is lazy, so the app starts (and answers 503) while the service is down.
    let cache = common::product_cache(&endpoint, "chatgpt-web", Product::Chatgpt).await?;
    let sessions = SessionValidator::builder(cache)
        .bearer()
        .cookie("active_session")
        .products([Product::Chatgpt])
        .build();

    let app = Router::new()
        .route("/me", get(me))
        .layer(SessionLayer::new(sessions));

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!(
        "ChatGPT web example listening on http://{} (sessions at {endpoint})",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await?;
    Ok(())
}

/// Who is signed in: only reached with a valid session.
async fn me(session: ValidSession) -> Json<Value> {
    Json(json!({
        "account_id": session.account_id,
        "session_id": session.session_id,
        "product": session.product.as_str_name(),
    }))
}
