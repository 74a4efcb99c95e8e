//! The revocation log: every log-out, numbered in commit order.
//!
//! `seq` is taken from the single `revocation_log_head` row inside the revoking transaction. The
//! row lock serialises revoking transactions, so sequence order is commit order and a watcher
//! that has seen `seq = n` has seen every revocation numbered below `n`.

use sea_orm_migration::{prelude::*, schema::*};

use super::{caller_id, caller_id_null, drop_table, index, micros, micros_null, new_table, ulid};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let revocations = new_table(Revocations::Table)
            .col(ulid(Revocations::RevocationId).primary_key())
            .col(big_integer(Revocations::Seq).unique_key())
            .col(caller_id(Revocations::AccountId))
            .col(string_len(Revocations::Scope, 8))
            .col(string_len(Revocations::Reason, 24))
            .col(caller_id_null(Revocations::DeviceId))
            .col(text(Revocations::SessionIds))
            .col(string_len(Revocations::Products, 64))
            .col(micros(Revocations::EffectiveAt))
            .col(micros_null(Revocations::RevokedBefore))
            .col(boolean(Revocations::TrustRemoved))
            .col(big_integer(Revocations::SessionsRevoked))
            .col(micros_null(Revocations::CompletedAt))
            .col(string_len(Revocations::Actor, 160))
            .to_owned();
        manager.create_table(revocations).await?;
        let by_account = [Revocations::AccountId, Revocations::Seq];
        manager
            .create_index(index(
                "revocations_account_idx",
                Revocations::Table,
                by_account,
            ))
            .await?;
        let head = new_table(RevocationLogHead::Table)
            .col(integer(RevocationLogHead::Id).primary_key())
            .col(big_integer(RevocationLogHead::LastSeq))
            .to_owned();
        manager.create_table(head).await?;
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
        drop_table(manager, RevocationLogHead::Table).await?;
        drop_table(manager, Revocations::Table).await
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
