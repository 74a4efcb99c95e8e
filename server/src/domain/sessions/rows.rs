//! ListActiveSessions: the account's active, visible sessions grouped into one row per device
//! (S3), with the log-out each row offers (S8, S10, S12). Pages are cut by keyset on
//! (latest sign-in of the row, device id) evaluated as of the first page's snapshot instant, so
//! that sessions registered or revoked while a person pages through never duplicate or skip a
//! row that existed throughout.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::Sessions;
use crate::{
    clock::Timestamp,
    domain::{
        DomainError,
        ids::{DeviceId, SessionId},
        session::{Product, Session, SessionStatus},
        subject::Subject,
    },
    enrich::{DeviceDetails, GeoLocation},
    store::{sessions, trusted_devices},
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

/// Why a row offers no log-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoLogOutReason {
    /// It holds the caller's current session.
    CurrentSession,
    /// Its status cannot be confirmed.
    StatusUnavailable,
}

/// One row of the Active sessions page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// The device.
    pub device_id: DeviceId,
    /// Products signed in on it, in enum order.
    pub products: Vec<Product>,
    /// Its active sessions, most recent activity first.
    pub sessions: Vec<Session>,
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
    /// Builds a row from its active sessions (non-empty, most recent activity first).
    pub fn build(
        device_id: DeviceId,
        sessions: Vec<Session>,
        trusted: bool,
        current_session: Option<SessionId>,
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
        let first = sessions.iter().min_by_key(|s| s.signed_in_at)?.clone();
        let products: BTreeSet<Product> = sessions.iter().map(|s| s.product).collect();
        let current =
            current_session.is_some_and(|current| sessions.iter().any(|s| s.session_id == current));
        let status = if sessions
            .iter()
            .any(|s| s.status == SessionStatus::Unavailable)
        {
            SessionStatus::Unavailable
        } else {
            SessionStatus::Active
        };
        let action = if current {
            LogOutAction::None(NoLogOutReason::CurrentSession)
        } else if status == SessionStatus::Unavailable {
            LogOutAction::None(NoLogOutReason::StatusUnavailable)
        } else if trusted {
            LogOutAction::LogOutAndRemove
        } else {
            LogOutAction::LogOut
        };
        Some(Self {
            device_id,
            products: products.into_iter().collect(),
            signed_in_at: first.signed_in_at,
            last_active_at: sessions.iter().map(|s| s.last_active_at).max()?,
            new_device: first.new_device,
            new_country: sessions.iter().any(|s| s.new_country),
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
}

impl Sessions {
    /// One page of the account's Active sessions rows.
    pub async fn list_rows(
        &self,
        subject: &Subject,
        product: Option<Product>,
        page_size: u64,
        page_token: Option<&str>,
    ) -> Result<RowsPage, DomainError> {
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
        let as_of = match &position {
            Some(position) => Timestamp::from_micros(position.as_of),
            None => {
                self.inner
                    .store
                    .snapshot_instant(&owner.account_id, self.inner.clock.as_ref())
                    .await?
            }
        };
        let revoked_before = owner.account.as_ref().and_then(|a| a.revoked_before);
        let reader = self.inner.store.reader();
        let keys = sessions::row_keys(
            reader,
            &sessions::RowQuery {
                account_id: &owner.account_id,
                as_of,
                cut_off: revoked_before.filter(|cut_off| *cut_off <= as_of),
                idle_timeout: self.idle_timeout(),
                product,
                after: position.map(|p| (p.key, p.device)),
                limit: page_size + 1,
            },
        )
        .await?;
        let has_more = keys.len() as u64 > page_size;
        let keys = &keys[..keys.len().min(page_size as usize)];
        let devices: Vec<DeviceId> = keys
            .iter()
            .map(|key| DeviceId::from_stored(key.device_id.clone()))
            .collect();

        let mut by_device: HashMap<DeviceId, Vec<Session>> = HashMap::new();
        for session in
            sessions::unrevoked_on_devices(reader, &owner.account_id, &devices, product).await?
        {
            let last_active = self
                .inner
                .activity
                .latest(session.session_id)
                .unwrap_or(session.last_active_at);
            if session.is_active_with_activity(
                now,
                self.idle_timeout(),
                revoked_before,
                last_active,
            ) {
                by_device
                    .entry(session.device_id.clone())
                    .or_default()
                    .push(session);
            }
        }
        let trusted =
            trusted_devices::trusted_among(reader, &owner.account_id, &devices, now).await?;
        let rows = devices
            .into_iter()
            .filter_map(|device| {
                let sessions = by_device.remove(&device)?;
                let is_trusted = trusted.contains(&device);
                SessionRow::build(device, sessions, is_trusted, owner.current_session)
            })
            .collect();
        let next_page_token = match keys.last() {
            Some(last) if has_more => Some(self.inner.page_tokens.seal(
                "rows",
                &owner.account_id,
                filter,
                &RowsPosition {
                    as_of: as_of.as_micros(),
                    key: last.row_key,
                    device: last.device_id.clone(),
                },
            )),
            _ => None,
        };
        Ok(RowsPage {
            rows,
            next_page_token,
            current_session: owner.current_session,
        })
    }
}
