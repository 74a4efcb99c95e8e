//! User-Agent parsing: turns the raw `User-Agent` header of a sign-in into a browser, an
//! operating system and a device type for display ("Chrome on Mac OSX", a phone icon).
//!
//! Browsers are recognised by the `woothee` crate. First-party apps, which woothee does not
//! know, send `<App>/<version> (<os> <version>; <model>; ...)` (for example
//! `ChatGPT/1.2025.123 (iOS 17.5; iPhone15,2; build 1234)`); a small fallback reads those for
//! the apps in `FIRST_PARTY_APPS`. Parsing is best effort and total: any input, however long
//! or malformed, yields a [`DeviceDetails`] (all unknown at worst). Input is cut to
//! `MAX_USER_AGENT_BYTES` first, and every field to `MAX_FIELD_CHARS` characters, the width of
//! the stored columns.

use woothee::parser::{Parser, WootheeResult};

/// Longest prefix of a user agent, in bytes, that is parsed; the rest is ignored.
const MAX_USER_AGENT_BYTES: usize = 1024;

/// Longest value, in characters, kept in a [`DeviceDetails`] field (the stored column width).
const MAX_FIELD_CHARS: usize = 64;

/// What woothee reports for a value it could not determine.
const WOOTHEE_UNKNOWN: &str = woothee::woothee::VALUE_UNKNOWN;

/// First-party app names recognised by the fallback, in their display spelling (matched
/// case-insensitively).
const FIRST_PARTY_APPS: &[&str] = &["ChatGPT", "Codex", "OpenAI"];

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

