//! The field parsers requests share. Each reads one field, records what is wrong with it under
//! the field's name, and returns `None` then, so that one pass over a request reports every bad
//! field at once, in field order; `Violations::complete` then builds the command's input. Also
//! the few output helpers every response shares (ids, counts, the owner-facing page).

use std::time::Duration;

use active_sessions::v1 as pb;

use super::enums::WireEnum;
use crate::domain::{
    ids::{AccountId, DeviceId, SessionId},
    session::Product,
    subject::Subject,
    text::{Violations, check_list_length},
    token::SessionToken,
};

/// Largest page a list call returns.
pub const MAX_PAGE_SIZE: i32 = 100;
/// Page size when the request says 0.
pub const DEFAULT_PAGE_SIZE: i32 = 50;
/// The most entries a product filter may have (the proto comment of
/// `WatchRevocationsRequest.products` says so).
pub const MAX_PRODUCT_FILTER_ENTRIES: usize = 8;

/// A required enum field, refusing UNSPECIFIED and unknown numbers.
pub fn required_enum<T>(violations: &mut Violations, field: &str, raw: i32) -> Option<T>
where
    T: WireEnum + TryFrom<T::Proto>,
{
    match T::Proto::try_from(raw)
        .ok()
        .and_then(|value| T::try_from(value).ok())
    {
        Some(value) => Some(value),
        None if raw == 0 => {
            violations.add(field, "must be set");
            None
        }
        None => {
            violations.add(field, format!("unknown value {raw}"));
            None
        }
    }
}

/// An optional product filter: UNSPECIFIED means none.
pub fn product_filter(violations: &mut Violations, field: &str, raw: i32) -> Option<Product> {
    if raw == 0 {
        return None;
    }
    required_enum(violations, field, raw)
}

/// A list of products (filters): at most [`MAX_PRODUCT_FILTER_ENTRIES`], each a known, specified
/// value. The length is checked first, so an over-long list is one violation.
pub fn products(violations: &mut Violations, field: &str, raw: &[i32]) -> Vec<Product> {
    if !check_list_length(violations, field, raw, MAX_PRODUCT_FILTER_ENTRIES) {
        return Vec::new();
    }
    raw.iter()
        .enumerate()
        .filter_map(|(i, value)| required_enum(violations, &format!("{field}[{i}]"), *value))
        .collect()
}

/// An account id.
pub fn account_id(violations: &mut Violations, field: &str, raw: &str) -> Option<AccountId> {
    violations.check(field, AccountId::parse(raw))
}

/// A device id.
pub fn device_id(violations: &mut Violations, field: &str, raw: &str) -> Option<DeviceId> {
    violations.check(field, DeviceId::parse(raw))
}

/// A session id.
pub fn session_id(violations: &mut Violations, field: &str, raw: &str) -> Option<SessionId> {
    violations.check(field, SessionId::parse(raw))
}

/// A session token.
pub fn session_token(violations: &mut Violations, field: &str, raw: &str) -> Option<SessionToken> {
    violations.check(
        field,
        SessionToken::parse(raw).map_err(|err| err.to_string()),
    )
}

/// A `Subject` message field.
pub fn subject(
    violations: &mut Violations,
    field: &str,
    raw: Option<&pb::Subject>,
) -> Option<Subject> {
    match raw.and_then(|raw| raw.subject.as_ref()) {
        None => {
            violations.add(field, "must set session_token or account_id");
            None
        }
        Some(pb::subject::Subject::SessionToken(token)) => {
            session_token(violations, &format!("{field}.session_token"), token)
                .map(Subject::SessionToken)
        }
        Some(pb::subject::Subject::AccountId(id)) => {
            account_id(violations, &format!("{field}.account_id"), id).map(Subject::Account)
        }
    }
}

/// An optional positive duration.
pub fn optional_duration(
    violations: &mut Violations,
    field: &str,
    raw: Option<&prost_types::Duration>,
) -> Option<Option<Duration>> {
    let Some(raw) = raw else {
        return Some(None);
    };
    match Duration::try_from(*raw) {
        Ok(duration) if !duration.is_zero() => Some(Some(duration)),
        _ => {
            violations.add(field, "must be a positive duration");
            None
        }
    }
}

