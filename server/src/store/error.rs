//! The store's error type, and the one place that decides which database failures are
//! transient (the database is unreachable or busy: retry later) and which are not.

use sea_orm::{DbErr, RuntimeErr, sqlx};

/// A failure in the store layer. Never carries SQL text or row contents to callers; the
/// gRPC layer logs the detail and answers with a generic message.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached, is overloaded, or is busy: the caller may retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The connection broke under the statement: the database or a proxy ended it. Transient;
    /// another connection may succeed, and a read or a BEGIN that met it did nothing, so it may
    /// be retried at once.
    #[error("database connection broken: {0}")]
    ConnectionBroken(String),
    /// A unique key already holds this value (for example a concurrent duplicate insert).
    #[error("unique constraint violated")]
    Conflict,
    /// Any other database failure: a bug or a broken schema.
    #[error("database error: {0}")]
    Database(String),
    /// The call's client deadline passed before its write could commit: rolled back.
    #[error("the client's deadline passed before the write could commit; rolled back")]
    DeadlineExceeded,
    /// A stored value that the domain cannot read (a broken row).
    #[error("corrupt row in {table}: {detail}")]
    Corrupt {
        /// The table holding the row.
        table: &'static str,
        /// What could not be read.
        detail: String,
    },
}

impl StoreError {
    pub(crate) fn corrupt(table: &'static str, detail: impl Into<String>) -> Self {
        Self::Corrupt {
            table,
            detail: detail.into(),
        }
    }

    /// True when retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::ConnectionBroken(_))
    }

    /// True when the connection broke under the statement (see [`Self::ConnectionBroken`]).
    pub fn is_connection_broken(&self) -> bool {
        matches!(self, Self::ConnectionBroken(_))
    }
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        if matches!(
            err.sql_err(),
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
        ) {
            return Self::Conflict;
        }
        match &err {
            DbErr::Conn(RuntimeErr::SqlxError(sqlx_err))
            | DbErr::Exec(RuntimeErr::SqlxError(sqlx_err))
            | DbErr::Query(RuntimeErr::SqlxError(sqlx_err))
                if is_broken_connection(sqlx_err) =>
            {
                // The pool checks the connections idle since this before handing them out.
                super::connection_checks::record_broken_connection();
                Self::ConnectionBroken(err.to_string())
            }
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => Self::Unavailable(err.to_string()),
            DbErr::Exec(RuntimeErr::SqlxError(sqlx_err))
            | DbErr::Query(RuntimeErr::SqlxError(sqlx_err))
                if is_transient_sqlx(sqlx_err) =>
            {
                Self::Unavailable(err.to_string())
            }
            _ => Self::Database(err.to_string()),
        }
    }
}

/// The connection itself failed: an I/O error on its socket, or PostgreSQL ending the session
/// (57P01 admin shutdown, 57P02 crash shutdown, class 08 connection exceptions).
fn is_broken_connection(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            let code = code.as_ref();
            code == "57P01" || code == "57P02" || code.starts_with("08")
        }),
        _ => false,
    }
}

/// Connection loss, pool exhaustion, SQLite's BUSY/LOCKED, and PostgreSQL's connection,
/// resource and shutdown classes are transient; everything else is not.
fn is_transient_sqlx(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // SQLite: 5 SQLITE_BUSY, 6 SQLITE_LOCKED (and their extended codes, which keep the
            // primary code in the low byte). PostgreSQL: 08xxx connection exceptions, 53xxx
            // insufficient resources, 57P0x operator intervention (shutdown), 40001/40P01
            // serialization failures and deadlocks, which are safe to retry as a whole.
            let code = code.as_ref();
            code.parse::<i64>()
                .is_ok_and(|primary| matches!(primary & 0xff, 5 | 6))
                || code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P0")
                || code == "40001"
                || code == "40P01"
        }),
        _ => false,
    }
}
