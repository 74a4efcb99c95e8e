//! The validation read: sessions' validity facts and their accounts' cut-offs by token hash, in
//! one statement that reads only the columns the validity rule and ValidateSession's answer
//! need. One statement answers up to [`MAX_HASHES_PER_READ`] hashes (the miss batcher's
//! batches). The SQL is one of a few constants per engine (the list of hashes is padded to a
//! power of two), so the driver prepares each once per connection and nothing builds a query per
//! call. On a SQLite file, [`super::Store::validity_by_token_hashes`] runs the same statement on
//! the calling thread (`sqlite_readers`) and decodes its rows with the same code; everything
//! else about sessions goes through sea-orm's entities in `sessions`.
//!
//! On PostgreSQL each hash is its own index lookup, whatever the planner believes of the table.
//! With `token_hash IN ($1, …)` a prepared statement's generic plan scanned the whole of a small
//! or never-analysed `sessions` table for lists of a few hashes and more (from 4 to 16, by the
//! table's size), evaluating the list of parameters again on every row; on the bench's 1,000
//! sessions that was half of PostgreSQL's CPU per miss. The hashes are therefore a `VALUES` list
//! joined `LATERAL` to a subquery that PostgreSQL does not flatten (`OFFSET 0`), so what it plans
//! is one equality on a unique index per hash, which it reads by the index on any table beyond a
//! few pages; a padding slot is NULL, which matches nothing. SQLite's planner already reads
//! `IN (?, …)` on a unique index as one probe per value.

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

/// The columns every row carries, in the order [`from_row_with_hash`] reads them.
const COLUMNS: &str = concat!(
    "s.session_id, s.account_id, s.product, s.client_kind, s.device_id, ",
    "s.signed_in_at, s.last_active_at, s.expires_at, s.revoked_at, s.generation, ",
    "a.revoked_generation, a.hidden_cut_generation, ",
    "CASE WHEN a.disabled_at IS NULL AND a.deleted_at IS NULL THEN 0 ELSE 1 END, ",
    "s.token_hash"
);

/// The `sessions` columns the PostgreSQL lookup subquery hands to [`COLUMNS`].
const SESSION_COLUMNS: &str = concat!(
    "s.session_id, s.account_id, s.product, s.client_kind, s.device_id, ",
    "s.signed_in_at, s.last_active_at, s.expires_at, s.revoked_at, s.generation, s.token_hash"
);

/// The list sizes a statement is prepared for: 1, 2, 4, … [`MAX_HASHES_PER_READ`].
const LIST_SIZES: [usize; 7] = [1, 2, 4, 8, 16, 32, 64];

/// The statements for each list size on PostgreSQL: one index lookup per hash.
static POSTGRES_SQL: LazyLock<Vec<String>> = LazyLock::new(|| {
    LIST_SIZES
        .iter()
        .map(|&size| {
            let hashes: Vec<String> = (2..=size).map(|index| format!("(${index})")).collect();
            let hashes = std::iter::once("($1::bytea)".to_owned())
                .chain(hashes)
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "SELECT {COLUMNS} FROM (VALUES {hashes}) AS h (token_hash) \
                 CROSS JOIN LATERAL (SELECT {SESSION_COLUMNS} FROM sessions s \
                 WHERE s.token_hash = h.token_hash OFFSET 0) s \
                 LEFT JOIN accounts a ON a.account_id = s.account_id"
            )
        })
        .collect()
});

/// The statements for each list size on SQLite.
static SQLITE_SQL: LazyLock<Vec<String>> = LazyLock::new(|| {
    LIST_SIZES
        .iter()
        .map(|&size| {
            let list = vec!["?"; size].join(", ");
            format!(
                "SELECT {COLUMNS} FROM sessions s LEFT JOIN accounts a \
                 ON a.account_id = s.account_id WHERE s.token_hash IN ({list})"
            )
        })
        .collect()
});

