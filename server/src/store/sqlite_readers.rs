//! Validation reads on SQLite, run on the calling thread. sqlx runs each SQLite connection on a
//! worker thread of its own, so every statement through the pool is a hand-off there and back
//! (a channel message each way, a message per row, two thread wake-ups). Profiled under cache
//! misses, that hand-off, not SQLite, was most of what a miss cost beyond the transport: the
//! indexed read itself takes a few microseconds. Here the validation statement (the same SQL as
//! `validity`, decoded by the same code) runs through rusqlite connections on the thread that
//! asks, linked against the same bundled SQLite library as sqlx's.
//!
//! The connections only read (`PRAGMA query_only`) and never wait: SQLite in WAL mode lets a
//! reader run beside the writer, and in the rare moments it reports busy (WAL recovery, another
//! process checkpointing with a truncation) the read returns [`InlineRead::Busy`] and the caller
//! reads through the pool, which waits for its busy timeout on a thread of its own. Each read is
//! its own transaction, so it sees every commit made before it began, as a pooled read would.
//! Everything else on SQLite, every write included, goes through sea-orm.

use std::{
    path::PathBuf,
    sync::{Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use rusqlite::{Connection, ErrorCode, OpenFlags, Row, params_from_iter};

use super::{
    StoreError,
    validity::{self, MAX_HASHES_PER_READ, ValidityColumns, ValidityWithCut},
};
use crate::domain::token::TokenHash;

/// What an inline read found.
#[derive(Debug)]
pub(super) enum InlineRead {
    /// The sessions of the hashes read, each with its hash.
    Found(Vec<(TokenHash, ValidityWithCut)>),
    /// SQLite was busy, the connection could not be opened, or the readers are closed: read
    /// through the pool instead.
    Busy,
}

/// A few rusqlite connections to the store's SQLite file, opened when first needed. A read
/// holds one only while it runs (never across an await), so there are at most as many in use
/// as threads reading; up to `keep_idle` are kept between reads.
#[derive(Debug)]
pub(super) struct SqliteReaders {
    path: PathBuf,
    keep_idle: usize,
    idle: Mutex<Readers>,
}

#[derive(Debug, Default)]
struct Readers {
    connections: Vec<Connection>,
    closed: bool,
}

impl SqliteReaders {
    /// Readers of the SQLite file at `path`, keeping up to `keep_idle` connections open.
    pub(super) fn new(path: PathBuf, keep_idle: usize) -> Self {
        Self {
            path,
            keep_idle: keep_idle.max(1),
            idle: Mutex::new(Readers::default()),
        }
    }

    fn idle(&self) -> MutexGuard<'_, Readers> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the sessions of up to [`MAX_HASHES_PER_READ`] token hashes in one statement, on this
    /// thread (extra hashes are not read).
    #[tracing::instrument(name = "db.sessions.validity_by_token_hash", skip_all, fields(otel.kind = "client", hashes = hashes.len(), { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = "sqlite"))]
    pub(super) fn by_token_hashes(&self, hashes: &[TokenHash]) -> Result<InlineRead, StoreError> {
        let hashes = &hashes[..hashes.len().min(MAX_HASHES_PER_READ)];
        if hashes.is_empty() {
            return Ok(InlineRead::Found(Vec::new()));
        }
        let taken = {
            let mut idle = self.idle();
            if idle.closed {
                return Ok(InlineRead::Busy);
            }
            idle.connections.pop()
        };
        let connection = match taken {
            Some(connection) => connection,
            None => match self.open() {
                Ok(connection) => connection,
                Err(err) => {
                    tracing::debug!(error = %err, "opening an inline SQLite reader failed; reading through the pool");
                    return Ok(InlineRead::Busy);
                }
            },
        };
        let read = read(&connection, hashes);
        {
            let mut idle = self.idle();
            if !idle.closed && idle.connections.len() < self.keep_idle {
                idle.connections.push(connection);
            }
        }
        match read {
            Ok(found) => Ok(InlineRead::Found(found)),
            Err(ReadError::Busy) => Ok(InlineRead::Busy),
            Err(ReadError::Store(err)) => Err(err),
        }
    }

    /// Closes the idle connections; later reads go through the pool.
    pub(super) fn close(&self) {
        let mut idle = self.idle();
        idle.closed = true;
        idle.connections.clear();
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        // Read-write without create: a read-only connection could not recover a WAL left by a
        // process that died; `query_only` keeps this one from writing.
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(Duration::ZERO)?;
        connection.pragma_update(None, "query_only", true)?;
        Ok(connection)
    }
}

/// Why an inline read failed.
enum ReadError {
    /// SQLite reported BUSY or LOCKED.
    Busy,
    /// Any other failure.
    Store(StoreError),
}

impl From<rusqlite::Error> for ReadError {
    fn from(err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Self::Busy,
            _ => Self::Store(StoreError::Database(err.to_string())),
        }
    }
}

impl From<StoreError> for ReadError {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

fn read(
    connection: &Connection,
    hashes: &[TokenHash],
) -> Result<Vec<(TokenHash, ValidityWithCut)>, ReadError> {
    let (sql, values) = validity::sqlite_statement(hashes);
    let mut statement = connection.prepare_cached(sql)?;
    let mut rows = statement.query(params_from_iter(values.map(TokenHash::as_bytes)))?;
    let mut found = Vec::with_capacity(hashes.len());
    while let Some(row) = rows.next()? {
        found.push(validity::from_row_with_hash(&InlineRow(row))?);
    }
    Ok(found)
}

/// A rusqlite row as the validation statement's columns.
struct InlineRow<'stmt, 'row>(&'row Row<'stmt>);

fn column_error(err: rusqlite::Error) -> StoreError {
    StoreError::Database(err.to_string())
}

impl ValidityColumns for InlineRow<'_, '_> {
    fn text(&self, index: usize) -> Result<String, StoreError> {
        self.0.get(index).map_err(column_error)
    }

    fn integer(&self, index: usize) -> Result<i64, StoreError> {
        self.0.get(index).map_err(column_error)
    }

    fn optional_integer(&self, index: usize) -> Result<Option<i64>, StoreError> {
        self.0.get(index).map_err(column_error)
    }

    fn flag(&self, index: usize) -> Result<bool, StoreError> {
        Ok(self
            .0
            .get::<_, Option<i64>>(index)
            .map_err(column_error)?
            .unwrap_or(0)
            != 0)
    }

    fn blob(&self, index: usize) -> Result<Vec<u8>, StoreError> {
        self.0.get(index).map_err(column_error)
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveModelTrait, IntoActiveModel};

    use super::*;
    use crate::{
        config::{Config, DatabaseConfig},
        domain::{
            session::{ClientKind, Product},
            stored::StoredEnum as _,
        },
        store::{Store, entity, validity},
    };

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    async fn migrated_store(dir: &tempfile::TempDir) -> Result<Store, Box<dyn std::error::Error>> {
        let url = format!("sqlite://{}", dir.path().join("readers.db").display());
        let config: DatabaseConfig = Config::new("127.0.0.1:0".parse()?, url).database;
        let store = Store::connect(&config).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Inserts `accounts` and then `sessions` through the store's pool.
    async fn seed(
        store: &Store,
        accounts: impl IntoIterator<Item = entity::account::Model>,
        sessions: impl IntoIterator<Item = entity::session::Model>,
    ) -> Result<(), sea_orm::DbErr> {
        for account in accounts {
            account.into_active_model().insert(store.reader()).await?;
        }
        for session in sessions {
            session.into_active_model().insert(store.reader()).await?;
        }
        Ok(())
    }

    fn account(
        account_id: &str,
        revoked_generation: i64,
        disabled_at: Option<i64>,
    ) -> entity::account::Model {
        entity::account::Model {
            account_id: account_id.to_owned(),
            workspace_type: "personal".to_owned(),
            sso_protocol: None,
            sso_organization_id: None,
            sso_linked_at: None,
            revoked_before: None,
            revoked_generation,
            disabled_at,
            deleted_at: None,
            hidden_cut_generation: revoked_generation,
            created_at: 1,
            updated_at: 1,
        }
    }

    fn session(index: u8, account_id: &str, revoked_at: Option<i64>) -> entity::session::Model {
        let kind = if index.is_multiple_of(2) {
            ClientKind::ThirdPartyApp
        } else {
            ClientKind::Browser
        };
        entity::session::Model {
            session_id: ulid::Ulid::from_parts(1_000 + u64::from(index), 7).to_string(),
            token_hash: vec![index; 32],
            account_id: account_id.to_owned(),
            product: Product::ChatGpt.as_str().to_owned(),
            client_kind: kind.as_str().to_owned(),
            visible: kind.is_visible(),
            device_id: format!("device-{index}"),
            user_agent: "test".to_owned(),
            browser: None,
            browser_version: None,
            os: None,
            os_version: None,
            device_type: "desktop".to_owned(),
            ip_address: None,
            city: None,
            region: None,
            country_code: None,
            country: None,
            auth_method: "password".to_owned(),
            status: "active".to_owned(),
            new_device: false,
            new_country: false,
            signed_in_at: 10,
            last_active_at: 20 + i64::from(index),
            expires_at: 1_000_000,
            revoked_at,
            revoked_reason: None,
            revocation_id: None,
            generation: i64::from(index % 3),
        }
    }

    /// The inline read and the pool's read of the same hashes decode the same sessions: found,
    /// revoked, on a logged-out-of-all or disabled account, on an account without a row, and
    /// unknown hashes absent, at list sizes that pad.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inline_reads_answer_as_the_pool_does() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = migrated_store(&dir).await?;
        seed(
            &store,
            [account("acct-a", 2, None), account("acct-b", 0, Some(5))],
            [
                session(1, "acct-a", None),
                session(2, "acct-a", Some(30)),
                session(3, "acct-b", None),
                session(4, "acct-without-row", None),
            ],
        )
        .await?;
        let db = store.reader();
        let readers = SqliteReaders::new(dir.path().join("readers.db"), 2);
        let hash = |index: u8| TokenHash([index; 32]);
        for hashes in [
            vec![hash(1)],
            vec![hash(9)],
            vec![hash(2), hash(3), hash(9)],
            vec![hash(4), hash(3), hash(2), hash(1), hash(9)],
        ] {
            let pooled = validity::by_token_hashes(db, &hashes).await?;
            let read = readers.by_token_hashes(&hashes)?;
            let InlineRead::Found(inline) = read else {
                return Err(format!("an idle database was reported as {read:?}").into());
            };
            assert_eq!(format!("{inline:?}"), format!("{pooled:?}"));
            let expected = hashes.iter().filter(|hash| hash.0[0] != 9).count();
            assert_eq!(inline.len(), expected);
            let through_store = store.validity_by_token_hashes(&hashes).await?;
            assert_eq!(format!("{through_store:?}"), format!("{pooled:?}"));
        }
        Ok(())
    }

    /// With its inline readers closed, the store reads through the pool and answers the same.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_store_reads_through_the_pool_when_inline_reads_cannot() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = migrated_store(&dir).await?;
        seed(
            &store,
            [account("acct-a", 1, None)],
            [session(1, "acct-a", None)],
        )
        .await?;
        let hashes = [TokenHash([1; 32]), TokenHash([9; 32])];
        let inline = store.validity_by_token_hashes(&hashes).await?;
        let readers = store
            .sqlite_readers
            .as_ref()
            .ok_or("a SQLite file's store has inline readers")?;
        readers.close();
        assert!(matches!(
            readers.by_token_hashes(&hashes)?,
            InlineRead::Busy
        ));
        let pooled = store.validity_by_token_hashes(&hashes).await?;
        assert_eq!(pooled.len(), 1);
        assert_eq!(format!("{pooled:?}"), format!("{inline:?}"));
        Ok(())
    }

    /// A file another connection holds locked is reported busy at once, never waited for on
    /// the calling thread, and read as soon as the lock is gone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_locked_file_is_reported_busy_at_once() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = migrated_store(&dir).await?;
        store.close().await;
        let path = dir.path().join("readers.db");
        let locker = Connection::open(&path)?;
        locker.execute_batch(
            "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; \
             UPDATE server_settings SET value = value WHERE 0; COMMIT;",
        )?;
        let readers = SqliteReaders::new(path, 2);
        let hashes = [TokenHash([1; 32])];
        assert!(matches!(
            readers.by_token_hashes(&hashes)?,
            InlineRead::Busy
        ));
        drop(locker);
        assert!(matches!(
            readers.by_token_hashes(&hashes)?,
            InlineRead::Found(found) if found.is_empty()
        ));
        readers.close();
        assert!(matches!(
            readers.by_token_hashes(&hashes)?,
            InlineRead::Busy
        ));
        Ok(())
    }
}
