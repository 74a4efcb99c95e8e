//! Sessions: one row per sign-in, found by the SHA-256 of its token (never the token itself).

use sea_orm_migration::{prelude::*, schema::*};

use super::{caller_id, drop_table, index, micros, micros_null, new_table, ulid, ulid_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sessions = new_table(Sessions::Table)
            .col(ulid(Sessions::SessionId).primary_key())
            .col(binary_len(Sessions::TokenHash, 32))
            .col(caller_id(Sessions::AccountId))
            .col(string_len(Sessions::Product, 16))
            .col(string_len(Sessions::ClientKind, 24))
            .col(boolean(Sessions::Visible))
            .col(caller_id(Sessions::DeviceId))
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
            .col(micros(Sessions::SignedInAt))
            .col(micros(Sessions::LastActiveAt))
            .col(micros(Sessions::ExpiresAt))
            .col(micros_null(Sessions::RevokedAt))
            .col(string_len_null(Sessions::RevokedReason, 24))
            .col(ulid_null(Sessions::RevocationId))
            .to_owned();
        manager.create_table(sessions).await?;
        // The validation hot path: one unique index lookup by token hash.
        let mut by_token = index(
            "sessions_token_hash_key",
            Sessions::Table,
            [Sessions::TokenHash],
        );
        manager.create_index(by_token.unique().to_owned()).await?;
        // Listing rows by device and sweeping an account's sessions.
        let by_device = [
            Sessions::AccountId,
            Sessions::DeviceId,
            Sessions::SignedInAt,
        ];
        manager
            .create_index(index(
                "sessions_account_device_idx",
                Sessions::Table,
                by_device,
            ))
            .await?;
        let by_sign_in = [
            Sessions::AccountId,
            Sessions::RevokedAt,
            Sessions::SignedInAt,
        ];
        manager
            .create_index(index(
                "sessions_account_signed_in_idx",
                Sessions::Table,
                by_sign_in,
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, Sessions::Table).await
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
