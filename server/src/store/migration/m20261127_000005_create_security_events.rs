//! The account security history: sign-ins, log-outs and trust changes.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SecurityEvents::Table)
                    .if_not_exists()
                    .col(string_len(SecurityEvents::EventId, 26).primary_key())
                    .col(string_len(SecurityEvents::AccountId, 128))
                    .col(string_len(SecurityEvents::EventType, 24))
                    .col(big_integer(SecurityEvents::OccurredAt))
                    .col(string_len_null(SecurityEvents::SessionId, 26))
                    .col(string_len_null(SecurityEvents::Product, 16))
                    .col(string_len_null(SecurityEvents::DeviceId, 128))
                    .col(string_len_null(SecurityEvents::DeviceDescription, 160))
                    .col(string_len_null(SecurityEvents::Browser, 64))
                    .col(string_len_null(SecurityEvents::Os, 64))
                    .col(string_len_null(SecurityEvents::DeviceType, 16))
                    .col(string_len_null(SecurityEvents::City, 128))
                    .col(string_len_null(SecurityEvents::Region, 128))
                    .col(string_len_null(SecurityEvents::CountryCode, 2))
                    .col(string_len_null(SecurityEvents::Country, 128))
                    .col(string_len(SecurityEvents::Actor, 160))
                    .col(string_len_null(SecurityEvents::RevocationId, 26))
                    .col(big_integer(SecurityEvents::SessionCount))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("security_events_account_idx")
                    .table(SecurityEvents::Table)
                    .col(SecurityEvents::AccountId)
                    .col(SecurityEvents::EventId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SecurityEvents::Table).to_owned())
            .await
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
