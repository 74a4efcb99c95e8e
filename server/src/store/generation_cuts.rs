//! The sessions a log-out of all covers, by generation: how many and which products (for the
//! revocation's summary), the sweep that marks them in session-id batches, and the one session
//! an "all but this one" log-out moves into the new generation.

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, Select,
    sea_query::{Alias, Expr, ExprTrait, Order, Query},
};

use super::{StoreError, entity::session, session_sets::Marking};
use crate::domain::stored::StoredEnum as _;
use crate::domain::{
    ids::{AccountId, SessionId},
    session::Product,
};

/// What a log-out of all's sweep marks: the account's sessions born before `cut_generation`,
/// visible ones only unless `include_hidden`.
#[derive(Debug, Clone, Copy)]
pub struct SweepCut<'a> {
    /// The account.
    pub account_id: &'a AccountId,
    /// The generation the log-out set.
    pub cut_generation: i64,
    /// The hidden kinds are covered too.
    pub include_hidden: bool,
}

/// Marks up to `batch` of the sessions `cut` covers revoked as `marking` says; returns how many
/// changed (0 when the sweep is done).
#[tracing::instrument(name = "db.sessions.sweep_batch", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn sweep_batch(
    conn: &impl ConnectionTrait,
    cut: SweepCut<'_>,
    marking: Marking,
    batch: u64,
) -> Result<u64, StoreError> {
    lock_and_mark(conn, cut, marking, |pending| {
        pending.limit(std::cmp::max(batch, 1))
    })
    .await
}

/// Marks the sessions `cut` covers whose ids are in `range` (from its first id, up to but not
/// including the next range's first, [`batch_starts`]) revoked; returns how many changed.
/// Ranges are disjoint, so several writers can mark one log-out's ranges at once.
#[tracing::instrument(name = "db.sessions.sweep_range", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn sweep_range(
    conn: &impl ConnectionTrait,
    cut: SweepCut<'_>,
    marking: Marking,
    (first, next): (&str, Option<&str>),
) -> Result<u64, StoreError> {
    lock_and_mark(conn, cut, marking, |pending| {
        let pending = pending.filter(session::Column::SessionId.gte(first));
        match next {
            Some(next) => pending.filter(session::Column::SessionId.lt(next)),
            None => pending,
        }
    })
    .await
}

/// Locks the sessions `cut` covers that `within` keeps, in session-id order (the one order every
/// multi-row writer uses, see `apply_activity`), then marks them by their id range: no
/// parameter per session. Sessions in the range that pass the filter are exactly the locked
/// ones: one registered meanwhile is born in the cut generation or later.
async fn lock_and_mark(
    conn: &impl ConnectionTrait,
    cut: SweepCut<'_>,
    marking: Marking,
    within: impl FnOnce(Select<session::Entity>) -> Select<session::Entity>,
) -> Result<u64, StoreError> {
    let filter = || cut_filter(cut.account_id, cut.cut_generation, cut.include_hidden);
    let pending = session::Entity::find()
        .select_only()
        .column(session::Column::SessionId)
        .filter(filter());
    let pending: Vec<String> = within(pending)
        .order_by_asc(session::Column::SessionId)
        .lock_exclusive()
        .into_tuple::<String>()
        .all(conn)
        .await?;
    let (Some(first), Some(last)) = (pending.first(), pending.last()) else {
        return Ok(0);
    };
    super::session_sets::mark_range(conn, filter(), first, last, marking).await
}

/// The first session id of every run of `batch` sessions that `cut` covers, in session-id
/// order: the bounds that split a sweep into ranges of about `batch` sessions each, read in one
/// statement over the account's sessions (ids only).
#[tracing::instrument(name = "db.sessions.sweep_batch_starts", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn batch_starts(
    conn: &impl ConnectionTrait,
    cut: SweepCut<'_>,
    batch: u64,
) -> Result<Vec<String>, StoreError> {
    let numbered = session::Entity::find()
        .select_only()
        .column(session::Column::SessionId)
        .column_as(
            Expr::cust("ROW_NUMBER() OVER (ORDER BY session_id)"),
            "covered_rank",
        )
        .filter(cut_filter(
            cut.account_id,
            cut.cut_generation,
            cut.include_hidden,
        ))
        .into_query();
    let starts = Query::select()
        .column(Alias::new("session_id"))
        .from_subquery(numbered, Alias::new("covered"))
        .and_where(
            Expr::col(Alias::new("covered_rank"))
                .sub(1_i64)
                .modulo(i64::try_from(std::cmp::max(batch, 1)).unwrap_or(i64::MAX))
                .eq(0_i64),
        )
        .order_by(Alias::new("session_id"), Order::Asc)
        .to_owned();
    let backend = conn.get_database_backend();
    conn.query_all_raw(backend.build(&starts))
        .await?
        .iter()
        .map(|row| Ok(row.try_get_by_index::<String>(0)?))
        .collect()
}

/// The sessions a log-out of all that set `cut_generation` covers and has not marked yet:
/// unrevoked, born before the cut, visible (or of any kind with `include_hidden`).
fn cut_filter(account_id: &AccountId, cut_generation: i64, include_hidden: bool) -> Condition {
    let mut filter = Condition::all()
        .add(session::Column::AccountId.eq(account_id.as_str()))
        .add(session::Column::RevokedAt.is_null())
        .add(session::Column::Generation.lt(cut_generation));
    if !include_hidden {
        filter = filter.add(session::Column::Visible.eq(true));
    }
    filter
}

/// Moves one session to generation `generation` (the session a log-out of all keeps), under
/// the account lock the log-out holds.
#[tracing::instrument(name = "db.sessions.restamp_generation", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn restamp_generation(
    conn: &impl ConnectionTrait,
    session_id: SessionId,
    generation: i64,
) -> Result<(), StoreError> {
    session::Entity::update_many()
        .col_expr(session::Column::Generation, Expr::value(generation))
        .filter(session::Column::SessionId.eq(session_id.to_string()))
        .exec(conn)
        .await?;
    Ok(())
}

/// How many unrevoked sessions of the account (visible ones, or of every kind with
/// `include_hidden`) were born before generation `cut_generation`.
#[tracing::instrument(name = "db.sessions.count_before", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn count_before(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    cut_generation: i64,
    include_hidden: bool,
) -> Result<u64, StoreError> {
    use sea_orm::PaginatorTrait;
    Ok(session::Entity::find()
        .filter(cut_filter(account_id, cut_generation, include_hidden))
        .count(conn)
        .await?)
}

/// The products of the account's unrevoked sessions (visible ones, or of every kind with
/// `include_hidden`) born before generation `cut_generation`.
pub async fn products_before(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    cut_generation: i64,
    include_hidden: bool,
) -> Result<Vec<Product>, StoreError> {
    let stored: Vec<String> = session::Entity::find()
        .select_only()
        .column(session::Column::Product)
        .distinct()
        .filter(cut_filter(account_id, cut_generation, include_hidden))
        .into_tuple::<String>()
        .all(conn)
        .await?;
    let mut products: Vec<Product> = stored
        .iter()
        .filter_map(|p| Product::from_stored(p))
        .collect();
    products.sort();
    Ok(products)
}
