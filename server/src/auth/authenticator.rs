//! The authenticator, in front of every service but health and reflection: finds the caller by
//! bearer token or client certificate, and applies the caller's rate limit. The transport reads
//! the credential from the call (`grpc::authenticate`); nothing here sees or logs more of it.

use std::sync::Arc;

use super::{Caller, CallerRegistry, Refusal, revalidate::Authentication};

/// Identifies callers. Cheap to clone.
#[derive(Debug, Clone)]
pub enum Authenticator {
    /// Local development mode: every call is the all-powerful `local` caller.
    Local(Arc<Caller>),
    /// Callers from the callers file.
    Enforced(Arc<CallerRegistry>),
}

/// The credential a call presented, as the transport read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented<'a> {
    /// The `authorization` metadata (`None` when it is not visible ASCII).
    Authorization(Option<&'a str>),
    /// No `authorization` metadata, and a client certificate with this subject (mTLS).
    CertificateSubject(String),
    /// Neither.
    Nothing,
}

impl Authenticator {
    /// Local development mode.
    pub fn local() -> Self {
        Self::Local(Arc::new(Caller::local()))
    }

    /// The caller that presented `credential`, and how it authenticated, once one call is
    /// taken from its rate limit.
    pub fn admit(
        &self,
        credential: Presented<'_>,
    ) -> Result<(Arc<Caller>, Authentication), Refusal> {
        let (caller, authentication) = self.identify(credential)?;
        if let Err(wait) = caller.take_rate_limit() {
            tracing::debug!(caller = caller.name(), "rate limited");
            return Err(Refusal::RateLimited {
                caller: caller.name().to_owned(),
                wait,
            });
        }
        Ok((caller, authentication))
    }

    fn identify(
        &self,
        credential: Presented<'_>,
    ) -> Result<(Arc<Caller>, Authentication), Refusal> {
        let registry = match self {
            Self::Local(caller) => return Ok((caller.clone(), Authentication::local())),
            Self::Enforced(registry) => registry,
        };
        let callers = registry.current();
        match credential {
            Presented::Authorization(header) => {
                let token = header
                    .and_then(|value| value.strip_prefix("Bearer "))
                    .map(str::trim)
                    .filter(|token| !token.is_empty())
                    .ok_or(Refusal::Unauthenticated(
                        "the authorization metadata must be \"Bearer <token>\"",
                    ))?;
                let caller = callers
                    .by_token(token)
                    .ok_or(Refusal::Unauthenticated("unknown bearer token"))?;
                Ok((caller, Authentication::token(registry, token)))
            }
            Presented::CertificateSubject(subject) => {
                let caller =
                    callers
                        .by_certificate_subject(&subject)
                        .ok_or(Refusal::Unauthenticated(
                            "no caller has this client certificate",
                        ))?;
                Ok((caller, Authentication::certificate(registry, subject)))
            }
            Presented::Nothing => Err(Refusal::Unauthenticated(
                "no credential: send \"authorization: Bearer <token>\" or a client certificate",
            )),
        }
    }
}
