//! The part of Go's `text/template` that ghz's call data uses: `{{.Field}}` for a field of the
//! call's template data and `{{function args}}` for ghz's three functions, and nothing else
//! (no pipelines, conditions or variables). The fields and functions are those listed in
//! [`crate::ghz`]; their values follow `newCallData` in ghz's `runner/calldata.go`.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::ghz::{TEMPLATE_FIELDS, TEMPLATE_FUNCTIONS};

/// Letters and digits, ghz's `charset` for `randomString` (`runner/calldata.go`).
const CHARSET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text copied as it is.
    Text(String),
    /// `{{.Name}}`: a field of the call data (one of [`TEMPLATE_FIELDS`]).
    Field(String),
    /// `{{newUUID}}`: a new UUID v4 at each use.
    NewUuid,
    /// `{{randomString n}}`: `n` random letters and digits (2 to 16 of them when `n <= 0`).
    RandomString(i64),
    /// `{{randomInt min max}}`: a random integer in `[min, max)`.
    RandomInt(i64, i64),
}

/// The template data of one call (ghz's `CallData`).
#[derive(Debug, Clone)]
pub struct CallData {
    /// `g<worker>c<connection>`, prefixed with `<name>:` when the run has a name.
    pub worker_id: String,
    /// The call's number, from 0.
    pub request_number: u64,
    /// `package.Service.Method`.
    pub fully_qualified_name: String,
    /// `Method`.
    pub method_name: String,
    /// `Service`.
    pub service_name: String,
    /// The request message's name.
    pub input_name: String,
    /// The response message's name.
    pub output_name: String,
    /// When the call's data was made.
    pub now: SystemTime,
    /// A UUID v4, the same for the whole call.
    pub uuid: String,
}

/// Parses `text`, refusing any action that is not one of ghz's fields or functions.
pub fn parse(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_owned()));
        }
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| "an action opened with `{{` is not closed".to_owned())?;
        pieces.push(action(after[..close].trim())?);
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    Ok(pieces)
}

fn action(source: &str) -> Result<Piece, String> {
    let words: Vec<&str> = source.split_whitespace().collect();
    let integer = |index: usize| -> Result<i64, String> {
        words
            .get(index)
            .and_then(|word| word.parse().ok())
            .ok_or_else(|| format!("`{source}` needs an integer argument"))
    };
    match words.as_slice() {
        [field] if field.starts_with('.') => {
            let name = &field[1..];
            if TEMPLATE_FIELDS.contains(&name) {
                Ok(Piece::Field(name.to_owned()))
            } else {
                Err(format!(
                    "`{{{{{source}}}}}` is not a ghz template field (ghz has {})",
                    TEMPLATE_FIELDS.join(", ")
                ))
            }
        }
        ["newUUID"] => Ok(Piece::NewUuid),
        ["randomString", _] => Ok(Piece::RandomString(integer(1)?)),
        ["randomInt", _, _] => Ok(Piece::RandomInt(integer(1)?, integer(2)?)),
        _ => Err(format!(
            "`{{{{{source}}}}}` is not a ghz template action (fields .{}; functions {})",
            TEMPLATE_FIELDS.join(", ."),
            TEMPLATE_FUNCTIONS.join(", ")
        )),
    }
}

/// Whether `text` has any action at all (text without one is sent as it is, built once).
pub fn has_actions(text: &str) -> bool {
    text.contains("{{")
}

/// The text of `pieces` for the call `data`.
pub fn render(pieces: &[Piece], data: &CallData) -> String {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Field(name) => out.push_str(&field(name, data)),
            Piece::NewUuid => out.push_str(&uuid::Uuid::new_v4().to_string()),
            Piece::RandomString(length) => out.push_str(&random_string(*length)),
            Piece::RandomInt(min, max) => out.push_str(&random_int(*min, *max).to_string()),
        }
    }
    out
}

fn field(name: &str, data: &CallData) -> String {
    let since_epoch = data.now.duration_since(UNIX_EPOCH).unwrap_or_default();
    match name {
        "WorkerID" => data.worker_id.clone(),
        "RequestNumber" => data.request_number.to_string(),
        "FullyQualifiedName" => data.fully_qualified_name.clone(),
        "MethodName" => data.method_name.clone(),
        "ServiceName" => data.service_name.clone(),
        "InputName" => data.input_name.clone(),
        "OutputName" => data.output_name.clone(),
        // Unary calls only (the runner refuses streaming ones).
        "IsClientStreaming" | "IsServerStreaming" => "false".to_owned(),
        "Timestamp" => humantime::format_rfc3339_seconds(data.now).to_string(),
        "TimestampUnix" => since_epoch.as_secs().to_string(),
        "TimestampUnixMilli" => since_epoch.as_millis().to_string(),
        "TimestampUnixNano" => since_epoch.as_nanos().to_string(),
        _ => data.uuid.clone(),
    }
}

fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // The OS generator does not fail on the platforms this runs on; zeros would still render.
    let _ = getrandom::fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

fn random_string(length: i64) -> String {
    // ghz: `length <= 0` picks a length from 2 to 16.
    let length = if length <= 0 {
        2 + random_u64() % 15
    } else {
        length.unsigned_abs()
    };
    (0..length)
        .map(|_| char::from(CHARSET[(random_u64() % CHARSET.len() as u64) as usize]))
        .collect()
}

fn random_int(min: i64, max: i64) -> i64 {
    if max <= min {
        return min;
    }
    let span = max.abs_diff(min);
    min.wrapping_add_unsigned(random_u64() % span)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn call_data() -> CallData {
        CallData {
            worker_id: "g3c1".into(),
            request_number: 42,
            fully_qualified_name: "activesessions.v1.SessionService.ValidateSession".into(),
            method_name: "ValidateSession".into(),
            service_name: "SessionService".into(),
            input_name: "ValidateSessionRequest".into(),
            output_name: "ValidateSessionResponse".into(),
            now: UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123),
            uuid: "1b4e28ba-2fa1-41d2-883f-0016d3cca427".into(),
        }
    }

    #[test]
    fn renders_fields_and_functions() {
        let pieces = parse(
            "{{.WorkerID}}/{{ .RequestNumber }}/{{.UUID}}/{{.TimestampUnixMilli}}/{{.Timestamp}}",
        )
        .unwrap();
        assert_eq!(
            render(&pieces, &call_data()),
            "g3c1/42/1b4e28ba-2fa1-41d2-883f-0016d3cca427/1700000000123/2023-11-14T22:13:20Z"
        );
        let random = render(
            &parse("{{randomString 8}}|{{randomInt 5 7}}|{{newUUID}}").unwrap(),
            &call_data(),
        );
        let parts: Vec<&str> = random.split('|').collect();
        assert_eq!(parts[0].len(), 8);
        assert!(["5", "6"].contains(&parts[1]));
        assert_eq!(parts[2].len(), 36);
    }

    #[test]
    fn refuses_what_ghz_does_not_have() {
        assert!(parse("{{.Token}}").is_err());
        assert!(parse("{{.AccountId}}").is_err());
        assert!(parse("{{randomString}}").is_err());
        assert!(parse("{{ if .UUID }}x{{ end }}").is_err());
        assert!(parse("{{.UUID").is_err());
        assert_eq!(parse("plain").unwrap(), vec![Piece::Text("plain".into())]);
    }
}
