//! `accounts`: one row per account id seen from the identity system or a product.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "accounts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: String,
    pub workspace_type: String,
    pub sso_protocol: Option<String>,
    pub sso_organization_id: Option<String>,
    pub sso_linked_at: Option<i64>,
    /// "Log out of all sessions" cut-off instant, for display only (never moves back); which
    /// sessions are revoked is decided by `revoked_generation`.
    pub revoked_before: Option<i64>,
    /// How many times the account was logged out of all sessions (only grows): visible
    /// sessions registered with a lower `sessions.generation` are cut off.
    pub revoked_generation: i64,
    /// When DisableAccount disabled the account (registration refused while set).
    pub disabled_at: Option<i64>,
    /// When DeleteAccount began erasing the account (the row goes last).
    pub deleted_at: Option<i64>,
    /// Sessions of the hidden kinds born below this generation are cut off too (only grows,
    /// never above `revoked_generation`).
    pub hidden_cut_generation: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
