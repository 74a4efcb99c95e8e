//! Accounts: workspace type, organisation SSO link, and the per-account "log out of all" cut-off.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Accounts::Table)
                    .if_not_exists()
                    .col(string_len(Accounts::AccountId, 128).primary_key())
                    .col(string_len(Accounts::WorkspaceType, 16))
                    .col(string_len_null(Accounts::SsoProtocol, 8))
                    .col(string_len_null(Accounts::SsoOrganizationId, 128))
                    .col(big_integer_null(Accounts::SsoLinkedAt))
                    .col(big_integer_null(Accounts::RevokedBefore))
                    .col(big_integer(Accounts::CreatedAt))
                    .col(big_integer(Accounts::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Accounts::Table).to_owned())
            .await
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
