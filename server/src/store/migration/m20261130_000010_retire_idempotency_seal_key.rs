//! The token seal key leaves the database. Registrations used to keep their token XORed with a
//! key stream whose key (`idempotency_seal_key`) sat in `server_settings`, so the database alone
//! rebuilt those tokens. This removes that key and empties every sealed token written with it:
//! a replay of such a registration is refused (SEALED_TOKEN_UNAVAILABLE) instead of answered,
//! and its session is untouched. New records are encrypted under a key held outside the database
//! (`seal_key`); `sealed_token` keeps its column (a BLOB/BYTEA, now nonce + ciphertext + tag).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let delete = Query::delete()
            .from_table(ServerSettings::Table)
            .and_where(Expr::col(ServerSettings::Name).eq("idempotency_seal_key"))
            .to_owned();
        db.execute(&delete).await?;
        let invalidate = Query::update()
            .table(IdempotencyRecords::Table)
            .value(IdempotencyRecords::SealedToken, Vec::<u8>::new())
            .to_owned();
        db.execute(&invalidate).await?;
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // Nothing to restore: the old key and tokens are gone on purpose.
        Ok(())
    }
}

#[derive(DeriveIden)]
enum ServerSettings {
    Table,
    Name,
}

#[derive(DeriveIden)]
enum IdempotencyRecords {
    Table,
    SealedToken,
}
