//! Statements over many sessions of one account at once, whatever their number: counts and
//! summaries computed by the database, keyset pages, and set-based log-outs (the samples a
//! page of rows shows are `row_samples`).
//! No statement binds a parameter per session: a device's sessions are named by
//! `(account_id, device_id)` and the validity rule, and writers lock rows in session-id order
//! in keyset batches of bounded size (the one order every multi-row writer uses).

use std::time::Duration;

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select,
    sea_query::{Alias, Asterisk, Expr, ExprTrait, Func, JoinType, Query, SelectStatement},
};

use super::{
    StoreError,
    entity::session,
    query::all_into,
    sessions::{exists, into_domain, of_product},
};
use crate::domain::stored::StoredEnum as _;
use crate::{
    clock::Timestamp,
    domain::{
        ids::{AccountId, DeviceId, RevocationId, SessionId},
        session::{Product, RevocationReason, Session},
    },
};

/// The validity rule (`Session::is_active`) for visible sessions, as a filter: not marked
/// revoked, born in or after the account's log-out-of-all generation, not expired and not idle at `now`
/// (stored activity).
#[derive(Debug, Clone, Copy)]
pub struct ActiveAt {
    /// The instant.
    pub now: Timestamp,
    /// The idle timeout.
    pub idle_timeout: Duration,
    /// The account's log-out-of-all generation: sessions born in an earlier one are cut off.
    pub cut_generation: i64,
}

impl ActiveAt {
    pub(super) fn condition(&self) -> Condition {
        let mut condition = Condition::all()
            .add(session::Column::Visible.eq(true))
            .add(session::Column::RevokedAt.is_null())
            .add(session::Column::ExpiresAt.gt(self.now.as_micros()))
            .add(session::Column::LastActiveAt.gt(self.now.minus(self.idle_timeout).as_micros()));
        if self.cut_generation > 0 {
            condition = condition.add(session::Column::Generation.gte(self.cut_generation));
        }
        condition
    }
}

fn on_device(account_id: &AccountId, device_id: &DeviceId) -> Condition {
    Condition::all()
        .add(session::Column::AccountId.eq(account_id.as_str()))
        .add(session::Column::DeviceId.eq(device_id.as_str()))
}

/// The account's active visible sessions on one device, of `product` when one is given.
pub(super) fn active_on_device(
    account_id: &AccountId,
    device_id: &DeviceId,
    active: &ActiveAt,
    product: Option<Product>,
) -> Select<session::Entity> {
    active_where(
        account_id,
        session::Column::DeviceId.eq(device_id.as_str()),
        active,
        product,
    )
}

/// The account's active visible sessions on the device `device` names (a value, or the
/// enclosing statement's [`page_device`]), of `product` when one is given.
pub(super) fn active_where(
    account_id: &AccountId,
    device: Expr,
    active: &ActiveAt,
    product: Option<Product>,
) -> Select<session::Entity> {
    let select = session::Entity::find()
        .filter(session::Column::AccountId.eq(account_id.as_str()))
        .filter(device)
        .filter(active.condition());
    of_product(select, product)
}

/// PostgreSQL: the device of the enclosing statement's `page` row (see
/// [`for_each_page_device`]).
pub(super) fn page_device() -> Expr {
    Expr::col((Alias::new("page"), Alias::new("page")))
}

/// PostgreSQL: sessions on the device of the enclosing statement's `page` row.
pub(super) fn on_page_device() -> Expr {
    Expr::col((session::Entity, session::Column::DeviceId))
        .equals((Alias::new("page"), Alias::new("page")))
}

