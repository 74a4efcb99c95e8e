//! Idempotency records for RegisterSession: (caller scope, request id) -> the session it created.
//!
//! `sealed_token` holds the session token sealed for a retried registration; since
//! `m20261130_000010` it is encrypted under a key kept outside the database (`seal_key`).

use sea_orm_migration::{prelude::*, schema::*};

use super::{caller_id, drop_table, micros, new_table, ulid};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let idempotency_records = new_table(IdempotencyRecords::Table)
            .col(string_len(IdempotencyRecords::Scope, 160))
            .col(caller_id(IdempotencyRecords::RequestId))
            .col(binary_len(IdempotencyRecords::RequestHash, 32))
            .col(ulid(IdempotencyRecords::SessionId))
            .col(binary_len(IdempotencyRecords::SealedToken, 32))
            .col(micros(IdempotencyRecords::CreatedAt))
            .col(micros(IdempotencyRecords::ExpiresAt))
            .primary_key(
                Index::create()
                    .col(IdempotencyRecords::Scope)
                    .col(IdempotencyRecords::RequestId),
            )
            .to_owned();
        manager.create_table(idempotency_records).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, IdempotencyRecords::Table).await
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
