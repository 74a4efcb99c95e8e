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

/// The violations found in one request. Empty means valid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// No violations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a violation.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
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
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(self),
        }
    }

    /// `Ok(())` when nothing was recorded.
    pub fn into_result(self) -> Result<(), Violations> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }

    /// The violations.
    pub fn iter(&self) -> impl Iterator<Item = &FieldViolation> {
        self.0.iter()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A single violation.
    pub fn single(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut violations = Self::new();
        violations.add(field, description);
        violations
    }
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

/// Checks free text: at most `max` characters and no control characters (NUL included).
pub fn check_free_text(value: &str, max: usize) -> Result<(), String> {
    if value.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
}
