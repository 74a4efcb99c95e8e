//! The callers file: a TOML list of calling services with their roles, products and
//! credentials, re-read on SIGHUP. A file that does not parse, or names an unknown role or
//! product, or lists a caller without a credential (or with the SHA-256 of the empty token), is
//! refused with the line at fault, at start and on reload; a bad reload keeps the callers
//! already loaded. A reload takes effect at once, also on revocation streams already open
//! (`auth::revalidate`).
//!
//! ```toml
//! [[callers]]
//! name = "chatgpt-web"
//! roles = ["product"]
//! products = ["CHATGPT"]
//! token_sha256 = "<hex SHA-256 of the bearer token>"
//! client_certificate_subject = "CN=chatgpt-web"   # optional, for mTLS
//! rate_limit_per_second = 2000                     # optional
//! ```

use std::{
    collections::HashSet,
    ops::Range,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use toml::Spanned;

use super::caller::{Caller, Role};
use crate::domain::session::Product;
use crate::domain::stored::StoredEnum as _;

/// Why a callers file was refused.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {message}", path.display(), line.map(|line| format!(":{line}")).unwrap_or_default())]
pub struct CallersFileError {
    /// The file.
    pub path: PathBuf,
    /// The line at fault, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    #[serde(default)]
    callers: Vec<Spanned<CallerFormat>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallerFormat {
    name: Spanned<String>,
    roles: Vec<Spanned<String>>,
    #[serde(default)]
    products: Vec<Spanned<String>>,
    token_sha256: Option<Spanned<String>>,
    client_certificate_subject: Option<Spanned<String>>,
    rate_limit_per_second: Option<u32>,
}

/// One caller with its credentials.
#[derive(Debug)]
struct Entry {
    caller: Arc<Caller>,
    token_sha256: Option<[u8; 32]>,
    certificate_subject: Option<String>,
}

/// The loaded callers.
#[derive(Debug, Default)]
pub struct Callers {
    entries: Vec<Entry>,
}

impl Callers {
    /// The caller whose token this is. Every entry is compared, in constant time, so the time
    /// taken says nothing about which entry (if any) matched.
    pub fn by_token(&self, token: &str) -> Option<Arc<Caller>> {
        if token.is_empty() {
            return None;
        }
        self.by_token_digest(&Sha256::digest(token.as_bytes()).into())
    }

    /// The caller whose token has this SHA-256 (compared in constant time, as [`by_token`](Self::by_token)).
    pub fn by_token_digest(&self, digest: &[u8; 32]) -> Option<Arc<Caller>> {
        let mut found = None;
        for entry in &self.entries {
            if let Some(expected) = &entry.token_sha256
                && bool::from(expected.ct_eq(digest))
            {
                found = Some(entry.caller.clone());
            }
        }
        found
    }

    /// The caller whose client certificate has this subject.
    pub fn by_certificate_subject(&self, subject: &str) -> Option<Arc<Caller>> {
        self.entries
            .iter()
            .find(|entry| entry.certificate_subject.as_deref() == Some(subject))
            .map(|entry| entry.caller.clone())
    }

    /// Number of callers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no caller is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Parses a callers file's text.
    pub fn parse(
        path: &Path,
        text: &str,
        default_rate: Option<u32>,
    ) -> Result<Self, CallersFileError> {
        let fail = |span: Option<Range<usize>>, message: String| CallersFileError {
            path: path.to_owned(),
            line: span.map(|span| line_of(text, span.start)),
            message,
        };
        let file: FileFormat =
            toml::from_str(text).map_err(|err| fail(err.span(), err.message().to_owned()))?;
        let mut names = HashSet::new();
        let mut entries = Vec::new();
        for caller in file.callers {
            let span = caller.span();
            let caller = caller.into_inner();
            let name = caller.name.get_ref().trim().to_owned();
            if name.is_empty() {
                return Err(fail(
                    Some(caller.name.span()),
                    "caller name must not be empty".into(),
                ));
            }
            if !names.insert(name.clone()) {
                return Err(fail(
                    Some(caller.name.span()),
                    format!("caller {name:?} is listed twice"),
                ));
            }
            let mut roles = Vec::new();
            for role in &caller.roles {
                roles.push(Role::parse(role.get_ref()).ok_or_else(|| {
                    fail(
                        Some(role.span()),
                        format!(
                            "unknown role {:?} (roles: product, settings, identity, operator)",
                            role.get_ref()
                        ),
                    )
                })?);
            }
            if roles.is_empty() {
                return Err(fail(
                    Some(span.clone()),
                    format!("caller {name:?} has no roles"),
                ));
            }
            let mut products = Vec::new();
            for product in &caller.products {
                products.push(Product::from_stored(product.get_ref()).ok_or_else(|| {
                    fail(
                        Some(product.span()),
                        format!(
                            "unknown product {:?} (products: CHATGPT, CODEX, API_PLATFORM)",
                            product.get_ref()
                        ),
                    )
                })?);
            }
            if roles.contains(&Role::Product) && products.is_empty() {
                return Err(fail(
                    Some(span.clone()),
                    format!("caller {name:?} has the product role but no products"),
                ));
            }
            let token_sha256 = caller
                .token_sha256
                .as_ref()
                .map(|hash| {
                    let mut bytes = [0u8; 32];
                    hex::decode_to_slice(hash.get_ref().trim(), &mut bytes)
                        .map(|()| bytes)
                        .map_err(|_| {
                            fail(
                                Some(hash.span()),
                                "token_sha256 must be 64 hexadecimal characters".into(),
                            )
                        })
                })
                .transpose()?;
            if let (Some(hash), Some(digest)) = (&caller.token_sha256, &token_sha256)
                && *digest == <[u8; 32]>::from(Sha256::digest(b""))
            {
                return Err(fail(
                    Some(hash.span()),
                    format!("caller {name:?}: token_sha256 is the SHA-256 of the empty token"),
                ));
            }
            let certificate_subject = caller.client_certificate_subject.map(Spanned::into_inner);
            if token_sha256.is_none() && certificate_subject.is_none() {
                return Err(fail(
                    Some(span),
                    format!("caller {name:?} needs token_sha256 or client_certificate_subject"),
                ));
            }
            entries.push(Entry {
                caller: Arc::new(Caller::new(
                    name,
                    roles,
                    products,
                    caller.rate_limit_per_second.or(default_rate),
                )),
                token_sha256,
                certificate_subject,
            });
        }
        Ok(Self { entries })
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The callers in force, replaced whole on reload; subscribers hear of every reload.
#[derive(Debug)]
pub struct CallerRegistry {
    path: PathBuf,
    default_rate: Option<u32>,
    current: tokio::sync::watch::Sender<Arc<Callers>>,
}

impl CallerRegistry {
    /// Loads the callers file at `path`.
    pub fn load(path: &Path, default_rate: Option<u32>) -> Result<Self, CallersFileError> {
        let callers = read(path, default_rate)?;
        Ok(Self {
            path: path.to_owned(),
            default_rate,
            current: tokio::sync::watch::Sender::new(Arc::new(callers)),
        })
    }

    /// The callers in force.
    pub fn current(&self) -> Arc<Callers> {
        self.current.borrow().clone()
    }

    /// Hears of every reload (the callers then in force).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<Callers>> {
        self.current.subscribe()
    }

    /// Re-reads the file. On error the callers already loaded stay in force.
    pub fn reload(&self) -> Result<usize, CallersFileError> {
        let callers = read(&self.path, self.default_rate)?;
        let count = callers.len();
        self.current.send_replace(Arc::new(callers));
        Ok(count)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn read(path: &Path, default_rate: Option<u32>) -> Result<Callers, CallersFileError> {
    let text = std::fs::read_to_string(path).map_err(|err| CallersFileError {
        path: path.to_owned(),
        line: None,
        message: format!("cannot read: {err}"),
    })?;
    Callers::parse(path, &text, default_rate)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"; // "test"

    #[test]
    fn a_good_file_finds_callers_by_token_and_subject() {
        let text = format!(
            "[[callers]]\nname = \"web\"\nroles = [\"product\"]\nproducts = [\"CHATGPT\"]\ntoken_sha256 = \"{HASH}\"\n\n\
             [[callers]]\nname = \"ops\"\nroles = [\"operator\"]\nclient_certificate_subject = \"CN=ops\"\n"
        );
        let callers = Callers::parse(Path::new("callers.toml"), &text, None).unwrap();
        assert_eq!(callers.by_token("test").unwrap().name(), "web");
        assert!(callers.by_token("nope").is_none());
        assert_eq!(
            callers.by_certificate_subject("CN=ops").unwrap().name(),
            "ops"
        );
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            (
                "[[callers]]\nname = \"a\"\nroles = [\"wizard\"]\ntoken_sha256 = \"00\"\n",
                3,
                "unknown role",
            ),
            (
                &format!(
                    "[[callers]]\nname = \"a\"\nroles = [\"product\"]\nproducts = [\"GAMES\"]\ntoken_sha256 = \"{HASH}\"\n"
                ),
                4,
                "unknown product",
            ),
            (
                "[[callers]]\nname = \"a\"\nroles = [\"identity\"]\ntoken_sha256 = \"xyz\"\n",
                4,
                "64 hexadecimal",
            ),
            (
                "[[callers]]\nname = \"a\"\nroles = [\"identity\"]\n",
                1,
                "needs token_sha256",
            ),
            (
                "[[callers]]\nname = \"a\"\nroles = [\"identity\"]\n\
                 token_sha256 = \"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"\n",
                4,
                "empty token",
            ),
            ("[[callers]]\nname = \"a\"\nroles = [\"identity\"\n", 3, ""),
            (
                "[[callers]]\nname = \"a\"\nrole = [\"identity\"]\n",
                3,
                "unknown field",
            ),
        ];
        for (text, line, needle) in cases {
            let err = Callers::parse(Path::new("c.toml"), text, None).unwrap_err();
            assert_eq!(err.line, Some(line), "{err} for {text:?}");
            assert!(err.to_string().contains(needle), "{err}");
            assert!(
                err.to_string().starts_with(&format!("c.toml:{line}: ")),
                "{err}"
            );
        }
    }
}
