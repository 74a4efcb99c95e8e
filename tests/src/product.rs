//! A product backend for the end-to-end tests and benches of `SessionLayer`: the axum app of
//! the `axum_product` example (`GET /me` answers who is signed in), served on a loopback port,
//! and a plain HTTP/1 client to call it.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use active_sessions_client::{SessionLayer, ValidSession};
use axum::{Json, Router, extract::State, routing};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::{net::TcpStream, task::JoinHandle};
use tracing::Instrument as _;

/// The example's routes: `GET /me` (a session required) and `GET /hello` (signed out too).
/// `handled` counts the calls that reached a handler.
pub fn routes(handled: Arc<AtomicU64>) -> Router {
    Router::new()
        .route("/me", routing::get(me))
        .route("/hello", routing::get(hello))
        .with_state(handled)
}

async fn me(State(handled): State<Arc<AtomicU64>>, session: ValidSession) -> Json<Value> {
    handled.fetch_add(1, Ordering::Relaxed);
    Json(json!({
        "account_id": session.account_id,
        "session_id": session.session_id,
        "product": session.product.as_str_name(),
    }))
}

async fn hello(State(handled): State<Arc<AtomicU64>>, session: Option<ValidSession>) -> String {
    handled.fetch_add(1, Ordering::Relaxed);
    match session {
        Some(session) => format!("hello {}", session.account_id),
        None => "hello stranger".into(),
    }
}

/// The routes behind `layer` (or none), each request in a `tracing` span named
/// `"{method} {path}"`: the product's request span.
pub fn app(layer: Option<SessionLayer>, handled: Arc<AtomicU64>) -> Router {
    let routes = routes(handled);
    let routes = match layer {
        Some(layer) => routes.layer(layer),
        None => routes,
    };
    routes.layer(axum::middleware::from_fn(
        |request: axum::extract::Request, next: axum::middleware::Next| {
            let span = tracing::info_span!(
                "request",
                otel.name = %format_args!("{} {}", request.method(), request.uri().path()),
            );
            next.run(request).instrument(span)
        },
    ))
}

/// Serves `app` on a loopback port until the handle is aborted.
pub async fn serve(app: Router) -> (SocketAddr, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the product app");
    let addr = listener.local_addr().expect("bound address");
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    (addr, server)
}

/// An HTTP/1 response, read whole.
#[derive(Debug)]
pub struct Answer {
    /// Its status.
    pub status: http::StatusCode,
    /// Its headers.
    pub headers: http::HeaderMap,
    /// Its body as text.
    pub body: String,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// A keep-alive HTTP/1 connection to a product app.
#[derive(Debug)]
pub struct HttpClient {
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
}

impl HttpClient {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect to the app");
        stream.set_nodelay(true).ok();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP/1 handshake");
        tokio::spawn(connection);
        Self { sender }
    }

    /// `GET path` with these headers.
    pub async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = http::Request::get(path).header("host", "localhost");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Empty::new()).expect("request");
        self.sender.ready().await.expect("connection ready");
        let response = self.sender.send_request(request).await.expect("response");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }
}

/// `GET path` with these headers on a fresh connection.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    HttpClient::connect(addr).await.get(path, headers).await
}

/// A `(name, value)` header for a bearer token.
pub fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}
