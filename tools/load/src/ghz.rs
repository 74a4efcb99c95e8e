//! What ghz accepts, taken from its sources, and a check of a config file (or a data file)
//! against it: only ghz's config keys, only `data` that is an object or a non-empty array of
//! objects, and only ghz's own template fields and functions in the strings of `data` and
//! `metadata`. The shipped configs under `deploy/ghz/` are held to this (see
//! `tests/shipped_configs.rs`), so that real ghz runs them unchanged.

use serde_json::Value;

use crate::template;

/// Every key of a ghz config file: the `json` tags of `Config` in ghz's `runner/config.go`.
pub const CONFIG_KEYS: &[&str] = &[
    "proto",
    "protoset",
    "call",
    "cacert",
    "cert",
    "key",
    "skipTLS",
    "skipFirst",
    "cname",
    "authority",
    "insecure",
    "total",
    "async",
    "concurrency",
    "concurrency-schedule",
    "concurrency-start",
    "concurrency-end",
    "concurrency-step",
    "concurrency-step-duration",
    "concurrency-max-duration",
    "connections",
    "rps",
    "duration",
    "duration-stop",
    "max-duration",
    "timeout",
    "data",
    "data-file",
    "binary-file",
    "metadata",
    "metadata-file",
    "stream-interval",
    "output",
    "format",
    "connect-timeout",
    "keepalive",
    "cpus",
    "import-paths",
    "name",
    "tags",
    "reflect-metadata",
    "debug",
    "host",
    "enable-compression",
    "load-schedule",
    "load-start",
    "load-end",
    "load-step",
    "load-step-duration",
    "load-max-duration",
];

/// The template data of each call: the fields of `CallData` in ghz's `runner/calldata.go`.
pub const TEMPLATE_FIELDS: &[&str] = &[
    "WorkerID",
    "RequestNumber",
    "FullyQualifiedName",
    "MethodName",
    "ServiceName",
    "InputName",
    "OutputName",
    "IsClientStreaming",
    "IsServerStreaming",
    "Timestamp",
    "TimestampUnix",
    "TimestampUnixMilli",
    "TimestampUnixNano",
    "UUID",
];

/// The template functions: `newUUID` and `randomString` (`tmplFuncMap` in ghz's
/// `runner/calldata.go`) and `randomInt` (documented in ghz's `www/docs/calldata.md`:
/// `randomInt min max`, in `[min, max)`).
pub const TEMPLATE_FUNCTIONS: &[&str] = &["newUUID", "randomString", "randomInt"];

/// What in `config` (a parsed ghz config file) ghz would not take as this project means it:
/// keys ghz does not know (it ignores them silently), `data` of a shape ghz refuses
/// (`checkData` in `runner/config.go`), and template actions that are not ghz's (ghz then
/// sends the text unchanged, `executeData` in `runner/calldata.go`). Empty when all is ghz's.
pub fn check_config(config: &Value) -> Vec<String> {
    let Some(object) = config.as_object() else {
        return vec!["a ghz config file is a JSON object".to_owned()];
    };
    let mut problems = Vec::new();
    for key in object.keys() {
        if !CONFIG_KEYS.contains(&key.as_str()) {
            problems.push(format!("`{key}` is not a ghz config key"));
        }
    }
    if let Some(data) = object.get("data") {
        problems.extend(check_data(data));
    }
    if let Some(metadata) = object.get("metadata") {
        match metadata.as_object() {
            Some(metadata) => {
                for (name, value) in metadata {
                    match value.as_str() {
                        Some(text) => problems.extend(check_templates(text)),
                        None => problems.push(format!("metadata `{name}` is not a string")),
                    }
                }
            }
            None => problems.push("`metadata` is not an object of strings".to_owned()),
        }
    }
    problems
}

/// What in `data` (a config's `data`, or a data file given with `-D`) ghz refuses or would not
/// template: it must be an object or a non-empty array of objects, with ghz's template actions
/// only.
pub fn check_data(data: &Value) -> Vec<String> {
    let shape_ok = match data {
        Value::Object(_) => true,
        Value::Array(items) => !items.is_empty() && items.iter().all(Value::is_object),
        _ => false,
    };
    let mut problems = Vec::new();
    if !shape_ok {
        problems.push("data is neither an object nor a non-empty array of objects".to_owned());
    }
    let mut strings = Vec::new();
    collect_strings(data, &mut strings);
    for text in strings {
        problems.extend(check_templates(text));
    }
    problems
}

fn check_templates(text: &str) -> Vec<String> {
    match template::parse(text) {
        Ok(_) => Vec::new(),
        Err(error) => vec![format!("{text:?}: {error}")],
    }
}

fn collect_strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(text) => out.push(text),
        Value::Array(items) => items.iter().for_each(|item| collect_strings(item, out)),
        Value::Object(fields) => fields.values().for_each(|item| collect_strings(item, out)),
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refuses_keys_and_template_fields_that_are_not_ghz() {
        let problems = check_config(&json!({
            "call": "activesessions.v1.SessionService.ValidateSession",
            "prepare-sessions": 1000,
            "data": {"sessionToken": "{{.Token}}"},
            "metadata": {"request-id": "{{.RequestNumber}}"}
        }));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("prepare-sessions"));
        assert!(problems[1].contains(".Token"));
    }

    #[test]
    fn takes_ghz_fields_functions_and_array_data() {
        let config = json!({
            "call": "x.Y/Z",
            "data": [{"a": "{{.UUID}}-{{ .RequestNumber }}"}, {"a": "{{newUUID}} {{randomString 8}} {{randomInt 1 9}}"}],
            "data-file": "ghz-data/validate.json"
        });
        assert_eq!(check_config(&config), Vec::<String>::new());
        assert!(!check_data(&json!([])).is_empty());
        assert!(!check_data(&json!(["text"])).is_empty());
    }
}
