//! `security_events`: the account's security history. Event ids are ULIDs, so ordering by id is
//! ordering by time.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "security_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: String,
    pub account_id: String,
    pub event_type: String,
    pub occurred_at: i64,
    pub session_id: Option<String>,
    pub product: Option<String>,
    pub device_id: Option<String>,
    pub device_description: Option<String>,
    pub browser: Option<String>,
    pub os: Option<String>,
    pub device_type: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub country_code: Option<String>,
    pub country: Option<String>,
    pub actor: String,
    pub revocation_id: Option<String>,
    pub session_count: i64,
    /// Why, for log-outs (a stored `RevocationReason`).
    pub reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
