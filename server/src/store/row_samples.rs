//! The sessions a page of Active sessions rows carries: each device's most recently active
//! sessions, at most a row's worth, read with only the columns a page shows, in at most two
//! statements whatever the page's devices hold. On PostgreSQL one statement joins the page's
//! devices, bound as one array, to a bounded, index-ordered select each (`JOIN LATERAL`): a
//! nested loop by construction, so the plan does not hang on how selective a generic plan
//! guesses `device_id IN ($2, …)` to be (a guess that made it filter every session of the
//! account against the whole list). On SQLite, whose `IN` probes the index, devices whose
//! sessions fit in a row are read whole by one range scan, which comes back as one JSON value
//! rather than row by row, and only the others get a bounded select each, joined by
//! `UNION ALL`.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Deserializer};

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QueryResult, QuerySelect, QueryTrait, Select,
    sea_query::{Alias, Asterisk, Expr, Query, SelectStatement, UnionType},
    sqlx::{Decode, Postgres, Row as _, postgres::PgRow},
};

use super::{
    StoreError,
    entity::session,
    session_sets::{
        ActiveAt, ProductSummary, active_on_device, active_where, for_each_page_device,
        on_page_device,
    },
    sessions::{device_type_from_stored, of_product},
};
use crate::domain::stored::StoredEnum as _;
use crate::{
    clock::Timestamp,
    domain::{
        ids::{AccountId, DeviceId, SessionId},
        session::{AuthMethod, ClientKind, ListedSession, Product, SessionStatus},
    },
    enrich::{DeviceDetails, GeoLocation},
};

/// A device of a page, with how many active sessions the database counted on it a moment ago
/// (the sum of its `session_sets::ProductSummary` counts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedDevice {
    /// The device.
    pub device_id: DeviceId,
    /// Its active sessions when they were counted.
    pub counted: u64,
}

/// The columns a page shows of a session: no token hash, raw user agent, IP address or
/// revocation bookkeeping.
const LISTED_COLUMNS: [session::Column; 21] = [
    session::Column::SessionId,
    session::Column::AccountId,
    session::Column::Product,
    session::Column::ClientKind,
    session::Column::DeviceId,
    session::Column::Browser,
    session::Column::BrowserVersion,
    session::Column::Os,
    session::Column::OsVersion,
    session::Column::DeviceType,
    session::Column::City,
    session::Column::Region,
    session::Column::CountryCode,
    session::Column::Country,
    session::Column::AuthMethod,
    session::Column::Status,
    session::Column::NewDevice,
    session::Column::NewCountry,
    session::Column::SignedInAt,
    session::Column::LastActiveAt,
    session::Column::ExpiresAt,
];

/// One session as [`LISTED_COLUMNS`] read it: its fields in the same order. It also reads from
/// a JSON array of those columns (SQLite's [`whole_as_json`]), where booleans are 0 or 1.
#[derive(Debug, Deserialize)]
pub(super) struct ListedRow {
    pub session_id: String,
    pub account_id: String,
    pub product: String,
    pub client_kind: String,
    pub device_id: String,
    pub browser: Option<String>,
    pub browser_version: Option<String>,
    pub os: Option<String>,
    pub os_version: Option<String>,
    pub device_type: String,
    pub city: Option<String>,
    pub region: Option<String>,
    pub country_code: Option<String>,
    pub country: Option<String>,
    pub auth_method: String,
    pub status: String,
    #[serde(deserialize_with = "sqlite_bool")]
    pub new_device: bool,
    #[serde(deserialize_with = "sqlite_bool")]
    pub new_country: bool,
    pub signed_in_at: i64,
    pub last_active_at: i64,
    pub expires_at: i64,
}

