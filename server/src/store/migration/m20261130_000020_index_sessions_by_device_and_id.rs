//! One device's sessions in session-id order: the keyset batches in which a row log-out locks
//! and marks them, and the pages of ListDeviceSessions, read a bounded index range each however
//! many sessions the device holds.

use sea_orm_migration::prelude::*;

use super::m20261127_000002_create_sessions::Sessions;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("sessions_account_device_id_idx")
                    .table(Sessions::Table)
                    .col(Sessions::AccountId)
                    .col(Sessions::DeviceId)
                    .col(Sessions::SessionId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("sessions_account_device_id_idx")
                    .table(Sessions::Table)
                    .to_owned(),
            )
            .await
    }
}
