//! Sealing a session token for an idempotent replay. A registration with a request id keeps the
//! token in its idempotency record so that a retry gets the same token back; what is stored is
//! the token encrypted with ChaCha20-Poly1305 under a key that never enters the database (a key
//! file: see `seal_key`). The associated data binds the sealed bytes to their record (caller
//! scope, request id, account and session), so a sealed token copied into another record does
//! not open. A record that no longer opens (the key was rotated or lost) yields nothing: the
//! replay is refused, never answered with another token.

use chacha20poly1305::{
    ChaCha20Poly1305, Key, Nonce,
    aead::{Aead, KeyInit, Payload},
};

use super::{
    ids::{AccountId, SessionId},
    token::{EntropyError, SessionToken},
};

/// Bytes of the random nonce stored in front of the ciphertext.
const NONCE_LEN: usize = 12;
/// Domain separation for the associated data.
const CONTEXT: &[u8] = b"active-sessions idempotent token seal v1\0";

/// The record a sealed token belongs to.
#[derive(Debug, Clone, Copy)]
pub struct SealBinding<'a> {
    /// The calling service's scope of request ids.
    pub scope: &'a str,
    /// The registration request id.
    pub request_id: &'a str,
    /// The account.
    pub account_id: &'a AccountId,
    /// The session the registration created.
    pub session_id: SessionId,
}

impl SealBinding<'_> {
    fn associated_data(&self) -> Vec<u8> {
        let session_id = self.session_id.to_string();
        let mut aad = CONTEXT.to_vec();
        for part in [
            self.scope,
            self.request_id,
            self.account_id.as_str(),
            &session_id,
        ] {
            aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }
}

/// Seals and opens tokens under the server's token seal key. Its `Debug` shows nothing of the
/// key.
#[derive(Clone)]
pub struct TokenSealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for TokenSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSealer(<key redacted>)")
    }
}

impl TokenSealer {
    /// A sealer under this 32-byte key.
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(&Key::from(*key)),
        }
    }

    /// The token encrypted for its record: a fresh random nonce followed by the ciphertext and
    /// its tag.
    pub fn seal(
        &self,
        binding: &SealBinding<'_>,
        token: &SessionToken,
    ) -> Result<Vec<u8>, EntropyError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|err| EntropyError::new(err.to_string()))?;
        let aad = binding.associated_data();
        let ciphertext = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: token.secret(),
                    aad: &aad,
                },
            )
            .map_err(|_| EntropyError::new("sealing failed".into()))?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// The token sealed in `sealed` for this record, or `None` when it does not open under this
    /// key (another key, another record, altered or emptied bytes).
    pub fn open(&self, binding: &SealBinding<'_>, sealed: &[u8]) -> Option<SessionToken> {
        if sealed.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let aad = binding.associated_data();
        let secret = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .ok()?;
        let secret: [u8; 32] = secret.as_slice().try_into().ok()?;
        Some(SessionToken::from_secret(secret))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn binding(account: &AccountId, request_id: &'static str) -> SealBinding<'static> {
        SealBinding {
            scope: "web",
            request_id,
            account_id: Box::leak(Box::new(account.clone())),
            session_id: SessionId::from_ulid(ulid::Ulid::from_parts(1, 2)),
        }
    }

    #[test]
    fn a_sealed_token_opens_only_with_its_key_and_record() {
        let account = AccountId::parse("acct_1").unwrap();
        let token = SessionToken::mint().unwrap();
        let sealer = TokenSealer::new(&[7; 32]);
        let sealed = sealer.seal(&binding(&account, "r1"), &token).unwrap();
        assert!(
            !sealed
                .windows(8)
                .any(|w| token.secret().windows(8).any(|t| t == w))
        );
        assert_eq!(sealer.open(&binding(&account, "r1"), &sealed), Some(token));
        assert_eq!(sealer.open(&binding(&account, "r2"), &sealed), None);
        assert_eq!(
            TokenSealer::new(&[8; 32]).open(&binding(&account, "r1"), &sealed),
            None
        );
        assert_eq!(sealer.open(&binding(&account, "r1"), &[]), None);
        assert!(!format!("{sealer:?}").contains('7'));
    }
}