/// A page size: 0 means the default; otherwise 1 to 100.
pub fn page_size(violations: &mut Violations, field: &str, raw: i32) -> Option<u64> {
    match raw {
        0 => Some(DEFAULT_PAGE_SIZE as u64),
        1..=MAX_PAGE_SIZE => Some(raw as u64),
        _ => {
            violations.add(field, format!("must be between 0 and {MAX_PAGE_SIZE}"));
            None
        }
    }
}

/// A page token: empty means the first page.
pub fn page_token(raw: String) -> Option<String> {
    (!raw.is_empty()).then_some(raw)
}

/// The subject, page size and page token of an owner-facing list call (trusted devices,
/// security events).
#[derive(Debug, Clone)]
pub struct OwnerPage {
    /// Whose.
    pub subject: Subject,
    /// How many items at most.
    pub size: u64,
    /// Where to continue (`None`: the first page).
    pub page_token: Option<String>,
}

impl OwnerPage {
    /// Reads the `subject`, `page_size` and `page_token` fields of a list request.
    pub fn parse(
        raw_subject: Option<&pb::Subject>,
        raw_size: i32,
        raw_token: String,
    ) -> Result<Self, Violations> {
        let mut v = Violations::new();
        let subject = subject(&mut v, "subject", raw_subject);
        let size = page_size(&mut v, "page_size", raw_size);
        v.complete(|| {
            Some(Self {
                subject: subject?,
                size: size?,
                page_token: page_token(raw_token),
            })
        })
    }
}

/// The list requests that are an owner-facing page and nothing more.
macro_rules! owner_pages {
    ($($request:ident),+) => {
        $(
            impl TryFrom<pb::$request> for OwnerPage {
                type Error = Violations;

                fn try_from(request: pb::$request) -> Result<Self, Violations> {
                    Self::parse(request.subject.as_ref(), request.page_size, request.page_token)
                }
            }
        )+
    };
}

owner_pages!(ListTrustedDevicesRequest, ListSecurityEventsRequest);

/// The wire form of a list of ids.
pub fn id_strings<T: ToString>(ids: &[T]) -> Vec<String> {
    ids.iter().map(ToString::to_string).collect()
}

/// The wire form of an optional id or name: empty when absent.
pub fn or_empty<T: ToString>(value: Option<&T>) -> String {
    value.map(ToString::to_string).unwrap_or_default()
}

/// The wire form of a count (saturating; no account comes near).
pub fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn fields(violations: &Violations) -> Vec<(String, String)> {
        violations
            .iter()
            .map(|v| (v.field.clone(), v.description.clone()))
            .collect()
    }

    #[test]
    fn enum_fields_say_whether_they_are_unset_or_unknown() {
        let mut v = Violations::new();
        assert_eq!(required_enum::<Product>(&mut v, "product", 0), None);
        assert_eq!(required_enum::<Product>(&mut v, "product", 99), None);
        assert_eq!(product_filter(&mut v, "filter", 0), None);
        assert_eq!(
            required_enum::<Product>(&mut v, "product", 2),
            Some(Product::Codex)
        );
        assert_eq!(
            fields(&v),
            [
                ("product".into(), "must be set".into()),
                ("product".into(), "unknown value 99".into()),
            ]
        );
    }

    #[test]
    fn an_over_long_product_list_is_one_violation() {
        let mut v = Violations::new();
        assert!(products(&mut v, "products", &[0; 9]).is_empty());
        assert_eq!(v.total(), 1);
    }

    #[test]
    fn an_owner_page_reports_every_bad_field_in_order() {
        let err = OwnerPage::parse(None, 101, String::new()).unwrap_err();
        assert_eq!(
            fields(&err),
            [
                (
                    "subject".into(),
                    "must set session_token or account_id".into()
                ),
                ("page_size".into(), "must be between 0 and 100".into()),
            ]
        );
        let subject = pb::Subject {
            subject: Some(pb::subject::Subject::AccountId("acct_1".into())),
        };
        let page = OwnerPage::parse(Some(&subject), 0, String::new()).unwrap();
        assert_eq!((page.size, page.page_token), (50, None));
    }
}
