//! `sessions`: one row per sign-in. The token is stored only as its SHA-256 (`token_hash`).

use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub session_id: String,
    pub token_hash: Vec<u8>,
    pub account_id: String,
    pub product: String,
    pub client_kind: String,
    /// False for the client kinds never shown on the Active sessions page.
    pub visible: bool,
    pub device_id: String,
    pub user_agent: String,
    pub browser: Option<String>,
    pub browser_version: Option<String>,
    pub os: Option<String>,
    pub os_version: Option<String>,
    pub device_type: String,
    pub ip_address: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub country_code: Option<String>,
    pub country: Option<String>,
    pub auth_method: String,
    pub status: String,
    pub new_device: bool,
    pub new_country: bool,
    pub signed_in_at: i64,
    pub last_active_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
    pub revocation_id: Option<String>,
    /// The account's `revoked_generation` when the session was registered.
    pub generation: i64,
}

impl std::fmt::Debug for Model {
    // The hash is not the token, but it is the key of the validation path: keep it out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("session_id", &self.session_id)
            .field("account_id", &self.account_id)
            .field("product", &self.product)
            .field("device_id", &self.device_id)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The session's account (whose `revoked_generation` cut-off applies to it).
    #[sea_orm(
        belongs_to = "super::account::Entity",
        from = "Column::AccountId",
        to = "super::account::Column::AccountId"
    )]
    Account,
}

impl Related<super::account::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Account.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
