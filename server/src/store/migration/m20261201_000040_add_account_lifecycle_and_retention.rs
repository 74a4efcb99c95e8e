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

use super::{add_column, drop_column, drop_index, index, micros_null, ulid_null};

/// The indexes this migration adds: (name, table, column).
fn indexes() -> [(&'static str, DynIden, DynIden); 4] {
    [
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
    ]
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one column per ALTER TABLE.
        add_column(manager, Accounts::Table, micros_null(Accounts::DisabledAt)).await?;
        add_column(manager, Accounts::Table, micros_null(Accounts::DeletedAt)).await?;
        let hidden_cut = big_integer(Accounts::HiddenCutGeneration).default(0).take();
        add_column(manager, Accounts::Table, hidden_cut).await?;
        let includes_hidden = boolean(Revocations::IncludesHiddenKinds)
            .default(false)
            .take();
        add_column(manager, Revocations::Table, includes_hidden).await?;
        let kept_session = ulid_null(Revocations::KeptSessionId);
        add_column(manager, Revocations::Table, kept_session).await?;
        let reason = string_len_null(SecurityEvents::Reason, 24);
        add_column(manager, SecurityEvents::Table, reason).await?;
        let pruned_through = big_integer(RevocationLogHead::PrunedThrough)
            .default(0)
            .take();
        add_column(manager, RevocationLogHead::Table, pruned_through).await?;
        for (name, table, column) in indexes() {
            manager.create_index(index(name, table, [column])).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, _) in indexes() {
            drop_index(manager, name, table).await?;
        }
        drop_column(manager, Accounts::Table, Accounts::DisabledAt).await?;
        drop_column(manager, Accounts::Table, Accounts::DeletedAt).await?;
        drop_column(manager, Accounts::Table, Accounts::HiddenCutGeneration).await?;
        drop_column(
            manager,
            Revocations::Table,
            Revocations::IncludesHiddenKinds,
        )
        .await?;
        drop_column(manager, Revocations::Table, Revocations::KeptSessionId).await?;
        drop_column(manager, SecurityEvents::Table, SecurityEvents::Reason).await?;
        drop_column(
            manager,
            RevocationLogHead::Table,
            RevocationLogHead::PrunedThrough,
        )
        .await
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
