//! Storage over sea-orm: SQLite (the embedded default) or PostgreSQL (production).
//!
//! One module per table or aggregate holds its queries; the entities and migrations live beside
//! them. The store speaks domain types, never protobuf. Every command runs in one transaction
//! opened with [`Store::write`]; on SQLite, writers are also serialised in-process (one writer
//! at a time, `BEGIN IMMEDIATE`), so SQLITE_BUSY never reaches a caller, and the busy timeout
//! covers other processes sharing the file.

pub mod accounts;
mod connection_checks;
pub mod entity;
pub mod erasure;
mod error;
pub mod generation_cuts;
pub mod idempotency;
pub mod migration;
mod planner_stats;
mod query;
pub mod retention;
pub mod revocations;
pub mod row_samples;
pub mod security_events;
pub mod session_sets;
pub mod sessions;
pub mod settings;
pub mod sign_in_novelty;
mod sqlite_readers;
pub mod trusted_devices;
pub mod validity;

use std::{path::Path, str::FromStr, sync::Arc, time::Duration};

use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    SqliteTransactionMode, TransactionOptions, TransactionTrait, sqlx,
};
use sea_orm_migration::MigratorTrait;
use tokio::sync::{Mutex, MutexGuard};

pub use error::StoreError;
use sqlite_readers::{InlineRead, SqliteReaders};
use validity::ValidityWithCut;

use crate::config::DatabaseConfig;

/// The PostgreSQL advisory lock key held while migrating ("ac_sessm" as a big-endian i64), so
/// that concurrent `migrate` and `serve` processes run the migrations one at a time.
pub const MIGRATION_LOCK_KEY: i64 = i64::from_be_bytes(*b"ac_sessm");

/// How long SQLite waits for another process's write lock before reporting busy.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The engine of this process's store, as OpenTelemetry's `db.system.name` names it (`sqlite`
/// or `postgresql`): set by the first [`Store::connect`], since a server runs on one database.
/// Every database span carries it.
static DB_SYSTEM_NAME: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// The `db.system.name` of database spans (`other_sql` before any store connected).
pub fn db_system_name() -> &'static str {
    DB_SYSTEM_NAME.get().copied().unwrap_or("other_sql")
}

/// The database handle shared by every request.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    /// Serialises writers on SQLite; `None` on PostgreSQL, which has row locks.
    write_gate: Option<Arc<Mutex<()>>>,
    /// The cores (at least 2), within the pool: how many statements this host can usefully
    /// drive at once, from which the readers and writers below are sized.
    parallel_statements: usize,
    /// On a SQLite file, the validation reads' connections on the calling thread.
    sqlite_readers: Option<Arc<SqliteReaders>>,
}

/// A write transaction. Dropping it without [`commit`](Self::commit) rolls it back.
#[derive(Debug)]
pub struct WriteTxn<'a> {
    // Field order matters: the transaction is rolled back before the gate is released.
    txn: DatabaseTransaction,
    _gate: Option<MutexGuard<'a, ()>>,
}

impl WriteTxn<'_> {
    /// Commits the transaction, unless the call's client deadline leaves no time to commit
    /// (see `deadline`): then it is rolled back and the call ends DEADLINE_EXCEEDED.
    pub async fn commit(self) -> Result<(), StoreError> {
        if crate::deadline::too_late_to_commit() {
            self.txn.rollback().await.map_err(StoreError::from)?;
            return Err(StoreError::DeadlineExceeded);
        }
        self.txn.commit().await.map_err(StoreError::from)
    }
}

impl std::ops::Deref for WriteTxn<'_> {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &Self::Target {
        &self.txn
    }
}

