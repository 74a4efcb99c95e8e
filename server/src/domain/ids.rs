//! Identifier newtypes. Each parses from the wire once, in the gRPC layer, and is trusted
//! everywhere after.

use std::fmt;

use ulid::Ulid;

use super::text::check_identifier;

/// Longest account, device, organisation or request id accepted.
pub const MAX_ID_LEN: usize = 128;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Parses an id: 1 to 128 characters, no control characters or padding.
            pub fn parse(value: &str) -> Result<Self, String> {
                check_identifier(value, MAX_ID_LEN)?;
                Ok(Self(value.to_owned()))
            }

            /// A value read back from the store, which only ever holds parsed ids.
            #[allow(dead_code, reason = "not every id type is read back from the store")]
            pub(crate) fn from_stored(value: String) -> Self {
                Self(value)
            }

            /// The id as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// An account id from the identity system.
    AccountId
);
string_id!(
    /// A stable per-browser or per-installation id: the grouping key of session rows.
    DeviceId
);
string_id!(
    /// An organisation id from the identity system.
    OrganizationId
);
string_id!(
    /// A caller-chosen idempotency key for RegisterSession.
    RequestId
);

macro_rules! ulid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Ulid);

        impl $name {
            /// Wraps a freshly generated ULID.
            pub fn from_ulid(ulid: Ulid) -> Self {
                Self(ulid)
            }

            /// Parses the 26-character Crockford base32 form.
            pub fn parse(value: &str) -> Result<Self, String> {
                Ulid::from_string(value)
                    .map(Self)
                    .map_err(|_| "must be a ULID (26 characters of Crockford base32)".to_owned())
            }

            /// The ULID.
            pub fn ulid(self) -> Ulid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

ulid_id!(
    /// A session id.
    SessionId
);
ulid_id!(
    /// A revocation id.
    RevocationId
);
ulid_id!(
    /// A security event id.
    EventId
);

/// A new ULID stamped with `now` (the injected clock's time, so ids sort with the clock), and
/// monotonic within this process: two ids minted in the same millisecond still sort in minting
/// order.
pub fn new_ulid(now: crate::clock::Timestamp) -> Ulid {
    use std::{
        sync::{Mutex, OnceLock},
        time::{Duration, UNIX_EPOCH},
    };
    static GENERATOR: OnceLock<Mutex<ulid::Generator>> = OnceLock::new();
    let micros = u64::try_from(now.as_micros()).unwrap_or(0);
    let at = UNIX_EPOCH + Duration::from_micros(micros);
    let mut generator = GENERATOR
        .get_or_init(|| Mutex::new(ulid::Generator::new()))
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    generator
        .generate_from_datetime(at)
        .unwrap_or_else(|_| Ulid::from_datetime(at))
}
