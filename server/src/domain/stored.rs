//! Enums kept in the database as text. Each derives strum's conversions (`IntoStaticStr`,
//! `EnumString`, `VariantArray`) with its stored spelling; [`StoredEnum`] gives them one way to
//! write and read that spelling. The spellings are part of the stored data: the test below
//! pins every one of them.

use std::str::FromStr;

use strum::VariantArray;

/// An enum with a stored text form.
pub trait StoredEnum: Copy + Into<&'static str> + FromStr + VariantArray + 'static {
    /// The stored form.
    fn as_str(self) -> &'static str {
        self.into()
    }

    /// Reads the stored form; `None` for text no variant is stored as.
    fn from_stored(value: &str) -> Option<Self> {
        value.parse().ok()
    }
}

impl<T> StoredEnum for T where T: Copy + Into<&'static str> + FromStr + VariantArray + 'static {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        history::SecurityEventType,
        session::{AuthMethod, ClientKind, Product, RevocationReason, SessionStatus},
        trust::TrustMethod,
    };

    fn spellings<T: StoredEnum + std::fmt::Debug + PartialEq>() -> Vec<&'static str> {
        T::VARIANTS
            .iter()
            .map(|variant| {
                let stored = variant.as_str();
                assert_eq!(
                    T::from_stored(stored),
                    Some(*variant),
                    "{stored} reads back"
                );
                stored
            })
            .collect()
    }

    #[test]
    fn every_stored_spelling_is_pinned_and_reads_back() {
        assert_eq!(spellings::<Product>(), ["CHATGPT", "CODEX", "API_PLATFORM"]);
        assert_eq!(
            spellings::<ClientKind>(),
            [
                "BROWSER",
                "DESKTOP_APP",
                "MOBILE_APP",
                "THIRD_PARTY_APP",
                "CONNECTED_APP",
                "SIGN_IN_WITH_CHATGPT",
                "CLI"
            ]
        );
        assert_eq!(
            spellings::<AuthMethod>(),
            [
                "UNKNOWN",
                "PASSWORD",
                "PASSKEY",
                "EMAIL_CODE",
                "PHONE_CODE",
                "GOOGLE",
                "MICROSOFT",
                "APPLE",
                "SSO_SAML",
                "SSO_OIDC"
            ]
        );
        assert_eq!(spellings::<SessionStatus>(), ["ACTIVE", "UNAVAILABLE"]);
        assert_eq!(
            spellings::<RevocationReason>(),
            [
                "USER_LOG_OUT",
                "USER_LOG_OUT_ALL",
                "OPERATOR",
                "TRUST_REMOVED",
                "SESSION_LIMIT",
                "PASSWORD_CHANGED",
                "FACTOR_CHANGED",
                "ACCOUNT_DISABLED",
                "SECURITY_RESET",
                "ACCOUNT_DELETED"
            ]
        );
        assert_eq!(
            spellings::<TrustMethod>(),
            ["TOTP", "SMS_CODE", "EMAIL_CODE", "PASSKEY", "RECOVERY_CODE"]
        );
        assert_eq!(
            spellings::<SecurityEventType>(),
            [
                "SIGN_IN",
                "LOG_OUT",
                "LOG_OUT_ALL",
                "DEVICE_TRUSTED",
                "DEVICE_TRUST_REMOVED",
                "ACCOUNT_DISABLED",
                "ACCOUNT_ENABLED"
            ]
        );
        assert_eq!(Product::from_stored("chatgpt"), None, "spellings are exact");
    }
}
