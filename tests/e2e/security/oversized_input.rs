//! Oversized input: a request over the message-size limit is OUT_OF_RANGE, an overlong
//! user agent INVALID_ARGUMENT.

use active_sessions_e2e::{SignIn, assert_status, e2e, violated_fields};
use tonic::Code;

e2e! {
    async fn a_request_over_the_message_size_limit_is_out_of_range_and_an_overlong_user_agent_is_invalid(app) {
        let limit = app.config().security.max_message_bytes;
        assert_eq!(limit, 64 * 1024);

        // 200 KB: refused by the message-size limit before the handler sees it. tonic answers
        // OUT_OF_RANGE ("decoded message length too large").
        let mut huge = SignIn::browser("acct-big", "device-1");
        huge.user_agent = "a".repeat(200 * 1024);
        let status = app
            .sessions()
            .register_session(huge.request())
            .await
            .expect_err("a 200 KB request must be refused");
        assert_status(&status, Code::OutOfRange, None);
        assert!(status.message().contains("too large"), "{status:?}");
        assert!(status.message().contains(&limit.to_string()), "{status:?}");

        // Over the 1024-character field limit but under the byte limit.
        let mut long = SignIn::browser("acct-big", "device-2");
        long.user_agent = "a".repeat(2000);
        let status = app
            .sessions()
            .register_session(long.request())
            .await
            .expect_err("a 2000-character user agent must be refused");
        assert_status(&status, Code::InvalidArgument, None);
        assert_eq!(violated_fields(&status), ["user_agent"]);

        assert!(app.rows_for_account("acct-big").await.is_empty(), "nothing was stored");

        // The limit is in characters: 1024 two-byte characters are accepted.
        let mut widest = SignIn::browser("acct-big", "device-3");
        widest.user_agent = "é".repeat(1024);
        app.sign_in(widest).await;
        let rows = app.rows_for_account("acct-big").await;
        assert_eq!(rows.len(), 1);
    }
}