/// Reads a first-party app user agent, `<App>/<version> (<os> <version>; <model>; ...) ...`.
///
/// Returns `None` when the first product token is not one of [`FIRST_PARTY_APPS`]. The comment
/// is optional; when it names no known operating system, `os` stays `None`.
fn parse_first_party_app(agent: &str) -> Option<DeviceDetails> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn details(
        browser: Option<&str>,
        browser_version: Option<&str>,
        os: Option<&str>,
        os_version: Option<&str>,
        device_type: DeviceType,
    ) -> DeviceDetails {
        DeviceDetails {
            browser: browser.map(str::to_owned),
            browser_version: browser_version.map(str::to_owned),
            os: os.map(str::to_owned),
            os_version: os_version.map(str::to_owned),
            device_type,
        }
    }

    #[test]
    fn chrome_on_macos() {
        let parsed = parse_user_agent(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        );
        assert_eq!(
            parsed,
            details(
                Some("Chrome"),
                Some("124.0.0.0"),
                Some("Mac OSX"),
                Some("10.15.7"),
                DeviceType::Desktop
            )
        );
        assert_eq!(parsed.description().as_deref(), Some("Chrome on Mac OSX"));
    }

    #[test]
    fn safari_on_macos() {
        let parsed = parse_user_agent(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        );
        assert_eq!(parsed.browser.as_deref(), Some("Safari"));
        assert_eq!(parsed.browser_version.as_deref(), Some("17.5"));
        assert_eq!(parsed.device_type, DeviceType::Desktop);
    }

    #[test]
    fn safari_on_iphone() {
        let parsed = parse_user_agent(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        );
        assert_eq!(
            parsed,
            details(
                Some("Safari"),
                Some("17.5"),
                Some("iPhone"),
                Some("17.5"),
                DeviceType::Mobile
            )
        );
        assert_eq!(parsed.description().as_deref(), Some("Safari on iPhone"));
    }

    #[test]
    fn chrome_on_iphone() {
        let parsed = parse_user_agent(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
        );
        assert_eq!(parsed.browser.as_deref(), Some("Chrome"));
        assert_eq!(parsed.os.as_deref(), Some("iPhone"));
        assert_eq!(parsed.device_type, DeviceType::Mobile);
    }

    #[test]
    fn safari_on_ipad_is_a_tablet() {
        let parsed = parse_user_agent(
            "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        );
        assert_eq!(
            parsed,
            details(
                Some("Safari"),
                Some("17.5"),
                Some("iPad"),
                Some("17.5"),
                DeviceType::Tablet
            )
        );
        assert_eq!(parsed.description().as_deref(), Some("Safari on iPad"));
    }

    #[test]
    fn chrome_on_android_phone() {
        let parsed = parse_user_agent(
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
        );
        assert_eq!(
            parsed,
            details(
                Some("Chrome"),
                Some("124.0.6367.82"),
                Some("Android"),
                Some("14"),
                DeviceType::Mobile
            )
        );
        assert_eq!(parsed.description().as_deref(), Some("Chrome on Android"));
    }

    #[test]
    fn chrome_on_android_tablet() {
        // Android tablets leave out "Mobile".
        let parsed = parse_user_agent(
            "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Safari/537.36",
        );
        assert_eq!(
            parsed,
            details(
                Some("Chrome"),
                Some("124.0.6367.82"),
                Some("Android"),
                Some("13"),
                DeviceType::Tablet
            )
        );
    }

    #[test]
    fn firefox_on_android_tablet_and_phone() {
        let tablet = parse_user_agent(
            "Mozilla/5.0 (Android 14; Tablet; rv:126.0) Gecko/126.0 Firefox/126.0",
        );
        assert_eq!(tablet.browser.as_deref(), Some("Firefox"));
        assert_eq!(tablet.device_type, DeviceType::Tablet);
        let phone = parse_user_agent(
            "Mozilla/5.0 (Android 14; Mobile; rv:126.0) Gecko/126.0 Firefox/126.0",
        );
        assert_eq!(phone.device_type, DeviceType::Mobile);
    }

    #[test]
    fn firefox_on_windows() {
        let parsed = parse_user_agent(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:126.0) Gecko/20100101 Firefox/126.0",
        );
        assert_eq!(
            parsed,
            details(
                Some("Firefox"),
                Some("126.0"),
                Some("Windows 10"),
                Some("NT 10.0"),
                DeviceType::Desktop
            )
        );
        assert_eq!(
            parsed.description().as_deref(),
            Some("Firefox on Windows 10")
        );
    }

    #[test]
    fn edge_on_windows() {
        let parsed = parse_user_agent(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
        );
        assert_eq!(
            parsed,
            details(
                Some("Edge"),
                Some("124.0.2478.80"),
                Some("Windows 10"),
                Some("NT 10.0"),
                DeviceType::Desktop
            )
        );
    }

    #[test]
    fn windows_tablet_pc_token_stays_desktop() {
        let parsed = parse_user_agent(
            "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; SLCC2; .NET CLR 2.0.50727; Tablet PC 2.0; rv:11.0) like Gecko",
        );
        assert_eq!(parsed.browser.as_deref(), Some("Internet Explorer"));
        assert_eq!(parsed.device_type, DeviceType::Desktop);
    }

    #[test]
    fn chatgpt_on_iphone() {
        let parsed = parse_user_agent("ChatGPT/1.2025.123 (iOS 17.5; iPhone15,2; build 1234)");
        assert_eq!(
            parsed,
            details(
                Some("ChatGPT"),
                Some("1.2025.123"),
                Some("iOS"),
                Some("17.5"),
                DeviceType::Mobile
            )
        );
        assert_eq!(parsed.description().as_deref(), Some("ChatGPT on iOS"));
    }

    #[test]
    fn chatgpt_on_ipad() {
        let parsed = parse_user_agent("ChatGPT/1.2025.123 (iPadOS 17.5; iPad13,4; build 1234)");
        assert_eq!(parsed.os.as_deref(), Some("iOS"));
        assert_eq!(parsed.os_version.as_deref(), Some("17.5"));
        assert_eq!(parsed.device_type, DeviceType::Tablet);
    }

    #[test]
    fn chatgpt_on_android_phone() {
        let parsed = parse_user_agent("ChatGPT/1.2025.100 (Android 14; Pixel 8)");
        assert_eq!(
            parsed,
            details(
                Some("ChatGPT"),
                Some("1.2025.100"),
                Some("Android"),
                Some("14"),
                DeviceType::Mobile
            )
        );
    }

    #[test]
    fn codex_on_macos() {
        let parsed = parse_user_agent("Codex/0.9.1 (Mac OS X 14.5; arm64)");
        assert_eq!(
            parsed,
            details(
                Some("Codex"),
                Some("0.9.1"),
                Some("Mac OSX"),
                Some("14.5"),
                DeviceType::Desktop
            )
        );
        assert_eq!(parsed.description().as_deref(), Some("Codex on Mac OSX"));
    }

    #[test]
    fn openai_app_on_windows_and_linux() {
        let windows = parse_user_agent("OpenAI/2.1.0 (Windows NT 10.0; x64)");
        assert_eq!(windows.browser.as_deref(), Some("OpenAI"));
        assert_eq!(windows.os.as_deref(), Some("Windows"));
        assert_eq!(windows.os_version.as_deref(), Some("NT 10.0"));
        assert_eq!(windows.device_type, DeviceType::Desktop);
        let linux = parse_user_agent("openai/2.1.0 (Linux; x86_64)");
        assert_eq!(linux.browser.as_deref(), Some("OpenAI"));
        assert_eq!(linux.os.as_deref(), Some("Linux"));
        assert_eq!(linux.os_version, None);
        assert_eq!(linux.device_type, DeviceType::Desktop);
    }

    #[test]
    fn app_without_comment_falls_back_to_woothee_for_the_os() {
        let bare = parse_user_agent("ChatGPT/1.2025.123");
        assert_eq!(
            bare,
            details(
                Some("ChatGPT"),
                Some("1.2025.123"),
                None,
                None,
                DeviceType::Unknown
            )
        );
        let cfnetwork = parse_user_agent("ChatGPT/1.2025.123 CFNetwork/1496.0.7 Darwin/23.5.0");
        assert_eq!(cfnetwork.browser.as_deref(), Some("ChatGPT"));
        assert_eq!(cfnetwork.os.as_deref(), Some("iOS"));
        assert_eq!(cfnetwork.device_type, DeviceType::Mobile);
    }

    #[test]
    fn other_apps_are_not_first_party() {
        let parsed = parse_user_agent("SomeApp/1.0 (iOS 17.5; iPhone15,2)");
        assert_ne!(parsed.browser.as_deref(), Some("SomeApp"));
    }

    #[test]
    fn crawlers_and_tools_have_no_device_type() {
        let bot = parse_user_agent(
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        );
        assert_eq!(bot.browser.as_deref(), Some("Googlebot"));
        assert_eq!(bot.device_type, DeviceType::Unknown);
        let curl = parse_user_agent("curl/8.5.0");
        assert_eq!(curl.browser_version, None);
        assert_eq!(curl.device_type, DeviceType::Unknown);
    }

    #[test]
    fn empty_and_blank_are_unknown() {
        assert_eq!(parse_user_agent(""), DeviceDetails::default());
        assert_eq!(parse_user_agent("   \t "), DeviceDetails::default());
        assert_eq!(parse_user_agent("-"), DeviceDetails::default());
        assert_eq!(DeviceDetails::default().description(), None);
    }

    #[test]
    fn garbage_is_unknown() {
        assert_eq!(parse_user_agent("asdf qwer"), DeviceDetails::default());
        assert_eq!(
            parse_user_agent("\u{0}\u{1}\u{7f}\u{fffd}"),
            DeviceDetails::default()
        );
        assert_eq!(
            parse_user_agent("ChatGPT/"),
            DeviceDetails {
                browser: Some("ChatGPT".to_owned()),
                ..DeviceDetails::default()
            }
        );
        assert_eq!(
            parse_user_agent("ChatGPT/x (").browser.as_deref(),
            Some("ChatGPT")
        );
    }

    #[test]
    fn description_with_only_one_side_known() {
        let os_only = details(None, None, Some("Android"), None, DeviceType::Mobile);
        assert_eq!(os_only.description().as_deref(), Some("Android"));
        let browser_only = details(Some("Firefox"), None, None, None, DeviceType::Unknown);
        assert_eq!(browser_only.description().as_deref(), Some("Firefox"));
    }

    /// A small deterministic generator (xorshift64*), so the test needs no dependency.
    fn pseudo_random(seed: &mut u64) -> u64 {
        *seed ^= *seed >> 12;
        *seed ^= *seed << 25;
        *seed ^= *seed >> 27;
        seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    #[test]
    fn ten_kilobytes_of_random_characters_do_not_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20 {
            let random: String = (0..10 * 1024)
                .map(|_| char::from((pseudo_random(&mut seed) & 0xff) as u8))
                .collect();
            let parsed = parse_user_agent(&random);
            for field in [
                &parsed.browser,
                &parsed.browser_version,
                &parsed.os,
                &parsed.os_version,
            ]
            .into_iter()
            .flatten()
            {
                assert!(field.chars().count() <= MAX_FIELD_CHARS);
            }
        }
    }

    #[test]
    fn long_inputs_are_cut_on_a_character_boundary() {
        // Multi-byte characters straddling the 1024-byte limit.
        let long = "é".repeat(2000);
        assert_eq!(parse_user_agent(&long), DeviceDetails::default());
        assert_eq!(truncate_bytes(&long, MAX_USER_AGENT_BYTES).len(), 1024);
        let odd = format!("a{long}");
        assert_eq!(truncate_bytes(&odd, MAX_USER_AGENT_BYTES).len(), 1023);
        // A recognisable user agent followed by padding is still recognised.
        let padded = format!(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:126.0) Gecko/20100101 Firefox/126.0 {}",
            "x".repeat(20_000)
        );
        assert_eq!(
            parse_user_agent(&padded).browser.as_deref(),
            Some("Firefox")
        );
    }

    #[test]
    fn fields_are_capped_to_the_column_width() {
        let long_version = format!("ChatGPT/1.{} (iOS 17.5; iPhone15,2)", "2".repeat(500));
        let parsed = parse_user_agent(&long_version);
        assert_eq!(parsed.browser_version.unwrap().len(), MAX_FIELD_CHARS);
        let long_os = format!(
            "Mozilla/5.0 (Windows NT 10.0 {}; Win64) Gecko/20100101 Firefox/126.0",
            "9".repeat(500)
        );
        let parsed = parse_user_agent(&long_os);
        assert!(
            parsed
                .os_version
                .is_none_or(|version| version.chars().count() <= MAX_FIELD_CHARS)
        );
    }

    #[test]
    fn mutated_real_user_agents_do_not_panic() {
        let samples = [
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (compatible; MSIE 9.0; Windows Phone OS 7.5; Trident/5.0; IEMobile/9.0)",
            "ChatGPT/1.2025.123 (iOS 17.5; iPhone15,2; build 1234)",
            "DoCoMo/2.0 P903i(c100;TB;W24H12)",
        ];
        let mut seed = 42_u64;
        for sample in samples {
            let chars: Vec<char> = sample.chars().collect();
            for _ in 0..500 {
                let cut = (pseudo_random(&mut seed) as usize) % (chars.len() + 1);
                let noise = char::from_u32((pseudo_random(&mut seed) % 0x3000) as u32)
                    .unwrap_or('\u{fffd}');
                let mutated: String = chars[..cut]
                    .iter()
                    .copied()
                    .chain(std::iter::once(noise))
                    .chain(chars[cut..].iter().copied().rev())
                    .collect();
                let _ = parse_user_agent(&mutated);
                let _ = parse_user_agent(&mutated[..mutated.floor_char_boundary(cut)]);
            }
        }
    }
}
