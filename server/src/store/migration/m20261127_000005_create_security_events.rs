//! The account security history: sign-ins, log-outs and trust changes.

use sea_orm_migration::{prelude::*, schema::*};

use super::{caller_id, caller_id_null, drop_table, index, micros, new_table, ulid, ulid_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let security_events = new_table(SecurityEvents::Table)
            .col(ulid(SecurityEvents::EventId).primary_key())
            .col(caller_id(SecurityEvents::AccountId))
            .col(string_len(SecurityEvents::EventType, 24))
            .col(micros(SecurityEvents::OccurredAt))
            .col(ulid_null(SecurityEvents::SessionId))
            .col(string_len_null(SecurityEvents::Product, 16))
            .col(caller_id_null(SecurityEvents::DeviceId))
            .col(string_len_null(SecurityEvents::DeviceDescription, 160))
            .col(string_len_null(SecurityEvents::Browser, 64))
            .col(string_len_null(SecurityEvents::Os, 64))
            .col(string_len_null(SecurityEvents::DeviceType, 16))
            .col(string_len_null(SecurityEvents::City, 128))
            .col(string_len_null(SecurityEvents::Region, 128))
            .col(string_len_null(SecurityEvents::CountryCode, 2))
            .col(string_len_null(SecurityEvents::Country, 128))
            .col(string_len(SecurityEvents::Actor, 160))
            .col(ulid_null(SecurityEvents::RevocationId))
            .col(big_integer(SecurityEvents::SessionCount))
            .to_owned();
        manager.create_table(security_events).await?;
        let by_account = [SecurityEvents::AccountId, SecurityEvents::EventId];
        manager
            .create_index(index(
                "security_events_account_idx",
                SecurityEvents::Table,
                by_account,
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, SecurityEvents::Table).await
    }
}

#[derive(DeriveIden)]
pub enum SecurityEvents {
    Table,
    EventId,
    AccountId,
    EventType,
    OccurredAt,
    SessionId,
    Product,
    DeviceId,
    DeviceDescription,
    Browser,
    Os,
    DeviceType,
    City,
    Region,
    CountryCode,
    Country,
    Actor,
    RevocationId,
    SessionCount,
}
