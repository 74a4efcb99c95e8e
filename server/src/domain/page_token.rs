//! Opaque, tamper-evident page tokens. A token carries the listing's position (and snapshot)
//! as JSON, signed with HMAC-SHA256 under a key shared by every replica; the signature also
//! covers the listing kind, the account and the filter, none of which travel in the token. A
//! token altered, or replayed for another account or filter, fails verification and is refused
//! with INVALID_ARGUMENT.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::{Serialize, de::DeserializeOwned};
use sha2::Sha256;

use super::ids::AccountId;

/// Longest page token accepted (bytes).
pub const MAX_PAGE_TOKEN_LEN: usize = 512;
/// Bytes of the HMAC kept in the token.
const TAG_LEN: usize = 16;

/// A page token that was altered, or issued for another account or query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("page_token is not valid for this request")]
pub struct InvalidPageToken;

/// Signs and verifies page tokens.
#[derive(Clone)]
pub struct PageTokens {
    key: [u8; 32],
}

impl std::fmt::Debug for PageTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageTokens(..)")
    }
}

impl PageTokens {
    /// With the shared signing key.
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// A token for `position` in the `kind` listing of `account` with `filter`.
    pub fn seal<T: Serialize>(
        &self,
        kind: &str,
        account: &AccountId,
        filter: &str,
        position: &T,
    ) -> String {
        let payload = serde_json::to_vec(position).unwrap_or_default();
        let tag = self.tag(kind, account, filter, &payload);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The position in a token, if the token was issued for exactly this listing.
    pub fn open<T: DeserializeOwned>(
        &self,
        token: &str,
        kind: &str,
        account: &AccountId,
        filter: &str,
    ) -> Result<T, InvalidPageToken> {
        if token.len() > MAX_PAGE_TOKEN_LEN {
            return Err(InvalidPageToken);
        }
        let (payload, tag) = token.split_once('.').ok_or(InvalidPageToken)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| InvalidPageToken)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| InvalidPageToken)?;
        let mac = self.mac(kind, account, filter, &payload);
        // Constant-time comparison of the truncated tag.
        if tag.len() != TAG_LEN {
            return Err(InvalidPageToken);
        }
        mac.verify_truncated_left(&tag)
            .map_err(|_| InvalidPageToken)?;
        serde_json::from_slice(&payload).map_err(|_| InvalidPageToken)
    }

    fn tag(&self, kind: &str, account: &AccountId, filter: &str, payload: &[u8]) -> Vec<u8> {
        let mut tag = self
            .mac(kind, account, filter, payload)
            .finalize()
            .into_bytes()
            .to_vec();
        tag.truncate(TAG_LEN);
        tag
    }

    fn mac(&self, kind: &str, account: &AccountId, filter: &str, payload: &[u8]) -> Hmac<Sha256> {
        // new_from_slice accepts any key length for HMAC; the fallback is unreachable.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key)
            .unwrap_or_else(|_| Hmac::<Sha256>::new(&Default::default()));
        for part in [
            kind.as_bytes(),
            account.as_str().as_bytes(),
            filter.as_bytes(),
            payload,
        ] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_open_only_for_their_own_listing() {
        let tokens = PageTokens::new([7; 32]);
        let alice = AccountId::parse("alice").unwrap();
        let bob = AccountId::parse("bob").unwrap();
        let token = tokens.seal("rows", &alice, "", &(42_i64, "dev".to_owned()));
        let (key, device): (i64, String) = tokens.open(&token, "rows", &alice, "").unwrap();
        assert_eq!((key, device.as_str()), (42, "dev"));
        assert!(
            tokens
                .open::<(i64, String)>(&token, "rows", &bob, "")
                .is_err()
        );
        assert!(
            tokens
                .open::<(i64, String)>(&token, "rows", &alice, "CODEX")
                .is_err()
        );
        assert!(
            tokens
                .open::<(i64, String)>(&token, "events", &alice, "")
                .is_err()
        );
        let mut tampered = token.clone();
        tampered.replace_range(0..1, if token.starts_with('A') { "B" } else { "A" });
        assert!(
            tokens
                .open::<(i64, String)>(&tampered, "rows", &alice, "")
                .is_err()
        );
        assert!(
            tokens
                .open::<(i64, String)>("garbage", "rows", &alice, "")
                .is_err()
        );
    }
}
