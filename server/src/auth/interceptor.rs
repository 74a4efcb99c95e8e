//! The authenticating interceptor, in front of every service but health and reflection: finds
//! the caller by bearer token or client certificate, applies the caller's rate limit, and puts
//! the caller into the request's extensions. Nothing here logs the token.

use std::{collections::HashMap, sync::Arc};

use active_sessions::{ERROR_DOMAIN, v1::ErrorReason};
use tonic::{Code, Request, Status, service::Interceptor};
use tonic_types::{ErrorDetails, StatusExt};

use super::{Caller, CallerRegistry, revalidate::Authentication};

/// Identifies callers. Cheap to clone.
#[derive(Debug, Clone)]
pub enum Authenticator {
    /// Local development mode: every call is the all-powerful `local` caller.
    Local(Arc<Caller>),
    /// Callers from the callers file.
    Enforced(Arc<CallerRegistry>),
}

impl Authenticator {
    /// Local development mode.
    pub fn local() -> Self {
        Self::Local(Arc::new(Caller::local()))
    }

    fn identify<T>(&self, request: &Request<T>) -> Result<(Arc<Caller>, Authentication), Status> {
        let registry = match self {
            Self::Local(caller) => return Ok((caller.clone(), Authentication::local())),
            Self::Enforced(registry) => registry,
        };
        let callers = registry.current();
        if let Some(header) = request.metadata().get("authorization") {
            let token = header
                .to_str()
                .ok()
                .and_then(|value| value.strip_prefix("Bearer "))
                .map(str::trim)
                .filter(|token| !token.is_empty())
                .ok_or_else(|| {
                    unauthenticated("the authorization metadata must be \"Bearer <token>\"")
                })?;
            let caller = callers
                .by_token(token)
                .ok_or_else(|| unauthenticated("unknown bearer token"))?;
            return Ok((caller, Authentication::token(registry, token)));
        }
        if let Some(subject) = certificate_subject(request) {
            let caller = callers
                .by_certificate_subject(&subject)
                .ok_or_else(|| unauthenticated("no caller has this client certificate"))?;
            return Ok((caller, Authentication::certificate(registry, subject)));
        }
        Err(unauthenticated(
            "no credential: send \"authorization: Bearer <token>\" or a client certificate",
        ))
    }
}

impl Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let (caller, authentication) = self.identify(&request)?;
        if let Err(wait) = caller.take_rate_limit() {
            tracing::debug!(caller = caller.name(), "rate limited");
            let mut details = ErrorDetails::with_retry_info(Some(wait));
            details.set_error_info(
                ErrorReason::RateLimited.reason(),
                ERROR_DOMAIN,
                HashMap::new(),
            );
            return Err(Status::with_error_details(
                Code::ResourceExhausted,
                format!("{} is over its rate limit", caller.name()),
                details,
            ));
        }
        request.extensions_mut().insert(caller);
        request.extensions_mut().insert(authentication);
        Ok(request)
    }
}

/// The subject of the client's certificate, under mTLS (for example `CN=chatgpt-web`).
fn certificate_subject<T>(request: &Request<T>) -> Option<String> {
    let certificates = request.peer_certs()?;
    let leaf = certificates.first()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    Some(parsed.subject().to_string())
}

pub(super) fn unauthenticated(message: &str) -> Status {
    let details = ErrorDetails::with_error_info(
        ErrorReason::CallerUnauthenticated.reason(),
        ERROR_DOMAIN,
        HashMap::new(),
    );
    Status::with_error_details(Code::Unauthenticated, message, details)
}
