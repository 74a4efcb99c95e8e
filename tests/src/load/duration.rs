//! Durations the way ghz (Go's `time.ParseDuration`) writes them: `10s`, `1m30s`, `250ms`,
//! `1.5s`, `0`.

use std::time::Duration;

/// Parses a Go duration: a sequence of decimal numbers, each with an optional fraction and a
/// unit (`ns`, `us` or `µs`, `ms`, `s`, `m`, `h`), such as `1m30s` or `2.5s`. `0` is zero.
/// Negative durations are refused.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let invalid = || format!("invalid duration {text:?} (expected e.g. 10s, 1m30s, 250ms)");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() || rest.starts_with('-') {
        return Err(invalid());
    }
    let mut total_nanos = 0f64;
    let mut rest = rest;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid());
        }
        let value: f64 = number.parse().map_err(|_| invalid())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(invalid()),
        };
        total_nanos += value * scale;
        rest = tail;
    }
    if !total_nanos.is_finite() || total_nanos > u64::MAX as f64 {
        return Err(invalid());
    }
    Ok(Duration::from_nanos(total_nanos.round() as u64))
}

/// Formats nanoseconds the way ghz's summary does: `N ns` under 10 µs, then milliseconds with
/// two decimals, then seconds with two decimals.
pub fn format_nano_unit(nanos: u64) -> String {
    if nanos < 10_000 {
        return format!("{nanos} ns");
    }
    let millis = nanos as f64 / 1e6;
    if millis < 1000.0 {
        format!("{millis:.2} ms")
    } else {
        format!("{:.2} s", millis / 1000.0)
    }
}

/// Nanoseconds of a duration as the integer Go's `time.Duration` marshals to (saturating).
pub fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_go_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_go_duration("3us"), Ok(Duration::from_micros(3)));
        assert!(parse_go_duration("10").is_err());
        assert!(parse_go_duration("-1s").is_err());
        assert!(parse_go_duration("1x").is_err());
        assert!(parse_go_duration("").is_err());
    }

    #[test]
    fn formats_like_ghz() {
        assert_eq!(format_nano_unit(9_999), "9999 ns");
        assert_eq!(format_nano_unit(1_234_567), "1.23 ms");
        assert_eq!(format_nano_unit(2_500_000_000), "2.50 s");
    }
}
