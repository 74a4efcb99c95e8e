//! Who is calling, and what it may do. Every calling service has a credential (a bearer token
//! whose SHA-256 is in the callers file, or a client certificate under mTLS) and roles. The
//! [`Authenticator`] interceptor identifies the caller, applies its rate limit, and puts it in
//! the request's extensions; handlers ask the [`Caller`] whether a call is allowed. With no
//! callers file the server runs in local development mode: every call is allowed, and the
//! server only listens on loopback.

mod caller;
mod callers_file;
mod interceptor;
mod revalidate;

pub use caller::{Caller, ProductScope, Role, denied};
pub use callers_file::{CallerRegistry, CallersFileError};
pub use interceptor::Authenticator;
pub use revalidate::Authentication;
