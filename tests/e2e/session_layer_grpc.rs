//! `SessionLayer` in front of a real tonic server on loopback (a product's gRPC API; the health
//! service stands in for it), called by a real tonic client: a signed-in session gets through,
//! anything else is UNAUTHENTICATED, and a session service that cannot be reached is
//! UNAVAILABLE with a retry delay until it is back.

use std::time::{Duration, Instant};

use active_sessions_client::{Connection, RetryPolicy, SessionLayer};
use active_sessions_e2e::{e2e, sign_in_browser};

e2e! {
    async fn a_grpc_server_behind_the_layer_answers_unauthenticated_and_unavailable(app) {
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

        let connection = Connection::builder(format!("http://{}", app.addr))
            .retry_policy(RetryPolicy::default().deadline(Duration::from_millis(500)))
            .connect()
            .await
            .unwrap();
        let (_, token) = sign_in_browser(&connection, "acct_grpc", "laptop").await;
        // A product's gRPC server (the health service stands in for its API) behind the layer.
        let (_, health) = tonic_health::server::health_reporter();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .layer(SessionLayer::new(connection.sessions()))
                .add_service(health)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let check = |token: Option<String>| {
            let mut client = HealthClient::new(channel.clone());
            async move {
                let mut request = tonic::Request::new(HealthCheckRequest { service: String::new() });
                if let Some(token) = token {
                    request
                        .metadata_mut()
                        .insert("authorization", format!("Bearer {token}").parse().unwrap());
                }
                client.check(request).await.map(|_| ())
            }
        };
        check(Some(token.clone())).await.expect("a signed-in session gets through");
        for refused in [None, Some("garbage".to_owned()), Some(format!("ast_{}", "A".repeat(43)))] {
            let status = check(refused).await.unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
        }
        app.pause().await;
        let status = check(Some(token.clone())).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert_eq!(status.metadata().get("retry-after").unwrap(), "1");
        app.resume().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Err(status) = check(Some(token.clone())).await {
            assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
            assert!(Instant::now() < deadline, "never back");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server.abort();
    }
}
