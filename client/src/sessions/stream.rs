//! The revocation stream: an open `WatchRevocations` stream and the batches of revocations it
//! yields, in commit order, each with the cursor to resume after.

use std::time::SystemTime;

#[cfg(doc)]
use crate::SessionClient;
use crate::{
    Error,
    proto::{self, Product, RevocationReason, RevocationScope},
    types::{non_empty, time},
};

/// One revocation from [`SessionClient::watch_revocations`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationEvent {
    /// Its position in the revocation log.
    pub cursor: String,
    /// The revocation id.
    pub revocation_id: String,
    /// The account.
    pub account_id: String,
    /// One session, one device or everything.
    pub scope: RevocationScope,
    /// The sessions revoked (scopes `Session` and `Device`) when they are at most 100; empty for
    /// a device log-out of more.
    pub session_ids: Vec<String>,
    /// The products touched.
    pub products: Vec<Product>,
    /// When it took effect.
    pub revoked_at: Option<SystemTime>,
    /// For scope `All`: the cut-off instant, for display; what it revokes is decided by
    /// [`cut_generation`](Self::cut_generation) when the server sends one. For scope `Device`:
    /// every session of the account on `device_id` signed in at or before this instant is
    /// revoked.
    pub revoked_before: Option<SystemTime>,
    /// The device, for scope `Device`.
    pub device_id: Option<String>,
    /// For scope `All`: every session of the account born in a generation below this is
    /// revoked (0 from servers that predate generations).
    pub cut_generation: i64,
    /// For scope `All`: true when the hidden kinds ended too.
    pub includes_hidden_kinds: bool,
    /// For scope `All`: the session kept valid, moved to `cut_generation` (a cache drops its
    /// old entry and validates it again).
    pub kept_session_id: Option<String>,
    /// Why (`Unspecified` from servers that do not send it).
    pub reason: RevocationReason,
}

/// A batch from the revocation stream: revocations in commit order, or none (a keep-alive, and
/// the first message after the stream has caught up), with the cursor after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationBatch {
    /// The revocations; empty in a keep-alive.
    pub events: Vec<RevocationEvent>,
    /// Resume after this cursor.
    pub cursor: String,
}

/// An open `WatchRevocations` stream.
#[derive(Debug)]
pub struct RevocationStream {
    inner: tonic::Streaming<proto::WatchRevocationsResponse>,
}

impl RevocationStream {
    pub(crate) fn new(inner: tonic::Streaming<proto::WatchRevocationsResponse>) -> Self {
        Self { inner }
    }

    /// The next batch; `Ok(None)` when the server ended the stream (for example on shutdown).
    pub async fn next(&mut self) -> Result<Option<RevocationBatch>, Error> {
        Ok(self.inner.message().await?.map(RevocationBatch::from))
    }
}

impl From<proto::WatchRevocationsResponse> for RevocationBatch {
    fn from(batch: proto::WatchRevocationsResponse) -> Self {
        Self {
            cursor: batch.cursor,
            events: batch
                .events
                .into_iter()
                .map(RevocationEvent::from)
                .collect(),
        }
    }
}

impl From<proto::RevocationEvent> for RevocationEvent {
    fn from(event: proto::RevocationEvent) -> Self {
        Self {
            scope: event.scope(),
            reason: event.reason(),
            products: event.products().collect(),
            includes_hidden_kinds: event.includes_hidden_kinds,
            kept_session_id: non_empty(event.kept_session_id),
            cursor: event.cursor,
            revocation_id: event.revocation_id,
            account_id: event.account_id,
            session_ids: event.session_ids,
            revoked_at: time(event.revoked_at),
            revoked_before: time(event.revoked_before),
            device_id: non_empty(event.device_id),
            cut_generation: event.cut_generation,
        }
    }
}
