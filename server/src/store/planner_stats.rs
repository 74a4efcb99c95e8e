//! SQLite's planner statistics for `sessions`. Without `sqlite_stat1`, SQLite's planner sees
//! `(account_id, revoked_at IS NULL)` and `(account_id, device_id)` as equally selective and can
//! pick the first for a per-device read, which then visits every active session of the account
//! once per device (a page of 100 rows on a 1,000-session account: 100,000 index entries). So at
//! start, when the database has no statistics for `sessions`, representative ones are written,
//! as SQLite documents for steering its planner ("Manual Control Of Query Plans Using
//! SQLITE_STAT Tables"): an account holds a few dozen sessions, a device a few, and
//! `revoked_at IS NULL` narrows an account's sessions hardly at all (most are active). They only
//! rank indexes; statistics an operator measures with `ANALYZE` replace them and are kept.
//! PostgreSQL gathers its own statistics (autovacuum), so this is SQLite's alone.
//!
//! The plans themselves must not depend on bound values. SQLite 3.51 reads a bound `LIMIT ?`
//! as a plan input, so unless its query planner stability guarantee (QPSG) is on, every
//! statement with one (each `.one()`, every page, sample and batch) is re-prepared each time it
//! runs; for ListActiveSessions' per-device samples that cost more than running them. The
//! workspace builds SQLite with `SQLITE_ENABLE_QPSG` (`.cargo/config.toml`), and start-up warns
//! when the linked SQLite lacks it.

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use super::StoreError;

/// `(index, stat)`: the row count, then the average rows per distinct prefix of the index's
/// columns.
const SESSIONS_STATS: [(&str, &str); 7] = [
    ("sqlite_autoindex_sessions_1", "1000000 1"),
    ("sessions_token_hash_key", "1000000 1"),
    // (account_id, device_id, signed_in_at)
    ("sessions_account_device_idx", "1000000 25 4 1"),
    // (account_id, device_id, session_id)
    ("sessions_account_device_id_idx", "1000000 25 4 1"),
    // (account_id, revoked_at, signed_in_at): most of an account's sessions are unrevoked.
    ("sessions_account_signed_in_idx", "1000000 25 25 1"),
    ("sessions_revoked_at_idx", "1000000 100000"),
    ("sessions_expires_at_idx", "1000000 2"),
];

/// Writes [`SESSIONS_STATS`] when `sqlite_stat1` holds nothing for `sessions`, and has this
/// connection's planner load them (connections opened later load them when they open).
pub(super) async fn seed_when_missing(db: &DatabaseConnection) -> Result<(), StoreError> {
    let backend = db.get_database_backend();
    let run = |sql: &str| Statement::from_string(backend, sql.to_owned());
    // Creates sqlite_stat1 if it is missing (and analyses only the schema table).
    db.execute_raw(run("ANALYZE sqlite_schema")).await?;
    let present = db
        .query_one_raw(run(
            "SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = 'sessions'",
        ))
        .await?
        .map(|row| row.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0);
    if present > 0 {
        return Ok(());
    }
    for (index, stat) in SESSIONS_STATS {
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            "INSERT INTO sqlite_stat1 (tbl, idx, stat) \
             SELECT 'sessions', name, ? FROM sqlite_schema \
             WHERE type = 'index' AND tbl_name = 'sessions' AND name = ?",
            [stat.into(), index.into()],
        ))
        .await?;
    }
    // Has the planner reread the statistics.
    db.execute_raw(run("ANALYZE sqlite_schema")).await?;
    Ok(())
}

/// True when the linked SQLite was built with `SQLITE_ENABLE_QPSG`, so that its plans depend on
/// the schema and `sqlite_stat1` only, and a statement is prepared once per connection.
pub(super) async fn plans_are_stable(db: &DatabaseConnection) -> Result<bool, StoreError> {
    let options = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "PRAGMA compile_options",
        ))
        .await?;
    for option in options {
        if option.try_get_by_index::<String>(0)? == "ENABLE_QPSG" {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use sea_orm::Database;

    use super::plans_are_stable;

    /// Without the guarantee every statement with a bound LIMIT is re-prepared per run.
    #[tokio::test(flavor = "current_thread")]
    async fn the_linked_sqlite_keeps_plans_stable() -> Result<(), Box<dyn std::error::Error>> {
        let db = Database::connect("sqlite::memory:").await?;
        assert!(
            plans_are_stable(&db).await?,
            "SQLite built without SQLITE_ENABLE_QPSG"
        );
        Ok(())
    }
}
