//! The rules every string field obeys, and the collector of field violations that becomes a
//! `google.rpc.BadRequest`.

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The request field, as a proto path (`subject.account_id`).
    pub field: String,
    /// What is wrong with it.
    pub description: String,
}

/// The most field violations one refusal reports; any further ones are only counted, so that a
/// request made of many bad entries cannot produce error details larger than itself.
pub const MAX_REPORTED_VIOLATIONS: usize = 10;

/// The longest field path a reported violation carries, in bytes.
pub const MAX_FIELD_BYTES: usize = 64;

/// The longest description a reported violation carries, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 160;

/// The violations found in one request. Empty means valid. It keeps the first
/// [`MAX_REPORTED_VIOLATIONS`] (their field and description cut to [`MAX_FIELD_BYTES`] and
/// [`MAX_DESCRIPTION_BYTES`]) and counts the rest, so whatever the request, the refusal built from
/// it stays a few kilobytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations {
    reported: Vec<FieldViolation>,
    omitted: usize,
}

impl Violations {
    /// No violations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a violation.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        if self.reported.len() >= MAX_REPORTED_VIOLATIONS {
            self.omitted += 1;
            return;
        }
        let mut field = field.into();
        let mut description = description.into();
        truncate_at_char_boundary(&mut field, MAX_FIELD_BYTES);
        truncate_at_char_boundary(&mut description, MAX_DESCRIPTION_BYTES);
        self.reported.push(FieldViolation { field, description });
    }

    /// Keeps the value of a successful parse, or records its error against `field`.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(description) => {
                self.add(field, description);
                None
            }
        }
    }

    /// `Ok(value)` when nothing was recorded and the value is present.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, Violations> {
        match value {
            Some(value) if self.is_empty() => Ok(value),
            _ => Err(self),
        }
    }

    /// `Ok` with what `build` makes of the parsed fields when nothing was recorded; `build` reads
    /// each field with `?`, so a request's conversion names its fields once, in one struct
    /// literal, instead of matching a tuple of them.
    pub fn complete<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, Violations> {
        if !self.is_empty() {
            return Err(self);
        }
        build().ok_or(self)
    }

    /// `Ok(())` when nothing was recorded.
    pub fn into_result(self) -> Result<(), Violations> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    /// The reported violations (at most [`MAX_REPORTED_VIOLATIONS`]).
    pub fn iter(&self) -> impl Iterator<Item = &FieldViolation> {
        self.reported.iter()
    }

    /// How many violations were recorded beyond the reported ones.
    pub fn omitted(&self) -> usize {
        self.omitted
    }

    /// How many violations were recorded in all.
    pub fn total(&self) -> usize {
        self.reported.len() + self.omitted
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.reported.is_empty()
    }

    /// A single violation.
    pub fn single(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut violations = Self::new();
        violations.add(field, description);
        violations
    }
}

/// Cuts `text` to at most `max_bytes`, at a character boundary, marking the cut with `…`.
pub fn truncate_at_char_boundary(text: &mut String, max_bytes: usize) {
    const ELLIPSIS: &str = "…";
    if text.len() <= max_bytes {
        return;
    }
    let mut end = max_bytes.saturating_sub(ELLIPSIS.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(ELLIPSIS);
}

/// Checks that a repeated request field has at most `max` entries, before its entries are checked
/// one by one: a list over the bound is one violation, not one per entry.
pub fn check_list_length<T>(
    violations: &mut Violations,
    field: &str,
    entries: &[T],
    max: usize,
) -> bool {
    if entries.len() > max {
        violations.add(
            field,
            format!("must have at most {max} entries (has {})", entries.len()),
        );
        return false;
    }
    true
}

/// Checks an identifier-like string: 1 to `max` characters, no control characters (NUL
/// included), no surrounding whitespace.
pub fn check_identifier(value: &str, max: usize) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    check_free_text(value, max)?;
    if value.trim() != value {
        return Err("must not start or end with whitespace".into());
    }
    Ok(())
}