impl FromQueryResult for ListedRow {
    /// Reads the columns by position: every statement that reads a `ListedRow` selects
    /// [`LISTED_COLUMNS`] in order. By name, each column of each row cost a formatted name and
    /// a search through the row's columns (a page reads 500 rows of 21).
    fn from_query_result(row: &QueryResult, _prefix: &str) -> Result<Self, DbErr> {
        Ok(Self {
            session_id: row.try_get_by_index(0)?,
            account_id: row.try_get_by_index(1)?,
            product: row.try_get_by_index(2)?,
            client_kind: row.try_get_by_index(3)?,
            device_id: row.try_get_by_index(4)?,
            browser: row.try_get_by_index(5)?,
            browser_version: row.try_get_by_index(6)?,
            os: row.try_get_by_index(7)?,
            os_version: row.try_get_by_index(8)?,
            device_type: row.try_get_by_index(9)?,
            city: row.try_get_by_index(10)?,
            region: row.try_get_by_index(11)?,
            country_code: row.try_get_by_index(12)?,
            country: row.try_get_by_index(13)?,
            auth_method: row.try_get_by_index(14)?,
            status: row.try_get_by_index(15)?,
            new_device: row.try_get_by_index(16)?,
            new_country: row.try_get_by_index(17)?,
            signed_in_at: row.try_get_by_index(18)?,
            last_active_at: row.try_get_by_index(19)?,
            expires_at: row.try_get_by_index(20)?,
        })
    }
}

/// Reads a listed row into the domain type.
pub(super) fn into_listed(row: ListedRow) -> Result<ListedSession, StoreError> {
    let corrupt = |column: &str, value: &str| {
        StoreError::corrupt(
            "sessions",
            format!("{column} {value:?} in {}", row.session_id),
        )
    };
    Ok(ListedSession {
        session_id: SessionId::parse(&row.session_id)
            .map_err(|_| corrupt("session_id", &row.session_id))?,
        product: Product::from_stored(&row.product)
            .ok_or_else(|| corrupt("product", &row.product))?,
        client_kind: ClientKind::from_stored(&row.client_kind)
            .ok_or_else(|| corrupt("client_kind", &row.client_kind))?,
        auth_method: AuthMethod::from_stored(&row.auth_method)
            .ok_or_else(|| corrupt("auth_method", &row.auth_method))?,
        status: SessionStatus::from_stored(&row.status)
            .ok_or_else(|| corrupt("status", &row.status))?,
        device: DeviceDetails {
            browser: row.browser,
            browser_version: row.browser_version,
            os: row.os,
            os_version: row.os_version,
            device_type: device_type_from_stored(&row.device_type),
        },
        account_id: AccountId::from_stored(row.account_id),
        device_id: DeviceId::from_stored(row.device_id),
        location: GeoLocation {
            city: row.city,
            region: row.region,
            country_code: row.country_code,
            country: row.country,
        },
        new_device: row.new_device,
        new_country: row.new_country,
        signed_in_at: Timestamp::from_micros(row.signed_in_at),
        last_active_at: Timestamp::from_micros(row.last_active_at),
        expires_at: Timestamp::from_micros(row.expires_at),
    })
}

/// What a page read of one device's active sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceSample {
    /// Its most recently active sessions, at most a row's worth, most recent first.
    pub sessions: Vec<ListedSession>,
    /// Per product, the summaries of all its active sessions, when the read saw every one of
    /// them: the database then need not sum them up again.
    pub summaries: Option<Vec<ProductSummary>>,
}

