//! The revocation log: every log-out, numbered in commit order.
//!
//! `seq` is taken from the single `revocation_log_head` row inside the revoking transaction. The
//! row lock serialises revoking transactions, so sequence order is commit order and a watcher
//! that has seen `seq = n` has seen every revocation numbered below `n`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Revocations::Table)
                    .if_not_exists()
                    .col(string_len(Revocations::RevocationId, 26).primary_key())
                    .col(big_integer(Revocations::Seq).unique_key())
                    .col(string_len(Revocations::AccountId, 128))
                    .col(string_len(Revocations::Scope, 8))
                    .col(string_len(Revocations::Reason, 24))
                    .col(string_len_null(Revocations::DeviceId, 128))
                    .col(text(Revocations::SessionIds))
                    .col(string_len(Revocations::Products, 64))
                    .col(big_integer(Revocations::EffectiveAt))
                    .col(big_integer_null(Revocations::RevokedBefore))
                    .col(boolean(Revocations::TrustRemoved))
                    .col(big_integer(Revocations::SessionsRevoked))
                    .col(big_integer_null(Revocations::CompletedAt))
                    .col(string_len(Revocations::Actor, 160))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("revocations_account_idx")
                    .table(Revocations::Table)
                    .col(Revocations::AccountId)
                    .col(Revocations::Seq)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RevocationLogHead::Table)
                    .if_not_exists()
                    .col(integer(RevocationLogHead::Id).primary_key())
                    .col(big_integer(RevocationLogHead::LastSeq))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(RevocationLogHead::Table)
                    .columns([RevocationLogHead::Id, RevocationLogHead::LastSeq])
                    .values_panic([1.into(), 0i64.into()])
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RevocationLogHead::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Revocations::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Revocations {
    Table,
    RevocationId,
    Seq,
    AccountId,
    Scope,
    Reason,
    DeviceId,
    SessionIds,
    Products,
    EffectiveAt,
    RevokedBefore,
    TrustRemoved,
    SessionsRevoked,
    CompletedAt,
    Actor,
}

#[derive(DeriveIden)]
pub enum RevocationLogHead {
    Table,
    Id,
    LastSeq,
}
