//! The domain: validated value types, the rules of sessions, trust and eligibility, and the
//! commands that apply them through the store. Nothing here knows about protobuf or SQL; the
//! gRPC layer converts requests into these types, and the store persists them.

pub mod account;
pub mod eligibility;
pub mod error;
pub mod history;
pub mod ids;
pub mod log_out_rule;
pub mod page_token;
pub mod retention;
pub mod revocation;
pub mod session;
pub mod sessions;
pub mod subject;
pub mod text;
pub mod token;
pub mod token_seal;
pub mod trust;

pub use error::DomainError;
