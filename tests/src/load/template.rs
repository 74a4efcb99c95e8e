//! ghz's per-request templates: `{{.RequestNumber}}`, `{{.TimestampUnix}}`, `{{.UUID}}`, ...
//! in the strings of the call data and in metadata values, plus this tool's own
//! `{{.Token}}`, `{{.AccountId}}`, `{{.SessionId}}` and `{{.DeviceId}}` of a prepared session.
//!
//! Only the forms ghz documents are understood: a field (`{{ .Name }}`), `{{newUUID}}` and
//! `{{randomString N}}`; Go's trim markers (`{{-` and `-}}`) are accepted. Anything else is
//! refused when the run starts, not sent as text.

use std::{cell::OnceCell, time::SystemTime};

use serde_json::Value;

use super::{PreparedSession, message::Rpc};

/// A value a template can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    WorkerId,
    RequestNumber,
    FullyQualifiedName,
    MethodName,
    ServiceName,
    InputName,
    OutputName,
    IsClientStreaming,
    IsServerStreaming,
    Timestamp,
    TimestampUnix,
    TimestampUnixMilli,
    TimestampUnixNano,
    Uuid,
    Ulid,
    Token,
    AccountId,
    SessionId,
    DeviceId,
}

/// Every field by its template name.
const FIELDS: [(&str, Field); 19] = [
    ("WorkerID", Field::WorkerId),
    ("RequestNumber", Field::RequestNumber),
    ("FullyQualifiedName", Field::FullyQualifiedName),
    ("MethodName", Field::MethodName),
    ("ServiceName", Field::ServiceName),
    ("InputName", Field::InputName),
    ("OutputName", Field::OutputName),
    ("IsClientStreaming", Field::IsClientStreaming),
    ("IsServerStreaming", Field::IsServerStreaming),
    ("Timestamp", Field::Timestamp),
    ("TimestampUnix", Field::TimestampUnix),
    ("TimestampUnixMilli", Field::TimestampUnixMilli),
    ("TimestampUnixNano", Field::TimestampUnixNano),
    ("UUID", Field::Uuid),
    ("ULID", Field::Ulid),
    ("Token", Field::Token),
    ("AccountId", Field::AccountId),
    ("SessionId", Field::SessionId),
    ("DeviceId", Field::DeviceId),
];

impl Field {
    /// True for the fields that come from a prepared session.
    pub(crate) fn needs_session(self) -> bool {
        matches!(
            self,
            Self::Token | Self::AccountId | Self::SessionId | Self::DeviceId
        )
    }

    fn name(self) -> &'static str {
        FIELDS
            .iter()
            .find(|(_, field)| *field == self)
            .map_or("?", |(name, _)| name)
    }
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Field(Field),
    NewUuid,
    RandomString(usize),
}

/// A parsed template string.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

/// What one call's templates see. `.UUID` and `.ULID` are drawn once per call, so every use
/// within one call agrees (as ghz's `.UUID` does); `newUUID` draws a new one each time.
#[derive(Debug)]
pub(crate) struct CallData<'a> {
    pub(crate) worker_id: &'a str,
    pub(crate) request_number: u64,
    pub(crate) rpc: Rpc,
    pub(crate) now: SystemTime,
    pub(crate) session: Option<&'a PreparedSession>,
    uuid: OnceCell<String>,
    ulid: OnceCell<String>,
}

impl<'a> CallData<'a> {
    pub(crate) fn new(
        worker_id: &'a str,
        request_number: u64,
        rpc: Rpc,
        session: Option<&'a PreparedSession>,
    ) -> Self {
        Self {
            worker_id,
            request_number,
            rpc,
            now: SystemTime::now(),
            session,
            uuid: OnceCell::new(),
            ulid: OnceCell::new(),
        }
    }
}

