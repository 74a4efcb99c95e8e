//! Arguments shared by the typed clients, and conversions from the wire types.

use std::{
    fmt,
    time::{Duration, SystemTime},
};

use crate::proto::{self, Product};

/// Whose sessions, devices or history a call is about.
#[derive(Clone, PartialEq, Eq)]
pub enum Owner {
    /// The signed-in user's own session token: the settings page calls this way, and the
    /// current session is derived from it.
    Token(String),
    /// An account id, for operators. There is no current session in this case.
    Account(String),
}

impl Owner {
    /// The owner of this session token.
    pub fn token(token: impl Into<String>) -> Self {
        Self::Token(token.into())
    }

    /// This account (operators).
    pub fn account(account_id: impl Into<String>) -> Self {
        Self::Account(account_id.into())
    }

    pub(crate) fn subject(&self) -> proto::Subject {
        let subject = match self {
            Self::Token(token) => proto::subject::Subject::SessionToken(token.clone()),
            Self::Account(account) => proto::subject::Subject::AccountId(account.clone()),
        };
        proto::Subject {
            subject: Some(subject),
        }
    }
}

impl fmt::Debug for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(<redacted>)"),
            Self::Account(account) => f.debug_tuple("Account").field(account).finish(),
        }
    }
}

/// Paging and filtering of a listing. `ListOptions::default()` asks for the first page of the
/// server's default size, every product.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Items per page, 1 to 100; `None` for the server default (50).
    pub page_size: Option<u32>,
    /// The `next_page_token` of the previous page; `None` for the first page.
    pub page_token: Option<String>,
    /// Only rows with a session in this product (session listings only); `None` for all.
    pub product: Option<Product>,
}

impl ListOptions {
    /// The first page, of the server's default size.
    pub fn new() -> Self {
        Self::default()
    }

    /// Items per page (1 to 100).
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = Some(size);
        self
    }

    /// Continue after the page that returned this token.
    pub fn page_token(mut self, token: impl Into<String>) -> Self {
        self.page_token = Some(token.into());
        self
    }

    /// Only rows with a session in this product.
    pub fn product(mut self, product: Product) -> Self {
        self.product = Some(product);
        self
    }

    pub(crate) fn wire_product(&self) -> i32 {
        self.product.unwrap_or_default() as i32
    }

    pub(crate) fn wire_page_size(&self) -> i32 {
        self.page_size
            .map_or(0, |size| i32::try_from(size).unwrap_or(i32::MAX))
    }
}

/// A wire timestamp as a [`SystemTime`]; `None` when absent or out of range.
pub(crate) fn time(timestamp: Option<prost_types::Timestamp>) -> Option<SystemTime> {
    timestamp.and_then(|timestamp| SystemTime::try_from(timestamp).ok())
}

/// A wire string that may be empty (a page token on the last page, an id that does not
/// apply), as an option.
pub(crate) fn non_empty(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

/// A duration on the wire; one beyond the wire range is sent as the largest.
pub(crate) fn wire_duration(duration: Duration) -> prost_types::Duration {
    prost_types::Duration::try_from(duration).unwrap_or(prost_types::Duration {
        seconds: i64::MAX,
        nanos: 0,
    })
}

/// The session token's wire form: `ast_` and 43 base64url characters.
const TOKEN_PREFIX: &str = "ast_";
const TOKEN_ENCODED_LEN: usize = 43;

/// True when `token` has the session token's wire form; anything else is not a session and
/// is never sent.
pub(crate) fn well_formed_token(token: &str) -> bool {
    token.strip_prefix(TOKEN_PREFIX).is_some_and(|encoded| {
        encoded.len() == TOKEN_ENCODED_LEN
            && encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_wire_form_is_a_token() {
        assert!(well_formed_token(
            "ast_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        ));
        for malformed in [
            "",
            "ast_",
            "not-a-token",
            "ast_AAAA",
            "ast_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
            "ast_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "Bearer ast_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(!well_formed_token(malformed), "{malformed:?}");
        }
    }
}
