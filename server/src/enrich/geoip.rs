//! IP geolocation: looks an IP address up in a MaxMind-format City database (GeoIP2 or
//! GeoLite2 City, or a compatible redistribution) and returns its approximate city, region
//! and country in English.
//!
//! The whole database is read into memory when it is opened, and [`GeoIp`] is `Send + Sync`,
//! so one instance can be shared across tasks behind an `Arc`. Lookups never fail: an address
//! that the database does not hold (private, loopback, unallocated) or a record that cannot be
//! decoded gives `None`.

use std::{
    fmt,
    net::IpAddr,
    path::{Path, PathBuf},
};

use maxminddb::{MaxMindDbError, Reader, geoip2};

/// Longest name, in characters, kept in a [`GeoLocation`] field (the stored column width).
const MAX_NAME_CHARS: usize = 128;

/// Where an IP address is, approximately. Every field is `None` when unknown.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GeoLocation {
    /// City name in English, e.g. `London`.
    pub city: Option<String>,
    /// The largest subdivision (state, province, constituent country) in English, e.g.
    /// `England`, `Washington`.
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2 country code in upper case, e.g. `GB`.
    pub country_code: Option<String>,
    /// Country name in English, e.g. `United Kingdom`.
    pub country: Option<String>,
}

/// Why a GeoIP database could not be opened. The message names the file; the underlying cause
/// is the error's [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
pub enum GeoIpError {
    /// The file could not be read (missing, unreadable, a directory, ...).
    #[error("cannot read the GeoIP database {}", path.display())]
    Read {
        /// The database file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid MaxMind DB database.
    #[error("{} is not a valid MaxMind DB (GeoIP) database", path.display())]
    Invalid {
        /// The database file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: MaxMindDbError,
    },
}

/// An open MaxMind-format City database, held in memory.
pub struct GeoIp {
    /// Where the database was read from (for diagnostics).
    path: PathBuf,
    /// The database.
    reader: Reader<Vec<u8>>,
}

// `GeoIp` is shared across tokio tasks behind an `Arc`: keep it `Send + Sync`.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<GeoIp>();
};

impl fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeoIp")
            .field("path", &self.path)
            .field("database_type", &self.database_type())
            .finish_non_exhaustive()
    }
}

impl GeoIp {
    /// Reads the database at `path` into memory and checks its metadata.
    ///
    /// # Errors
    ///
    /// [`GeoIpError::Read`] when the file cannot be read, [`GeoIpError::Invalid`] when it is
    /// not a MaxMind DB database. Both name the path.
    pub fn open(path: &Path) -> Result<Self, GeoIpError> {
        let bytes = std::fs::read(path).map_err(|source| GeoIpError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let reader = Reader::from_source(bytes).map_err(|source| GeoIpError::Invalid {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            reader,
        })
    }

    /// The file the database was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The database type from its metadata, e.g. `GeoIP2-City` or `GeoLite2-City`.
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// Looks `ip` up; English names.
    ///
    /// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are looked up as IPv4. Returns `None`
    /// when the database holds no record for the address, when the record cannot be decoded,
    /// or when it has none of the four fields.
    pub fn lookup(&self, ip: IpAddr) -> Option<GeoLocation> {
        let result = self.reader.lookup(ip.to_canonical()).ok()?;
        let record: geoip2::City<'_> = result.decode().ok()??;
        let location = GeoLocation {
            city: name(record.city.names.english),
            region: record
                .subdivisions
                .first()
                .and_then(|subdivision| name(subdivision.names.english)),
            country_code: record.country.iso_code.and_then(country_code),
            country: name(record.country.names.english),
        };
        (location != GeoLocation::default()).then_some(location)
    }
}

/// A name fit for display: trimmed, non-empty, no control characters, at most
/// [`MAX_NAME_CHARS`] characters.
fn name(value: Option<&str>) -> Option<String> {
    let value = value?.trim();
    if value.is_empty() || value.chars().any(char::is_control) {
        return None;
    }
    Some(value.chars().take(MAX_NAME_CHARS).collect())
}

/// A country code only when it is two ASCII letters (upper-cased).
fn country_code(value: &str) -> Option<String> {
    let value = value.trim();
    (value.len() == 2 && value.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| value.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::{Arc, OnceLock};

    use super::*;

    const TEST_DATABASE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/GeoIP2-City-Test.mmdb"
    );

    fn database() -> &'static GeoIp {
        static DATABASE: OnceLock<GeoIp> = OnceLock::new();
        DATABASE.get_or_init(|| GeoIp::open(Path::new(TEST_DATABASE)).expect("test database"))
    }

    fn lookup(ip: &str) -> Option<GeoLocation> {
        database().lookup(ip.parse().unwrap())
    }

    fn location(
        city: Option<&str>,
        region: Option<&str>,
        country_code: Option<&str>,
        country: Option<&str>,
    ) -> GeoLocation {
        GeoLocation {
            city: city.map(str::to_owned),
            region: region.map(str::to_owned),
            country_code: country_code.map(str::to_owned),
            country: country.map(str::to_owned),
        }
    }

