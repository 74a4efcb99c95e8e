//! The token seal key: the secret that encrypts session tokens kept for idempotent replays
//! (`domain::token_seal`). It never enters the database, so a copy of the database alone (a
//! SQLite file, a pg_dump) yields no token.
//!
//! Where it comes from, in order:
//! 1. `--token-seal-key-file`: a file holding 64 hexadecimal characters (`openssl rand -hex 32`),
//!    for example a mounted Kubernetes Secret. Every replica must read the same key. The file
//!    must exist; it is never created.
//! 2. SQLite: `token-seal.key` beside the database file, generated on first start with mode
//!    0600 (an in-memory database gets a key that lives as long as the process).
//! 3. PostgreSQL in local development mode (no callers file): `data/token-seal.key`, generated
//!    on first start. With a callers file (production), PostgreSQL refuses to start without
//!    `--token-seal-key-file`: replicas generating keys of their own would not open each other's
//!    records.
//!
//! Changing or losing the key only makes replays of registrations made before the change fail
//! with SEALED_TOKEN_UNAVAILABLE; sessions are unaffected.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use crate::config::Config;

/// The name of a generated key file.
pub const GENERATED_KEY_FILE: &str = "token-seal.key";

/// Why the token seal key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SealKeyError {
    /// The file could not be read or written.
    #[error("token seal key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The file does not hold a key.
    #[error("token seal key file {0}: must hold 64 hexadecimal characters (openssl rand -hex 32)")]
    Malformed(PathBuf),
    /// PostgreSQL with a callers file and no key file.
    #[error(
        "a PostgreSQL deployment needs --token-seal-key-file (ACTIVE_SESSIONS_TOKEN_SEAL_KEY_FILE): \
         a file with 64 hexadecimal characters (openssl rand -hex 32) that every replica reads, \
         for example a mounted Kubernetes Secret"
    )]
    Required,
    /// The OS random source failed.
    #[error("generating the token seal key failed: {0}")]
    Entropy(String),
}

/// The key the configuration calls for: read from its file, or generated once where the
/// module documentation says.
pub fn load(config: &Config) -> Result<[u8; 32], SealKeyError> {
    if let Some(path) = &config.security.token_seal_key_file {
        return read(path);
    }
    let url = config.database.url.expose();
    if url.starts_with("sqlite:") {
        return match crate::store::sqlite_path(url) {
            Some(path) => {
                let dir = path.parent().map(Path::to_owned).unwrap_or_default();
                read_or_generate(&dir.join(GENERATED_KEY_FILE))
            }
            None => random_key(),
        };
    }
    if config.security.callers_file.is_some() {
        return Err(SealKeyError::Required);
    }
    read_or_generate(&Path::new("data").join(GENERATED_KEY_FILE))
}

/// Reads a key file: 64 hexadecimal characters, surrounding whitespace ignored.
pub fn read(path: &Path) -> Result<[u8; 32], SealKeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| SealKeyError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut key = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut key)
        .map_err(|_| SealKeyError::Malformed(path.to_owned()))?;
    Ok(key)
}

/// Reads the key at `path`, first generating it (mode 0600, created exclusively so that two
/// processes starting together agree) when the file does not exist.
fn read_or_generate(path: &Path) -> Result<[u8; 32], SealKeyError> {
    let io = |source| SealKeyError::Io {
        path: path.to_owned(),
        source,
    };
    if path.exists() {
        return read(path);
    }
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let key = random_key()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(format!("{}\n", hex::encode(key)).as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(io)?;
            tracing::info!(path = %path.display(), "generated the token seal key");
            Ok(key)
        }
        // Another process created it first: use its key.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => read(path),
        Err(err) => Err(io(err)),
    }
}

fn random_key() -> Result<[u8; 32], SealKeyError> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|err| SealKeyError::Entropy(err.to_string()))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_generated_key_is_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(GENERATED_KEY_FILE);
        let key = read_or_generate(&path).unwrap();
        assert_eq!(read_or_generate(&path).unwrap(), key);
        assert_eq!(read(&path).unwrap(), key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(read(&path), Err(SealKeyError::Malformed(_))));
    }

    #[test]
    fn postgres_with_callers_needs_a_key_file() {
        let mut config = Config::new("127.0.0.1:0".parse().unwrap(), "postgres://db/sessions");
        config.security.callers_file = Some("callers.toml".into());
        assert!(matches!(load(&config), Err(SealKeyError::Required)));
    }
}
