//! Idempotency records for RegisterSession: (caller scope, request id) -> the session it created.
//!
//! `sealed_token` holds the session token sealed for a retried registration; since
//! `m20261130_000010` it is encrypted under a key kept outside the database (`seal_key`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyRecords::Table)
                    .if_not_exists()
                    .col(string_len(IdempotencyRecords::Scope, 160))
                    .col(string_len(IdempotencyRecords::RequestId, 128))
                    .col(binary_len(IdempotencyRecords::RequestHash, 32))
                    .col(string_len(IdempotencyRecords::SessionId, 26))
                    .col(binary_len(IdempotencyRecords::SealedToken, 32))
                    .col(big_integer(IdempotencyRecords::CreatedAt))
                    .col(big_integer(IdempotencyRecords::ExpiresAt))
                    .primary_key(
                        Index::create()
                            .col(IdempotencyRecords::Scope)
                            .col(IdempotencyRecords::RequestId),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IdempotencyRecords::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum IdempotencyRecords {
    Table,
    Scope,
    RequestId,
    RequestHash,
    SessionId,
    SealedToken,
    CreatedAt,
    ExpiresAt,
}
