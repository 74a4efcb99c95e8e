//! Schema migrations, one file per change, named `mYYYYMMDD_NNNNNN_verb_noun` as sea-orm-cli
//! generates them. They run at start-up (`serve`) and through the `migrate` subcommand, on SQLite
//! and PostgreSQL alike: only portable column types, no engine-specific SQL.
//!
//! Every time column is a BIGINT of microseconds since the Unix epoch (UTC): exact, portable and
//! cheap to compare in keyset pagination.

use sea_orm_migration::{prelude::*, schema::*};

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

/// `CREATE TABLE IF NOT EXISTS` for `table`, to which a migration adds its columns.
fn new_table(table: impl IntoTableRef) -> TableCreateStatement {
    Table::create().table(table).if_not_exists().to_owned()
}

/// `CREATE INDEX IF NOT EXISTS name ON table (columns...)`, in the order given; make it
/// `.unique()` before creating where it must be.
fn index<C: IntoIndexColumn>(
    name: &str,
    table: impl IntoTableRef,
    columns: impl IntoIterator<Item = C>,
) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table).if_not_exists();
    for column in columns {
        index.col(column);
    }
    index
}

/// Drops `table` (a `down` step).
async fn drop_table(manager: &SchemaManager<'_>, table: impl IntoTableRef) -> Result<(), DbErr> {
    manager
        .drop_table(Table::drop().table(table).to_owned())
        .await
}

/// Drops the index `name` on `table` (a `down` step).
async fn drop_index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoTableRef,
) -> Result<(), DbErr> {
    manager
        .drop_index(Index::drop().name(name).table(table).to_owned())
        .await
}

/// Adds one column to `table`: one per statement, as SQLite requires.
async fn add_column(
    manager: &SchemaManager<'_>,
    table: impl IntoTableRef,
    column: impl IntoColumnDef,
) -> Result<(), DbErr> {
    manager
        .alter_table(Table::alter().table(table).add_column(column).to_owned())
        .await
}

/// Drops one column of `table` (a `down` step).
async fn drop_column(
    manager: &SchemaManager<'_>,
    table: impl IntoTableRef,
    column: impl IntoIden,
) -> Result<(), DbErr> {
    manager
        .alter_table(Table::alter().table(table).drop_column(column).to_owned())
        .await
}

/// A time column: microseconds since the Unix epoch.
fn micros(column: impl IntoIden) -> ColumnDef {
    big_integer(column)
}

/// A time column that may be empty.
fn micros_null(column: impl IntoIden) -> ColumnDef {
    big_integer_null(column)
}

/// A ULID column (sessions, revocations, events): 26 characters.
fn ulid(column: impl IntoIden) -> ColumnDef {
    string_len(column, 26)
}

/// A ULID column that may be empty.
fn ulid_null(column: impl IntoIden) -> ColumnDef {
    string_len_null(column, 26)
}

/// An identifier a caller chooses (account, device): up to 128 characters.
fn caller_id(column: impl IntoIden) -> ColumnDef {
    string_len(column, 128)
}

/// An identifier a caller chooses that may be empty.
fn caller_id_null(column: impl IntoIden) -> ColumnDef {
    string_len_null(column, 128)
}

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