/// PostgreSQL: `outer` over `unnest($devices) AS page JOIN LATERAL (per_device) AS alias ON
/// TRUE`, where `per_device` reads one device through [`on_page_device`]. The page's devices
/// are bound as one array and each is read by its own index probe: a nested loop by
/// construction, whatever a generic plan would guess of `device_id IN ($2, …)` (a guess that
/// made PostgreSQL filter every session of the account against the whole list).
pub(super) fn for_each_page_device<'a>(
    devices: impl IntoIterator<Item = &'a DeviceId>,
    mut outer: SelectStatement,
    per_device: SelectStatement,
    alias: &str,
) -> SelectStatement {
    let ids: Vec<String> = devices
        .into_iter()
        .map(|device| device.as_str().to_owned())
        .collect();
    outer
        .from_function(Func::cust("unnest").arg(ids), Alias::new("page"))
        .join_lateral(
            JoinType::InnerJoin,
            per_device,
            Alias::new(alias),
            Expr::cust("TRUE"),
        )
        .to_owned()
}

/// What the database sums up about the active sessions of one product on one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductSummary {
    /// The device.
    pub device_id: DeviceId,
    /// The product.
    pub product: Product,
    /// How many sessions.
    pub count: u64,
    /// The earliest sign-in.
    pub first_sign_in: Timestamp,
    /// The latest sign-in.
    pub last_sign_in: Timestamp,
    /// The latest stored activity.
    pub last_active: Timestamp,
    /// How many cannot be confirmed (status unavailable).
    pub unavailable: u64,
    /// Whether one was the device's first sign-in on the account.
    pub new_device: bool,
    /// Whether one brought a country new to the account.
    pub new_country: bool,
}

#[derive(Debug, FromQueryResult)]
struct SummaryRow {
    device_id: String,
    product: String,
    count: i64,
    first_sign_in: i64,
    last_sign_in: i64,
    last_active: i64,
    unavailable: i64,
    new_device: i64,
    new_country: i64,
}

/// Per device and product, a summary of the account's active visible sessions on `devices`
/// (at most a page of them), optionally of one product only.
#[tracing::instrument(name = "db.sessions.summaries", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn summaries(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    devices: &[DeviceId],
    active: &ActiveAt,
    product: Option<Product>,
) -> Result<Vec<ProductSummary>, StoreError> {
    if devices.is_empty() {
        return Ok(Vec::new());
    }
    let aggregates = |select: Select<session::Entity>| {
        select
            .column(session::Column::Product)
            .column_as(Expr::col(session::Column::SessionId).count(), "count")
            .column_as(
                Expr::col(session::Column::SignedInAt).min(),
                "first_sign_in",
            )
            .column_as(Expr::col(session::Column::SignedInAt).max(), "last_sign_in")
            .column_as(
                Expr::col(session::Column::LastActiveAt).max(),
                "last_active",
            )
            .column_as(
                Expr::cust("SUM(CASE WHEN status = 'UNAVAILABLE' THEN 1 ELSE 0 END)"),
                "unavailable",
            )
            .column_as(
                Expr::cust("SUM(CASE WHEN new_device THEN 1 ELSE 0 END)"),
                "new_device",
            )
            .column_as(
                Expr::cust("SUM(CASE WHEN new_country THEN 1 ELSE 0 END)"),
                "new_country",
            )
            .filter(session::Column::AccountId.eq(account_id.as_str()))
            .filter(active.condition())
    };
    let rows = if conn.get_database_backend() == DbBackend::Postgres {
        let select = session::Entity::find()
            .select_only()
            .filter(on_page_device());
        let per_device = of_product(aggregates(select), product)
            .group_by(session::Column::Product)
            .into_query();
        let statement = for_each_page_device(
            devices,
            Query::select()
                .expr_as(page_device(), Alias::new("device_id"))
                .column((Alias::new("summary"), Asterisk))
                .to_owned(),
            per_device,
            "summary",
        );
        SummaryRow::find_by_statement(DbBackend::Postgres.build(&statement))
            .all(conn)
            .await?
    } else {
        let select = session::Entity::find()
            .select_only()
            .column(session::Column::DeviceId)
            .filter(session::Column::DeviceId.is_in(devices.iter().map(DeviceId::as_str)));
        of_product(aggregates(select), product)
            .group_by(session::Column::DeviceId)
            .group_by(session::Column::Product)
            .into_model::<SummaryRow>()
            .all(conn)
            .await?
    };
    rows.into_iter()
        .map(|row| {
            let product = Product::from_stored(&row.product).ok_or_else(|| {
                StoreError::corrupt("sessions", format!("product {:?}", row.product))
            })?;
            Ok(ProductSummary {
                device_id: DeviceId::from_stored(row.device_id),
                product,
                count: u64::try_from(row.count).unwrap_or(0),
                first_sign_in: Timestamp::from_micros(row.first_sign_in),
                last_sign_in: Timestamp::from_micros(row.last_sign_in),
                last_active: Timestamp::from_micros(row.last_active),
                unavailable: u64::try_from(row.unavailable).unwrap_or(0),
                new_device: row.new_device > 0,
                new_country: row.new_country > 0,
            })
        })
        .collect()
}

