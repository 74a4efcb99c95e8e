//! Account lifecycle and retention. `accounts.disabled_at` (DisableAccount) and
//! `accounts.deleted_at` (a DeleteAccount in progress: registration is refused until the row is
//! gone); `accounts.hidden_cut_generation`, the generation below which sessions of the hidden
//! kinds are cut off too (raised by log-outs that include them: disable, security reset,
//! deletion); `revocations.includes_hidden_kinds` and `revocations.kept_session_id` ("all but
//! one"); `security_events.reason`; `revocation_log_head.pruned_through`, the log position up to
//! which the pruner deleted the revocation log (a stream cursor below it cannot resume). The
//! indexes let the pruner find ended sessions and old security events by time, and
//! interrupted deletions, without scanning.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one column per ALTER TABLE.
        let columns = [
            (
                Accounts::Table.into_iden(),
                big_integer_null(Accounts::DisabledAt),
            ),
            (
                Accounts::Table.into_iden(),
                big_integer_null(Accounts::DeletedAt),
            ),
            (
                Accounts::Table.into_iden(),
                big_integer(Accounts::HiddenCutGeneration)
                    .default(0)
                    .to_owned(),
            ),
            (
                Revocations::Table.into_iden(),
                boolean(Revocations::IncludesHiddenKinds)
                    .default(false)
                    .to_owned(),
            ),
            (
                Revocations::Table.into_iden(),
                string_len_null(Revocations::KeptSessionId, 26),
            ),
            (
                SecurityEvents::Table.into_iden(),
                string_len_null(SecurityEvents::Reason, 24),
            ),
            (
                RevocationLogHead::Table.into_iden(),
                big_integer(RevocationLogHead::PrunedThrough)
                    .default(0)
                    .to_owned(),
            ),
        ];
        for (table, mut column) in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        for (name, table, column) in [
            (
                "sessions_revoked_at_idx",
                Sessions::Table.into_iden(),
                Sessions::RevokedAt.into_iden(),
            ),
            (
                "sessions_expires_at_idx",
                Sessions::Table.into_iden(),
                Sessions::ExpiresAt.into_iden(),
            ),
            (
                "accounts_deleted_at_idx",
                Accounts::Table.into_iden(),
                Accounts::DeletedAt.into_iden(),
            ),
            (
                "security_events_occurred_at_idx",
                SecurityEvents::Table.into_iden(),
                SecurityEvents::OccurredAt.into_iden(),
            ),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(table)
                        .col(column)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            ("sessions_revoked_at_idx", Sessions::Table.into_iden()),
            ("sessions_expires_at_idx", Sessions::Table.into_iden()),
            ("accounts_deleted_at_idx", Accounts::Table.into_iden()),
            (
                "security_events_occurred_at_idx",
                SecurityEvents::Table.into_iden(),
            ),
        ] {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        for (table, column) in [
            (
                Accounts::Table.into_iden(),
                Accounts::DisabledAt.into_iden(),
            ),
            (Accounts::Table.into_iden(), Accounts::DeletedAt.into_iden()),
            (
                Accounts::Table.into_iden(),
                Accounts::HiddenCutGeneration.into_iden(),
            ),
            (
                Revocations::Table.into_iden(),
                Revocations::IncludesHiddenKinds.into_iden(),
            ),
            (
                Revocations::Table.into_iden(),
                Revocations::KeptSessionId.into_iden(),
            ),
            (
                SecurityEvents::Table.into_iden(),
                SecurityEvents::Reason.into_iden(),
            ),
            (
                RevocationLogHead::Table.into_iden(),
                RevocationLogHead::PrunedThrough.into_iden(),
            ),
        ] {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    DisabledAt,
    DeletedAt,
    HiddenCutGeneration,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    RevokedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Revocations {
    Table,
    IncludesHiddenKinds,
    KeptSessionId,
}

#[derive(DeriveIden)]
enum SecurityEvents {
    Table,
    Reason,
    OccurredAt,
}

#[derive(DeriveIden)]
enum RevocationLogHead {
    Table,
    PrunedThrough,
}
