//! Trusted devices: one row per (account, device), refreshed rather than duplicated.

use sea_orm_migration::{prelude::*, schema::*};

use super::{caller_id, drop_table, micros, new_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let trusted_devices = new_table(TrustedDevices::Table)
            .col(caller_id(TrustedDevices::AccountId))
            .col(caller_id(TrustedDevices::DeviceId))
            .col(string_len(TrustedDevices::Method, 16))
            .col(string_len(TrustedDevices::Product, 16))
            .col(micros(TrustedDevices::TrustedSince))
            .col(micros(TrustedDevices::RenewedAt))
            .col(micros(TrustedDevices::TrustedUntil))
            .primary_key(
                Index::create()
                    .col(TrustedDevices::AccountId)
                    .col(TrustedDevices::DeviceId),
            )
            .to_owned();
        manager.create_table(trusted_devices).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, TrustedDevices::Table).await
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
