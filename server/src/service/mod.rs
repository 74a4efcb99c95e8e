//! The service layer: the commands of the SessionService and TrustedDeviceService (register,
//! validate, log out, log out of all, sweep, revocation feed, trust, eligibility, account
//! lifecycle, retention). Each command takes domain values, applies the domain's rules, and
//! reads and writes through the store in its own transactions. The gRPC layer calls these;
//! nothing here knows about protobuf.

pub mod eligibility;
pub mod error;
pub mod retention;
pub mod sessions;
pub mod subject;
pub mod trust;

pub use error::ServiceError;
