//! ListActiveSessions: the account's active, visible sessions grouped into one row per device
//! (S3), with the log-out each row offers (S8, S10, S12). Pages are cut by keyset on
//! (latest sign-in of the row, device id) evaluated as of the first page's snapshot instant, so
//! that sessions registered or revoked while a person pages through never duplicate or skip a
//! row that existed throughout. Rows are bounded whatever a device holds: a row carries only its
//! most recently active [`MAX_ROW_SESSIONS`], read with the columns a page shows; its counts
//! and times are summed up from those when they are all the device holds (nearly always), and
//! by the database otherwise. ListDeviceSessions pages through all of one row.

use std::collections::{BTreeMap, HashMap};

use futures::TryFutureExt as _;
use serde::{Deserialize, Serialize};

use super::Sessions;
use crate::domain::stored::StoredEnum as _;
use crate::service::ServiceError;
use crate::{
    clock::Timestamp,
    domain::{
        ids::{AccountId, DeviceId, SessionId},
        log_out_rule::{LogOutDecision, RowFacts, decide},
        session::{ListedSession, Product, Session, SessionStatus},
        subject::Subject,
    },
    enrich::{DeviceDetails, GeoLocation},
    store::{
        row_samples::{self, CountedDevice},
        session_sets::{self, ProductSummary},
        sessions, trusted_devices,
    },
};

/// The log-out a row offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogOutAction {
    /// "Log out".
    LogOut,
    /// "Log out and remove": the device is trusted.
    LogOutAndRemove,
    /// No log-out on this row.
    None(NoLogOutReason),
}

pub use crate::domain::log_out_rule::NoLogOutReason;

impl LogOutAction {
    /// What a row offers when the rule decided `decision`; `None` when nothing is left to log
    /// out (no row).
    fn offered(decision: LogOutDecision) -> Option<Self> {
        match decision {
            LogOutDecision::AlreadyLoggedOut => None,
            LogOutDecision::Refused(reason) => Some(Self::None(reason)),
            LogOutDecision::LogOut => Some(Self::LogOut),
            LogOutDecision::LogOutAndRemove => Some(Self::LogOutAndRemove),
        }
    }
}

/// The most sessions a row carries: its most recently active ones, enough to render it.
pub const MAX_ROW_SESSIONS: usize = 10;

/// One row of the Active sessions page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// The device.
    pub device_id: DeviceId,
    /// Products signed in on it, in enum order.
    pub products: Vec<Product>,
    /// Its most recently active sessions (at most [`MAX_ROW_SESSIONS`]), most recent first.
    pub sessions: Vec<ListedSession>,
    /// How many active sessions it holds.
    pub session_count: u64,
    /// How many per product, in enum order.
    pub product_counts: Vec<(Product, u64)>,
    /// Device details of the most recently active session that has some.
    pub device: DeviceDetails,
    /// Location of the most recently active session that has one.
    pub location: GeoLocation,
    /// Earliest sign-in.
    pub signed_in_at: Timestamp,
    /// Latest activity.
    pub last_active_at: Timestamp,
    /// The device is trusted now.
    pub trusted: bool,
    /// It holds the caller's current session.
    pub current: bool,
    /// Unavailable when any session's state cannot be confirmed.
    pub status: SessionStatus,
    /// The log-out it offers.
    pub action: LogOutAction,
    /// The device was new to the account at the row's first sign-in.
    pub new_device: bool,
    /// A country new to the account appeared with one of its sign-ins.
    pub new_country: bool,
}

impl SessionRow {
    /// Builds a row from the database's per-product summaries of its active sessions and a
    /// sample of them (the most recently active first). None when there are none.
    fn build(
        device_id: DeviceId,
        summaries: &[ProductSummary],
        sessions: Vec<ListedSession>,
        trusted: bool,
        current: bool,
    ) -> Option<Self> {
        // Details of the most recently active session that has them: a row's sessions may come
        // from several products, and not every product reports a user agent or an IP.
        let device = sessions
            .iter()
            .map(|s| &s.device)
            .find(|d| **d != DeviceDetails::default())
            .cloned()
            .unwrap_or_default();
        let location = sessions
            .iter()
            .map(|s| &s.location)
            .find(|l| **l != GeoLocation::default())
            .cloned()
            .unwrap_or_default();
        let mut counts: BTreeMap<Product, u64> = BTreeMap::new();
        for summary in summaries {
            *counts.entry(summary.product).or_default() += summary.count;
        }
        let status = if summaries.iter().any(|s| s.unavailable > 0) {
            SessionStatus::Unavailable
        } else {
            SessionStatus::Active
        };
        let action = LogOutAction::offered(decide(RowFacts {
            has_active_session: !sessions.is_empty(),
            holds_current_session: current,
            status_unavailable: status == SessionStatus::Unavailable,
            trusted_device: trusted,
        }))?;
        Some(Self {
            device_id,
            products: counts.keys().copied().collect(),
            session_count: counts.values().sum(),
            product_counts: counts.into_iter().collect(),
            signed_in_at: summaries.iter().map(|s| s.first_sign_in).min()?,
            last_active_at: summaries.iter().map(|s| s.last_active).max()?,
            new_device: summaries.iter().any(|s| s.new_device),
            new_country: summaries.iter().any(|s| s.new_country),
            device,
            location,
            sessions,
            trusted,
            current,
            status,
            action,
        })
    }
}

