//! Log-out-of-all generations: the order of sign-ins against log-outs of all sessions, taken
//! under the account row lock instead of from any replica's clock. `accounts.revoked_generation`
//! counts the account's log-outs of all sessions (it only grows); `sessions.generation` is the
//! account's count when the session was registered; a visible session is cut off when its
//! generation is below the account's. `revocations.cut_generation` is the count a log-out of all
//! set. Existing rows are carried over from the old timestamp cut-off: an account that was ever
//! logged out of all gets generation 1, and its sessions signed in since that cut-off too.

use sea_orm_migration::{prelude::*, schema::*};

use super::{add_column, drop_column};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let revoked_generation = big_integer(Accounts::RevokedGeneration).default(0).take();
        add_column(manager, Accounts::Table, revoked_generation).await?;
        let generation = big_integer(Sessions::Generation).default(0).take();
        add_column(manager, Sessions::Table, generation).await?;
        let cut_generation = big_integer_null(Revocations::CutGeneration);
        add_column(manager, Revocations::Table, cut_generation).await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE accounts SET revoked_generation = 1 WHERE revoked_before IS NOT NULL",
        )
        .await?;
        db.execute_unprepared(
            "UPDATE sessions SET generation = 1 WHERE EXISTS (SELECT 1 FROM accounts \
             WHERE accounts.account_id = sessions.account_id \
             AND accounts.revoked_before IS NOT NULL \
             AND sessions.signed_in_at >= accounts.revoked_before)",
        )
        .await?;
        db.execute_unprepared("UPDATE revocations SET cut_generation = 1 WHERE scope = 'ALL'")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_column(manager, Accounts::Table, Accounts::RevokedGeneration).await?;
        drop_column(manager, Sessions::Table, Sessions::Generation).await?;
        drop_column(manager, Revocations::Table, Revocations::CutGeneration).await
    }
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    RevokedGeneration,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Generation,
}

#[derive(DeriveIden)]
enum Revocations {
    Table,
    CutGeneration,
}
