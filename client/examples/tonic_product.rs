//! A Codex product backend as a real gRPC server (tonic): the whole server sits behind the same
//! `SessionLayer` as the web example, and its `codex.v1.Whoami/Get` reads the validated session
//! from the request's extensions. A call without a signed-in Codex session (`authorization:
//! Bearer <token>` metadata) gets UNAUTHENTICATED; while the session service cannot be reached,
//! UNAVAILABLE with a retry delay. The API is in `codex_backend.proto`, next to this file.
//!
//! ```text
//! cargo run -p active-sessions-server -- --database-url sqlite:///tmp/as/db.sqlite --listen 127.0.0.1:50051 &
//! ACTIVE_SESSIONS_ENDPOINT=http://127.0.0.1:50051 PRODUCT_LISTEN=127.0.0.1:8081 \
//!   cargo run -p active-sessions-client --features tower --example tonic_product &
//! grpcurl -plaintext -import-path client/examples -proto codex_backend.proto \
//!   -H "authorization: Bearer $SESSION_TOKEN" 127.0.0.1:8081 codex.v1.Whoami/Get
//! ```
//!
//! Environment: `ACTIVE_SESSIONS_ENDPOINT` (default `http://127.0.0.1:50051`),
//! `ACTIVE_SESSIONS_TOKEN` (this backend's bearer credential), `PRODUCT_LISTEN` (default
//! `127.0.0.1:8081`).

mod common;

use std::{
    convert::Infallible,
    future::{Future, Ready, ready},
    pin::Pin,
    task::{Context, Poll},
};

use active_sessions_client::{Product, SessionLayer, SessionValidator, ValidSession};
use common::Result;
use tonic::{Status, body::Body, server::NamedService, transport::Server};
use tonic_prost::ProstCodec;

#[tokio::main]
async fn main() -> Result<()> {
    let endpoint = common::endpoint();
    let listen = common::listen("127.0.0.1:8081");
    let cache = common::product_cache(&endpoint, "codex-backend", Product::Codex).await?;
    let sessions = SessionValidator::builder(cache)
        .bearer()
        .products([Product::Codex])
        .build();

    let addr = listen.parse()?;
    println!("Codex backend example listening on {addr} (sessions at {endpoint})");
    Server::builder()
        .layer(SessionLayer::new(sessions))
        .add_service(WhoamiServer)
        .serve_with_shutdown(addr, async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await?;
    Ok(())
}

/// `codex.v1.GetRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct GetRequest {}

/// `codex.v1.GetResponse`.
#[derive(Clone, PartialEq, prost::Message)]
struct GetResponse {
    #[prost(string, tag = "1")]
    account_id: String,
    #[prost(string, tag = "2")]
    session_id: String,
    #[prost(string, tag = "3")]
    product: String,
}

/// `codex.v1.Whoami`, written out by hand as tonic's code generator would.
#[derive(Debug, Clone, Copy)]
struct WhoamiServer;

impl NamedService for WhoamiServer {
    const NAME: &'static str = "codex.v1.Whoami";
}

impl tower::Service<http::Request<Body>> for WhoamiServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future =
        Pin<Box<dyn Future<Output = std::result::Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::result::Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if request.uri().path() != "/codex.v1.Whoami/Get" {
            return Box::pin(async { Ok(Status::unimplemented("no such method").into_http()) });
        }
        Box::pin(async move {
            let mut grpc =
                tonic::server::Grpc::new(ProstCodec::<GetResponse, GetRequest>::default());
            Ok(grpc.unary(Get, request).await)
        })
    }
}

/// `Get`: the session the layer validated is in the request's extensions.
struct Get;

impl tonic::server::UnaryService<GetRequest> for Get {
    type Response = GetResponse;
    type Future = Ready<std::result::Result<tonic::Response<GetResponse>, Status>>;

    fn call(&mut self, request: tonic::Request<GetRequest>) -> Self::Future {
        ready(match request.extensions().get::<ValidSession>() {
            Some(session) => Ok(tonic::Response::new(GetResponse {
                account_id: session.account_id.clone(),
                session_id: session.session_id.clone(),
                product: session.product.as_str_name().to_owned(),
            })),
            None => Err(Status::unauthenticated("no session")),
        })
    }
}
