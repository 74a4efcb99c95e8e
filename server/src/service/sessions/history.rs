//! ListSecurityEvents (S15): the account's security history, newest first, paginated by the
//! event id (a ULID, so ordered by time) in a signed page token.

use serde::{Deserialize, Serialize};

use super::Sessions;
use crate::service::ServiceError;
use crate::{
    domain::{history::SecurityEvent, ids::EventId, subject::Subject},
    store::security_events,
};

/// What an events page token carries.
#[derive(Debug, Serialize, Deserialize)]
struct EventsPosition {
    /// The last event id returned.
    before: String,
}

impl Sessions {
    /// One page of the account's security history, with the page token after each event and
    /// the token of the next page.
    pub async fn security_events(
        &self,
        subject: &Subject,
        page_size: u64,
        page_token: Option<&str>,
    ) -> Result<(Vec<SecurityEvent>, Vec<String>, Option<String>), ServiceError> {
        let owner = self.eligible_owner(subject).await?;
        let before = page_token
            .map(|token| {
                let position: EventsPosition =
                    self.inner
                        .page_tokens
                        .open(token, "events", &owner.account_id, "")?;
                EventId::parse(&position.before).map_err(|_| ServiceError::PageTokenInvalid)
            })
            .transpose()?;
        let mut events = security_events::list(
            self.inner.store.reader(),
            &owner.account_id,
            before,
            page_size + 1,
        )
        .await?;
        let has_more = events.len() as u64 > page_size;
        events.truncate(page_size as usize);
        let token_after = |event: &SecurityEvent| {
            self.inner.page_tokens.seal(
                "events",
                &owner.account_id,
                "",
                &EventsPosition {
                    before: event.event_id.to_string(),
                },
            )
        };
        // A token after every event, so that a response over its byte budget can end early.
        let tokens_after: Vec<String> = events.iter().map(token_after).collect();
        let next = events.last().filter(|_| has_more).map(token_after);
        Ok((events, tokens_after, next))
    }
}
