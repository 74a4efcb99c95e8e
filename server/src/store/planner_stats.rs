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

/// Writes [`SESSIONS_STATS`] when `sqlite_stat1` holds nothing for `sessions`, and has every
/// connection's planner load them.
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
    // Has the planner reread the statistics. A connection reads them only when it loads the
    // schema, and writing rows of sqlite_stat1 is no schema change: every other open connection
    // would keep planning without them (one device's read became a scan of the account's
    // sessions). A table created and dropped changes the schema, so each connection loads the
    // schema, statistics included, before its next statement.
    db.execute_raw(run("ANALYZE sqlite_schema")).await?;
    db.execute_raw(run(
        "CREATE TABLE IF NOT EXISTS planner_stats_reload (reload INTEGER)",
    ))
    .await?;
    db.execute_raw(run("DROP TABLE IF EXISTS planner_stats_reload"))
        .await?;
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
    use sea_orm::{Database, sqlx};

    use super::plans_are_stable;
    use crate::{
        config::{Config, DatabaseConfig},
        store::Store,
    };

    /// The plan of one device's sessions, as `connection` would run it.
    async fn device_read_plan(
        connection: &mut sqlx::SqliteConnection,
    ) -> Result<String, sqlx::Error> {
        let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(
            "EXPLAIN QUERY PLAN SELECT session_id FROM sessions \
             WHERE account_id = ?1 AND device_id = ?2 AND visible = ?3 AND revoked_at IS NULL \
             AND expires_at > ?4 AND last_active_at > ?4 \
             ORDER BY last_active_at DESC, session_id LIMIT ?5",
        )
        .bind("account")
        .bind("device")
        .bind(true)
        .bind(0_i64)
        .bind(10_i64)
        // Prepared afresh: a cached EXPLAIN would show the plan of when it was first prepared.
        .persistent(false)
        .fetch_all(&mut *connection)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| row.3)
            .collect::<Vec<_>>()
            .join("; "))
    }

    /// Connections that loaded the schema before the statistics were written plan with them
    /// too: a planner reads `sqlite_stat1` only when it loads the schema, so without a schema
    /// change such a connection kept planning one device's read as a scan of the account's
    /// sessions (a first page of 100 rows of a 100,000-session account took 2.2 s instead of
    /// 0.1 s whenever the pool handed it out).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_pooled_connection_plans_with_the_statistics()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("stats.db").display());
        let mut config: DatabaseConfig = Config::new("127.0.0.1:0".parse()?, url).database;
        config.max_connections = Some(3);
        // A database migrated before it had statistics.
        let store = Store::connect(&config).await?;
        store.migrate().await?;
        sqlx::query("DELETE FROM sqlite_stat1 WHERE tbl = 'sessions'")
            .execute(store.reader().get_sqlite_connection_pool())
            .await?;
        store.close().await;

        // Every connection of the next start loads the schema before the statistics exist.
        let store = Store::connect(&config).await?;
        let pool = store.reader().get_sqlite_connection_pool().clone();
        let mut held = [
            pool.acquire().await?,
            pool.acquire().await?,
            pool.acquire().await?,
        ];
        for connection in &mut held {
            device_read_plan(connection).await?;
        }
        drop(held);
        store.migrate().await?;
        let mut held = [
            pool.acquire().await?,
            pool.acquire().await?,
            pool.acquire().await?,
        ];
        for connection in &mut held {
            // A statement that runs (EXPLAIN alone does not) sees any schema change.
            sqlx::query("SELECT COUNT(*) FROM sessions")
                .execute(&mut **connection)
                .await?;
            let plan = device_read_plan(connection).await?;
            assert!(
                plan.contains("(account_id=? AND device_id=?)"),
                "a connection plans one device's read as: {plan}"
            );
        }
        Ok(())
    }

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