/// The `limit` most recently active of the account's active visible sessions on each of
/// `devices` (of `product` when one is given), most recent activity first, with the devices'
/// summaries where the read saw all their sessions (nearly always: a row shows up to `limit`,
/// and few devices hold more). A device with no active session is absent.
///
/// On PostgreSQL, one lateral join reads at most `limit` per device. On SQLite, devices counted
/// at `limit` sessions or fewer are read whole by one `device_id IN (…)` range scan with no sort
/// in the database; the rest get one bounded, index-ordered select each, joined by `UNION ALL`.
#[tracing::instrument(name = "db.sessions.newest_on_devices", skip_all, fields(otel.kind = "client", { opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME } = crate::store::db_system_name()))]
pub async fn newest_on_devices(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    devices: &[CountedDevice],
    active: &ActiveAt,
    product: Option<Product>,
    limit: u64,
) -> Result<HashMap<DeviceId, DeviceSample>, StoreError> {
    if devices.is_empty() {
        return Ok(HashMap::new());
    }
    if conn.get_database_backend() == DbBackend::Postgres {
        let listed = newest_by_lateral(conn, account_id, devices, active, product, limit).await?;
        return Ok(samples(listed, limit, |_| false));
    }
    let (few, many): (Vec<&CountedDevice>, Vec<&CountedDevice>) =
        devices.iter().partition(|device| device.counted <= limit);
    let few: Vec<&DeviceId> = few.iter().map(|device| &device.device_id).collect();
    let mut many: Vec<&DeviceId> = many.iter().map(|device| &device.device_id).collect();
    let mut rows = Vec::new();
    let mut read_whole = false;
    if !few.is_empty() {
        // Sessions signed in since the count only add rows: read at most twice what the page
        // keeps of these devices, and when even that is exceeded, read them bounded instead.
        let bound = (few.len() as u64).saturating_mul(limit).saturating_mul(2);
        let select = session::Entity::find()
            .filter(session::Column::AccountId.eq(account_id.as_str()))
            .filter(session::Column::DeviceId.is_in(few.iter().map(|device| device.as_str())))
            .filter(active.condition());
        let whole = whole_as_json(
            conn,
            listed(of_product(select, product))
                .limit(bound.saturating_add(1))
                .into_query(),
        )
        .await?;
        if whole.len() as u64 > bound {
            many.extend(&few);
        } else {
            rows = whole;
            read_whole = true;
        }
    }
    if !many.is_empty() {
        rows.extend(newest_by_union(conn, account_id, &many, active, product, limit).await?);
    }
    let listed = rows
        .into_iter()
        .map(into_listed)
        .collect::<Result<Vec<_>, _>>()?;
    let few: HashSet<&DeviceId> = few.into_iter().collect();
    Ok(samples(listed, limit, |device| {
        read_whole && few.contains(device)
    }))
}

/// SQLite: the rows of `select` (which selects [`LISTED_COLUMNS`]) aggregated by the database
/// into one JSON array of arrays, read as one value. Read row by row, each of a page's 500 rows
/// cost the driver a copy and an allocation per column and a hand-off between its worker
/// thread and the caller; as one text value the page reads in well under half the time.
async fn whole_as_json(
    conn: &impl ConnectionTrait,
    select: SelectStatement,
) -> Result<Vec<ListedRow>, StoreError> {
    let columns = LISTED_COLUMNS
        .iter()
        .map(|column| sea_orm::IdenStatic::as_str(column))
        .collect::<Vec<_>>()
        .join(", ");
    let statement = Query::select()
        .expr(Expr::cust(format!(
            "json_group_array(json_array({columns}))"
        )))
        .from_subquery(select, Alias::new("listed"))
        .to_owned();
    let backend = conn.get_database_backend();
    let Some(row) = conn.query_one_raw(backend.build(&statement)).await? else {
        return Ok(Vec::new());
    };
    let json: String = row.try_get_by_index(0)?;
    serde_json::from_str(&json)
        .map_err(|err| StoreError::corrupt("sessions", format!("listed rows as JSON: {err}")))
}

/// A boolean column as SQLite's JSON functions give it: 0 or 1.
fn sqlite_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    match u8::deserialize(deserializer)? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(serde::de::Error::custom(format!(
            "{other} is not a boolean"
        ))),
    }
}

