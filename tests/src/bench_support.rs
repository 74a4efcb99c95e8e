//! What the benchmarks need from the harness beyond [`TestApp`](crate::TestApp), whose
//! manual clock and shared runtime do not suit a load test: the harness's own scratch database
//! without a server in front of it, and bulk seeding straight into a database the server has
//! migrated. Seeded sessions carry real tokens: [`TokenSeries`] spells token `i` of a series in
//! the wire form and lets the server's own `SessionToken` parse and hash it, so a bench can
//! validate sessions it never registered while the store keeps only hashes, as in production.

use active_sessions_server::{domain::token::SessionToken, store::entity::session};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sea_orm::{
    ActiveModelTrait, DatabaseConnection, DbErr, EntityTrait, IntoActiveModel, Iterable,
    ModelTrait, TransactionTrait,
};

use crate::{Backend, POSTGRES_URL_VAR, TestDatabase};

/// A database of its own: a new SQLite file (removed with the value) or a new PostgreSQL
/// database (removed by [`drop_database`](Self::drop_database)).
#[derive(Debug)]
pub struct ScratchDatabase(TestDatabase);

impl ScratchDatabase {
    /// Creates one; `None` for PostgreSQL when `ACTIVE_SESSIONS_TEST_POSTGRES_URL` is not set.
    pub async fn create(backend: Backend) -> Option<Self> {
        if backend == Backend::Postgres && std::env::var(POSTGRES_URL_VAR).is_err() {
            return None;
        }
        let database = TestDatabase::fresh(backend, "as_bench_")
            .await
            .unwrap_or_else(|err| panic!("create bench database: {err:#}"));
        Some(Self(database))
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        self.0.url()
    }

    /// The PostgreSQL database's name (`None` for SQLite), as its server processes show it.
    pub fn postgres_name(&self) -> Option<&str> {
        self.0.postgres_name()
    }

    /// Drops a PostgreSQL database (its connections first).
    pub async fn drop_database(&self) {
        if let Err(err) = self.0.drop_database().await {
            eprintln!("could not drop the bench database: {err:#}");
        }
    }
}

/// Bind parameters one INSERT may carry: under SQLite's 32,766 and PostgreSQL's 65,535.
const BIND_PARAMETERS: usize = 30_000;
/// Rows between commits, so that a long seeding does not hold SQLite's write lock throughout.
const ROWS_PER_TRANSACTION: usize = 50_000;

/// Inserts `rows` with multi-row INSERTs as wide as the engines allow, committing every
/// 50,000 rows; returns how many it inserted.
pub async fn insert_rows<M>(
    db: &DatabaseConnection,
    rows: impl IntoIterator<Item = M>,
) -> Result<u64, DbErr>
where
    M: ModelTrait + IntoActiveModel<<M::Entity as EntityTrait>::ActiveModel>,
{
    let columns = <M::Entity as EntityTrait>::Column::iter().count().max(1);
    let per_statement = (BIND_PARAMETERS / columns).max(1);
    let mut rows = rows.into_iter().peekable();
    let mut inserted = 0;
    while rows.peek().is_some() {
        let txn = db.begin().await?;
        let mut in_transaction = 0;
        while in_transaction < ROWS_PER_TRANSACTION && rows.peek().is_some() {
            let statement: Vec<<M::Entity as EntityTrait>::ActiveModel> = rows
                .by_ref()
                .take(per_statement)
                .map(|row| row.into_active_model().reset_all())
                .collect();
            in_transaction += statement.len();
            <M::Entity as EntityTrait>::insert_many(statement)
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
        inserted += in_transaction as u64;
    }
    Ok(inserted)
}

/// A series of session tokens, each a pure function of the series and an index, so that a
/// bench can seed millions of sessions and later present any of their tokens without keeping
/// them.
#[derive(Debug, Clone)]
pub struct TokenSeries {
    seed: [u8; 24],
}

impl TokenSeries {
    /// A series of its own (random, so that two series never share a token).
    pub fn new() -> Self {
        let mut seed = [0u8; 24];
        getrandom::fill(&mut seed).expect("random seed");
        Self { seed }
    }

    /// Token `i` of the series, as the server parses it.
    pub fn token(&self, i: u64) -> SessionToken {
        let mut secret = [0u8; 32];
        secret[..24].copy_from_slice(&self.seed);
        secret[24..].copy_from_slice(&i.to_be_bytes());
        let wire = format!("ast_{}", URL_SAFE_NO_PAD.encode(secret));
        SessionToken::parse(&wire).expect("the wire form of a session token")
    }

    /// Session `i` of the series: `template` with token `i`'s hash, a new id, and the account,
    /// device and sign-in instant (microseconds) given; its lifetime is the template's, and it
    /// was last active when it signed in.
    pub fn session(
        &self,
        template: &session::Model,
        i: u64,
        account_id: String,
        device_id: String,
        signed_in_at: i64,
    ) -> session::Model {
        let millis = u64::try_from(signed_in_at / 1_000).unwrap_or(0);
        let mut entropy = [0u8; 16];
        entropy[..8].copy_from_slice(&self.seed[..8]);
        entropy[8..].copy_from_slice(&i.to_be_bytes());
        let id = ulid::Ulid::from_parts(millis, u128::from_be_bytes(entropy));
        session::Model {
            session_id: id.to_string(),
            token_hash: self.token(i).hash().as_bytes().to_vec(),
            account_id,
            device_id,
            signed_in_at,
            last_active_at: signed_in_at,
            expires_at: signed_in_at + (template.expires_at - template.signed_in_at),
            new_device: false,
            ..template.clone()
        }
    }
}

impl Default for TokenSeries {
    fn default() -> Self {
        Self::new()
    }
}
