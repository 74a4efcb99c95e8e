//! Server-wide keys kept in `server_settings`, so that every replica signs page tokens with the
//! same key without any configuration. The first replica to start generates each key; the others
//! read the winner's. Only keys whose disclosure reveals no secret belong here (a page token key
//! lets one forge a page position, nothing more); the token seal key never does (`seal_key`).

use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};

use super::{StoreError, entity::server_setting};
use crate::clock::Timestamp;

/// Reads the named 32-byte key, generating it on first use.
pub async fn key(
    conn: &impl ConnectionTrait,
    name: &str,
    now: Timestamp,
) -> Result<[u8; 32], StoreError> {
    let mut candidate = [0u8; 32];
    getrandom::fill(&mut candidate)
        .map_err(|err| StoreError::Database(format!("random key generation failed: {err}")))?;
    server_setting::Entity::insert(server_setting::ActiveModel {
        name: Set(name.to_owned()),
        value: Set(candidate.to_vec()),
        created_at: Set(now.as_micros()),
    })
    .on_conflict_do_nothing()
    .exec(conn)
    .await?;
    let stored = server_setting::Entity::find_by_id(name)
        .one(conn)
        .await?
        .ok_or_else(|| StoreError::corrupt("server_settings", format!("{name} vanished")))?;
    stored
        .value
        .as_slice()
        .try_into()
        .map_err(|_| StoreError::corrupt("server_settings", format!("{name} is not 32 bytes")))
}
