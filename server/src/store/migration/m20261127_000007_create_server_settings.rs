//! Server-wide settings shared by every replica, such as the keys that sign page tokens and seal
//! idempotent registration replies. Generated once, on first start, by whichever replica wins.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ServerSettings::Table)
                    .if_not_exists()
                    .col(string_len(ServerSettings::Name, 64).primary_key())
                    .col(binary(ServerSettings::Value))
                    .col(big_integer(ServerSettings::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ServerSettings::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum ServerSettings {
    Table,
    Name,
    Value,
    CreatedAt,
}
