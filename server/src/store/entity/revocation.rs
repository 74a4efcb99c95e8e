//! `revocations`: the revocation log, numbered by `seq` in commit order.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "revocations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub revocation_id: String,
    pub seq: i64,
    pub account_id: String,
    pub scope: String,
    pub reason: String,
    pub device_id: Option<String>,
    /// Space-separated session ids (scopes SESSION and DEVICE); empty for ALL.
    #[sea_orm(column_type = "Text")]
    pub session_ids: String,
    /// Space-separated product names.
    pub products: String,
    pub effective_at: i64,
    pub revoked_before: Option<i64>,
    /// For scope ALL: the account generation it set; sessions born below it are cut off.
    pub cut_generation: Option<i64>,
    pub trust_removed: bool,
    pub sessions_revoked: i64,
    pub completed_at: Option<i64>,
    pub actor: String,
    /// For scope ALL: the hidden kinds were cut off too.
    pub includes_hidden_kinds: bool,
    /// For scope ALL: the session kept valid ("all but one").
    pub kept_session_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
