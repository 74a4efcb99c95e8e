//! Rows written straight into a server's database, for sizes that registering through gRPC
//! would take minutes to reach: copies of a session the server stored, with new ids and
//! token hashes, on the devices the caller chooses, signed in at even steps before it. The
//! copies belong to the template's account and product; they have no tokens anyone holds.

use std::time::Duration;

use active_sessions_server::store::entity::session;
use anyhow::Context as _;
use sea_orm::{
    ActiveModelTrait as _, DatabaseConnection, EntityTrait, IntoActiveModel, TransactionTrait,
};

use crate::TestApp;

/// Rows a multi-row `INSERT` carries.
const INSERT_CHUNK: usize = 1_000;

/// The stored session `session_id`, to copy with [`insert_session_copies`].
pub async fn stored_session(
    db: &DatabaseConnection,
    session_id: &str,
) -> anyhow::Result<session::Model> {
    session::Entity::find_by_id(session_id.to_owned())
        .one(db)
        .await
        .context("read the session")?
        .with_context(|| format!("no stored session {session_id}"))
}

/// Inserts `count` copies of `template` in one transaction, in multi-row `INSERT`s of 1,000:
/// each with a new session id and token hash, on `device(i)`, signed in (and last active)
/// `(count - i) * spacing` before the template, its expiry moved back as much (the same
/// lifetime), never marked a new device. Ids stay in sign-in order and unique across calls.
pub async fn insert_session_copies(
    db: &DatabaseConnection,
    template: &session::Model,
    count: usize,
    spacing: Duration,
    device: impl Fn(usize) -> String,
) -> anyhow::Result<()> {
    let step = i64::try_from(spacing.as_micros()).context("spacing")?;
    // Random bits shared by this batch's ids; the index makes each one unique.
    let nonce = ulid::Ulid::generate().random() & u128::from(u32::MAX);
    let txn = db.begin().await.context("begin")?;
    for start in (0..count).step_by(INSERT_CHUNK) {
        let end = (start + INSERT_CHUNK).min(count);
        let models = (start..end).map(|i| {
            let age = i64::try_from(count - i)
                .unwrap_or(i64::MAX)
                .saturating_mul(step);
            let signed_in_at = template.signed_in_at - age;
            let millis = u64::try_from(signed_in_at / 1_000).unwrap_or(0);
            let id = ulid::Ulid::from_parts(millis, (nonce << 40) | i as u128);
            let mut token_hash = [0u8; 32];
            token_hash[..16].copy_from_slice(&id.0.to_be_bytes());
            token_hash[16..24].copy_from_slice(&nonce.to_le_bytes()[..8]);
            token_hash[24..].copy_from_slice(&(i as u64).to_be_bytes());
            let mut model = template.clone();
            model.session_id = id.to_string();
            model.token_hash = token_hash.to_vec();
            model.device_id = device(i);
            model.signed_in_at = signed_in_at;
            model.last_active_at = signed_in_at;
            model.expires_at = template.expires_at - age;
            model.new_device = false;
            model.into_active_model().reset_all()
        });
        session::Entity::insert_many(models)
            .exec_without_returning(&txn)
            .await
            .context("insert")?;
    }
    txn.commit().await.context("commit")?;
    Ok(())
}

impl TestApp {
    /// Inserts `count` copies of the stored session `template_id` into this server's database,
    /// on `device(i)`, signed in one millisecond apart before it (see
    /// [`insert_session_copies`]).
    pub async fn insert_session_copies(
        &self,
        template_id: &str,
        count: usize,
        device: impl Fn(usize) -> String,
    ) {
        let db = self.connect_database().await;
        let template = stored_session(&db, template_id)
            .await
            .expect("template session");
        insert_session_copies(&db, &template, count, Duration::from_millis(1), device)
            .await
            .expect("insert session copies");
        db.close().await.ok();
    }
}
