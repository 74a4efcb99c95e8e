//! Who is calling, and what it may do. Every calling service has a credential (a bearer token
//! whose SHA-256 is in the callers file, or a client certificate under mTLS) and roles. The
//! [`Authenticator`] identifies the caller and applies its rate limit (the gRPC interceptor in
//! `grpc::authenticate` puts the caller in the request's extensions); handlers ask the
//! [`Caller`] whether a call is allowed. Every refusal is a [`Refusal`], which the gRPC layer
//! maps to its status. With no callers file the server runs in local development mode: every
//! call is allowed, and the server only listens on loopback.

mod authenticator;
mod caller;
mod callers_file;
mod refusal;
mod revalidate;

pub use authenticator::{Authenticator, Presented};
pub use caller::{Caller, ProductScope, Role};
pub use callers_file::{CallerRegistry, CallersFileError};
pub use refusal::Refusal;
pub use revalidate::Authentication;