impl Store {
    /// Connects to the configured database. For SQLite the file and its directory are created
    /// if missing, and WAL mode and a busy timeout are set on every connection.
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, StoreError> {
        let url = config.url.expose();
        let is_sqlite = url.starts_with("sqlite:");
        let url = if is_sqlite {
            prepare_sqlite_url(url)?
        } else {
            url.to_owned()
        };
        let pool_size = config.pool_size(is_sqlite);
        let cores = std::thread::available_parallelism().map_or(2, |cores| cores.get().max(2));
        let sqlite_readers = sqlite_path(&url)
            .filter(|_| is_sqlite)
            .map(|path| Arc::new(SqliteReaders::new(path, cores)));
        let mut options = ConnectOptions::new(url);
        options
            .max_connections(pool_size)
            .min_connections(if is_sqlite { 1 } else { 0 })
            .connect_timeout(config.connect_timeout)
            .acquire_timeout(config.acquire_timeout)
            .sqlx_logging(config.log_statements)
            .sqlx_logging_level(tracing::log::LevelFilter::Debug)
            .map_sqlx_sqlite_opts(|opts| {
                opts.journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .foreign_keys(true)
            });
        connection_checks::install(&mut options, config.check_idle_after);
        let db = Database::connect(options).await?;
        let _ = DB_SYSTEM_NAME.set(if is_sqlite { "sqlite" } else { "postgresql" });
        Ok(Self {
            sqlite_readers,
            write_gate: is_sqlite.then(|| Arc::new(Mutex::new(()))),
            parallel_statements: cores.min(usize::try_from(pool_size).unwrap_or(usize::MAX)),
            db,
        })
    }

