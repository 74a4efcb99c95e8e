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
