//! ValidateSession and TouchSession: the hot path. Validation never writes: a cache hit, or one
//! indexed read by token hash (with the account's cut-off joined in), which shares a statement
//! with other tokens' misses while the database is busy (`miss_batch`). The cache answers only
//! while the revocation feed is fresh; otherwise the database answers, and if it cannot, the
//! call fails (UNAVAILABLE) rather than vouch from memory. Heartbeats go to the activity
//! buffer; a background task flushes them.

use std::net::IpAddr;

use tokio_util::sync::CancellationToken;

use super::{CachedSession, Sessions};
use crate::service::ServiceError;
use crate::{
    clock::Timestamp,
    domain::{
        ids::{AccountId, DeviceId, SessionId},
        session::Product,
        token::SessionToken,
    },
    store::sessions::{self, Activity},
};

/// A session that is signed in now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidSession {
    /// Its id.
    pub session_id: SessionId,
    /// Its account.
    pub account_id: AccountId,
    /// Its product.
    pub product: Product,
    /// Its device.
    pub device_id: DeviceId,
    /// When it was created.
    pub signed_in_at: Timestamp,
    /// The log-out-of-all generation it was born in.
    pub generation: i64,
    /// Absolute expiry.
    pub expires_at: Timestamp,
    /// Expiry if no further activity is recorded.
    pub idle_expires_at: Timestamp,
}

impl Sessions {
    /// Whether a token is signed in now. `None` for a revoked, expired or unknown token.
    pub async fn validate(
        &self,
        token: &SessionToken,
    ) -> Result<Option<ValidSession>, ServiceError> {
        let hash = token.hash();
        let now = self.inner.clock.now();
        // Fail closed: memory answers only while this replica hears revocations.
        let fresh = self.inner.feed.is_fresh();
        if fresh {
            if let Some(cached) = self.inner.cache.get(&hash, now) {
                return Ok(self.still_valid(&cached, now));
            }
        } else {
            self.inner.cache.record_bypass();
        }
        let epoch = self.inner.cache.epoch();
        let store = &self.inner.store;
        // One token's concurrent misses share a read; different tokens' share a statement.
        let read = self.inner.in_flight.read(hash, epoch, || {
            self.inner.misses.read(hash, |hashes| async move {
                store.validity_by_token_hashes(&hashes).await
            })
        });
        let found = match read.await {
            Ok(found) => found,
            Err(err) if !fresh && err.is_transient() => {
                return Err(ServiceError::RevocationFeedStale(err));
            }
            Err(err) => return Err(err.into()),
        };
        let Some(found) = found else {
            return Ok(None);
        };
        let cached = CachedSession {
            session: found.session,
            cut: found.cut,
        };
        let valid = self.still_valid(&cached, now);
        if valid.is_some() {
            self.inner.cache.insert(epoch, hash, cached, now);
        }
        Ok(valid)
    }

    /// Applies the validity rule to a session as read (from the cache or the database), with
    /// the latest activity known in memory.
    fn still_valid(&self, cached: &CachedSession, now: Timestamp) -> Option<ValidSession> {
        let session = &cached.session;
        let last_active = self
            .inner
            .activity
            .latest(session.session_id)
            .unwrap_or(session.facts.last_active_at)
            .max(session.facts.last_active_at);
        session
            .facts
            .is_active(now, self.idle_timeout(), cached.cut, last_active)
            .then(|| ValidSession {
                session_id: session.session_id,
                account_id: session.account_id.clone(),
                product: session.product,
                device_id: session.device_id.clone(),
                signed_in_at: session.signed_in_at,
                generation: session.facts.generation,
                expires_at: session.facts.expires_at,
                idle_expires_at: last_active.plus(self.idle_timeout()),
            })
    }

    /// Records activity on a valid session of a product the caller may see.
    /// [`ServiceError::NotFound`] when the token is not signed in, or belongs to another product.
    pub async fn touch(
        &self,
        token: &SessionToken,
        ip: Option<IpAddr>,
        visible_product: impl Fn(Product) -> bool,
    ) -> Result<ValidSession, ServiceError> {
        let valid = self
            .validate(token)
            .await?
            .filter(|valid| visible_product(valid.product))
            .ok_or(ServiceError::NotFound("session"))?;
        self.inner
            .activity
            .record(valid.session_id, self.inner.clock.now(), ip);
        Ok(valid)
    }

    /// Writes buffered heartbeats now. Returns how many sessions were written.
    pub async fn flush_activity(&self) -> Result<usize, ServiceError> {
        let batch = self.inner.activity.snapshot();
        if batch.is_empty() {
            return Ok(0);
        }
        let activity: Vec<Activity> = batch
            .iter()
            .map(|(session_id, pending)| Activity {
                session_id: *session_id,
                at: pending.at,
                ip: pending.ip.map(|ip| {
                    let location = self
                        .inner
                        .geoip
                        .as_ref()
                        .and_then(|geoip| geoip.lookup(ip))
                        .unwrap_or_default();
                    (ip.to_string(), location)
                }),
            })
            .collect();
        let written = async {
            let txn = self.inner.store.write().await?;
            sessions::apply_activity(&*txn, &activity).await?;
            txn.commit().await
        }
        .await;
        written?;
        for item in &activity {
            self.inner.cache.record_activity(item.session_id, item.at);
        }
        self.inner.activity.forget_written(&batch);
        Ok(activity.len())
    }

    /// Flushes heartbeats every interval until `stop`, then once more.
    pub(super) async fn flush_activity_until(self, stop: CancellationToken) {
        let interval = self.inner.settings.touch_flush_interval;
        loop {
            let stopping = tokio::select! {
                () = stop.cancelled() => true,
                () = tokio::time::sleep(interval) => false,
            };
            if let Err(err) = self.flush_activity().await {
                tracing::warn!(error = %err, "flushing session activity failed; will retry");
            }
            if stopping {
                return;
            }
        }
    }
}