/// Checks free text: at most `max` characters, and none of the characters that could make the text
/// render as something else on the settings page (see [`forbidden_character`]).
pub fn check_free_text(value: &str, max: usize) -> Result<(), String> {
    if value.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if let Some((position, kind)) = value
        .chars()
        .enumerate()
        .find_map(|(i, c)| forbidden_character(c).map(|kind| (i, kind)))
    {
        return Err(format!("must not contain {kind} (character {position})"));
    }
    Ok(())
}

/// Why `c` may not appear in any stored or displayed text, if it may not: control characters (NUL
/// included), Unicode format characters (general category Cf: the bidirectional overrides and
/// isolates U+202A–U+202E and U+2066–U+2069, U+200B–U+200F, U+FEFF, …), line and paragraph
/// separators (U+2028, U+2029) and noncharacters (U+FDD0–U+FDEF and every code point ending in
/// FFFE or FFFF). Each of these can reorder, hide or break what the page shows.
pub fn forbidden_character(c: char) -> Option<&'static str> {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    if c.is_control() {
        return Some("control characters");
    }
    if is_noncharacter(c) {
        return Some("Unicode noncharacters");
    }
    match c.general_category() {
        GeneralCategory::Format => {
            Some("Unicode format characters (such as bidirectional controls)")
        }
        GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator => {
            Some("line or paragraph separators")
        }
        _ => None,
    }
}

/// U+FDD0–U+FDEF, and the last two code points of every plane.
fn is_noncharacter(c: char) -> bool {
    let code = u32::from(c);
    (0xFDD0..=0xFDEF).contains(&code) || code & 0xFFFE == 0xFFFE
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn identifiers_refuse_empty_long_control_and_padding() {
        assert!(check_identifier("acct_123", 128).is_ok());
        assert!(check_identifier("", 128).is_err());
        assert!(check_identifier(&"a".repeat(129), 128).is_err());
        assert!(check_identifier("a\0b", 128).is_err());
        assert!(check_identifier(" a", 128).is_err());
        assert!(check_identifier(&"é".repeat(128), 128).is_ok());
    }

    #[test]
    fn text_refuses_format_characters_separators_and_noncharacters() {
        for bad in [
            '\u{202A}',
            '\u{202B}',
            '\u{202C}',
            '\u{202D}',
            '\u{202E}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{200B}',
            '\u{200E}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{2028}',
            '\u{2029}',
            '\u{FFFE}',
            '\u{FFFF}',
            '\u{FDD0}',
            '\u{1FFFF}',
            '\u{10FFFE}',
            '\u{E0001}',
        ] {
            let text = format!("Chrome{bad}gpj.exe");
            assert!(
                check_free_text(&text, 100).is_err(),
                "U+{:04X} accepted",
                u32::from(bad)
            );
            assert!(
                check_identifier(&text, 100).is_err(),
                "U+{:04X} accepted",
                u32::from(bad)
            );
        }
        for good in [
            "Mozilla/5.0 (Macintosh)",
            "São Paulo",
            "東京",
            "a-b_c.d",
            "emoji 🙂",
        ] {
            assert!(check_free_text(good, 100).is_ok(), "{good} refused");
        }
    }

    #[test]
    fn violations_report_at_most_the_bound_and_count_the_rest() {
        let mut violations = Violations::new();
        for i in 0..1000 {
            violations.add(format!("products[{i}]"), "must be a known product");
        }
        assert_eq!(violations.iter().count(), MAX_REPORTED_VIOLATIONS);
        assert_eq!(violations.omitted(), 1000 - MAX_REPORTED_VIOLATIONS);
        assert_eq!(violations.total(), 1000);
    }

    #[test]
    fn long_fields_and_descriptions_are_cut_at_a_character_boundary() {
        let mut violations = Violations::new();
        violations.add("é".repeat(100), "ü".repeat(1000));
        let reported = violations.iter().next().unwrap();
        assert!(reported.field.len() <= MAX_FIELD_BYTES);
        assert!(reported.description.len() <= MAX_DESCRIPTION_BYTES);
        assert!(reported.description.ends_with('…'));
    }
}
