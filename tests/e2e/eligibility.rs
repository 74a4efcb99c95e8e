//! AccountEligibility: S6 (every account and workspace type may use Active sessions) and S7
//! (accounts linked to organisation SSO may not), persistence, and bad input.

use active_sessions_e2e::{assert_status, e2e, pb, violated_fields};
use pb::{
    CheckEligibilityRequest, ClearSsoLinkRequest, GetAccountRequest, IneligibilityReason,
    SetSsoLinkRequest, SetWorkspaceTypeRequest, SsoProtocol, Subject, WorkspaceType, subject,
};
use tonic::Code;

fn by_account(account_id: &str) -> CheckEligibilityRequest {
    CheckEligibilityRequest {
        subject: Some(Subject {
            subject: Some(subject::Subject::AccountId(account_id.into())),
        }),
    }
}

fn link(account_id: &str, protocol: SsoProtocol) -> SetSsoLinkRequest {
    SetSsoLinkRequest {
        account_id: account_id.into(),
        protocol: protocol as i32,
        organization_id: "org_acme".into(),
    }
}

e2e! {
    async fn s6_personal_managed_and_unseen_accounts_are_eligible(app) {
        let mut client = app.eligibility();
        let unseen = client.check_eligibility(by_account("acct_never_seen")).await.unwrap().into_inner();
        assert!(unseen.eligible);
        assert_eq!(unseen.reason(), IneligibilityReason::Unspecified);
        assert_eq!(unseen.workspace_type(), WorkspaceType::Unspecified);

        for (account, workspace) in [("acct_personal", WorkspaceType::Personal), ("acct_managed", WorkspaceType::Managed)] {
            client
                .set_workspace_type(SetWorkspaceTypeRequest { account_id: account.into(), workspace_type: workspace as i32 })
                .await
                .unwrap();
            let answer = client.check_eligibility(by_account(account)).await.unwrap().into_inner();
            assert!(answer.eligible, "{account}");
            assert_eq!(answer.workspace_type(), workspace);
            assert_eq!(answer.account_id, account);
        }
        // Checking never creates an account.
        let status = client.get_account(GetAccountRequest { account_id: "acct_never_seen".into() }).await.unwrap_err();
        assert_status(&status, Code::NotFound, Some("NOT_FOUND"));
    }
}

e2e! {
    async fn s7_saml_and_oidc_linked_accounts_are_not_eligible(app) {
        let mut client = app.eligibility();
        for (account, protocol, reason) in [
            ("acct_saml", SsoProtocol::Saml, IneligibilityReason::SsoLinkedSaml),
            ("acct_oidc", SsoProtocol::Oidc, IneligibilityReason::SsoLinkedOidc),
        ] {
            let account_after = client.set_sso_link(link(account, protocol)).await.unwrap().into_inner().account.unwrap();
            assert_eq!(account_after.sso_link.as_ref().unwrap().protocol(), protocol);
            let answer = client.check_eligibility(by_account(account)).await.unwrap().into_inner();
            assert!(!answer.eligible, "{account}");
            assert_eq!(answer.reason(), reason);
        }
    }
}

e2e! {
    async fn s7_managed_workspace_linked_to_sso_is_not_eligible_whatever_the_workspace_type(app) {
        let mut client = app.eligibility();
        client.set_sso_link(link("acct_m", SsoProtocol::Oidc)).await.unwrap();
        client
            .set_workspace_type(SetWorkspaceTypeRequest { account_id: "acct_m".into(), workspace_type: WorkspaceType::Managed as i32 })
            .await
            .unwrap();
        let answer = client.check_eligibility(by_account("acct_m")).await.unwrap().into_inner();
        assert!(!answer.eligible);
        assert_eq!(answer.reason(), IneligibilityReason::SsoLinkedOidc);
        assert_eq!(answer.workspace_type(), WorkspaceType::Managed);
    }
}

