//! Refusals stay small whatever the request: a request made of many bad entries, or of strings as
//! long as the message-size limit allows, is refused with INVALID_ARGUMENT carrying an ErrorInfo
//! (reason INVALID_REQUEST) and a BadRequest of at most ten violations plus one counting the rest,
//! so that its trailers stay under the 8 KiB common gRPC clients accept by default. Text that could
//! spoof the settings page (bidirectional controls, format characters, separators,
//! noncharacters) is refused like control characters.

use active_sessions_e2e::{
    SignIn, TestApp, assert_status, by_account, by_token, e2e, pb, violated_fields,
};
use pb::{
    account_eligibility_client::AccountEligibilityClient,
    session_service_client::SessionServiceClient,
    trusted_device_service_client::TrustedDeviceServiceClient,
};
use tonic::{Code, Status, transport::Channel};
use tonic_types::StatusExt;

/// What common gRPC clients (grpc-core, grpc-go) accept as a response's header list by default.
const CLIENT_HEADER_LIST_LIMIT: u32 = 8 * 1024;

/// The most field violations a refusal lists, plus the entry counting the others.
const MAX_LISTED_VIOLATIONS: usize = 11;

/// A string of `bytes` bytes made of right-to-left overrides: too long and spoofing at once.
fn spoofing_text(bytes: usize) -> String {
    "\u{202E}".repeat(bytes / 3)
}

/// A channel that, like a default grpcio or grpc-go client, refuses response header lists (and
/// so trailers) over 8 KiB.
async fn default_sized_client_channel(app: &TestApp) -> Channel {
    Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .http2_max_header_list_size(CLIENT_HEADER_LIST_LIMIT)
        .connect()
        .await
        .unwrap()
}

/// The bytes `grpc-message` and `grpc-status-details-bin` take on the wire: the message
/// percent-encoded, the details base64-encoded.
fn encoded_error_trailer_bytes(status: &Status) -> usize {
    let message: usize = status
        .message()
        .bytes()
        .map(|b| {
            if (0x20..=0x7e).contains(&b) && b != b'%' {
                1
            } else {
                3
            }
        })
        .sum();
    let details = status.details().len().div_ceil(3) * 4;
    "grpc-message".len() + message + "grpc-status-details-bin".len() + details
}

/// INVALID_ARGUMENT with ErrorInfo and BadRequest, at most the documented number of violations,
/// and trailers well under 8 KiB.
fn assert_bounded_invalid_argument(what: &str, status: &Status) {
    assert_status(status, Code::InvalidArgument, Some("INVALID_REQUEST"));
    let bad = status
        .get_details_bad_request()
        .unwrap_or_else(|| panic!("{what}: no BadRequest in {status:?}"));
    assert!(
        !bad.field_violations.is_empty(),
        "{what}: no violation listed"
    );
    assert!(
        bad.field_violations.len() <= MAX_LISTED_VIOLATIONS,
        "{what}: {} violations listed",
        bad.field_violations.len()
    );
    let bytes = encoded_error_trailer_bytes(status);
    assert!(bytes < 8 * 1024, "{what}: error trailers of {bytes} bytes");
}

e2e! {
    async fn watch_revocations_with_hundreds_of_unknown_products_is_a_small_invalid_argument(app) {
        let mut client = SessionServiceClient::new(default_sized_client_channel(&app).await);
        // The reproduction: a 203-byte request of 200 unknown products.
        for count in [200, 60_000] {
            let request = pb::WatchRevocationsRequest {
                cursor: String::new(),
                products: vec![99; count],
            };
            let status = client.watch_revocations(request).await.expect_err("refused");
            assert_bounded_invalid_argument(&format!("{count} products"), &status);
            assert_eq!(violated_fields(&status), ["products"], "the length is checked first");
            let info = status.get_details_error_info().unwrap();
            assert_eq!(info.metadata["violations"], "1");
        }

        // Within the documented maximum of 8 entries, each bad entry is named.
        let status = client
            .watch_revocations(pb::WatchRevocationsRequest {
                cursor: String::new(),
                products: vec![1, 99, 0, 2],
            })
            .await
            .expect_err("refused");
        assert_bounded_invalid_argument("4 products", &status);
        assert_eq!(violated_fields(&status), ["products[1]", "products[2]"]);
    }
}