/// The statement for `hashes` (at most [`MAX_HASHES_PER_READ`], at least one): the smallest
/// prepared list that holds them. SQLite's is padded by repeating the first hash (which `IN`
/// ignores), PostgreSQL's with NULLs (which match nothing).
fn statement(backend: DbBackend, hashes: &[TokenHash]) -> Statement {
    let (slot, values) = padded(hashes);
    let values: Vec<Value> = match backend {
        DbBackend::Postgres => hashes
            .iter()
            .map(|hash| Value::from(hash.as_bytes().to_vec()))
            .chain(std::iter::repeat(Value::Bytes(None)))
            .take(LIST_SIZES[slot])
            .collect(),
        _ => values
            .map(|hash| Value::from(hash.as_bytes().to_vec()))
            .collect(),
    };
    let sql = match backend {
        DbBackend::Postgres => &POSTGRES_SQL[slot],
        _ => &SQLITE_SQL[slot],
    };
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

#[cfg(test)]
mod tests {
    //! PostgreSQL's side of the validation read (SQLite's is checked against the inline readers
    //! in `sqlite_readers`). Needs `ACTIVE_SESSIONS_TEST_POSTGRES_URL` (an administrative URL);
    //! skipped without it, and a failure under CI (`CI=true`).

    use sea_orm::{Database, DatabaseConnection, TransactionTrait};

    use super::*;
    use crate::{
        config::{Config, DatabaseConfig},
        store::Store,
    };

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// A migrated store on a fresh database, and that database's name, or `None` to skip.
    async fn fresh_postgres_store()
    -> Result<Option<(Store, String, String)>, Box<dyn std::error::Error>> {
        let Ok(admin_url) = std::env::var("ACTIVE_SESSIONS_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var("CI").map_or(true, |ci| ci != "true"),
                "ACTIVE_SESSIONS_TEST_POSTGRES_URL must be set under CI"
            );
            eprintln!("skipped: ACTIVE_SESSIONS_TEST_POSTGRES_URL is not set");
            return Ok(None);
        };
        let name = format!(
            "as_validity_{}",
            ulid::Ulid::generate().to_string().to_lowercase()
        );
        let admin = Database::connect(&admin_url).await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await?;
        admin.close().await?;
        let (base, _) = admin_url.rsplit_once('/').ok_or("no database in the URL")?;
        let config: DatabaseConfig =
            Config::new("127.0.0.1:0".parse()?, format!("{base}/{name}")).database;
        let store = Store::connect(&config).await?;
        store.migrate().await?;
        Ok(Some((store, admin_url, name)))
    }

    async fn drop_database(admin_url: &str, name: &str) -> TestResult {
        let admin = Database::connect(admin_url).await?;
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await?;
        admin.close().await?;
        Ok(())
    }

    /// Runs `check` on a migrated store over a fresh PostgreSQL database, removes the database
    /// whatever the outcome, and fails when `check` failed or reported anything. Skipped (`Ok`)
    /// without a PostgreSQL URL.
    async fn on_fresh_postgres(
        check: impl AsyncFnOnce(&DatabaseConnection) -> Result<Vec<String>, Box<dyn std::error::Error>>,
    ) -> TestResult {
        let Some((store, admin_url, name)) = fresh_postgres_store().await? else {
            return Ok(());
        };
        let reported = check(store.reader()).await;
        store.close().await;
        drop_database(&admin_url, &name).await?;
        let reported = reported?;
        assert!(reported.is_empty(), "{}", reported.join("\n\n"));
        Ok(())
    }

    /// Session `i`'s token hash: 32 bytes, `i` in the first four.
    fn hash(i: u32) -> TokenHash {
        let mut bytes = [7; 32];
        bytes[..4].copy_from_slice(&i.to_be_bytes());
        TokenHash(bytes)
    }

    /// `sessions` sessions over 50 accounts, session `i` with [`hash`]`(i)`, account 0 disabled,
    /// inserted in bulk and never analysed (as on a new deployment).
    async fn seed(db: &DatabaseConnection, sessions: u32) -> Result<(), sea_orm::DbErr> {
        db.execute_unprepared(
            "INSERT INTO accounts (account_id, workspace_type, created_at, updated_at, \
             revoked_generation, hidden_cut_generation, disabled_at) \
             SELECT 'acct-' || a, 'personal', 1, 1, a % 3, a % 3, \
             CASE WHEN a = 0 THEN 5 END FROM generate_series(0, 49) a",
        )
        .await?;
        db.execute_unprepared(&format!(
            "INSERT INTO sessions (session_id, token_hash, account_id, product, client_kind, \
             visible, device_id, user_agent, device_type, auth_method, status, new_device, \
             new_country, signed_in_at, last_active_at, expires_at, generation) \
             SELECT lpad(i::text, 26, '0'), int4send(i) || '\\x{tail}'::bytea, \
             'acct-' || (i % 50), 'CHATGPT', 'BROWSER', true, 'device-' || i, 'test', \
             'DESKTOP', 'PASSWORD', 'ACTIVE', false, false, 10, 20 + i, 1000000, i % 4 \
             FROM generate_series(0, {last}) i",
            tail = "07".repeat(28),
            last = sessions - 1,
        ))
        .await?;
        Ok(())
    }

    /// The plan PostgreSQL keeps for the statement of `size` hashes once it settles on a
    /// generic plan (as it does for a statement the driver prepared and runs again and again).
    async fn generic_plan(db: &DatabaseConnection, size: usize) -> Result<String, sea_orm::DbErr> {
        let slot = LIST_SIZES
            .iter()
            .position(|&listed| listed == size)
            .unwrap_or(0);
        let types = vec!["bytea"; size].join(", ");
        let arguments = std::iter::once(format!("'\\x{}'::bytea", "07".repeat(32)))
            .chain(std::iter::repeat_n("NULL".to_owned(), size - 1))
            .collect::<Vec<_>>()
            .join(", ");
        let txn = db.begin().await?;
        txn.execute_unprepared("SET LOCAL plan_cache_mode = force_generic_plan")
            .await?;
        txn.execute_unprepared(&format!(
            "PREPARE validity_{size} ({types}) AS {}",
            POSTGRES_SQL[slot]
        ))
        .await?;
        let rows = txn
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("EXPLAIN EXECUTE validity_{size}({arguments})"),
            ))
            .await?;
        txn.execute_unprepared(&format!("DEALLOCATE validity_{size}"))
            .await?;
        txn.commit().await?;
        let lines: Result<Vec<String>, _> = rows
            .iter()
            .map(|row| row.try_get_by_index::<String>(0))
            .collect();
        Ok(lines?.join("\n"))
    }

    /// Every list size is one unique-index probe per hash, on a small table that has never been
    /// analysed, where `token_hash IN (…)` had the generic plan scan the whole table from 4
    /// hashes on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_list_size_reads_by_the_token_index() -> TestResult {
        on_fresh_postgres(async |db| {
            seed(db, 1_000).await?;
            let mut scans = Vec::new();
            for size in LIST_SIZES {
                let plan = generic_plan(db, size).await?;
                if plan.contains("Seq Scan on sessions")
                    || !plan.contains("Index Scan using sessions_token_hash_key")
                {
                    scans.push(format!("{size} hashes:\n{plan}"));
                }
            }
            Ok(scans)
        })
        .await
    }

    /// The padded statements answer exactly the sessions asked for, each with its account's
    /// cut-offs and state, and leave unknown hashes out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn padded_reads_answer_each_hash_once() -> TestResult {
        on_fresh_postgres(async |db| {
            seed(db, 200).await?;
            let unknown = hash(9_999);
            let lists: Vec<Vec<TokenHash>> = vec![
                vec![hash(0)],
                vec![unknown],
                vec![hash(3), hash(50), unknown],
                vec![hash(1), hash(2), hash(7), hash(150), unknown],
                (0..70).map(hash).collect(),
            ];
            let mut failures = Vec::new();
            for hashes in lists {
                let found = by_token_hashes(db, &hashes).await?;
                let mut read: Vec<TokenHash> = found.iter().map(|(hash, _)| *hash).collect();
                let mut expected: Vec<TokenHash> = hashes
                    .iter()
                    .take(MAX_HASHES_PER_READ)
                    .filter(|hash| **hash != unknown)
                    .copied()
                    .collect();
                read.sort_by_key(|hash| hash.0);
                expected.sort_by_key(|hash| hash.0);
                if read != expected {
                    failures.push(format!(
                        "{} hashes read {} sessions",
                        hashes.len(),
                        read.len()
                    ));
                }
                for (hash, session) in &found {
                    let i = u32::from_be_bytes([hash.0[0], hash.0[1], hash.0[2], hash.0[3]]);
                    let account = i % 50;
                    let expected_id = format!("{i:026}");
                    if session.session.session_id.to_string() != expected_id
                        || session.session.account_id.as_str() != format!("acct-{account}")
                        || session.cut.visible != i64::from(account % 3)
                        || session.account_disabled != (account == 0)
                    {
                        failures.push(format!("session {i} decoded as {session:?}"));
                    }
                }
            }
            Ok(failures)
        })
        .await
    }
}
