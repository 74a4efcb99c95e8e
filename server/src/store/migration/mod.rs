//! Schema migrations, one file per change, named `mYYYYMMDD_NNNNNN_verb_noun` as sea-orm-cli
//! generates them. They run at start-up (`serve`) and through the `migrate` subcommand, on SQLite
//! and PostgreSQL alike: only portable column types, no engine-specific SQL.
//!
//! Every time column is a BIGINT of microseconds since the Unix epoch (UTC): exact, portable and
//! cheap to compare in keyset pagination.

use sea_orm_migration::prelude::*;

mod m20261127_000001_create_accounts;
mod m20261127_000002_create_sessions;
mod m20261127_000003_create_trusted_devices;
mod m20261127_000004_create_revocations;
mod m20261127_000005_create_security_events;
mod m20261127_000006_create_idempotency_records;
mod m20261127_000007_create_server_settings;
mod m20261130_000010_retire_idempotency_seal_key;
mod m20261130_000020_index_sessions_by_device_and_id;
mod m20261130_000030_add_generations;
mod m20261201_000040_add_account_lifecycle_and_retention;

/// Applies every migration in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_create_accounts::Migration),
            Box::new(m20261127_000002_create_sessions::Migration),
            Box::new(m20261127_000003_create_trusted_devices::Migration),
            Box::new(m20261127_000004_create_revocations::Migration),
            Box::new(m20261127_000005_create_security_events::Migration),
            Box::new(m20261127_000006_create_idempotency_records::Migration),
            Box::new(m20261127_000007_create_server_settings::Migration),
            Box::new(m20261130_000010_retire_idempotency_seal_key::Migration),
            Box::new(m20261130_000020_index_sessions_by_device_and_id::Migration),
            Box::new(m20261130_000030_add_generations::Migration),
            Box::new(m20261201_000040_add_account_lifecycle_and_retention::Migration),
        ]
    }
}
