//! The parser against real browser and first-party app user agents (every field pinned where
//! it matters), and against empty, random, oversized and mutated input, which must give
//! unknown details or at least not panic.

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

/// Parses `agent`, checks every field against `expected`, and returns what was parsed.
fn assert_parses(agent: &str, expected: DeviceDetails) -> DeviceDetails {
    let parsed = parse_user_agent(agent);
    assert_eq!(parsed, expected, "{agent}");
    parsed
}

/// Details with every field known.
fn known(
    browser: &str,
    browser_version: &str,
    os: &str,
    os_version: &str,
    device_type: DeviceType,
) -> DeviceDetails {
    details(
        Some(browser),
        Some(browser_version),
        Some(os),
        Some(os_version),
        device_type,
    )
}

#[test]
fn chrome_on_macos() {
    let parsed = assert_parses(
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        known(
            "Chrome",
            "124.0.0.0",
            "Mac OSX",
            "10.15.7",
            DeviceType::Desktop,
        ),
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
    let parsed = assert_parses(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        known("Safari", "17.5", "iPhone", "17.5", DeviceType::Mobile),
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
    let parsed = assert_parses(
        "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        known("Safari", "17.5", "iPad", "17.5", DeviceType::Tablet),
    );
    assert_eq!(parsed.description().as_deref(), Some("Safari on iPad"));
}

#[test]
fn chrome_on_android_phone() {
    let parsed = assert_parses(
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
        known(
            "Chrome",
            "124.0.6367.82",
            "Android",
            "14",
            DeviceType::Mobile,
        ),
    );
    assert_eq!(parsed.description().as_deref(), Some("Chrome on Android"));
}

#[test]
fn chrome_on_android_tablet() {
    // Android tablets leave out "Mobile".
    assert_parses(
        "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Safari/537.36",
        known(
            "Chrome",
            "124.0.6367.82",
            "Android",
            "13",
            DeviceType::Tablet,
        ),
    );
}

#[test]
fn firefox_on_android_tablet_and_phone() {
    let tablet =
        parse_user_agent("Mozilla/5.0 (Android 14; Tablet; rv:126.0) Gecko/126.0 Firefox/126.0");
    assert_eq!(tablet.browser.as_deref(), Some("Firefox"));
    assert_eq!(tablet.device_type, DeviceType::Tablet);
    let phone =
        parse_user_agent("Mozilla/5.0 (Android 14; Mobile; rv:126.0) Gecko/126.0 Firefox/126.0");
    assert_eq!(phone.device_type, DeviceType::Mobile);
}

#[test]
fn firefox_on_windows() {
    let parsed = assert_parses(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:126.0) Gecko/20100101 Firefox/126.0",
        known(
            "Firefox",
            "126.0",
            "Windows 10",
            "NT 10.0",
            DeviceType::Desktop,
        ),
    );
    assert_eq!(
        parsed.description().as_deref(),
        Some("Firefox on Windows 10")
    );
}

#[test]
fn edge_on_windows() {
    assert_parses(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
        known(
            "Edge",
            "124.0.2478.80",
            "Windows 10",
            "NT 10.0",
            DeviceType::Desktop,
        ),
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
    let parsed = assert_parses(
        "ChatGPT/1.2025.123 (iOS 17.5; iPhone15,2; build 1234)",
        known("ChatGPT", "1.2025.123", "iOS", "17.5", DeviceType::Mobile),
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
    assert_parses(
        "ChatGPT/1.2025.100 (Android 14; Pixel 8)",
        known("ChatGPT", "1.2025.100", "Android", "14", DeviceType::Mobile),
    );
}

#[test]
fn codex_on_macos() {
    let parsed = assert_parses(
        "Codex/0.9.1 (Mac OS X 14.5; arm64)",
        known("Codex", "0.9.1", "Mac OSX", "14.5", DeviceType::Desktop),
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
    assert_parses(
        "ChatGPT/1.2025.123",
        details(
            Some("ChatGPT"),
            Some("1.2025.123"),
            None,
            None,
            DeviceType::Unknown,
        ),
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
            let noise =
                char::from_u32((pseudo_random(&mut seed) % 0x3000) as u32).unwrap_or('\u{fffd}');
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
