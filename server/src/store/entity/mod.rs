//! sea-orm entities, one per table. They mirror the migrations in `store::migration`; only the
//! store layer sees them, and it converts them to domain types before anything leaves it.

pub mod account;
pub mod idempotency_record;
pub mod revocation;
pub mod revocation_log_head;
pub mod security_event;
pub mod server_setting;
pub mod session;
pub mod trusted_device;
