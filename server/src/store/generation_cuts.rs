//! The sessions a log-out of all covers, by generation: how many and which products (for the
//! revocation's summary), the sweep that marks them in session-id batches, and the one session
//! an "all but this one" log-out moves into the new generation.

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Expr,
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
    let SweepCut {
        account_id,
        cut_generation,
        include_hidden,
    } = cut;
    // Pick the batch and lock it in session-id order (see `apply_activity`), then mark it by
    // its id range: no parameter per session.
    let filter = || cut_filter(account_id, cut_generation, include_hidden);
    let pending: Vec<String> = session::Entity::find()
        .select_only()
        .column(session::Column::SessionId)
        .filter(filter())
        .order_by_asc(session::Column::SessionId)
        .limit(std::cmp::max(batch, 1))
        .lock_exclusive()
        .into_tuple::<String>()
        .all(conn)
        .await?;
    let (Some(first), Some(last)) = (pending.first(), pending.last()) else {
        return Ok(0);
    };
    // Sessions in the range that pass the filter are exactly the locked ones: one registered
    // meanwhile is born in the cut generation or later.
    super::session_sets::mark_range(conn, filter(), first, last, marking).await
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