impl Template {
    /// Parses `text`. Text without `{{` is one literal.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut trim_next = false;
        while let Some(open) = rest.find("{{") {
            let mut literal = &rest[..open];
            if trim_next {
                literal = literal.trim_start();
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("unclosed {{{{ in template {text:?}"))?;
            let mut action = &after[..close];
            if let Some(stripped) = action.strip_prefix('-') {
                literal = literal.trim_end();
                action = stripped;
            }
            trim_next = false;
            if let Some(stripped) = action.strip_suffix('-') {
                trim_next = true;
                action = stripped;
            }
            if !literal.is_empty() {
                parts.push(Part::Text(literal.to_owned()));
            }
            parts.push(parse_action(action.trim(), text)?);
            rest = &after[close + 2..];
        }
        let literal = if trim_next { rest.trim_start() } else { rest };
        if !literal.is_empty() {
            parts.push(Part::Text(literal.to_owned()));
        }
        Ok(Self { parts })
    }

    /// True when the template has no action: it always renders to the same text.
    pub(crate) fn is_static(&self) -> bool {
        self.parts.iter().all(|part| matches!(part, Part::Text(_)))
    }

    /// The fields the template names.
    pub(crate) fn fields(&self) -> impl Iterator<Item = Field> + '_ {
        self.parts.iter().filter_map(|part| match part {
            Part::Field(field) => Some(*field),
            _ => None,
        })
    }

    /// Appends the rendered text to `out`.
    pub(crate) fn render_into(&self, data: &CallData<'_>, out: &mut String) -> Result<(), String> {
        use std::fmt::Write;
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::NewUuid => out.push_str(&uuid::Uuid::new_v4().to_string()),
                Part::RandomString(length) => out.push_str(&random_string(*length)),
                Part::Field(field) => {
                    let session = || {
                        data.session.ok_or_else(|| {
                            format!(
                                "{{{{.{}}}}} needs prepared sessions (--prepare-sessions N)",
                                field.name()
                            )
                        })
                    };
                    // Writing to a String cannot fail.
                    let _ = match field {
                        Field::WorkerId => write!(out, "{}", data.worker_id),
                        Field::RequestNumber => write!(out, "{}", data.request_number),
                        Field::FullyQualifiedName => {
                            write!(out, "{}.{}", data.rpc.service(), data.rpc.method())
                        }
                        Field::MethodName => write!(out, "{}", data.rpc.method()),
                        Field::ServiceName => write!(out, "{}", data.rpc.service_short()),
                        Field::InputName => write!(out, "{}", data.rpc.input()),
                        Field::OutputName => write!(out, "{}", data.rpc.output()),
                        Field::IsClientStreaming | Field::IsServerStreaming => {
                            write!(out, "false")
                        }
                        Field::Timestamp => {
                            write!(out, "{}", humantime::format_rfc3339_seconds(data.now))
                        }
                        Field::TimestampUnix => write!(out, "{}", unix(data.now).as_secs()),
                        Field::TimestampUnixMilli => {
                            write!(out, "{}", unix(data.now).as_millis())
                        }
                        Field::TimestampUnixNano => write!(out, "{}", unix(data.now).as_nanos()),
                        Field::Uuid => write!(
                            out,
                            "{}",
                            data.uuid.get_or_init(|| uuid::Uuid::new_v4().to_string())
                        ),
                        Field::Ulid => write!(
                            out,
                            "{}",
                            data.ulid.get_or_init(|| ulid::Ulid::generate().to_string())
                        ),
                        Field::Token => write!(out, "{}", session()?.token),
                        Field::AccountId => write!(out, "{}", session()?.account_id),
                        Field::SessionId => write!(out, "{}", session()?.session_id),
                        Field::DeviceId => write!(out, "{}", session()?.device_id),
                    };
                }
            }
        }
        Ok(())
    }

    /// The rendered text.
    pub(crate) fn render(&self, data: &CallData<'_>) -> Result<String, String> {
        let mut out = String::new();
        self.render_into(data, &mut out)?;
        Ok(out)
    }
}

fn parse_action(action: &str, text: &str) -> Result<Part, String> {
    if let Some(name) = action.strip_prefix('.') {
        return FIELDS
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, field)| Part::Field(*field))
            .ok_or_else(|| {
                let known: Vec<_> = FIELDS.iter().map(|(name, _)| format!(".{name}")).collect();
                format!(
                    "unknown template field {{{{.{name}}}}} in {text:?}; known: {}, newUUID, \
                     randomString N",
                    known.join(", ")
                )
            });
    }
    let mut words = action.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("newUUID"), None, None) => Ok(Part::NewUuid),
        (Some("randomString"), length, None) => {
            let length = match length {
                None => 0,
                Some(length) => length
                    .parse::<i64>()
                    .map_err(|_| format!("randomString takes a length, in {text:?}"))?,
            };
            Ok(Part::RandomString(usize::try_from(length).unwrap_or(0)))
        }
        _ => Err(format!(
            "unsupported template action {{{{{action}}}}} in {text:?} (supported: a field such as \
             {{{{.RequestNumber}}}}, newUUID, randomString N)"
        )),
    }
}

