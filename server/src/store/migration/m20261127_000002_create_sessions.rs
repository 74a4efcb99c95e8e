//! Sessions: one row per sign-in, found by the SHA-256 of its token (never the token itself).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .if_not_exists()
                    .col(string_len(Sessions::SessionId, 26).primary_key())
                    .col(binary_len(Sessions::TokenHash, 32))
                    .col(string_len(Sessions::AccountId, 128))
                    .col(string_len(Sessions::Product, 16))
                    .col(string_len(Sessions::ClientKind, 24))
                    .col(boolean(Sessions::Visible))
                    .col(string_len(Sessions::DeviceId, 128))
                    .col(string_len(Sessions::UserAgent, 1024))
                    .col(string_len_null(Sessions::Browser, 64))
                    .col(string_len_null(Sessions::BrowserVersion, 64))
                    .col(string_len_null(Sessions::Os, 64))
                    .col(string_len_null(Sessions::OsVersion, 64))
                    .col(string_len(Sessions::DeviceType, 16))
                    .col(string_len_null(Sessions::IpAddress, 45))
                    .col(string_len_null(Sessions::City, 128))
                    .col(string_len_null(Sessions::Region, 128))
                    .col(string_len_null(Sessions::CountryCode, 2))
                    .col(string_len_null(Sessions::Country, 128))
                    .col(string_len(Sessions::AuthMethod, 16))
                    .col(string_len(Sessions::Status, 16))
                    .col(boolean(Sessions::NewDevice))
                    .col(boolean(Sessions::NewCountry))
                    .col(big_integer(Sessions::SignedInAt))
                    .col(big_integer(Sessions::LastActiveAt))
                    .col(big_integer(Sessions::ExpiresAt))
                    .col(big_integer_null(Sessions::RevokedAt))
                    .col(string_len_null(Sessions::RevokedReason, 24))
                    .col(string_len_null(Sessions::RevocationId, 26))
                    .to_owned(),
            )
            .await?;
        // The validation hot path: one unique index lookup by token hash.
        manager
            .create_index(
                Index::create()
                    .name("sessions_token_hash_key")
                    .table(Sessions::Table)
                    .col(Sessions::TokenHash)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        // Listing rows by device and sweeping an account's sessions.
        manager
            .create_index(
                Index::create()
                    .name("sessions_account_device_idx")
                    .table(Sessions::Table)
                    .col(Sessions::AccountId)
                    .col(Sessions::DeviceId)
                    .col(Sessions::SignedInAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("sessions_account_signed_in_idx")
                    .table(Sessions::Table)
                    .col(Sessions::AccountId)
                    .col(Sessions::RevokedAt)
                    .col(Sessions::SignedInAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Sessions::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Sessions {
    Table,
    SessionId,
    TokenHash,
    AccountId,
    Product,
    ClientKind,
    Visible,
    DeviceId,
    UserAgent,
    Browser,
    BrowserVersion,
    Os,
    OsVersion,
    DeviceType,
    IpAddress,
    City,
    Region,
    CountryCode,
    Country,
    AuthMethod,
    Status,
    NewDevice,
    NewCountry,
    SignedInAt,
    LastActiveAt,
    ExpiresAt,
    RevokedAt,
    RevokedReason,
    RevocationId,
}
