//! Server-wide settings shared by every replica, such as the keys that sign page tokens and seal
//! idempotent registration replies. Generated once, on first start, by whichever replica wins.

use sea_orm_migration::{prelude::*, schema::*};

use super::{drop_table, micros, new_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let server_settings = new_table(ServerSettings::Table)
            .col(string_len(ServerSettings::Name, 64).primary_key())
            .col(binary(ServerSettings::Value))
            .col(micros(ServerSettings::CreatedAt))
            .to_owned();
        manager.create_table(server_settings).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, ServerSettings::Table).await
    }
}

#[derive(DeriveIden)]
pub enum ServerSettings {
    Table,
    Name,
    Value,
    CreatedAt,
}
