//! The security history: security events as ListSecurityEvents sends them (its request is an
//! owner-facing page, `fields::OwnerPage`).

use active_sessions::v1 as pb;

use super::{
    enums::{number, optional_number},
    fields::or_empty,
};
use crate::domain::history::SecurityEvent;

impl From<&SecurityEvent> for pb::SecurityEvent {
    fn from(event: &SecurityEvent) -> Self {
        Self {
            event_id: event.event_id.to_string(),
            r#type: number(event.event_type),
            occurred_at: Some(event.occurred_at.to_proto()),
            session_id: or_empty(event.session_id.as_ref()),
            product: optional_number(event.product),
            device_id: or_empty(event.device_id.as_ref()),
            device: Some((&event.device).into()),
            location: Some((&event.location).into()),
            actor: event.actor.clone(),
            revocation_id: or_empty(event.revocation_id.as_ref()),
            session_count: event.session_count,
            reason: optional_number(event.reason),
        }
    }
}
