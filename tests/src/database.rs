//! The databases tests and benches run on: a fresh SQLite file in a temporary directory, or a
//! fresh PostgreSQL database created from the administrative URL in
//! [`POSTGRES_URL_VAR`] and dropped afterwards. The pieces are public on their own
//! ([`create_postgres_database`], [`drop_postgres_database`], [`replace_database`]) for code
//! that manages its databases itself, such as the benches; [`TestDatabase`] ties them together.
//! Errors are `anyhow` so a bench can report them; the test harness turns them into panics.

use anyhow::Context as _;
use sea_orm::{ConnectionTrait, Database};

/// The variable holding an administrative PostgreSQL URL (a database the tests may connect to in
/// order to create their own), e.g. `postgres://postgres@127.0.0.1:5432/postgres`.
pub const POSTGRES_URL_VAR: &str = "ACTIVE_SESSIONS_TEST_POSTGRES_URL";

/// Which database engine a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A fresh SQLite file.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

/// A database made for one test (or bench run). Dropping the value deletes a SQLite file with
/// its directory; a PostgreSQL database goes only with [`drop_database`](Self::drop_database).
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Sqlite {
        _dir: tempfile::TempDir,
    },
    Postgres {
        admin_url: String,
        name: String,
    },
    /// Another server's database: used, never dropped.
    Shared,
}

impl TestDatabase {
    /// A fresh SQLite file, `sessions.db` in a new temporary directory (created by the server
    /// when it connects).
    pub fn sqlite() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("temporary directory")?;
        let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
        Ok(Self {
            url,
            kind: Kind::Sqlite { _dir: dir },
        })
    }

    /// A fresh PostgreSQL database named `{prefix}{ulid}` on the server of `admin_url`
    /// (see [`create_postgres_database`]).
    pub async fn postgres(admin_url: &str, prefix: &str) -> anyhow::Result<Self> {
        let name = format!(
            "{prefix}{}",
            ulid::Ulid::generate().to_string().to_lowercase()
        );
        let url = create_postgres_database(admin_url, &name).await?;
        Ok(Self {
            url,
            kind: Kind::Postgres {
                admin_url: admin_url.to_owned(),
                name,
            },
        })
    }

    /// A fresh database of `backend`, PostgreSQL ones named `{prefix}{ulid}` on the server of
    /// [`POSTGRES_URL_VAR`] (an error when it is not set).
    pub async fn fresh(backend: Backend, prefix: &str) -> anyhow::Result<Self> {
        match backend {
            Backend::Sqlite => Self::sqlite(),
            Backend::Postgres => {
                let admin_url = std::env::var(POSTGRES_URL_VAR)
                    .with_context(|| format!("{POSTGRES_URL_VAR} is not set"))?;
                Self::postgres(&admin_url, prefix).await
            }
        }
    }

    /// The database of a test: as [`fresh`](Self::fresh) with the prefix `as_test_`, or `None`
    /// (after saying so) when PostgreSQL is asked for and [`POSTGRES_URL_VAR`] is not set.
    /// Under CI (`CI=true`) a missing URL panics instead, so the PostgreSQL half cannot be
    /// skipped silently there.
    pub async fn for_test(backend: Backend) -> Option<Self> {
        if backend == Backend::Postgres && std::env::var(POSTGRES_URL_VAR).is_err() {
            assert!(
                !std::env::var("CI").is_ok_and(|ci| ci == "true"),
                "{POSTGRES_URL_VAR} must be set under CI"
            );
            eprintln!("skipped: PostgreSQL test ({POSTGRES_URL_VAR} is not set)");
            return None;
        }
        Some(
            Self::fresh(backend, "as_test_")
                .await
                .unwrap_or_else(|err| panic!("create test database: {err:#}")),
        )
    }

    /// Another server's database at `url`, which [`drop_database`](Self::drop_database)
    /// leaves alone.
    pub fn shared(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            kind: Kind::Shared,
        }
    }

    /// The URL the server connects with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The PostgreSQL database's name (`None` for SQLite), as its server processes show it.
    pub fn postgres_name(&self) -> Option<&str> {
        match &self.kind {
            Kind::Postgres { name, .. } => Some(name),
            Kind::Sqlite { .. } | Kind::Shared => None,
        }
    }

    /// Drops a PostgreSQL database made by [`postgres`](Self::postgres) (connections still
    /// open to it are ended); nothing for the other kinds.
    pub async fn drop_database(&self) -> anyhow::Result<()> {
        match &self.kind {
            Kind::Postgres { admin_url, name } => drop_postgres_database(admin_url, name).await,
            Kind::Sqlite { .. } | Kind::Shared => Ok(()),
        }
    }
}

/// Creates the PostgreSQL database `name` through `admin_url` and returns the URL that
/// connects to it (`admin_url` with its database replaced).
pub async fn create_postgres_database(admin_url: &str, name: &str) -> anyhow::Result<String> {
    let admin = Database::connect(admin_url)
        .await
        .context("connect to PostgreSQL")?;
    let created = admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .with_context(|| format!("create database {name}"));
    admin.close().await.ok();
    created?;
    Ok(replace_database(admin_url, name))
}

/// Drops the PostgreSQL database `name` through `admin_url`, if it exists, ending the
/// connections still open to it.
pub async fn drop_postgres_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let admin = Database::connect(admin_url)
        .await
        .context("connect to PostgreSQL")?;
    let dropped = admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .with_context(|| format!("drop database {name}"));
    admin.close().await.ok();
    dropped.map(drop)
}

/// `postgres://u@h:p/old?x` -> `postgres://u@h:p/NAME?x`: the same server and options, another
/// database.
pub fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            replace_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(replace_database("postgres://h", "x"), "postgres://h/x");
    }
}
