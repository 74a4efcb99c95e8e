//! Accounts: workspace type, organisation SSO link, and the per-account "log out of all" cut-off.

use sea_orm_migration::{prelude::*, schema::*};

use super::{caller_id, caller_id_null, drop_table, micros, micros_null, new_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let accounts = new_table(Accounts::Table)
            .col(caller_id(Accounts::AccountId).primary_key())
            .col(string_len(Accounts::WorkspaceType, 16))
            .col(string_len_null(Accounts::SsoProtocol, 8))
            .col(caller_id_null(Accounts::SsoOrganizationId))
            .col(micros_null(Accounts::SsoLinkedAt))
            .col(micros_null(Accounts::RevokedBefore))
            .col(micros(Accounts::CreatedAt))
            .col(micros(Accounts::UpdatedAt))
            .to_owned();
        manager.create_table(accounts).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, Accounts::Table).await
    }
}

#[derive(DeriveIden)]
pub enum Accounts {
    Table,
    AccountId,
    WorkspaceType,
    SsoProtocol,
    SsoOrganizationId,
    SsoLinkedAt,
    RevokedBefore,
    CreatedAt,
    UpdatedAt,
}
