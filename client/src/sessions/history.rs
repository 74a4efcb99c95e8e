//! An account's security history: its events and their pages.

use std::time::SystemTime;

#[cfg(doc)]
use crate::ListOptions;
use crate::{
    proto::{self, DeviceInfo, Location, Product, RevocationReason, SecurityEventType},
    types::{non_empty, time},
};

/// An entry of an account's security history.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityEvent {
    /// The event id (a ULID).
    pub event_id: String,
    /// What happened.
    pub kind: SecurityEventType,
    /// When.
    pub occurred_at: Option<SystemTime>,
    /// The session involved, if one.
    pub session_id: Option<String>,
    /// The product involved (`Unspecified` if none).
    pub product: Product,
    /// The device involved, if one.
    pub device_id: Option<String>,
    /// The device as known at the time.
    pub device: DeviceInfo,
    /// Approximate location at the time.
    pub location: Location,
    /// Who acted: `user`, `operator:NAME` or `service:NAME`.
    pub actor: String,
    /// The revocation, for log-out events.
    pub revocation_id: Option<String>,
    /// How many sessions the event covered (log-outs).
    pub session_count: i64,
    /// Why, for log-outs (`Unspecified` otherwise).
    pub reason: RevocationReason,
}

/// A page of security events.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityEventsPage {
    /// Events, newest first.
    pub events: Vec<SecurityEvent>,
    /// Pass to [`ListOptions::page_token`] for the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}

impl From<proto::SecurityEvent> for SecurityEvent {
    fn from(event: proto::SecurityEvent) -> Self {
        Self {
            reason: event.reason(),
            kind: event.r#type(),
            product: event.product(),
            event_id: event.event_id,
            occurred_at: time(event.occurred_at),
            session_id: non_empty(event.session_id),
            device_id: non_empty(event.device_id),
            device: event.device.unwrap_or_default(),
            location: event.location.unwrap_or_default(),
            actor: event.actor,
            revocation_id: non_empty(event.revocation_id),
            session_count: event.session_count,
        }
    }
}

impl From<proto::ListSecurityEventsResponse> for SecurityEventsPage {
    fn from(response: proto::ListSecurityEventsResponse) -> Self {
        Self {
            events: response
                .events
                .into_iter()
                .map(SecurityEvent::from)
                .collect(),
            next_page_token: non_empty(response.next_page_token),
        }
    }
}
