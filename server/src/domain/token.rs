//! Session tokens: minted here from 256 bits of the OS's CSPRNG, returned once, stored only as
//! their SHA-256. A token is `ast_` followed by 43 base64url characters; anything else is
//! refused before the database is touched.

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

/// The recognisable prefix of every session token (for secret scanners and humans).
pub const TOKEN_PREFIX: &str = "ast_";
/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;
/// Length of the base64url part.
const ENCODED_LEN: usize = 43;

/// A session token. Its `Debug` shows only the prefix.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken {
    secret: [u8; TOKEN_BYTES],
}

/// Why a string is not a session token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MalformedToken {
    /// Empty.
    #[error("must not be empty")]
    Empty,
    /// Wrong prefix, length or alphabet.
    #[error(
        "must be a session token returned by RegisterSession (\"ast_\" and 43 base64url characters)"
    )]
    Format,
}

/// The operating system's random source failed.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct EntropyError(String);

impl EntropyError {
    pub(crate) fn new(message: String) -> Self {
        Self(message)
    }
}

impl SessionToken {
    /// A fresh token from the OS's CSPRNG.
    pub fn mint() -> Result<Self, EntropyError> {
        let mut secret = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut secret).map_err(|err| EntropyError(err.to_string()))?;
        Ok(Self { secret })
    }

    /// Parses the wire form.
    pub fn parse(value: &str) -> Result<Self, MalformedToken> {
        if value.is_empty() {
            return Err(MalformedToken::Empty);
        }
        let encoded = value
            .strip_prefix(TOKEN_PREFIX)
            .filter(|rest| rest.len() == ENCODED_LEN)
            .ok_or(MalformedToken::Format)?;
        let mut secret = [0u8; TOKEN_BYTES];
        match URL_SAFE_NO_PAD.decode_slice(encoded, &mut secret) {
            Ok(TOKEN_BYTES) => Ok(Self { secret }),
            _ => Err(MalformedToken::Format),
        }
    }

    /// Rebuilds a token from its secret bytes (an idempotent replay unseals them).
    pub(crate) fn from_secret(secret: [u8; TOKEN_BYTES]) -> Self {
        Self { secret }
    }

    /// The secret bytes, for sealing an idempotent replay.
    pub(crate) fn secret(&self) -> &[u8; TOKEN_BYTES] {
        &self.secret
    }

    /// The wire form. Only RegisterSession's response ever carries it.
    pub fn expose(&self) -> String {
        format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(self.secret))
    }

    /// The SHA-256 of the wire form: the only thing stored.
    pub fn hash(&self) -> TokenHash {
        // The wire form, encoded on the stack: this runs on every validation.
        let mut encoded = [0u8; ENCODED_LEN];
        let written = URL_SAFE_NO_PAD.encode_slice(self.secret, &mut encoded);
        debug_assert_eq!(written, Ok(ENCODED_LEN));
        let mut digest = Sha256::new();
        digest.update(TOKEN_PREFIX.as_bytes());
        digest.update(encoded);
        TokenHash(digest.finalize().into())
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionToken({TOKEN_PREFIX}<redacted>)")
    }
}

/// The SHA-256 of a session token. Not secret in itself, but kept out of logs all the same.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// The hash bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_hash_is_the_sha256_of_the_wire_form() {
        // Stored hashes depend on this: it must never change.
        let secret: [u8; TOKEN_BYTES] = std::array::from_fn(|i| i as u8);
        let token = SessionToken::from_secret(secret);
        assert_eq!(
            token.expose(),
            "ast_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
        );
        assert_eq!(
            hex::encode(token.hash().0),
            "a210f3c784af2bd917b3c4566ae88d922542dc3847a11a85448e0fae4ddc7e38"
        );
        let minted = SessionToken::mint().unwrap();
        assert_eq!(
            minted.hash().0,
            <[u8; 32]>::from(Sha256::digest(minted.expose().as_bytes()))
        );
    }

    #[test]
    fn minted_tokens_round_trip_and_differ() {
        let a = SessionToken::mint().unwrap();
        let b = SessionToken::mint().unwrap();
        assert_ne!(a, b);
        let wire = a.expose();
        assert!(wire.starts_with("ast_"));
        assert_eq!(wire.len(), 4 + 43);
        assert_eq!(SessionToken::parse(&wire).unwrap(), a);
        assert_eq!(SessionToken::parse(&wire).unwrap().hash(), a.hash());
    }

    #[test]
    fn malformed_tokens_are_refused() {
        assert_eq!(SessionToken::parse(""), Err(MalformedToken::Empty));
        for bad in [
            "ast_short",
            "xyz_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "ast_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA!",
            "ast_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(
                SessionToken::parse(bad),
                Err(MalformedToken::Format),
                "{bad}"
            );
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let token = SessionToken::mint().unwrap();
        let wire = token.expose();
        let debug = format!("{token:?} {:?}", token.hash());
        assert!(!debug.contains(&wire[4..]));
    }
}
