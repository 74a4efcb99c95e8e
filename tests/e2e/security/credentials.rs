//! Credentials: a call without a known bearer token is UNAUTHENTICATED (reason
//! CALLER_UNAUTHENTICATED), while health and reflection answer without one.

use super::{
    SESSION_SERVICE, assert_caller_unauthenticated, product_caller, register,
    unknown_token_validation, wait_until_serving,
};
use active_sessions_e2e::{TestApp, assert_status, on_each_database};
use tonic::Code;
use tonic_reflection::pb::v1 as reflection;

on_each_database! {
    async fn calls_without_a_known_bearer_token_are_unauthenticated_while_health_and_reflection_need_none(backend) {
        let web = product_caller("web");
        let Some(app) = TestApp::spawn_with_callers(backend, vec![web.clone()]).await else {
            return;
        };

        // The right token works.
        register(&app.connect_as("web").await, "acct-auth", "device-1")
            .await
            .expect("a known caller registers");

        // No credential at all.
        let anonymous = app.connect_with_token(None).await;
        assert_caller_unauthenticated(
            anonymous.session_service().validate_session(unknown_token_validation()).await,
        );
        assert_caller_unauthenticated(register(&anonymous, "acct-auth", "device-2").await);

        // A token nobody has.
        let stranger = app.connect_with_token(Some("not-a-token-of-any-caller")).await;
        assert_caller_unauthenticated(
            stranger.session_service().validate_session(unknown_token_validation()).await,
        );

        // Malformed authorization metadata, including another scheme around a valid token.
        for header in ["Basic x".to_owned(), format!("Token {}", web.token), web.token.clone(), "Bearer".into()] {
            let mut request = tonic::Request::new(unknown_token_validation());
            request
                .metadata_mut()
                .insert("authorization", header.parse().expect("ASCII metadata"));
            let status = app
                .sessions()
                .validate_session(request)
                .await
                .expect_err(&format!("{header:?} must be refused"));
            assert_status(&status, Code::Unauthenticated, Some("CALLER_UNAUTHENTICATED"));
        }

        // Health and reflection answer without any credential.
        wait_until_serving(app.channel.clone(), SESSION_SERVICE).await;
        wait_until_serving(app.channel.clone(), "").await;
        let mut reflection_client =
            reflection::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
        let request = reflection::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(reflection::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            )),
        };
        let mut responses = reflection_client
            .server_reflection_info(futures::stream::iter([request]))
            .await
            .expect("reflection answers without a credential")
            .into_inner();
        let response = responses
            .message()
            .await
            .expect("a reflection response")
            .expect("one message");
        let Some(reflection::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
            response.message_response
        else {
            panic!("not a list response: {response:?}");
        };
        assert!(list.service.iter().any(|service| service.name == SESSION_SERVICE), "{list:?}");

        app.stop().await;
    }
}
