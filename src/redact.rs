//! Hand-written `Debug` for the generated messages that carry a session token.
//!
//! A session token is a bearer secret: anything that logs a request or response with `{:?}`
//! must not leak it. `build.rs` skips the derived `Debug` for these messages; here the token is
//! shown only by its non-secret prefix and length.

use std::fmt;

use crate::v1::{
    RegisterSessionResponse, Subject, TouchSessionRequest, ValidateSessionRequest, subject,
};

/// Placeholder for a token in debug output: the recognisable prefix, never the secret part.
struct RedactedToken<'a>(&'a str);

impl fmt::Debug for RedactedToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            let prefix: String = self.0.chars().take_while(|c| *c != '_').collect();
            write!(f, "{prefix}_<redacted {} chars>", self.0.len())
        }
    }
}

impl fmt::Debug for subject::Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SessionToken(token) => f
                .debug_tuple("SessionToken")
                .field(&RedactedToken(token))
                .finish(),
            Self::AccountId(account_id) => f.debug_tuple("AccountId").field(account_id).finish(),
        }
    }
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subject")
            .field("subject", &self.subject)
            .finish()
    }
}

impl fmt::Debug for RegisterSessionResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisterSessionResponse")
            .field("session", &self.session)
            .field("session_token", &RedactedToken(&self.session_token))
            .field("replayed", &self.replayed)
            .finish()
    }
}

impl fmt::Debug for ValidateSessionRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidateSessionRequest")
            .field("session_token", &RedactedToken(&self.session_token))
            .finish()
    }
}

impl fmt::Debug for TouchSessionRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TouchSessionRequest")
            .field("session_token", &RedactedToken(&self.session_token))
            .field("ip_address", &self.ip_address)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_contains_the_token() {
        let token = "ast_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA";
        let outputs = [
            format!(
                "{:?}",
                ValidateSessionRequest {
                    session_token: token.into()
                }
            ),
            format!(
                "{:?}",
                Subject {
                    subject: Some(subject::Subject::SessionToken(token.into()))
                }
            ),
            format!(
                "{:?}",
                RegisterSessionResponse {
                    session_token: token.into(),
                    ..Default::default()
                }
            ),
            format!(
                "{:?}",
                TouchSessionRequest {
                    session_token: token.into(),
                    ip_address: String::new()
                }
            ),
        ];
        for output in outputs {
            assert!(!output.contains("c2VjcmV0"), "token leaked in {output}");
            assert!(
                output.contains("ast_<redacted"),
                "no redaction marker in {output}"
            );
        }
    }
}