    #[test]
    fn london() {
        assert_eq!(
            lookup("81.2.69.142"),
            Some(location(
                Some("London"),
                Some("England"),
                Some("GB"),
                Some("United Kingdom")
            ))
        );
    }

    #[test]
    fn boxford_takes_the_first_subdivision() {
        // The record lists England, then West Berkshire.
        assert_eq!(
            lookup("2.125.160.216"),
            Some(location(
                Some("Boxford"),
                Some("England"),
                Some("GB"),
                Some("United Kingdom")
            ))
        );
    }

    #[test]
    fn milton() {
        assert_eq!(
            lookup("216.160.83.56"),
            Some(location(
                Some("Milton"),
                Some("Washington"),
                Some("US"),
                Some("United States")
            ))
        );
    }

    #[test]
    fn linkoping() {
        assert_eq!(
            lookup("89.160.20.112"),
            Some(location(
                Some("Linköping"),
                Some("Östergötland County"),
                Some("SE"),
                Some("Sweden")
            ))
        );
    }

    #[test]
    fn changchun() {
        assert_eq!(
            lookup("175.16.199.0"),
            Some(location(
                Some("Changchun"),
                Some("Jilin Sheng"),
                Some("CN"),
                Some("China")
            ))
        );
    }

    #[test]
    fn san_diego_over_ipv6() {
        assert_eq!(
            lookup("2001:480:10::1"),
            Some(location(
                Some("San Diego"),
                Some("California"),
                Some("US"),
                Some("United States")
            ))
        );
    }

    #[test]
    fn ipv4_mapped_ipv6_is_looked_up_as_ipv4() {
        assert_eq!(lookup("::ffff:81.2.69.142"), lookup("81.2.69.142"));
    }

    #[test]
    fn country_only_record() {
        assert_eq!(
            lookup("67.43.156.1"),
            Some(location(None, None, Some("BT"), Some("Bhutan")))
        );
    }

    #[test]
    fn private_and_loopback_addresses_are_not_found() {
        assert_eq!(lookup("127.0.0.1"), None);
        assert_eq!(lookup("10.0.0.1"), None);
        assert_eq!(lookup("192.168.1.1"), None);
        assert_eq!(lookup("::1"), None);
        assert_eq!(lookup("0.0.0.0"), None);
        assert_eq!(lookup("255.255.255.255"), None);
    }

    #[test]
    fn missing_file_names_the_path() {
        let path = Path::new("/nonexistent/dir/GeoLite2-City.mmdb");
        let error = GeoIp::open(path).unwrap_err();
        assert!(matches!(error, GeoIpError::Read { .. }), "{error:?}");
        assert!(
            error
                .to_string()
                .contains("/nonexistent/dir/GeoLite2-City.mmdb"),
            "{error}"
        );
        assert!(std::error::Error::source(&error).is_some());
    }

    #[test]
    fn a_file_that_is_not_a_database_names_the_path() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/data/GeoIP2-City-Test.LICENSE-MIT"
        ));
        let error = GeoIp::open(path).unwrap_err();
        assert!(matches!(error, GeoIpError::Invalid { .. }), "{error:?}");
        assert!(
            error.to_string().contains("GeoIP2-City-Test.LICENSE-MIT"),
            "{error}"
        );
    }

    #[test]
    fn debug_shows_path_and_type_only() {
        let debug = format!("{:?}", database());
        assert!(debug.contains("GeoIP2-City-Test.mmdb"), "{debug}");
        assert!(debug.contains("GeoIP2-City"), "{debug}");
        assert!(debug.len() < 300, "{debug}");
        assert_eq!(database().database_type(), "GeoIP2-City");
    }

    #[test]
    fn shared_across_threads() {
        let shared = Arc::new(GeoIp::open(Path::new(TEST_DATABASE)).unwrap());
        let handles: Vec<_> = ["81.2.69.142", "2001:480:10::1", "10.0.0.1"]
            .into_iter()
            .map(|ip| {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || shared.lookup(ip.parse().unwrap()))
            })
            .collect();
        let found: Vec<bool> = handles
            .into_iter()
            .map(|handle| handle.join().unwrap().is_some())
            .collect();
        assert_eq!(found, [true, true, false]);
    }

    #[test]
    fn every_ipv4_slash_8_looks_up_without_panicking() {
        for first in 0..=255_u8 {
            for second in [0_u8, 1, 69, 128, 255] {
                let _ = database().lookup(IpAddr::from([first, second, 1, 1]));
            }
        }
    }

    #[test]
    fn country_codes_are_two_letters() {
        assert_eq!(country_code("gb").as_deref(), Some("GB"));
        assert_eq!(country_code("GBR"), None);
        assert_eq!(country_code("1A"), None);
        assert_eq!(country_code(""), None);
        assert_eq!(country_code("é"), None);
    }
}