e2e! {
    async fn s7_clearing_the_sso_link_makes_the_account_eligible_again(app) {
        let mut client = app.eligibility();
        client.set_sso_link(link("acct_c", SsoProtocol::Saml)).await.unwrap();
        let cleared = client.clear_sso_link(ClearSsoLinkRequest { account_id: "acct_c".into() }).await.unwrap().into_inner();
        assert!(cleared.account.unwrap().sso_link.is_none());
        assert!(client.check_eligibility(by_account("acct_c")).await.unwrap().into_inner().eligible);
        // Clearing an absent link is fine and changes nothing.
        client.clear_sso_link(ClearSsoLinkRequest { account_id: "acct_c".into() }).await.unwrap();
        client.clear_sso_link(ClearSsoLinkRequest { account_id: "acct_fresh".into() }).await.unwrap();
        assert!(client.check_eligibility(by_account("acct_fresh")).await.unwrap().into_inner().eligible);
    }
}

e2e! {
    async fn sso_links_and_workspace_types_persist_across_a_restart(app) {
        let mut client = app.eligibility();
        client.set_sso_link(link("acct_p", SsoProtocol::Saml)).await.unwrap();
        client
            .set_workspace_type(SetWorkspaceTypeRequest { account_id: "acct_w".into(), workspace_type: WorkspaceType::Managed as i32 })
            .await
            .unwrap();
        app.restart().await;
        let mut client = app.eligibility();
        let linked = client.check_eligibility(by_account("acct_p")).await.unwrap().into_inner();
        assert_eq!(linked.reason(), IneligibilityReason::SsoLinkedSaml);
        let account = client.get_account(GetAccountRequest { account_id: "acct_p".into() }).await.unwrap().into_inner().account.unwrap();
        assert_eq!(account.sso_link.unwrap().organization_id, "org_acme");
        let managed = client.check_eligibility(by_account("acct_w")).await.unwrap().into_inner();
        assert_eq!(managed.workspace_type(), WorkspaceType::Managed);
    }
}

e2e! {
    async fn bad_eligibility_input_is_invalid_argument_with_the_field(app) {
        let mut client = app.eligibility();
        let cases: Vec<(SetSsoLinkRequest, Vec<&str>)> = vec![
            (SetSsoLinkRequest { account_id: String::new(), ..link("x", SsoProtocol::Saml) }, vec!["account_id"]),
            (SetSsoLinkRequest { account_id: "a".repeat(129), ..link("x", SsoProtocol::Saml) }, vec!["account_id"]),
            (SetSsoLinkRequest { account_id: "acct\0nul".into(), ..link("x", SsoProtocol::Saml) }, vec!["account_id"]),
            (SetSsoLinkRequest { protocol: 0, ..link("acct_ok", SsoProtocol::Saml) }, vec!["protocol"]),
            (SetSsoLinkRequest { protocol: 99, ..link("acct_ok", SsoProtocol::Saml) }, vec!["protocol"]),
            (SetSsoLinkRequest { account_id: String::new(), protocol: 0, organization_id: String::new() }, vec!["account_id", "protocol", "organization_id"]),
        ];
        for (request, fields) in cases {
            let status = client.set_sso_link(request).await.unwrap_err();
            assert_status(&status, Code::InvalidArgument, None);
            assert_eq!(violated_fields(&status), fields);
        }
        let status = client
            .set_workspace_type(SetWorkspaceTypeRequest { account_id: "acct_ok".into(), workspace_type: 0 })
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&status), ["workspace_type"]);
        let status = client.check_eligibility(CheckEligibilityRequest { subject: None }).await.unwrap_err();
        assert_eq!(violated_fields(&status), ["subject"]);
        let status = client
            .check_eligibility(CheckEligibilityRequest {
                subject: Some(Subject { subject: Some(subject::Subject::SessionToken("not-a-token".into())) }),
            })
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&status), ["subject.session_token"]);
        // Nothing was stored by any refused call.
        let status = client.get_account(GetAccountRequest { account_id: "acct_ok".into() }).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
    }
}

e2e! {
    async fn a_request_that_does_not_decode_is_invalid_argument_not_internal(app) {
        // Field 1 (account_id, a string) sent with the varint wire type.
        let status = active_sessions_e2e::raw_unary(&app, "/activesessions.v1.AccountEligibility/SetSsoLink", vec![0x08, 0x01])
            .await
            .unwrap_err();
        assert_status(&status, Code::InvalidArgument, None);
        assert_eq!(violated_fields(&status), ["account_id"]);
    }
}
