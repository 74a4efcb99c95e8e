//! The domain: validated value types and the rules of sessions, trust, eligibility and
//! retention, as pure values and functions. Nothing here performs I/O or knows about protobuf,
//! SQL or the runtime: the service layer applies these rules through the store, the gRPC layer
//! converts requests into these types, and the store persists them.

pub mod account;
pub mod history;
pub mod ids;
pub mod log_out_rule;
pub mod modes;
pub mod page_token;
pub mod retention;
pub mod revocation;
pub mod session;
pub mod stored;
pub mod subject;
pub mod text;
pub mod token;
pub mod token_seal;
pub mod trust;