e2e! {
    async fn every_rpc_refuses_a_request_at_the_size_limit_with_bounded_details(app) {
        let limit = app.config().security.max_message_bytes;
        let channel = default_sized_client_channel(&app).await;
        let mut sessions = SessionServiceClient::new(channel.clone());
        let mut trust = TrustedDeviceServiceClient::new(channel.clone());
        let mut eligibility = AccountEligibilityClient::new(channel);
        // Each request spends about the whole message-size limit on bad strings.
        let whole = |fields: usize| spoofing_text((limit - 1024) / fields);
        let subject = |text: String| Some(by_account(&text));
        let token_subject = |text: String| Some(by_token(&text));

        let mut refusals: Vec<(&str, Status)> = Vec::new();
        let register = pb::RegisterSessionRequest {
            request_id: whole(5),
            account_id: whole(5),
            device_id: whole(5),
            user_agent: whole(5),
            ip_address: whole(5),
            ..SignIn::browser("acct", "device").request()
        };
        refusals.push(("RegisterSession", sessions.register_session(register).await.unwrap_err()));
        let validate = pb::ValidateSessionRequest { session_token: whole(1) };
        refusals.push(("ValidateSession", sessions.validate_session(validate).await.unwrap_err()));
        let touch = pb::TouchSessionRequest { session_token: whole(2), ip_address: whole(2) };
        refusals.push(("TouchSession", sessions.touch_session(touch).await.unwrap_err()));
        let list = pb::ListActiveSessionsRequest {
            subject: token_subject(whole(2)),
            page_token: whole(2),
            ..Default::default()
        };
        refusals.push(("ListActiveSessions", sessions.list_active_sessions(list).await.unwrap_err()));
        let device_sessions = pb::ListDeviceSessionsRequest {
            subject: token_subject(whole(3)),
            device_id: whole(3),
            page_token: whole(3),
            ..Default::default()
        };
        refusals.push((
            "ListDeviceSessions",
            sessions.list_device_sessions(device_sessions).await.unwrap_err(),
        ));
        let revoke = pb::RevokeSessionRequest {
            subject: subject(whole(2)),
            target: Some(pb::revoke_session_request::Target::DeviceId(whole(2))),
            validate_only: true,
        };
        refusals.push(("RevokeSession", sessions.revoke_session(revoke).await.unwrap_err()));
        let revoke_all = pb::RevokeAllSessionsRequest {
            subject: subject(whole(2)),
            validate_only: true,
            keep_session_id: whole(2),
            ..Default::default()
        };
        refusals.push(("RevokeAllSessions", sessions.revoke_all_sessions(revoke_all).await.unwrap_err()));
        let get = pb::GetRevocationRequest { subject: subject(whole(2)), revocation_id: whole(2) };
        refusals.push(("GetRevocation", sessions.get_revocation(get).await.unwrap_err()));
        let watch = pb::WatchRevocationsRequest { cursor: whole(2), products: vec![99; 20_000] };
        refusals.push(("WatchRevocations", sessions.watch_revocations(watch).await.unwrap_err()));
        let events = pb::ListSecurityEventsRequest {
            subject: subject(whole(2)),
            page_token: whole(2),
            ..Default::default()
        };
        refusals.push(("ListSecurityEvents", sessions.list_security_events(events).await.unwrap_err()));
        let trust_device = pb::TrustDeviceRequest {
            account_id: whole(2),
            device_id: whole(2),
            ..Default::default()
        };
        refusals.push(("TrustDevice", trust.trust_device(trust_device).await.unwrap_err()));
        let list_trusted = pb::ListTrustedDevicesRequest {
            subject: subject(whole(2)),
            page_token: whole(2),
            ..Default::default()
        };
        refusals.push(("ListTrustedDevices", trust.list_trusted_devices(list_trusted).await.unwrap_err()));
        let remove = pb::RemoveTrustedDeviceRequest {
            subject: subject(whole(2)),
            device_id: whole(2),
            log_out_sessions: true,
        };
        refusals.push(("RemoveTrustedDevice", trust.remove_trusted_device(remove).await.unwrap_err()));
        let check = pb::CheckDeviceTrustRequest { account_id: whole(2), device_id: whole(2) };
        refusals.push(("CheckDeviceTrust", trust.check_device_trust(check).await.unwrap_err()));
        let eligible = pb::CheckEligibilityRequest { subject: subject(whole(1)) };
        refusals.push(("CheckEligibility", eligibility.check_eligibility(eligible).await.unwrap_err()));
        let get_account = pb::GetAccountRequest { account_id: whole(1) };
        refusals.push(("GetAccount", eligibility.get_account(get_account).await.unwrap_err()));
        let link = pb::SetSsoLinkRequest {
            account_id: whole(2),
            protocol: 99,
            organization_id: whole(2),
        };
        refusals.push(("SetSsoLink", eligibility.set_sso_link(link).await.unwrap_err()));
        let clear = pb::ClearSsoLinkRequest { account_id: whole(1) };
        refusals.push(("ClearSsoLink", eligibility.clear_sso_link(clear).await.unwrap_err()));
        let workspace = pb::SetWorkspaceTypeRequest { account_id: whole(1), workspace_type: 99 };
        refusals.push(("SetWorkspaceType", eligibility.set_workspace_type(workspace).await.unwrap_err()));
        let disable = pb::DisableAccountRequest { account_id: whole(1) };
        refusals.push(("DisableAccount", eligibility.disable_account(disable).await.unwrap_err()));
        let enable = pb::EnableAccountRequest { account_id: whole(1) };
        refusals.push(("EnableAccount", eligibility.enable_account(enable).await.unwrap_err()));
        let delete = pb::DeleteAccountRequest { account_id: whole(1) };
        refusals.push(("DeleteAccount", eligibility.delete_account(delete).await.unwrap_err()));

        for (rpc, status) in &refusals {
            assert_bounded_invalid_argument(rpc, status);
        }
        assert!(app.rows_for_account("acct").await.is_empty(), "nothing was stored");
    }
}