/// One page of rows.
#[derive(Debug, Clone)]
pub struct RowsPage {
    /// The rows.
    pub rows: Vec<SessionRow>,
    /// For each row, the page token that continues right after it (to end a page early).
    pub tokens_after: Vec<String>,
    /// The token of the next page, if there is one.
    pub next_page_token: Option<String>,
    /// The caller's current session, when the caller presented a session token.
    pub current_session: Option<SessionId>,
}

/// One page of a device's sessions.
#[derive(Debug, Clone)]
pub struct DeviceSessionsPage {
    /// The sessions, newest sign-in first.
    pub sessions: Vec<Session>,
    /// For each session, the page token that continues right after it.
    pub tokens_after: Vec<String>,
    /// The token of the next page, if there is one.
    pub next_page_token: Option<String>,
    /// The caller's current session, when the caller presented a session token.
    pub current_session: Option<SessionId>,
}

/// What a rows page token carries.
#[derive(Debug, Serialize, Deserialize)]
struct RowsPosition {
    /// Snapshot instant (microseconds).
    as_of: i64,
    /// Row key of the last row returned.
    key: i64,
    /// Device id of the last row returned.
    device: String,
    /// The account's log-out-of-all generation when the first page was read.
    #[serde(default)]
    cut: i64,
}

/// What a device-sessions page token carries: the last session id returned.
#[derive(Debug, Serialize, Deserialize)]
struct DevicePosition {
    before: String,
}

impl Sessions {
    /// One page of the account's Active sessions rows.
    pub async fn list_rows(
        &self,
        subject: &Subject,
        product: Option<Product>,
        page_size: u64,
        page_token: Option<&str>,
    ) -> Result<RowsPage, ServiceError> {
        let owner = self.eligible_owner(subject).await?;
        let filter = product.map_or("", Product::as_str);
        let now = self.inner.clock.now();
        let position: Option<RowsPosition> = page_token
            .map(|token| {
                self.inner
                    .page_tokens
                    .open(token, "rows", &owner.account_id, filter)
            })
            .transpose()?;
        let cut_generation = owner.account.as_ref().map_or(0, |a| a.revoked_generation);
        let page_cut = position.as_ref().map_or(cut_generation, |p| p.cut);
        let active = self.active_at(now, cut_generation);
        let reader = self.inner.store.reader();
        // The page's snapshot instant and its rows' keys, and beside them (on another pooled
        // connection) the caller's own session, which needs neither.
        let read_keys = async {
            let as_of = match &position {
                Some(position) => Timestamp::from_micros(position.as_of),
                None => {
                    self.inner
                        .store
                        .snapshot_instant(&owner.account_id, self.inner.clock.as_ref())
                        .await?
                }
            };
            let query = sessions::RowQuery {
                account_id: &owner.account_id,
                as_of,
                cut_generation: page_cut,
                idle_timeout: self.idle_timeout(),
                product,
                after: position.map(|p| (p.key, p.device)),
                limit: page_size + 1,
            };
            Ok::<_, ServiceError>((as_of, sessions::row_keys(reader, &query).await?))
        };
        let ((as_of, keys), current) =
            tokio::try_join!(read_keys, self.active_current(reader, &owner, &active))?;
        let current = current.filter(|s| product.is_none_or(|product| s.product == product));
        let has_more = keys.len() as u64 > page_size;
        let keys = &keys[..keys.len().min(page_size as usize)];
        let devices: Vec<DeviceId> = keys
            .iter()
            .map(|key| DeviceId::from_stored(key.device_id.clone()))
            .collect();

        let counted: Vec<CountedDevice> = keys
            .iter()
            .zip(&devices)
            .map(|(key, device)| CountedDevice {
                device_id: device.clone(),
                counted: u64::try_from(key.sessions).unwrap_or(0),
            })
            .collect();

        // The devices' trust and their sessions, each on its own pooled connection.
        let (trusted, mut samples) = tokio::try_join!(
            trusted_devices::trusted_among(reader, &owner.account_id, &devices, now)
                .map_err(ServiceError::from),
            row_samples::newest_on_devices(
                reader,
                &owner.account_id,
                &counted,
                &active,
                product,
                MAX_ROW_SESSIONS as u64,
            )
            .map_err(ServiceError::from),
        )?;
        // The database sums up only the devices whose sessions the samples did not all read.
        let unread: Vec<DeviceId> = samples
            .iter()
            .filter(|(_, sample)| sample.summaries.is_none())
            .map(|(device, _)| device.clone())
            .collect();
        let mut by_device: HashMap<DeviceId, Vec<ProductSummary>> = HashMap::new();
        for summary in
            session_sets::summaries(reader, &owner.account_id, &unread, &active, product).await?
        {
            by_device
                .entry(summary.device_id.clone())
                .or_default()
                .push(summary);
        }
        for (device, sample) in &mut samples {
            if let Some(summaries) = sample.summaries.take() {
                by_device.insert(device.clone(), summaries);
            }
        }
        let mut rows = Vec::with_capacity(keys.len());
        let mut tokens_after = Vec::with_capacity(keys.len());
        for (key, device) in keys.iter().zip(devices) {
            let Some(summaries) = by_device.remove(&device) else {
                continue;
            };
            let mut sample = samples.remove(&device).unwrap_or_default().sessions;
            let is_current = current.as_ref().is_some_and(|c| c.device_id == device);
            // The current session is always among the row's sessions, however many it holds.
            if let Some(current) = current.as_ref().filter(|_| is_current)
                && !sample.iter().any(|s| s.session_id == current.session_id)
            {
                sample.truncate(MAX_ROW_SESSIONS - 1);
                sample.push(ListedSession::from(current.clone()));
                sample.sort_by(|a, b| {
                    b.last_active_at
                        .cmp(&a.last_active_at)
                        .then(a.session_id.cmp(&b.session_id))
                });
            }
            let is_trusted = trusted.contains(&device);
            if let Some(row) = SessionRow::build(device, &summaries, sample, is_trusted, is_current)
            {
                rows.push(row);
                tokens_after.push(self.rows_token(
                    &owner.account_id,
                    filter,
                    (as_of, page_cut),
                    key,
                ));
            }
        }
        let next_page_token = match keys.last() {
            Some(last) if has_more => {
                Some(self.rows_token(&owner.account_id, filter, (as_of, page_cut), last))
            }
            _ => None,
        };
        Ok(RowsPage {
            rows,
            tokens_after,
            next_page_token,
            current_session: owner.current_session,
        })
    }

