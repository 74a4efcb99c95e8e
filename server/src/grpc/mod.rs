//! gRPC handlers, one module per service. A handler reads the caller the interceptor
//! (`authenticate`) found, converts the request into its command's input with `TryFrom`
//! (`convert`; bad input is INVALID_ARGUMENT naming each field), asks the caller whether the
//! call is allowed, runs the command and converts the result back with `From`. Every error
//! becomes its status in `status`. Handlers never parse headers or touch SQL.

pub mod authenticate;
pub mod budget;
pub mod convert;
pub mod eligibility;
pub mod sessions;
pub mod status;
pub mod trusted_devices;