e2e! {
    async fn text_that_could_spoof_the_settings_page_is_refused_naming_the_field(app) {
        let spoofs = [
            "\u{202E}", "\u{202A}", "\u{2066}", "\u{2069}", "\u{200B}", "\u{FEFF}", "\u{FFFE}",
            "\u{FFFF}", "\u{FDD0}", "\u{2028}", "\u{2029}",
        ];
        for spoof in spoofs {
            let cases: [(&str, pb::RegisterSessionRequest); 4] = [
                ("device_id", SignIn::browser("acct", &format!("laptop{spoof}")).request()),
                ("account_id", SignIn::browser(&format!("acct{spoof}"), "laptop").request()),
                ("request_id", SignIn::browser("acct", "laptop").request_id(&format!("r{spoof}1")).request()),
                ("user_agent", pb::RegisterSessionRequest {
                    user_agent: format!("Mozilla/5.0 {spoof}exe.gpj"),
                    ..SignIn::browser("acct", "laptop").request()
                }),
            ];
            for (field, request) in cases {
                let status = app.sessions().register_session(request).await.expect_err("refused");
                assert_status(&status, Code::InvalidArgument, Some("INVALID_REQUEST"));
                assert_eq!(violated_fields(&status), [field], "U+{:04X}", u32::from(spoof.chars().next().unwrap()));
            }
        }
        assert!(app.rows_for_account("acct").await.is_empty(), "nothing was stored");
        // Text without such characters, accents and scripts included, still works.
        let (session, _) = app
            .sign_in(SignIn::browser("acct-ü", "ordinateur-de-zoé"))
            .await;
        assert_eq!(session.device_id, "ordinateur-de-zoé");
    }
}

e2e! {
    async fn every_refusal_carries_an_error_info_reason(app) {
        let (_, token) = app.sign_in(SignIn::browser("acct", "laptop")).await;
        // Field validation: BadRequest and ErrorInfo side by side.
        let status = app
            .sessions()
            .list_active_sessions(pb::ListActiveSessionsRequest {
                subject: Some(by_token(&token)),
                page_size: -1,
                ..Default::default()
            })
            .await
            .expect_err("refused");
        assert_status(&status, Code::InvalidArgument, Some("INVALID_REQUEST"));
        assert_eq!(violated_fields(&status), ["page_size"]);

        // A stream cursor the server cannot have issued.
        let status = app
            .sessions()
            .watch_revocations(pb::WatchRevocationsRequest {
                cursor: "999999999".into(),
                products: Vec::new(),
            })
            .await
            .expect_err("refused");
        assert_status(&status, Code::OutOfRange, Some("CURSOR_NOT_RESUMABLE"));

        // A message over the size limit, small and very large, is still a gRPC status.
        for bytes in [200 * 1024, 5 * 1024 * 1024] {
            let mut huge = SignIn::browser("acct", "device-big");
            huge.user_agent = "a".repeat(bytes);
            let status = app
                .sessions()
                .register_session(huge.request())
                .await
                .expect_err("over the limit");
            assert_status(&status, Code::OutOfRange, Some("REQUEST_TOO_LARGE"));
            let info = status.get_details_error_info().unwrap();
            assert_eq!(info.metadata["limit_bytes"], app.config().security.max_message_bytes.to_string());
        }
        assert_eq!(app.rows_for_account("acct").await.len(), 1, "nothing else was stored");
    }
}
