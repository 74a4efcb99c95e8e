//! The trusted-device commands: a device verified by a strong check (for example MFA) is trusted
//! for an account until its trust expires (30 days by default). Trusting again renews the one
//! record. Removing trust can log out the device's sessions in the same transaction; a session
//! row on a trusted device offers "log out and remove" (see `sessions::revoke`). Checking trust
//! is one primary-key read.

use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};

use super::{
    ServiceError,
    sessions::{Covered, LogOut, Sessions, reason_for},
};
use crate::domain::stored::StoredEnum as _;
use crate::{
    clock::{Clock, Timestamp},
    domain::{
        history::{Actor, SecurityEvent, SecurityEventType},
        ids::{AccountId, DeviceId},
        log_out_rule::{LogOutDecision, NoLogOutReason, RowFacts, decide},
        modes::DeviceSessions,
        session::{Product, RevocationReason, Session},
        subject::Subject,
        text::Violations,
        trust::{Removal, TrustMethod, TrustPolicy, TrustedDevice},
    },
    store::{
        Store, accounts, security_events, session_sets, sessions,
        trusted_devices::{self, TrustRecord},
    },
};

/// What a trusted-devices page token carries.
#[derive(Debug, Serialize, Deserialize)]
struct TrustPosition {
    since: i64,
    device: String,
}

/// The trusted-device commands.
#[derive(Debug, Clone)]
pub struct TrustService {
    store: Store,
    clock: Arc<dyn Clock>,
    sessions: Sessions,
    policy: TrustPolicy,
}

