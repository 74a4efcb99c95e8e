//! The authenticating interceptor: reads the credential a call presents (the `authorization`
//! metadata, else the client certificate's subject under mTLS), asks the
//! [`Authenticator`] for its caller, and puts the caller and how it authenticated into the
//! request's extensions, where handlers find them. Nothing here logs the token.

use std::sync::Arc;

use tonic::{Request, Status, service::Interceptor};

use crate::auth::{Authentication, Authenticator, Caller, Presented, Refusal};

impl Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let credential = match request.metadata().get("authorization") {
            Some(header) => Presented::Authorization(header.to_str().ok()),
            None => match certificate_subject(&request) {
                Some(subject) => Presented::CertificateSubject(subject),
                None => Presented::Nothing,
            },
        };
        let (caller, authentication) = self.admit(credential)?;
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

/// The caller of a request that passed the interceptor.
pub fn caller_of<T>(request: &Request<T>) -> Result<Arc<Caller>, Refusal> {
    request
        .extensions()
        .get::<Arc<Caller>>()
        .cloned()
        .ok_or(Refusal::Unidentified)
}

/// How a request that passed the interceptor authenticated (local development mode when it
/// says nothing).
pub fn authentication_of<T>(request: &Request<T>) -> Authentication {
    request
        .extensions()
        .get::<Authentication>()
        .cloned()
        .unwrap_or_else(Authentication::local)
}
