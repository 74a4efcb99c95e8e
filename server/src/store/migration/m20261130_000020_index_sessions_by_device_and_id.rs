//! One device's sessions in session-id order: the keyset batches in which a row log-out locks
//! and marks them, and the pages of ListDeviceSessions, read a bounded index range each however
//! many sessions the device holds.

use sea_orm_migration::prelude::*;

use super::{drop_index, index, m20261127_000002_create_sessions::Sessions};

/// The index this migration adds.
const NAME: &str = "sessions_account_device_id_idx";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let by_device_and_id = [Sessions::AccountId, Sessions::DeviceId, Sessions::SessionId];
        manager
            .create_index(index(NAME, Sessions::Table, by_device_and_id))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_index(manager, NAME, Sessions::Table).await
    }
}