/// The `limit` most recently active of the account's active visible sessions on one device,
/// most recent activity first.
#[tracing::instrument(name = "db.sessions.newest_on_device", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn newest_on_device(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    device_id: &DeviceId,
    active: &ActiveAt,
    product: Option<Product>,
    limit: u64,
) -> Result<Vec<Session>, StoreError> {
    let select = active_on_device(account_id, device_id, active, product)
        .order_by_desc(session::Column::LastActiveAt)
        .order_by_asc(session::Column::SessionId)
        .limit(limit);
    all_into(conn, select, into_domain).await
}

/// The ids of the `limit` newest (latest sign-in) active visible sessions on one device.
pub async fn newest_ids_on_device(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    device_id: &DeviceId,
    active: &ActiveAt,
    limit: u64,
) -> Result<Vec<SessionId>, StoreError> {
    let ids: Vec<String> = active_on_device(account_id, device_id, active, None)
        .select_only()
        .column(session::Column::SessionId)
        .order_by_desc(session::Column::SessionId)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await?;
    ids.iter()
        .map(|id| {
            SessionId::parse(id)
                .map_err(|_| StoreError::corrupt("sessions", format!("session_id {id:?}")))
        })
        .collect()
}

/// One page of the account's active visible sessions on one device, newest sign-in (session id)
/// first, after `before` (the last id of the previous page).
#[tracing::instrument(name = "db.sessions.page_on_device", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn page_on_device(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    device_id: &DeviceId,
    active: &ActiveAt,
    product: Option<Product>,
    before: Option<SessionId>,
    limit: u64,
) -> Result<Vec<Session>, StoreError> {
    let mut select = active_on_device(account_id, device_id, active, product);
    if let Some(before) = before {
        select = select.filter(session::Column::SessionId.lt(before.to_string()));
    }
    let select = select
        .order_by_desc(session::Column::SessionId)
        .limit(limit);
    all_into(conn, select, into_domain).await
}

/// True when the account has an active visible session on the device.
pub async fn any_active_on_device(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    device_id: &DeviceId,
    active: &ActiveAt,
) -> Result<bool, StoreError> {
    exists(conn, active_on_device(account_id, device_id, active, None)).await
}

/// True when the account has ever had a visible session on the device, revoked or not.
pub async fn any_visible_on_device(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    device_id: &DeviceId,
) -> Result<bool, StoreError> {
    let select = session::Entity::find()
        .filter(on_device(account_id, device_id))
        .filter(session::Column::Visible.eq(true));
    exists(conn, select).await
}

/// How a set of sessions is marked revoked.
#[derive(Debug, Clone, Copy)]
pub struct Marking {
    /// When.
    pub at: Timestamp,
    /// Why.
    pub reason: RevocationReason,
    /// By which revocation.
    pub revocation_id: RevocationId,
}

