//! gRPC handlers, one module per service. A handler converts the request into domain types
//! (refusing bad input with INVALID_ARGUMENT and field violations), calls the domain, and
//! converts the result back. Handlers never parse headers or touch SQL.

pub mod budget;
pub mod eligibility;
pub mod proto;
pub mod session_proto;
pub mod sessions;
pub mod status;
pub mod trusted_devices;