fn unix(now: SystemTime) -> std::time::Duration {
    now.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

/// ghz's `randomString`: letters and digits; a length of 0 or less picks 2 to 16.
fn random_string(length: usize) -> String {
    const CHARSET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut random = Vec::new();
    let mut draw = || {
        if random.is_empty() {
            random.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        }
        random.pop().unwrap_or(0)
    };
    let length = if length == 0 {
        2 + usize::from(draw()) % 15
    } else {
        length
    };
    (0..length)
        .map(|_| char::from(CHARSET[usize::from(draw()) % CHARSET.len()]))
        .collect()
}

/// A JSON value whose strings may hold templates; subtrees without any are kept as they are.
#[derive(Debug, Clone)]
pub(crate) enum ValueTemplate {
    Static(Value),
    String(Template),
    Array(Vec<ValueTemplate>),
    Object(Vec<(String, ValueTemplate)>),
}

impl ValueTemplate {
    pub(crate) fn compile(value: &Value) -> Result<Self, String> {
        let compiled = match value {
            Value::String(text) => {
                let template = Template::parse(text)?;
                if template.is_static() {
                    return Ok(Self::Static(value.clone()));
                }
                Self::String(template)
            }
            Value::Array(items) => Self::Array(
                items
                    .iter()
                    .map(Self::compile)
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Value::Object(map) => Self::Object(
                map.iter()
                    .map(|(key, value)| Ok((key.clone(), Self::compile(value)?)))
                    .collect::<Result<Vec<_>, String>>()?,
            ),
            other => return Ok(Self::Static(other.clone())),
        };
        if compiled.is_static() {
            Ok(Self::Static(value.clone()))
        } else {
            Ok(compiled)
        }
    }

    pub(crate) fn is_static(&self) -> bool {
        match self {
            Self::Static(_) => true,
            Self::String(_) => false,
            Self::Array(items) => items.iter().all(Self::is_static),
            Self::Object(fields) => fields.iter().all(|(_, value)| value.is_static()),
        }
    }

    /// Every field named anywhere in the value.
    pub(crate) fn fields(&self) -> Vec<Field> {
        match self {
            Self::Static(_) => Vec::new(),
            Self::String(template) => template.fields().collect(),
            Self::Array(items) => items.iter().flat_map(Self::fields).collect(),
            Self::Object(fields) => fields
                .iter()
                .flat_map(|(_, value)| value.fields())
                .collect(),
        }
    }

    pub(crate) fn render(&self, data: &CallData<'_>) -> Result<Value, String> {
        Ok(match self {
            Self::Static(value) => value.clone(),
            Self::String(template) => Value::String(template.render(data)?),
            Self::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| item.render(data))
                    .collect::<Result<_, _>>()?,
            ),
            Self::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(key, value)| Ok((key.clone(), value.render(data)?)))
                    .collect::<Result<_, String>>()?,
            ),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn session() -> PreparedSession {
        PreparedSession {
            token: "ast_tok".into(),
            account_id: "acct-1".into(),
            session_id: "01SESSION".into(),
            device_id: "dev-1".into(),
        }
    }

    #[test]
    fn renders_ghz_fields_and_prepared_sessions() {
        let session = session();
        let data = CallData::new("w0c0", 41, Rpc::ValidateSession, Some(&session));
        let template = Template::parse(
            "n={{.RequestNumber}} t={{ .Token }} a={{.AccountId}} m={{.MethodName}} \
             f={{.FullyQualifiedName}} s={{.ServiceName}}",
        )
        .unwrap();
        assert_eq!(
            template.render(&data).unwrap(),
            "n=41 t=ast_tok a=acct-1 m=ValidateSession \
             f=activesessions.v1.SessionService.ValidateSession s=SessionService"
        );
        let uuid = Template::parse("{{.UUID}}/{{.UUID}}").unwrap();
        let rendered = uuid.render(&data).unwrap();
        let (first, second) = rendered.split_once('/').unwrap();
        assert_eq!(first, second, ".UUID is fixed within one call");
        assert_eq!(first.len(), 36);
        let stamp = Template::parse("{{.TimestampUnix}} {{.TimestampUnixNano}}").unwrap();
        let rendered = stamp.render(&data).unwrap();
        let (secs, nanos) = rendered.split_once(' ').unwrap();
        assert!(secs.parse::<u64>().unwrap() > 1_600_000_000);
        assert!(nanos.starts_with(secs));
        assert_eq!(
            Template::parse("{{randomString 8}}")
                .unwrap()
                .render(&data)
                .unwrap()
                .len(),
            8
        );
        assert_eq!(
            Template::parse("a {{- .RequestNumber -}} b")
                .unwrap()
                .render(&data)
                .unwrap(),
            "a41b"
        );
    }

    #[test]
    fn refuses_unknown_actions_and_missing_sessions() {
        assert!(
            Template::parse("{{.Nope}}")
                .unwrap_err()
                .contains("unknown")
        );
        assert!(Template::parse("{{printf \"x\"}}").is_err());
        assert!(Template::parse("{{.Token").is_err());
        let data = CallData::new("w", 0, Rpc::ValidateSession, None);
        let error = Template::parse("{{.Token}}")
            .unwrap()
            .render(&data)
            .unwrap_err();
        assert!(error.contains("--prepare-sessions"), "{error}");
    }

    #[test]
    fn json_values_keep_static_subtrees() {
        let value = serde_json::json!({"a": "x", "b": {"c": "{{.RequestNumber}}"}, "d": [1, 2]});
        let compiled = ValueTemplate::compile(&value).unwrap();
        assert!(!compiled.is_static());
        let data = CallData::new("w", 7, Rpc::HealthCheck, None);
        assert_eq!(
            compiled.render(&data).unwrap(),
            serde_json::json!({"a": "x", "b": {"c": "7"}, "d": [1, 2]})
        );
        let plain = ValueTemplate::compile(&serde_json::json!({"a": "x"})).unwrap();
        assert!(plain.is_static());
    }
}