impl TrustService {
    /// Builds the service.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        sessions: Sessions,
        policy: TrustPolicy,
    ) -> Self {
        Self {
            store,
            clock,
            sessions,
            policy,
        }
    }

    /// Trusts a device, or renews its trust. Returns the device and whether it was a renewal.
    pub async fn trust(
        &self,
        account_id: &AccountId,
        device_id: &DeviceId,
        method: TrustMethod,
        product: Product,
        duration: Option<Duration>,
        actor: &Actor,
    ) -> Result<(TrustedDevice, bool), ServiceError> {
        let duration = match duration {
            None => self.policy.default_duration,
            Some(duration) if duration > self.policy.max_duration => {
                return Err(Violations::single(
                    "duration",
                    format!(
                        "must be at most {}",
                        humantime::format_duration(self.policy.max_duration)
                    ),
                )
                .into());
            }
            Some(duration) => duration,
        };
        let txn = self.store.write().await?;
        // The account lock orders this against a concurrent "log out and remove"; the clock is
        // read once it is held.
        let account = accounts::lock_or_create(&*txn, account_id, self.clock.now()).await?;
        // A disabled account (or one being deleted) trusts no device.
        if account.is_disabled() {
            return Err(ServiceError::AccountDisabled);
        }
        let now = self.clock.now();
        let existing = trusted_devices::find(&*txn, account_id, device_id)
            .await?
            .filter(|trust| trust.trusted_until > now);
        let renewed = existing.is_some();
        let record = TrustRecord {
            account_id: account_id.clone(),
            device_id: device_id.clone(),
            method: method.as_str().to_owned(),
            product: product.as_str().to_owned(),
            trusted_since: existing.map_or(now, |trust| trust.trusted_since),
            renewed_at: now,
            trusted_until: now.plus(duration),
        };
        trusted_devices::save(&*txn, &record).await?;
        let latest = sessions::latest_on_device(&*txn, account_id, device_id).await?;
        let mut event = SecurityEvent::new(
            account_id.clone(),
            SecurityEventType::DeviceTrusted,
            now,
            actor,
        );
        event.product = Some(product);
        event = match &latest {
            Some(session) => event.about_device(session),
            None => {
                event.device_id = Some(device_id.clone());
                event
            }
        };
        security_events::insert(&*txn, &event).await?;
        txn.commit().await?;
        let has_active_session = self.active_on_device(account_id, device_id, now).await?;
        Ok((view(record, latest.as_ref(), has_active_session), renewed))
    }

    /// When the device's trust for the account expires, if it is trusted now.
    pub async fn check(
        &self,
        account_id: &AccountId,
        device_id: &DeviceId,
    ) -> Result<Option<Timestamp>, ServiceError> {
        let now = self.clock.now();
        Ok(
            trusted_devices::find(self.store.reader(), account_id, device_id)
                .await?
                .map(|trust| trust.trusted_until)
                .filter(|until| *until > now),
        )
    }

    /// One page of the owner's trusted devices, with the page token after each device and the
    /// token of the next page.
    pub async fn list(
        &self,
        subject: &Subject,
        page_size: u64,
        page_token: Option<&str>,
    ) -> Result<(Vec<TrustedDevice>, Vec<String>, Option<String>), ServiceError> {
        let owner = self.sessions.eligible_owner(subject).await?;
        let tokens = self.sessions.page_tokens();
        let after = page_token
            .map(|token| {
                tokens.open::<TrustPosition>(token, "trusted_devices", &owner.account_id, "")
            })
            .transpose()?
            .map(|p| (p.since, p.device));
        let now = self.clock.now();
        let mut records = trusted_devices::list_in_force(
            self.store.reader(),
            &owner.account_id,
            now,
            after,
            page_size + 1,
        )
        .await?;
        let has_more = records.len() as u64 > page_size;
        records.truncate(page_size as usize);
        let token_after = |record: &TrustRecord| {
            tokens.seal(
                "trusted_devices",
                &owner.account_id,
                "",
                &TrustPosition {
                    since: record.trusted_since.as_micros(),
                    device: record.device_id.to_string(),
                },
            )
        };
        // A token after every device, so that a response over its byte budget can end early.
        let tokens_after: Vec<String> = records.iter().map(token_after).collect();
        let next = records.last().filter(|_| has_more).map(token_after);
        let mut devices = Vec::with_capacity(records.len());
        for record in records {
            let latest = sessions::latest_on_device(
                self.store.reader(),
                &record.account_id,
                &record.device_id,
            )
            .await?;
            let active = self
                .active_on_device(&record.account_id, &record.device_id, now)
                .await?;
            devices.push(view(record, latest.as_ref(), active));
        }
        Ok((devices, tokens_after, next))
    }

    /// Removes a device's trust, optionally logging out its sessions in the same transaction.
    /// Idempotent: a device of the account that is not trusted (never, expired, or already
    /// removed) succeeds with `removed = false` and changes nothing, so a retry after a lost
    /// response succeeds. A device id the account has never used, trusted nor had removed is
    /// NOT_FOUND, exactly like another account's device. The sessions are read and marked
    /// set-based, whatever their number.
    pub async fn remove(
        &self,
        subject: &Subject,
        device_id: &DeviceId,
        sessions: DeviceSessions,
        actor: &Actor,
    ) -> Result<Removal, ServiceError> {
        let owner = self.sessions.eligible_owner(subject).await?;
        let txn = self.store.write().await?;
        let Some(account) = accounts::lock(&*txn, &owner.account_id).await? else {
            return Err(ServiceError::NotFound("trusted device"));
        };
        let now = self.clock.now();
        let record = trusted_devices::find(&*txn, &owner.account_id, device_id).await?;
        if record.is_none()
            && !session_sets::any_visible_on_device(&*txn, &owner.account_id, device_id).await?
            && !security_events::mentions_device(&*txn, &owner.account_id, device_id).await?
        {
            return Err(ServiceError::NotFound("trusted device"));
        }
        let in_force = record
            .as_ref()
            .is_some_and(|trust| trust.trusted_until > now);
        let active = self.sessions.active_at(now, account.revoked_generation);
        let plan = if sessions == DeviceSessions::LogOut {
            self.sessions
                .device_plan(&*txn, &owner.account_id, device_id, active)
                .await?
        } else {
            None
        };
        let holds_current_session = match &plan {
            Some(_) => self
                .sessions
                .active_current(&*txn, &owner, &active)
                .await?
                .is_some_and(|current| current.device_id == *device_id),
            None => false,
        };
        let decision = decide(RowFacts {
            has_active_session: plan.is_some(),
            holds_current_session,
            status_unavailable: plan.as_ref().is_some_and(|plan| plan.unavailable),
            trusted_device: in_force,
        });
        match decision {
            LogOutDecision::Refused(NoLogOutReason::CurrentSession) => {
                return Err(ServiceError::CurrentSession);
            }
            LogOutDecision::Refused(NoLogOutReason::StatusUnavailable) => {
                return Err(ServiceError::StatusUnavailable);
            }
            // Nothing to log out: only the trust goes (below). Otherwise the sessions end, and
            // the trust with them when it is in force.
            LogOutDecision::AlreadyLoggedOut
            | LogOutDecision::LogOut
            | LogOutDecision::LogOutAndRemove => {}
        }
        let revoked_session_ids = plan
            .as_ref()
            .map(|plan| plan.newest_ids.clone())
            .unwrap_or_default();
        let revocation = match plan {
            None => {
                if in_force {
                    trusted_devices::remove(&*txn, &owner.account_id, device_id, now).await?;
                    let mut event = SecurityEvent::new(
                        owner.account_id.clone(),
                        SecurityEventType::DeviceTrustRemoved,
                        now,
                        actor,
                    );
                    event.device_id = Some(device_id.clone());
                    security_events::insert(&*txn, &event).await?;
                }
                None
            }
            Some(plan) => Some(
                self.sessions
                    .record_log_out(
                        &*txn,
                        &Covered::Device(plan),
                        LogOut {
                            reason: reason_for(actor, RevocationReason::TrustRemoved),
                            remove_trust: decision == LogOutDecision::LogOutAndRemove,
                            actor,
                            now,
                        },
                    )
                    .await?,
            ),
        };
        txn.commit().await?;
        if let Some(revocation) = &revocation {
            self.sessions.after_revocation(revocation);
        }
        Ok(Removal {
            removed: in_force,
            revoked_session_count: revocation
                .as_ref()
                .map_or(0, |r| u64::try_from(r.sessions_revoked).unwrap_or(0)),
            revoked_session_ids,
            revocation,
        })
    }

    async fn active_on_device(
        &self,
        account_id: &AccountId,
        device_id: &DeviceId,
        now: Timestamp,
    ) -> Result<bool, ServiceError> {
        let cut_generation = accounts::find(self.store.reader(), account_id)
            .await?
            .map_or(0, |account| account.revoked_generation);
        Ok(session_sets::any_active_on_device(
            self.store.reader(),
            account_id,
            device_id,
            &self.sessions.active_at(now, cut_generation),
        )
        .await?)
    }
}

fn view(record: TrustRecord, latest: Option<&Session>, has_active_session: bool) -> TrustedDevice {
    TrustedDevice {
        method: TrustMethod::from_stored(&record.method),
        product: Product::from_stored(&record.product),
        device: latest.map(|s| s.device.clone()).unwrap_or_default(),
        location: latest.map(|s| s.location.clone()).unwrap_or_default(),
        device_id: record.device_id,
        account_id: record.account_id,
        trusted_since: record.trusted_since,
        renewed_at: record.renewed_at,
        trusted_until: record.trusted_until,
        has_active_session,
    }
}
