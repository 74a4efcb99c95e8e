//! User-Agent parsing: turns the raw `User-Agent` header of a sign-in into a browser, an
//! operating system and a device type for display ("Chrome on Mac OSX", a phone icon).
//!
//! Browsers are recognised by the `woothee` crate. First-party apps, which woothee does not
//! know, send `<App>/<version> (<os> <version>; <model>; ...)` (for example
//! `ChatGPT/1.2025.123 (iOS 17.5; iPhone15,2; build 1234)`); a small fallback (`first_party`)
//! reads those for the apps it lists. Parsing is best effort and total: any input, however long
//! or malformed, yields a [`DeviceDetails`] (all unknown at worst). Input is cut to
//! `MAX_USER_AGENT_BYTES` first, and every field to `MAX_FIELD_CHARS` characters, the width of
//! the stored columns.

mod first_party;
#[cfg(test)]
mod tests;

use woothee::parser::{Parser, WootheeResult};

use self::first_party::parse_first_party_app;

/// Longest prefix of a user agent, in bytes, that is parsed; the rest is ignored.
const MAX_USER_AGENT_BYTES: usize = 1024;

/// Longest value, in characters, kept in a [`DeviceDetails`] field (the stored column width).
const MAX_FIELD_CHARS: usize = 64;

/// What woothee reports for a value it could not determine.
const WOOTHEE_UNKNOWN: &str = woothee::woothee::VALUE_UNKNOWN;

/// The kind of device a user agent runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceType {
    /// Not known (including crawlers, command-line HTTP clients and unrecognised input).
    #[default]
    Unknown,
    /// A desktop or laptop computer.
    Desktop,
    /// A phone.
    Mobile,
    /// A tablet.
    Tablet,
}

/// What a user agent says about the browser (or app) and the device it runs on.
///
/// Every field is `None` (or [`DeviceType::Unknown`]) when the user agent does not tell.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceDetails {
    /// Browser or app name, e.g. `Chrome`, `Safari`, `ChatGPT`.
    pub browser: Option<String>,
    /// Browser or app version, e.g. `124.0.0.0`.
    pub browser_version: Option<String>,
    /// Operating system, e.g. `Mac OSX`, `Windows 10`, `iPhone`, `Android`, `iOS`.
    pub os: Option<String>,
    /// Operating system version, e.g. `10.15.7`, `NT 10.0`, `17.5`.
    pub os_version: Option<String>,
    /// The kind of device.
    pub device_type: DeviceType,
}

impl DeviceDetails {
    /// A short human description: "Chrome on Mac OSX", "Safari on iPhone", just the browser
    /// or just the operating system when only one is known, or `None` when nothing is known.
    pub fn description(&self) -> Option<String> {
        match (self.browser.as_deref(), self.os.as_deref()) {
            (Some(browser), Some(os)) => Some(format!("{browser} on {os}")),
            (Some(browser), None) => Some(browser.to_owned()),
            (None, Some(os)) => Some(os.to_owned()),
            (None, None) => None,
        }
    }
}

/// Parses a raw `User-Agent` header value.
///
/// Never fails and never panics: empty or unrecognised input gives
/// [`DeviceDetails::default()`]. Only the first 1024 bytes are looked at.
pub fn parse_user_agent(user_agent: &str) -> DeviceDetails {
    let agent = truncate_bytes(user_agent, MAX_USER_AGENT_BYTES).trim();
    if agent.is_empty() {
        return DeviceDetails::default();
    }
    match parse_first_party_app(agent) {
        Some(mut app) => {
            if app.os.is_none() {
                // No operating system in the app's comment: take whatever woothee finds.
                let browser = from_woothee(agent);
                app.os = browser.os;
                app.os_version = browser.os_version;
                app.device_type = browser.device_type;
            }
            app
        }
        None => from_woothee(agent),
    }
}

/// Maps woothee's answer to [`DeviceDetails`], refining its device category with tablets.
fn from_woothee(agent: &str) -> DeviceDetails {
    let Some(result) = Parser::new().parse(agent) else {
        return DeviceDetails::default();
    };
    let WootheeResult {
        name,
        category,
        os,
        version,
        ..
    } = result;
    let device_type = match category {
        "pc" => DeviceType::Desktop,
        "smartphone" | "mobilephone" => {
            // woothee files tablets under "smartphone": iPads by name, Android tablets by the
            // missing "Mobile" token, others by an explicit "Tablet" token.
            let android_tablet = os == "Android" && !agent.contains("Mobile");
            if os == "iPad" || android_tablet || agent.contains("Tablet") {
                DeviceType::Tablet
            } else {
                DeviceType::Mobile
            }
        }
        _ => DeviceType::Unknown,
    };
    DeviceDetails {
        browser: display_value(name),
        browser_version: version_value(version),
        os: display_value(os),
        os_version: version_value(&result.os_version),
        device_type,
    }
}

/// A name fit for display: trimmed, not woothee's "UNKNOWN", no control characters, at most
/// [`MAX_FIELD_CHARS`] characters.
fn display_value(value: &str) -> Option<String> {
    let value = value.trim();
    if value.is_empty() || value == WOOTHEE_UNKNOWN || value.chars().any(char::is_control) {
        return None;
    }
    Some(truncate_chars(value, MAX_FIELD_CHARS).to_owned())
}

/// A version fit for display: as [`display_value`], and it must contain a digit (woothee
/// reports, for example, "curl" as the version of its "HTTP Library").
fn version_value(value: &str) -> Option<String> {
    display_value(value).filter(|version| version.chars().any(|c| c.is_ascii_digit()))
}

/// The longest prefix of `value` of at most `max` bytes that ends on a character boundary.
fn truncate_bytes(value: &str, max: usize) -> &str {
    value.get(..value.floor_char_boundary(max)).unwrap_or("")
}

/// The first `max` characters of `value`.
fn truncate_chars(value: &str, max: usize) -> &str {
    match value.char_indices().nth(max) {
        Some((end, _)) => value.get(..end).unwrap_or(value),
        None => value,
    }
}
