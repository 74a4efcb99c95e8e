//! The validation read: sessions' validity facts and their accounts' cut-offs by token hash, in
//! one statement that reads only the columns the validity rule and ValidateSession's answer
//! need. One statement answers up to [`MAX_HASHES_PER_READ`] hashes (the miss batcher's
//! batches). The SQL is one of a few constants per engine (the `IN` list is padded to a power
//! of two), so the driver prepares each once per connection and nothing builds a query per
//! call. On a SQLite file, [`super::Store::validity_by_token_hashes`] runs the same statement on
//! the calling thread (`sqlite_readers`) and decodes its rows with the same code; everything
//! else about sessions goes through sea-orm's entities in `sessions`.

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
    let (slot, values) = padded(hashes);
    let sql = match backend {
        DbBackend::Postgres => &POSTGRES_SQL[slot],
        _ => &SQLITE_SQL[slot],
    };
    let values: Vec<Value> = values
        .map(|hash| Value::from(hash.as_bytes().to_vec()))
        .collect();
    Statement::from_sql_and_values(backend, sql.as_str(), values)
}

/// SQLite's statement for `hashes` (at most [`MAX_HASHES_PER_READ`], at least one) and its
/// parameters, padded as [`statement`] pads them.
pub(super) fn sqlite_statement(
    hashes: &[TokenHash],
) -> (&'static str, impl Iterator<Item = &TokenHash>) {
    let (slot, values) = padded(hashes);
    (SQLITE_SQL[slot].as_str(), values)
}

/// The slot of the smallest prepared list that holds `hashes`, and the hashes padded to its size
/// by repeating the first.
fn padded(hashes: &[TokenHash]) -> (usize, impl Iterator<Item = &TokenHash>) {
    let slot = LIST_SIZES
        .iter()
        .position(|&size| size >= hashes.len())
        .unwrap_or(LIST_SIZES.len() - 1);
    let values = hashes
        .iter()
        .chain(std::iter::repeat_n(hashes.first(), LIST_SIZES[slot]).flatten())
        .take(LIST_SIZES[slot]);
    (slot, values)
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
    rows.iter().map(from_row_with_hash).collect()
}

/// The columns of one row of the validation statement, whichever driver read it: sea-orm's rows
/// on the pool, rusqlite's on SQLite's inline readers (`sqlite_readers`). One decoding serves
/// both, so the two paths cannot disagree about what a row means.
pub(super) trait ValidityColumns {
    /// A text column.
    fn text(&self, index: usize) -> Result<String, StoreError>;
    /// An integer column that is never NULL.
    fn integer(&self, index: usize) -> Result<i64, StoreError>;
    /// An integer column that may be NULL.
    fn optional_integer(&self, index: usize) -> Result<Option<i64>, StoreError>;
    /// The 0/1 flag column (an `int4` on PostgreSQL), NULL read as 0.
    fn flag(&self, index: usize) -> Result<bool, StoreError>;
    /// A blob column.
    fn blob(&self, index: usize) -> Result<Vec<u8>, StoreError>;
}

impl ValidityColumns for QueryResult {
    fn text(&self, index: usize) -> Result<String, StoreError> {
        Ok(self.try_get_by_index::<String>(index)?)
    }

    fn integer(&self, index: usize) -> Result<i64, StoreError> {
        Ok(self.try_get_by_index::<i64>(index)?)
    }

    fn optional_integer(&self, index: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get_by_index::<Option<i64>>(index)?)
    }

    fn flag(&self, index: usize) -> Result<bool, StoreError> {
        Ok(self.try_get_by_index::<Option<i32>>(index)?.unwrap_or(0) != 0)
    }

    fn blob(&self, index: usize) -> Result<Vec<u8>, StoreError> {
        Ok(self.try_get_by_index::<Vec<u8>>(index)?)
    }
}

/// A row of the validation statement: the session with its hash.
pub(super) fn from_row_with_hash(
    row: &impl ValidityColumns,
) -> Result<(TokenHash, ValidityWithCut), StoreError> {
    let found = from_row(row)?;
    let hash = row.blob(13)?;
    let hash = <[u8; 32]>::try_from(hash.as_slice())
        .map_err(|_| StoreError::corrupt("sessions", "token_hash is not 32 bytes"))?;
    Ok((TokenHash(hash), found))
}

fn from_row(row: &impl ValidityColumns) -> Result<ValidityWithCut, StoreError> {
    let micros = |index: usize| row.integer(index).map(Timestamp::from_micros);
    let session_id = row.text(0)?;
    let corrupt = |column: &str, value: &str| {
        StoreError::corrupt("sessions", format!("{column} {value:?} in {session_id}"))
    };
    let product = row.text(2)?;
    let client_kind = row.text(3)?;
    let session = SessionValidity {
        session_id: SessionId::parse(&session_id)
            .map_err(|_| corrupt("session_id", &session_id))?,
        account_id: AccountId::from_stored(row.text(1)?),
        product: Product::from_stored(&product).ok_or_else(|| corrupt("product", &product))?,
        device_id: DeviceId::from_stored(row.text(4)?),
        signed_in_at: micros(5)?,
        facts: ValidityFacts::of(
            ClientKind::from_stored(&client_kind)
                .ok_or_else(|| corrupt("client_kind", &client_kind))?,
            row.integer(9)?,
            row.optional_integer(8)?.map(Timestamp::from_micros),
            micros(7)?,
            micros(6)?,
        ),
    };
    Ok(ValidityWithCut {
        session,
        cut: GenerationCut {
            visible: row.optional_integer(10)?.unwrap_or(0),
            hidden: row.optional_integer(11)?.unwrap_or(0),
        },
        account_disabled: row.flag(12)?,
    })
}