/// Marks every active visible session of the account on the device revoked. On PostgreSQL in
/// keyset batches of `batch` sessions: each batch is locked in session-id order, then marked by one statement
/// over its id range (the rows in that range that pass the filter are exactly the locked ones:
/// a session registered meanwhile waits for the account lock the caller holds). Returns how
/// many were marked.
#[tracing::instrument(name = "db.sessions.revoke_on_device", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn revoke_on_device(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    device_id: &DeviceId,
    active: &ActiveAt,
    marking: Marking,
    batch: u64,
) -> Result<u64, StoreError> {
    let filter = || on_device(account_id, device_id).add(active.condition());
    if conn.get_database_backend() == DbBackend::Sqlite {
        // SQLite has no row locks (its writers are serialised): one statement marks them all.
        return mark(conn, filter(), marking).await;
    }
    let mut after: Option<String> = None;
    let mut marked = 0;
    loop {
        let mut select = session::Entity::find()
            .select_only()
            .column(session::Column::SessionId)
            .filter(filter());
        if let Some(after) = &after {
            select = select.filter(session::Column::SessionId.gt(after.as_str()));
        }
        let locked: Vec<String> = select
            .order_by_asc(session::Column::SessionId)
            .limit(std::cmp::max(batch, 1))
            .lock_exclusive()
            .into_tuple()
            .all(conn)
            .await?;
        let (Some(first), Some(last)) = (locked.first(), locked.last()) else {
            return Ok(marked);
        };
        marked += mark_range(conn, filter(), first, last, marking).await?;
        if (locked.len() as u64) < std::cmp::max(batch, 1) {
            return Ok(marked);
        }
        after = Some(last.clone());
    }
}

/// Marks the sessions passing `filter` with ids in `first..=last` revoked.
pub(super) async fn mark_range(
    conn: &impl ConnectionTrait,
    filter: Condition,
    first: &str,
    last: &str,
    marking: Marking,
) -> Result<u64, StoreError> {
    mark(
        conn,
        filter
            .add(session::Column::SessionId.gte(first))
            .add(session::Column::SessionId.lte(last)),
        marking,
    )
    .await
}

/// Marks the sessions passing `filter` revoked.
async fn mark(
    conn: &impl ConnectionTrait,
    filter: Condition,
    marking: Marking,
) -> Result<u64, StoreError> {
    Ok(session::Entity::update_many()
        .col_expr(
            session::Column::RevokedAt,
            Expr::value(marking.at.as_micros()),
        )
        .col_expr(
            session::Column::RevokedReason,
            Expr::value(marking.reason.as_str()),
        )
        .col_expr(
            session::Column::RevocationId,
            Expr::value(marking.revocation_id.to_string()),
        )
        .filter(filter)
        // Repeated for PostgreSQL's re-check of a row a concurrent writer has just marked.
        .filter(session::Column::RevokedAt.is_null())
        .exec(conn)
        .await?
        .rows_affected)
}

/// How many active visible sessions the account has.
#[tracing::instrument(name = "db.sessions.count_active", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn count_active(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    active: &ActiveAt,
) -> Result<u64, StoreError> {
    Ok(session::Entity::find()
        .filter(session::Column::AccountId.eq(account_id.as_str()))
        .filter(active.condition())
        .count(conn)
        .await?)
}

/// The account's `limit` oldest (earliest sign-in) active visible sessions, oldest first.
#[tracing::instrument(name = "db.sessions.oldest_active", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn oldest_active(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    active: &ActiveAt,
    limit: u64,
) -> Result<Vec<Session>, StoreError> {
    let select = session::Entity::find()
        .filter(session::Column::AccountId.eq(account_id.as_str()))
        .filter(active.condition())
        .order_by_asc(session::Column::SignedInAt)
        .order_by_asc(session::Column::SessionId)
        .limit(limit);
    all_into(conn, select, into_domain).await
}
