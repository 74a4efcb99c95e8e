//! Long-lived calls follow callers-file reloads. A unary call is authorised once, when it
//! arrives; a `WatchRevocations` stream lives for hours, so it keeps the credential it was opened
//! with and re-checks it on every reload: when the reload removed the caller (or changed its
//! token) the stream ends with UNAUTHENTICATED, and when the caller's role or products no longer
//! allow what it watches, with PERMISSION_DENIED, at once.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{Caller, CallerRegistry, Refusal};

/// How a request authenticated, found by the [`Authenticator`](super::Authenticator) and kept
/// in the request's extensions.
#[derive(Debug, Clone)]
pub struct Authentication {
    registry: Option<Arc<CallerRegistry>>,
    credential: Credential,
}

/// The credential a request presented (the token only as its SHA-256).
#[derive(Debug, Clone)]
enum Credential {
    Local,
    TokenDigest([u8; 32]),
    CertificateSubject(String),
}

impl Authentication {
    /// Local development mode: nothing to re-check.
    pub fn local() -> Self {
        Self {
            registry: None,
            credential: Credential::Local,
        }
    }

    /// A bearer token found in `registry`.
    pub(super) fn token(registry: &Arc<CallerRegistry>, token: &str) -> Self {
        Self {
            registry: Some(registry.clone()),
            credential: Credential::TokenDigest(Sha256::digest(token.as_bytes()).into()),
        }
    }

    /// A client certificate found in `registry`.
    pub(super) fn certificate(registry: &Arc<CallerRegistry>, subject: String) -> Self {
        Self {
            registry: Some(registry.clone()),
            credential: Credential::CertificateSubject(subject),
        }
    }

    /// Completes with the refusal that must end the call once a reload leaves its credential
    /// unknown (UNAUTHENTICATED) or its caller no longer allowed (`still_allowed`'s refusal);
    /// never completes in local development mode or while the caller stays allowed.
    pub async fn revoked(self, still_allowed: impl Fn(&Caller) -> Result<(), Refusal>) -> Refusal {
        let Some(registry) = self.registry else {
            return std::future::pending().await;
        };
        let mut reloads = registry.subscribe();
        loop {
            if reloads.changed().await.is_err() {
                return std::future::pending().await;
            }
            let callers = reloads.borrow_and_update().clone();
            let caller = match &self.credential {
                Credential::Local => return std::future::pending().await,
                Credential::TokenDigest(digest) => callers.by_token_digest(digest),
                Credential::CertificateSubject(subject) => callers.by_certificate_subject(subject),
            };
            let Some(caller) = caller else {
                return Refusal::Unauthenticated(
                    "the caller's credential was removed by a callers-file reload",
                );
            };
            if let Err(refusal) = still_allowed(&caller) {
                return refusal;
            }
        }
    }
}