    /// Brings the schema up to date. Safe to run on every start and from any number of
    /// processes at once: the migrator itself takes no lock, so on PostgreSQL migrating holds a
    /// session-level advisory lock ([`MIGRATION_LOCK_KEY`]) on a connection of its own, and on
    /// SQLite the writer gate. Racers wait for the first, then find nothing left to do. A
    /// process that dies while migrating ends its session, which releases the lock.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        if let Some(gate) = &self.write_gate {
            let _writers_excluded = gate.lock().await;
            migration::Migrator::up(&self.db, None).await?;
            planner_stats::seed_when_missing(&self.db).await?;
            if !planner_stats::plans_are_stable(&self.db).await? {
                tracing::warn!(
                    "this build's SQLite lacks SQLITE_ENABLE_QPSG: every statement with a bound \
                     LIMIT is re-prepared each time it runs; build inside the workspace, whose \
                     .cargo/config.toml sets LIBSQLITE3_FLAGS"
                );
            }
            return Ok(());
        }
        if self.db.get_database_backend() != DbBackend::Postgres {
            migration::Migrator::up(&self.db, None).await?;
            return Ok(());
        }
        let pool = self.db.get_postgres_connection_pool();
        let mut lock_holder = pool.acquire().await.map_err(unavailable)?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *lock_holder)
            .await
            .map_err(unavailable)?;
        let migrated = migration::Migrator::up(&self.db, None).await;
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *lock_holder)
            .await;
        if unlocked.is_err() {
            // The lock dies with the session: close the connection rather than return it to the
            // pool still holding the lock.
            lock_holder.detach();
        }
        migrated?;
        Ok(())
    }

    /// One round trip to the database, for health checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await.map_err(StoreError::from)
    }

    /// The database server's own clock (`clock_timestamp()`), in microseconds since the epoch,
    /// on engines that have one apart from this process: PostgreSQL. `None` on SQLite, whose
    /// clock is this host's.
    pub async fn database_clock_micros(&self) -> Result<Option<i64>, StoreError> {
        if self.db.get_database_backend() != DbBackend::Postgres {
            return Ok(None);
        }
        let micros: i64 =
            sqlx::query_scalar("SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::bigint")
                .fetch_one(self.db.get_postgres_connection_pool())
                .await
                .map_err(unavailable)?;
        Ok(Some(micros))
    }

    /// Which engine this is.
    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// How many sign-in transactions may run at once (the group commit's writers): one on
    /// SQLite, which has one writer; half the cores (at least 1), within the pool, on
    /// PostgreSQL. Sign-ins that find every writer busy wait for the next batch, so fewer writers
    /// make bigger batches: on 2 cores at 32 in flight, one writer instead of two took
    /// PostgreSQL's CPU per registration from 94 to 66–75 µs and the server's from 106 to
    /// 82–100 µs, at the same rate.
    pub(crate) fn sign_in_writers(&self) -> usize {
        if self.write_gate.is_some() {
            1
        } else {
            (self.parallel_statements / 2).max(1)
        }
    }

    /// How many validation reads may run at once (the miss batcher's readers). On SQLite the
    /// cores (at least 2): a read is CPU on this host, on the calling thread. On PostgreSQL half
    /// of them (at least 1): a read there is a round trip, and misses that find every reader
    /// busy share the next one, so fewer readers make bigger batches. On 2 cores at 32 misses
    /// in flight, one reader instead of two took the server's CPU per miss from 41–42 to 37 µs
    /// and PostgreSQL's from 24–25 to 15.5 µs, and the rate from 20.3k to 22.1–22.5k per second
    /// (at 8 and at 256 in flight it was no worse).
    pub(crate) fn validation_readers(&self) -> usize {
        if self.write_gate.is_some() {
            self.parallel_statements
        } else {
            (self.parallel_statements / 2).max(1)
        }
    }

    /// How many transactions one log-out of all's sweep may run at once: one on SQLite, which has
    /// one writer; the cores (at least 2), within the pool, on PostgreSQL.
    pub(crate) fn sweep_writers(&self) -> usize {
        if self.write_gate.is_some() {
            1
        } else {
            self.parallel_statements
        }
    }

    /// Finds the sessions of up to [`validity::MAX_HASHES_PER_READ`] token hashes in one
    /// statement, each with its hash (see [`validity::by_token_hashes`]). On a SQLite file the
    /// statement runs on this thread (`sqlite_readers`), through the pool only when SQLite is
    /// busy; elsewhere through the pool, once more at once when the connection broke under it
    /// (the read did nothing, and the pool checks a connection before the retry).
    pub async fn validity_by_token_hashes(
        &self,
        hashes: &[crate::domain::token::TokenHash],
    ) -> Result<Vec<(crate::domain::token::TokenHash, ValidityWithCut)>, StoreError> {
        if let Some(readers) = &self.sqlite_readers
            && let InlineRead::Found(found) = readers.by_token_hashes(hashes)?
        {
            return Ok(found);
        }
        match validity::by_token_hashes(&self.db, hashes).await {
            Err(err) if err.is_connection_broken() => {
                validity::by_token_hashes(&self.db, hashes).await
            }
            read => read,
        }
    }

    /// Finds a session's validity by token hash, with its account's cut-offs.
    pub async fn validity_by_token_hash(
        &self,
        hash: &crate::domain::token::TokenHash,
    ) -> Result<Option<ValidityWithCut>, StoreError> {
        Ok(self
            .validity_by_token_hashes(std::slice::from_ref(hash))
            .await?
            .into_iter()
            .next()
            .map(|(_, found)| found))
    }

    /// The connection, for reads outside a transaction.
    pub(crate) fn reader(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Opens a write transaction: on SQLite after taking the in-process writer gate, with
    /// `BEGIN IMMEDIATE` so the write lock is taken up front rather than upgraded mid-way.
    pub async fn write(&self) -> Result<WriteTxn<'_>, StoreError> {
        let gate = match &self.write_gate {
            Some(gate) => Some(gate.lock().await),
            None => None,
        };
        let options = TransactionOptions {
            sqlite_transaction_mode: gate.as_ref().map(|_| SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        let txn = match self
            .db
            .begin_with_options(options)
            .await
            .map_err(StoreError::from)
        {
            // BEGIN did nothing; the pool now checks a connection before the retry.
            Err(err) if err.is_connection_broken() => self.db.begin_with_options(options).await?,
            begun => begun?,
        };
        Ok(WriteTxn { txn, _gate: gate })
    }

    /// The pool's open connections and how many of them are idle.
    pub fn pool_stats(&self) -> (u32, usize) {
        match self.db.get_database_backend() {
            DbBackend::Sqlite => {
                let pool = self.db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
            DbBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => (0, 0),
        }
    }

    /// On PostgreSQL, a listener for revocations committed by any replica (LISTEN on
    /// [`revocations::NOTIFY_CHANNEL`]); `None` on engines without LISTEN/NOTIFY, where the
    /// revocation feed polls.
    pub async fn revocation_listener(
        &self,
    ) -> Result<Option<sqlx::postgres::PgListener>, StoreError> {
        if self.db.get_database_backend() != DbBackend::Postgres {
            return Ok(None);
        }
        let pool = self.db.get_postgres_connection_pool();
        let mut listener = sqlx::postgres::PgListener::connect_with(pool)
            .await
            .map_err(|err| StoreError::Unavailable(err.to_string()))?;
        listener
            .listen(revocations::NOTIFY_CHANNEL)
            .await
            .map_err(|err| StoreError::Unavailable(err.to_string()))?;
        Ok(Some(listener))
    }

    /// The current time as a snapshot instant for the account: read while no write on the
    /// account is in flight (under the account row's lock in shared mode on PostgreSQL, under
    /// the writer gate on SQLite). Every write that reads the clock while holding the account
    /// lock is then either committed before this instant or stamped after it. The instant is
    /// never earlier than a sign-in already committed, so a session stamped by a replica whose
    /// clock runs ahead of this one's is not hidden from the listing.
    pub async fn snapshot_instant(
        &self,
        account_id: &crate::domain::ids::AccountId,
        clock: &dyn crate::clock::Clock,
    ) -> Result<crate::clock::Timestamp, StoreError> {
        use sea_orm::{EntityTrait, QuerySelect};
        let not_before = |latest: Option<crate::clock::Timestamp>| {
            let now = clock.now();
            latest.map_or(now, |latest| now.max(latest.plus(Duration::from_micros(1))))
        };
        if let Some(gate) = &self.write_gate {
            let _writers_excluded = gate.lock().await;
            let latest = sessions::latest_sign_in(&self.db, account_id).await?;
            return Ok(not_before(latest));
        }
        let txn = self.db.begin().await?;
        entity::account::Entity::find_by_id(account_id.as_str())
            .lock_shared()
            .one(&txn)
            .await?;
        let latest = sessions::latest_sign_in(&txn, account_id).await?;
        let now = not_before(latest);
        // The transaction only read and locked, so it ends in a rollback, which releases the
        // lock without waiting for the disk as a commit would. Dropping it queues the rollback
        // on its connection, which sends it as the connection goes back to the pool (sqlx
        // flushes a pending rollback on release): the page's reads do not wait a round trip.
        drop(txn);
        Ok(now)
    }

    /// Closes every pooled connection.
    pub async fn close(self) {
        if let Some(readers) = &self.sqlite_readers {
            readers.close();
        }
        if let Err(err) = self.db.close().await {
            tracing::warn!(error = %err, "closing the database pool failed");
        }
    }
}

/// The file a SQLite URL names; `None` for an in-memory database or a URL that does not parse.
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let path = options.get_filename();
    (path != Path::new(":memory:") && !url.contains("mode=memory")).then(|| path.to_owned())
}

fn unavailable(err: sqlx::Error) -> StoreError {
    StoreError::Unavailable(err.to_string())
}

/// Makes sure a SQLite URL creates its file (`mode=rwc`) and that the file's directory exists.
fn prepare_sqlite_url(url: &str) -> Result<String, StoreError> {
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .map_err(|err| StoreError::Database(format!("invalid SQLite URL: {err}")))?;
    let path = options.get_filename();
    if path != Path::new(":memory:")
        && let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|err| {
            StoreError::Database(format!("cannot create directory {}: {err}", dir.display()))
        })?;
    }
    if url.contains("mode=") {
        Ok(url.to_owned())
    } else if url.contains('?') {
        Ok(format!("{url}&mode=rwc"))
    } else {
        Ok(format!("{url}?mode=rwc"))
    }
}
