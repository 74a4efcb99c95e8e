//! The byte budget of responses that list or stream many items. A list page that would encode
//! past [`MAX_RESPONSE_BYTES`] ends early with the page token that continues after its last item,
//! and a stream batch that would is sent as several messages, so no response approaches the
//! 4 MiB every gRPC client accepts by default, whatever the account holds. Single items are
//! bounded by design (a row carries at most `MAX_ROW_SESSIONS` sessions, a revocation at most
//! `MAX_SESSION_IDS` ids), so one always fits.

use active_sessions::v1 as pb;
use prost::Message;

/// The most bytes one list response or stream message encodes to.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Room kept for the page token or cursor and the message's other fields.
const RESERVE_BYTES: usize = 4 * 1024;

/// What an item adds to its message: its encoding, its length prefix and its field tag.
fn item_len(item: &impl Message) -> usize {
    let len = item.encoded_len();
    len + prost::encoding::encoded_len_varint(len as u64) + 1
}

/// How many leading items fit the budget (at least one, when there are any).
fn fitting(lens: impl Iterator<Item = usize>) -> usize {
    let mut total = 0;
    let mut count = 0;
    for len in lens {
        total += len;
        if count > 0 && total > MAX_RESPONSE_BYTES - RESERVE_BYTES {
            break;
        }
        count += 1;
    }
    count
}

/// Keeps the leading `items` that fit the budget and returns them with the page token: `next`
/// when they all fit, otherwise the token after the last one kept (`tokens_after[i]` continues
/// after `items[i]`).
pub fn fit_page<T: Message>(
    mut items: Vec<T>,
    tokens_after: Vec<String>,
    next: Option<String>,
) -> (Vec<T>, String) {
    let keep = fitting(items.iter().map(item_len));
    if keep >= items.len() {
        return (items, next.unwrap_or_default());
    }
    items.truncate(keep);
    let token = keep
        .checked_sub(1)
        .and_then(|last| tokens_after.into_iter().nth(last))
        .or(next)
        .unwrap_or_default();
    (items, token)
}

/// Splits a stream batch into messages under the budget. Every message but the last carries
/// the cursor of its own last event; the last carries the batch's cursor.
pub fn split_batch(
    events: Vec<pb::RevocationEvent>,
    cursor: String,
) -> Vec<pb::WatchRevocationsResponse> {
    let mut messages = Vec::new();
    let mut rest = events;
    loop {
        let keep = fitting(rest.iter().map(item_len));
        if keep >= rest.len() {
            messages.push(pb::WatchRevocationsResponse {
                events: rest,
                cursor,
            });
            return messages;
        }
        let tail = rest.split_off(keep);
        let cursor = rest
            .last()
            .map(|event| event.cursor.clone())
            .unwrap_or_default();
        messages.push(pb::WatchRevocationsResponse {
            events: rest,
            cursor,
        });
        rest = tail;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn big_event(cursor: usize) -> pb::RevocationEvent {
        pb::RevocationEvent {
            cursor: cursor.to_string(),
            account_id: "a".repeat(128),
            session_ids: vec!["01J00000000000000000000000".into(); 5_000],
            ..Default::default()
        }
    }

    #[test]
    fn pages_end_early_with_the_token_after_the_last_item_kept() {
        let items: Vec<pb::RevocationEvent> = (0..20).map(big_event).collect();
        let tokens: Vec<String> = (0..20).map(|i| format!("after-{i}")).collect();
        let (kept, token) = fit_page(items, tokens, Some("next".into()));
        assert!(kept.len() < 20 && !kept.is_empty());
        assert_eq!(token, format!("after-{}", kept.len() - 1));
        let response = pb::WatchRevocationsResponse {
            events: kept,
            cursor: token,
        };
        assert!(response.encoded_len() <= MAX_RESPONSE_BYTES);

        let small = vec![pb::RevocationEvent::default(); 3];
        let (kept, token) = fit_page(small, vec![String::new(); 3], Some("next".into()));
        assert_eq!((kept.len(), token.as_str()), (3, "next"));
    }

    #[test]
    fn stream_batches_split_under_the_budget_in_order() {
        let events: Vec<pb::RevocationEvent> = (1..=20).map(big_event).collect();
        let messages = split_batch(events, "99".into());
        assert!(messages.len() > 1);
        let cursors: Vec<String> = messages
            .iter()
            .flat_map(|m| m.events.iter().map(|e| e.cursor.clone()))
            .collect();
        assert_eq!(cursors, (1..=20).map(|i| i.to_string()).collect::<Vec<_>>());
        for message in &messages {
            assert!(message.encoded_len() <= MAX_RESPONSE_BYTES);
        }
        assert_eq!(messages.last().unwrap().cursor, "99");
        assert_eq!(
            messages[0].cursor,
            messages[0].events.last().unwrap().cursor
        );
    }
}