/// Rows grouped by device, each device's most recently active first, at most `limit` of them.
/// A device's summaries come with it when `read_whole` says all its sessions were read, or
/// when fewer than `limit` came back from a read bounded at `limit`.
fn samples(
    listed: Vec<ListedSession>,
    limit: u64,
    read_whole: impl Fn(&DeviceId) -> bool,
) -> HashMap<DeviceId, DeviceSample> {
    let mut by_device: HashMap<DeviceId, Vec<ListedSession>> = HashMap::new();
    for session in listed {
        by_device
            .entry(session.device_id.clone())
            .or_default()
            .push(session);
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    by_device
        .into_iter()
        .map(|(device_id, mut sessions)| {
            let summaries = (read_whole(&device_id) || sessions.len() < limit)
                .then(|| summarize(&device_id, &sessions));
            sessions.sort_by(|a, b| {
                b.last_active_at
                    .cmp(&a.last_active_at)
                    .then(a.session_id.cmp(&b.session_id))
            });
            sessions.truncate(limit);
            (
                device_id,
                DeviceSample {
                    sessions,
                    summaries,
                },
            )
        })
        .collect()
}

/// Per product, what `session_sets::summaries` would sum up of these sessions (all the active
/// sessions of one device).
fn summarize(device_id: &DeviceId, sessions: &[ListedSession]) -> Vec<ProductSummary> {
    let mut by_product: BTreeMap<Product, ProductSummary> = BTreeMap::new();
    for session in sessions {
        let summary = by_product
            .entry(session.product)
            .or_insert_with(|| ProductSummary {
                device_id: device_id.clone(),
                product: session.product,
                count: 0,
                first_sign_in: session.signed_in_at,
                last_sign_in: session.signed_in_at,
                last_active: session.last_active_at,
                unavailable: 0,
                new_device: false,
                new_country: false,
            });
        summary.count += 1;
        summary.first_sign_in = summary.first_sign_in.min(session.signed_in_at);
        summary.last_sign_in = summary.last_sign_in.max(session.signed_in_at);
        summary.last_active = summary.last_active.max(session.last_active_at);
        summary.unavailable += u64::from(session.status == SessionStatus::Unavailable);
        summary.new_device |= session.new_device;
        summary.new_country |= session.new_country;
    }
    by_product.into_values().collect()
}

/// `select` narrowed to [`LISTED_COLUMNS`].
fn listed(select: Select<session::Entity>) -> Select<session::Entity> {
    select.select_only().columns(LISTED_COLUMNS)
}

/// The account's active visible sessions on one device, in listed columns, most recently
/// active first: on `device_id` when one is given, else on the device of the enclosing
/// statement's `page` row (PostgreSQL's lateral join).
fn newest_select(
    account_id: &AccountId,
    device_id: Option<&DeviceId>,
    active: &ActiveAt,
    product: Option<Product>,
    limit: u64,
) -> SelectStatement {
    let select = match device_id {
        Some(device_id) => active_on_device(account_id, device_id, active, product),
        None => active_where(account_id, on_page_device(), active, product),
    };
    listed(select)
        .order_by_desc(session::Column::LastActiveAt)
        .order_by_asc(session::Column::SessionId)
        .limit(limit)
        .into_query()
}

/// PostgreSQL: the `limit` most recently active sessions of each of `devices`, in one
/// statement, `unnest($1) AS page JOIN LATERAL (bounded select on page's device)`.
async fn newest_by_lateral(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    devices: &[CountedDevice],
    active: &ActiveAt,
    product: Option<Product>,
    limit: u64,
) -> Result<Vec<ListedSession>, StoreError> {
    let newest = newest_select(account_id, None, active, product, limit);
    let statement = for_each_page_device(
        devices.iter().map(|device| &device.device_id),
        Query::select()
            .column((Alias::new("newest"), Asterisk))
            .to_owned(),
        newest,
        "newest",
    );
    conn.query_all_raw(DbBackend::Postgres.build(&statement))
        .await?
        .iter()
        .map(|row| {
            row.try_as_pg_row()
                .ok_or_else(|| StoreError::corrupt("sessions", "not a PostgreSQL row"))
                .and_then(listed_from_pg)
        })
        .collect()
}

/// PostgreSQL: one row of [`LISTED_COLUMNS`] straight into the domain type. Each value is read
/// in place, with no type check against the statement's description (the columns are the
/// table's own text, bigint and boolean; a value of another shape is still an error, never a
/// panic: texts are checked as UTF-8, integers by length, booleans by their one byte), and only
/// the texts the session keeps are copied. Read through `ListedRow`, each of a page's 10,500
/// values cost a type check, an allocation and a free, and the page's decoding more than its
/// query.
fn listed_from_pg(row: &PgRow) -> Result<ListedSession, StoreError> {
    fn column<'r, T: Decode<'r, Postgres>>(row: &'r PgRow, index: usize) -> Result<T, StoreError> {
        row.try_get_unchecked(index)
            .map_err(|err| StoreError::corrupt("sessions", format!("listed column {index}: {err}")))
    }
    let session_id: &str = column(row, 0)?;
    let corrupt = |name: &str, value: &str| {
        StoreError::corrupt("sessions", format!("{name} {value:?} in {session_id}"))
    };
    // A boolean in PostgreSQL's binary format: one byte, 0 or 1.
    let flag = |index: usize| match column::<&[u8]>(row, index)? {
        [0] => Ok(false),
        [1] => Ok(true),
        other => Err(corrupt("boolean column", &format!("{other:?}"))),
    };
    let product: &str = column(row, 2)?;
    let client_kind: &str = column(row, 3)?;
    let auth_method: &str = column(row, 14)?;
    let status: &str = column(row, 15)?;
    let device_type: &str = column(row, 9)?;
    Ok(ListedSession {
        session_id: SessionId::parse(session_id).map_err(|_| corrupt("session_id", session_id))?,
        account_id: AccountId::from_stored(column::<&str>(row, 1)?.to_owned()),
        product: Product::from_stored(product).ok_or_else(|| corrupt("product", product))?,
        client_kind: ClientKind::from_stored(client_kind)
            .ok_or_else(|| corrupt("client_kind", client_kind))?,
        device_id: DeviceId::from_stored(column::<&str>(row, 4)?.to_owned()),
        device: DeviceDetails {
            browser: column(row, 5)?,
            browser_version: column(row, 6)?,
            os: column(row, 7)?,
            os_version: column(row, 8)?,
            device_type: device_type_from_stored(device_type),
        },
        location: GeoLocation {
            city: column(row, 10)?,
            region: column(row, 11)?,
            country_code: column(row, 12)?,
            country: column(row, 13)?,
        },
        auth_method: AuthMethod::from_stored(auth_method)
            .ok_or_else(|| corrupt("auth_method", auth_method))?,
        status: SessionStatus::from_stored(status).ok_or_else(|| corrupt("status", status))?,
        new_device: flag(16)?,
        new_country: flag(17)?,
        signed_in_at: Timestamp::from_micros(column(row, 18)?),
        last_active_at: Timestamp::from_micros(column(row, 19)?),
        expires_at: Timestamp::from_micros(column(row, 20)?),
    })
}

/// The `limit` most recently active sessions of each of `devices`, in one statement: a
/// `UNION ALL` of one bounded, index-ordered select per device.
async fn newest_by_union(
    conn: &impl ConnectionTrait,
    account_id: &AccountId,
    devices: &[&DeviceId],
    active: &ActiveAt,
    product: Option<Product>,
    limit: u64,
) -> Result<Vec<ListedRow>, StoreError> {
    let member = |(index, device_id): (usize, &&DeviceId)| {
        let newest = newest_select(account_id, Some(device_id), active, product, limit);
        Query::select()
            .column(Asterisk)
            .from_subquery(newest, Alias::new(format!("device_{index}")))
            .to_owned()
    };
    let mut members = devices.iter().enumerate().map(member);
    let Some(mut statement) = members.next() else {
        return Ok(Vec::new());
    };
    for other in members {
        statement.union(UnionType::All, other);
    }
    let backend = conn.get_database_backend();
    Ok(ListedRow::find_by_statement(backend.build(&statement))
        .all(conn)
        .await?)
}