    fn rows_token(
        &self,
        account_id: &AccountId,
        filter: &str,
        (as_of, cut): (Timestamp, i64),
        key: &sessions::RowKey,
    ) -> String {
        self.inner.page_tokens.seal(
            "rows",
            account_id,
            filter,
            &RowsPosition {
                as_of: as_of.as_micros(),
                key: key.row_key,
                device: key.device_id.clone(),
                cut,
            },
        )
    }

    /// One page of every active, visible session of one device of the account (one row),
    /// newest sign-in first: how a caller reads a row past its sample. Session ids never
    /// change, so a session active throughout the paging is listed exactly once.
    pub async fn list_device_sessions(
        &self,
        subject: &Subject,
        device_id: &DeviceId,
        product: Option<Product>,
        page_size: u64,
        page_token: Option<&str>,
    ) -> Result<DeviceSessionsPage, ServiceError> {
        let owner = self.eligible_owner(subject).await?;
        let filter = format!("{device_id}\n{}", product.map_or("", Product::as_str));
        let tokens = &self.inner.page_tokens;
        let before = page_token
            .map(|token| {
                tokens.open::<DevicePosition>(token, "device_sessions", &owner.account_id, &filter)
            })
            .transpose()?
            .map(|p| SessionId::parse(&p.before).map_err(|_| ServiceError::PageTokenInvalid))
            .transpose()?;
        let now = self.inner.clock.now();
        let cut_generation = owner.account.as_ref().map_or(0, |a| a.revoked_generation);
        let mut sessions = session_sets::page_on_device(
            self.inner.store.reader(),
            &owner.account_id,
            device_id,
            &self.active_at(now, cut_generation),
            product,
            before,
            page_size + 1,
        )
        .await?;
        let has_more = sessions.len() as u64 > page_size;
        sessions.truncate(page_size as usize);
        let token_after = |session: &Session| {
            tokens.seal(
                "device_sessions",
                &owner.account_id,
                &filter,
                &DevicePosition {
                    before: session.session_id.to_string(),
                },
            )
        };
        let tokens_after = sessions.iter().map(token_after).collect();
        let next_page_token = sessions.last().filter(|_| has_more).map(token_after);
        Ok(DeviceSessionsPage {
            sessions,
            tokens_after,
            next_page_token,
            current_session: owner.current_session,
        })
    }
}
