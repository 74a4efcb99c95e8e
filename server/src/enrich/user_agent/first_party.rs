//! The fallback for first-party apps, which woothee does not know: they send
//! `<App>/<version> (<os> <version>; <model>; ...)`, read here for the apps in
//! [`FIRST_PARTY_APPS`], with the table of operating-system tokens their comments use.

use super::{DeviceDetails, DeviceType, version_value};

/// First-party app names recognised by the fallback, in their display spelling (matched
/// case-insensitively).
const FIRST_PARTY_APPS: &[&str] = &["ChatGPT", "Codex", "OpenAI"];

/// Reads a first-party app user agent, `<App>/<version> (<os> <version>; <model>; ...) ...`.
///
/// Returns `None` when the first product token is not one of [`FIRST_PARTY_APPS`]. The comment
/// is optional; when it names no known operating system, `os` stays `None`.
pub(super) fn parse_first_party_app(agent: &str) -> Option<DeviceDetails> {
    let (name, rest) = agent.split_once('/')?;
    let app = FIRST_PARTY_APPS
        .iter()
        .find(|app| app.eq_ignore_ascii_case(name.trim()))?;
    let version_end = rest
        .find(|c: char| c.is_whitespace() || c == '(')
        .unwrap_or(rest.len());
    let (version, rest) = rest.split_at(version_end);
    let version = version
        .starts_with(|c: char| c.is_ascii_digit())
        .then(|| version_value(version))
        .flatten();

    let comment = rest.trim_start().strip_prefix('(').map_or("", |comment| {
        comment
            .split_once(')')
            .map_or(comment, |(inside, _)| inside)
    });
    let tokens: Vec<&str> = comment
        .split(';')
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .collect();

    let (os, os_version) = tokens
        .iter()
        .find_map(|token| app_os(token))
        .map_or((None, None), |(os, version)| (Some(os), version));
    let device_type = app_device_type(&tokens, os);

    Some(DeviceDetails {
        browser: Some((*app).to_owned()),
        browser_version: version,
        os: os.map(str::to_owned),
        os_version,
        device_type,
    })
}

/// Recognises an operating-system token of an app comment (`iOS 17.5`, `Android 14`,
/// `Mac OS X 14.5`, `Windows NT 10.0`, `Linux x86_64`): the display name and the version.
fn app_os(token: &str) -> Option<(&'static str, Option<String>)> {
    // Longer prefixes first, so that "Mac OS X" wins over "Mac OS" and "iPadOS" over "iOS".
    const PREFIXES: &[(&str, &str)] = &[
        ("iphone os", "iOS"),
        ("ipados", "iOS"),
        ("ios", "iOS"),
        ("android", "Android"),
        ("mac os x", "Mac OSX"),
        ("mac os", "Mac OSX"),
        ("macos", "Mac OSX"),
        ("os x", "Mac OSX"),
        ("windows", "Windows"),
        ("linux", "Linux"),
    ];
    PREFIXES.iter().find_map(|(prefix, os)| {
        let head = token.get(..prefix.len())?;
        if !head.eq_ignore_ascii_case(prefix) {
            return None;
        }
        // The prefix must end a word: "iOS 17.5" and "iOS" are iOS, "iOSApp" is not.
        let rest = token.get(prefix.len()..)?;
        if rest.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return None;
        }
        let version = rest.trim().replace('_', ".");
        Some((*os, version_value(&version)))
    })
}

/// The device type of a first-party app from its comment tokens, or else from its OS.
fn app_device_type(tokens: &[&str], os: Option<&str>) -> DeviceType {
    let mentions = |needle: &str| {
        tokens
            .iter()
            .any(|token| token.to_ascii_lowercase().contains(needle))
    };
    if mentions("ipad") || mentions("tablet") {
        return DeviceType::Tablet;
    }
    if mentions("iphone") || mentions("ipod") {
        return DeviceType::Mobile;
    }
    match os {
        Some("iOS" | "Android") => DeviceType::Mobile,
        Some("Mac OSX" | "Windows" | "Linux") => DeviceType::Desktop,
        _ => DeviceType::Unknown,
    }
}
