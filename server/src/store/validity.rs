//! The validation read: sessions' validity facts and their accounts' cut-offs by token hash, in
//! one statement that reads only the columns the validity rule and ValidateSession's answer
//! need. One statement answers up to [`MAX_HASHES_PER_READ`] hashes (the miss batcher's
//! batches). The SQL is one of a few constants per engine (the `IN` list is padded to a power
//! of two), so the driver prepares each once per connection and nothing builds a query per
//! call; everything else about sessions goes through sea-orm's entities in `sessions`.

use std::sync::LazyLock;

use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value};

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

/// The most token hashes one read answers.
pub const MAX_HASHES_PER_READ: usize = 64;

/// The statement's columns and join, before the `IN` list.
const SELECT: &str = concat!(
    "SELECT s.session_id, s.account_id, s.product, s.client_kind, s.device_id, ",
    "s.signed_in_at, s.last_active_at, s.expires_at, s.revoked_at, s.generation, ",
    "a.revoked_generation, a.hidden_cut_generation, ",
    "CASE WHEN a.disabled_at IS NULL AND a.deleted_at IS NULL THEN 0 ELSE 1 END, ",
    "s.token_hash ",
    "FROM sessions s LEFT JOIN accounts a ON a.account_id = s.account_id ",
    "WHERE s.token_hash IN ("
);

/// The list sizes a statement is prepared for: 1, 2, 4, … [`MAX_HASHES_PER_READ`].
const LIST_SIZES: [usize; 7] = [1, 2, 4, 8, 16, 32, 64];

/// The statements for each list size, with PostgreSQL's numbered placeholders.
static POSTGRES_SQL: LazyLock<Vec<String>> =
    LazyLock::new(|| statements(|index| format!("${index}")));

/// The statements for each list size, with SQLite's `?` placeholders.
static SQLITE_SQL: LazyLock<Vec<String>> = LazyLock::new(|| statements(|_| "?".to_owned()));

fn statements(placeholder: impl Fn(usize) -> String) -> Vec<String> {
    LIST_SIZES
        .iter()
        .map(|&size| {
            let list: Vec<String> = (1..=size).map(&placeholder).collect();
            format!("{SELECT}{})", list.join(", "))
        })
        .collect()
}

/// The statement for `hashes` (at most [`MAX_HASHES_PER_READ`], at least one): the smallest
/// prepared list that holds them, padded by repeating the first hash (which `IN` ignores).
fn statement(backend: DbBackend, hashes: &[TokenHash]) -> Statement {
    let slot = LIST_SIZES
        .iter()
        .position(|&size| size >= hashes.len())
        .unwrap_or(LIST_SIZES.len() - 1);
    let sql = match backend {
        DbBackend::Postgres => &POSTGRES_SQL[slot],
        _ => &SQLITE_SQL[slot],
    };
    let pad = hashes.first().map(|hash| hash.as_bytes().to_vec());
    let values: Vec<Value> = hashes
        .iter()
        .map(|hash| hash.as_bytes().to_vec())
        .chain(std::iter::repeat_with(|| pad.clone().unwrap_or_default()))
        .take(LIST_SIZES[slot])
        .map(Value::from)
        .collect();
    Statement::from_sql_and_values(backend, sql.as_str(), values)
}

/// Finds a session's validity by token hash, with its account's cut-offs, in one indexed read.
pub async fn by_token_hash(
    conn: &impl ConnectionTrait,
    hash: &TokenHash,
) -> Result<Option<ValidityWithCut>, StoreError> {
    Ok(by_token_hashes(conn, std::slice::from_ref(hash))
        .await?
        .into_iter()
        .next()
        .map(|(_, found)| found))
}

/// Finds the sessions of up to [`MAX_HASHES_PER_READ`] token hashes in one statement (extra
/// hashes are not read). Each found session comes with its hash; unknown hashes are absent.
#[tracing::instrument(name = "db.sessions.validity_by_token_hash", skip_all, fields(otel.kind = "client", hashes = hashes.len(), { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn by_token_hashes(
    conn: &impl ConnectionTrait,
    hashes: &[TokenHash],
) -> Result<Vec<(TokenHash, ValidityWithCut)>, StoreError> {
    let hashes = &hashes[..hashes.len().min(MAX_HASHES_PER_READ)];
    if hashes.is_empty() {
        return Ok(Vec::new());
    }
    let backend = conn.get_database_backend();
    let rows = conn.query_all_raw(statement(backend, hashes)).await?;
    rows.iter()
        .map(|row| {
            let found = from_row(row)?;
            let hash = row.try_get_by_index::<Vec<u8>>(13)?;
            let hash = <[u8; 32]>::try_from(hash.as_slice())
                .map_err(|_| StoreError::corrupt("sessions", "token_hash is not 32 bytes"))?;
            Ok((TokenHash(hash), found))
        })
        .collect()
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
