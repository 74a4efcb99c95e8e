//! Trusted devices: one row per (account, device), refreshed rather than duplicated.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TrustedDevices::Table)
                    .if_not_exists()
                    .col(string_len(TrustedDevices::AccountId, 128))
                    .col(string_len(TrustedDevices::DeviceId, 128))
                    .col(string_len(TrustedDevices::Method, 16))
                    .col(string_len(TrustedDevices::Product, 16))
                    .col(big_integer(TrustedDevices::TrustedSince))
                    .col(big_integer(TrustedDevices::RenewedAt))
                    .col(big_integer(TrustedDevices::TrustedUntil))
                    .primary_key(
                        Index::create()
                            .col(TrustedDevices::AccountId)
                            .col(TrustedDevices::DeviceId),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TrustedDevices::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum TrustedDevices {
    Table,
    AccountId,
    DeviceId,
    Method,
    Product,
    TrustedSince,
    RenewedAt,
    TrustedUntil,
}
