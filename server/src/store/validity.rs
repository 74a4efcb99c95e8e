//! The validation read: a session's validity facts and its account's cut-offs by token hash, in
//! one statement that reads only the columns the validity rule and ValidateSession's answer
//! need. The SQL is a constant per engine, so the driver prepares it once per connection and
//! nothing builds a query per call; everything else about sessions goes through sea-orm's
//! entities in `sessions`.

use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement};

use super::StoreError;
use crate::domain::stored::StoredEnum as _;
use crate::{
    clock::Timestamp,
    domain::{
        ids::{AccountId, DeviceId, SessionId},
        session::{ClientKind, GenerationCut, Product, SessionValidity, ValidityFacts},
        token::TokenHash,
    },
};

/// A session's validity with its account's log-out-of-all cut-offs.
#[derive(Debug, Clone)]
pub struct ValidityWithCut {
    /// The session as validation sees it.
    pub session: SessionValidity,
    /// The account's cut-offs (zero when never logged out of all).
    pub cut: GenerationCut,
    /// True when the account is disabled or being deleted.
    pub account_disabled: bool,
}

/// The statement, with the engine's placeholder for the hash.
macro_rules! validity_sql {
    ($placeholder:literal) => {
        concat!(
            "SELECT s.session_id, s.account_id, s.product, s.client_kind, s.device_id, ",
            "s.signed_in_at, s.last_active_at, s.expires_at, s.revoked_at, s.generation, ",
            "a.revoked_generation, a.hidden_cut_generation, ",
            "CASE WHEN a.disabled_at IS NULL AND a.deleted_at IS NULL THEN 0 ELSE 1 END ",
            "FROM sessions s LEFT JOIN accounts a ON a.account_id = s.account_id ",
            "WHERE s.token_hash = ",
            $placeholder
        )
    };
}

fn statement(backend: DbBackend, hash: &TokenHash) -> Statement {
    let sql = match backend {
        DbBackend::Postgres => validity_sql!("$1"),
        _ => validity_sql!("?"),
    };
    Statement::from_sql_and_values(backend, sql, [hash.as_bytes().to_vec().into()])
}

/// Finds a session's validity by token hash, with its account's cut-offs, in one indexed read.
#[tracing::instrument(name = "db.sessions.validity_by_token_hash", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn by_token_hash(
    conn: &impl ConnectionTrait,
    hash: &TokenHash,
) -> Result<Option<ValidityWithCut>, StoreError> {
    let backend = conn.get_database_backend();
    match conn.query_one_raw(statement(backend, hash)).await? {
        Some(row) => Ok(Some(from_row(&row)?)),
        None => Ok(None),
    }
}

fn from_row(row: &QueryResult) -> Result<ValidityWithCut, StoreError> {
    let text = |index: usize| row.try_get_by_index::<String>(index);
    let micros = |index: usize| {
        row.try_get_by_index::<i64>(index)
            .map(Timestamp::from_micros)
    };
    let session_id = text(0)?;
    let corrupt = |column: &str, value: &str| {
        StoreError::corrupt("sessions", format!("{column} {value:?} in {session_id}"))
    };
    let product = text(2)?;
    let client_kind = text(3)?;
    let session = SessionValidity {
        session_id: SessionId::parse(&session_id)
            .map_err(|_| corrupt("session_id", &session_id))?,
        account_id: AccountId::from_stored(text(1)?),
        product: Product::from_stored(&product).ok_or_else(|| corrupt("product", &product))?,
        device_id: DeviceId::from_stored(text(4)?),
        signed_in_at: micros(5)?,
        facts: ValidityFacts::of(
            ClientKind::from_stored(&client_kind)
                .ok_or_else(|| corrupt("client_kind", &client_kind))?,
            row.try_get_by_index::<i64>(9)?,
            row.try_get_by_index::<Option<i64>>(8)?
                .map(Timestamp::from_micros),
            micros(7)?,
            micros(6)?,
        ),
    };
    Ok(ValidityWithCut {
        session,
        cut: GenerationCut {
            visible: row.try_get_by_index::<Option<i64>>(10)?.unwrap_or(0),
            hidden: row.try_get_by_index::<Option<i64>>(11)?.unwrap_or(0),
        },
        account_disabled: row.try_get_by_index::<Option<i32>>(12)?.unwrap_or(0) != 0,
    })
}
