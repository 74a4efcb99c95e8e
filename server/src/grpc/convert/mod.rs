//! Conversions between the protobuf messages and the server's types, as `TryFrom` and `From`
//! impls kept beside each other so that the wire contract and the domain stay in step. A
//! request converts with `TryFrom` into the validated input of its command, refusing bad input
//! with `Violations` that name each field, in field order; a result converts into its response
//! with `From`. The shared field parsers are in [`fields`], the enum tables in [`enums`], and
//! the request booleans that select a behaviour become the enums of [`crate::domain::modes`].

pub mod device;
pub mod eligibility;
pub mod enums;
pub mod fields;
pub mod history;
pub mod revocations;
pub mod sessions;
pub mod trust;
