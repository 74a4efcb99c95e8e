//! The calls the generator can make: every unary RPC of the three services and
//! `grpc.health.v1.Health/Check`, each built from protobuf JSON (as ghz and grpcurl write it)
//! and sent through the generated client.
//!
//! The generated prost messages do not implement serde, so each request message is read here
//! field by field. Field names are accepted in lowerCamelCase (protobuf JSON) and snake_case;
//! enums by name (`PRODUCT_CHATGPT`, or without the type prefix, `CHATGPT`) or number; 64-bit
//! and 32-bit integers as numbers or strings; `google.protobuf.Duration` as `"3600s"` or
//! `{"seconds": 3600}`. Unknown fields are refused, as protobuf JSON parsing does.

use std::time::Duration;

use active_sessions_client::proto as pb;
use serde_json::{Map, Value};
use tonic::{Status, metadata::MetadataMap, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use pb::{
    account_eligibility_client::AccountEligibilityClient,
    session_service_client::SessionServiceClient,
    trusted_device_service_client::TrustedDeviceServiceClient,
};

const SESSION_SERVICE: &str = "activesessions.v1.SessionService";
const TRUSTED_DEVICE_SERVICE: &str = "activesessions.v1.TrustedDeviceService";
const ACCOUNT_ELIGIBILITY: &str = "activesessions.v1.AccountEligibility";
const HEALTH: &str = "grpc.health.v1.Health";

/// A unary RPC the generator can call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    /// `SessionService/RegisterSession`.
    RegisterSession,
    /// `SessionService/ValidateSession`.
    ValidateSession,
    /// `SessionService/TouchSession`.
    TouchSession,
    /// `SessionService/ListActiveSessions`.
    ListActiveSessions,
    /// `SessionService/RevokeSession`.
    RevokeSession,
    /// `SessionService/RevokeAllSessions`.
    RevokeAllSessions,
    /// `SessionService/GetRevocation`.
    GetRevocation,
    /// `SessionService/ListSecurityEvents`.
    ListSecurityEvents,
    /// `TrustedDeviceService/TrustDevice`.
    TrustDevice,
    /// `TrustedDeviceService/ListTrustedDevices`.
    ListTrustedDevices,
    /// `TrustedDeviceService/RemoveTrustedDevice`.
    RemoveTrustedDevice,
    /// `TrustedDeviceService/CheckDeviceTrust`.
    CheckDeviceTrust,
    /// `AccountEligibility/CheckEligibility`.
    CheckEligibility,
    /// `AccountEligibility/GetAccount`.
    GetAccount,
    /// `AccountEligibility/SetSsoLink`.
    SetSsoLink,
    /// `AccountEligibility/ClearSsoLink`.
    ClearSsoLink,
    /// `AccountEligibility/SetWorkspaceType`.
    SetWorkspaceType,
    /// `grpc.health.v1.Health/Check`: the transport alone, a no-op baseline.
    HealthCheck,
}

/// Streaming RPCs, named so that asking for one gets a precise refusal.
const STREAMING: [(&str, &str); 2] = [(SESSION_SERVICE, "WatchRevocations"), (HEALTH, "Watch")];

impl Rpc {
    /// Every supported call.
    pub const ALL: [Rpc; 18] = [
        Rpc::RegisterSession,
        Rpc::ValidateSession,
        Rpc::TouchSession,
        Rpc::ListActiveSessions,
        Rpc::RevokeSession,
        Rpc::RevokeAllSessions,
        Rpc::GetRevocation,
        Rpc::ListSecurityEvents,
        Rpc::TrustDevice,
        Rpc::ListTrustedDevices,
        Rpc::RemoveTrustedDevice,
        Rpc::CheckDeviceTrust,
        Rpc::CheckEligibility,
        Rpc::GetAccount,
        Rpc::SetSsoLink,
        Rpc::ClearSsoLink,
        Rpc::SetWorkspaceType,
        Rpc::HealthCheck,
    ];

    /// The fully qualified service name, e.g. `activesessions.v1.SessionService`.
    pub fn service(self) -> &'static str {
        match self {
            Rpc::RegisterSession
            | Rpc::ValidateSession
            | Rpc::TouchSession
            | Rpc::ListActiveSessions
            | Rpc::RevokeSession
            | Rpc::RevokeAllSessions
            | Rpc::GetRevocation
            | Rpc::ListSecurityEvents => SESSION_SERVICE,
            Rpc::TrustDevice
            | Rpc::ListTrustedDevices
            | Rpc::RemoveTrustedDevice
            | Rpc::CheckDeviceTrust => TRUSTED_DEVICE_SERVICE,
            Rpc::CheckEligibility
            | Rpc::GetAccount
            | Rpc::SetSsoLink
            | Rpc::ClearSsoLink
            | Rpc::SetWorkspaceType => ACCOUNT_ELIGIBILITY,
            Rpc::HealthCheck => HEALTH,
        }
    }

    /// The service name without its package, e.g. `SessionService`.
    pub fn service_short(self) -> &'static str {
        let service = self.service();
        service.rsplit('.').next().unwrap_or(service)
    }

    /// The method name, e.g. `ValidateSession`.
    pub fn method(self) -> &'static str {
        match self {
            Rpc::RegisterSession => "RegisterSession",
            Rpc::ValidateSession => "ValidateSession",
            Rpc::TouchSession => "TouchSession",
            Rpc::ListActiveSessions => "ListActiveSessions",
            Rpc::RevokeSession => "RevokeSession",
            Rpc::RevokeAllSessions => "RevokeAllSessions",
            Rpc::GetRevocation => "GetRevocation",
            Rpc::ListSecurityEvents => "ListSecurityEvents",
            Rpc::TrustDevice => "TrustDevice",
            Rpc::ListTrustedDevices => "ListTrustedDevices",
            Rpc::RemoveTrustedDevice => "RemoveTrustedDevice",
            Rpc::CheckDeviceTrust => "CheckDeviceTrust",
            Rpc::CheckEligibility => "CheckEligibility",
            Rpc::GetAccount => "GetAccount",
            Rpc::SetSsoLink => "SetSsoLink",
            Rpc::ClearSsoLink => "ClearSsoLink",
            Rpc::SetWorkspaceType => "SetWorkspaceType",
            Rpc::HealthCheck => "Check",
        }
    }

    /// The request message's name, e.g. `ValidateSessionRequest`.
    pub fn input(self) -> String {
        match self {
            Rpc::HealthCheck => "HealthCheckRequest".into(),
            other => format!("{}Request", other.method()),
        }
    }

    /// The response message's name, e.g. `ValidateSessionResponse`.
    pub fn output(self) -> String {
        match self {
            Rpc::HealthCheck => "HealthCheckResponse".into(),
            other => format!("{}Response", other.method()),
        }
    }

    /// `package.Service.Method`, the form ghz's `--call` examples use.
    pub fn full_name(self) -> String {
        format!("{}.{}", self.service(), self.method())
    }

    /// Reads ghz's `--call`: `package.Service/Method` or `package.Service.Method` (a leading
    /// `/` is allowed). Streaming and unknown calls are refused with the list of supported ones.
    pub fn parse(call: &str) -> Result<Rpc, String> {
        let call = call.trim().trim_start_matches('/');
        let (service, method) = call
            .rsplit_once('/')
            .or_else(|| call.rsplit_once('.'))
            .ok_or_else(|| {
                format!(
                    "--call {call:?} is not `package.Service/Method` or `package.Service.Method`"
                )
            })?;
        if let Some(rpc) = Rpc::ALL
            .into_iter()
            .find(|rpc| rpc.service() == service && rpc.method() == method)
        {
            return Ok(rpc);
        }
        if STREAMING.contains(&(service, method)) {
            return Err(format!(
                "{service}/{method} is a streaming RPC; this load generator makes unary calls only"
            ));
        }
        let supported: Vec<String> = Rpc::ALL.iter().map(|rpc| rpc.full_name()).collect();
        Err(format!(
            "unsupported call {call:?}; supported calls: {}",
            supported.join(", ")
        ))
    }
}

/// A request message of one of the supported calls.
#[derive(Debug, Clone)]
pub(crate) enum Request {
    RegisterSession(pb::RegisterSessionRequest),
    ValidateSession(pb::ValidateSessionRequest),
    TouchSession(pb::TouchSessionRequest),
    ListActiveSessions(pb::ListActiveSessionsRequest),
    RevokeSession(pb::RevokeSessionRequest),
    RevokeAllSessions(pb::RevokeAllSessionsRequest),
    GetRevocation(pb::GetRevocationRequest),
    ListSecurityEvents(pb::ListSecurityEventsRequest),
    TrustDevice(pb::TrustDeviceRequest),
    ListTrustedDevices(pb::ListTrustedDevicesRequest),
    RemoveTrustedDevice(pb::RemoveTrustedDeviceRequest),
    CheckDeviceTrust(pb::CheckDeviceTrustRequest),
    CheckEligibility(pb::CheckEligibilityRequest),
    GetAccount(pb::GetAccountRequest),
    SetSsoLink(pb::SetSsoLinkRequest),
    ClearSsoLink(pb::ClearSsoLinkRequest),
    SetWorkspaceType(pb::SetWorkspaceTypeRequest),
    HealthCheck(HealthCheckRequest),
}

/// What a successful call answered, as far as the report cares.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Outcome {
    /// A ValidateSession answered `valid: false`.
    pub(crate) not_valid: bool,
}

macro_rules! unary {
    ($client:ident, $method:ident, $message:expr, $channel:expr, $metadata:expr, $timeout:expr) => {{
        let mut request =
            tonic::Request::from_parts($metadata, tonic::Extensions::default(), $message);
        if let Some(timeout) = $timeout {
            request.set_timeout(timeout);
        }
        $client::new($channel)
            .$method(request)
            .await
            .map(tonic::Response::into_inner)
    }};
}

impl Request {
    /// Builds the request of `rpc` from its protobuf JSON.
    pub(crate) fn from_json(rpc: Rpc, value: &Value) -> Result<Request, String> {
        let name = rpc.input();
        let mut o = Obj::new(&name, value)?;
        let request = match rpc {
            Rpc::RegisterSession => Request::RegisterSession(pb::RegisterSessionRequest {
                request_id: o.string("request_id")?,
                account_id: o.string("account_id")?,
                product: o.product("product")?,
                client_kind: o.enumeration("client_kind", "CLIENT_KIND_", |name| {
                    pb::ClientKind::from_str_name(name).map(|v| v as i32)
                })?,
                device_id: o.string("device_id")?,
                user_agent: o.string("user_agent")?,
                ip_address: o.string("ip_address")?,
                auth_method: o.enumeration("auth_method", "AUTH_METHOD_", |name| {
                    pb::AuthMethod::from_str_name(name).map(|v| v as i32)
                })?,
                lifetime: o.duration("lifetime")?,
                status_unavailable: o.boolean("status_unavailable")?,
            }),
            Rpc::ValidateSession => Request::ValidateSession(pb::ValidateSessionRequest {
                session_token: o.string("session_token")?,
            }),
            Rpc::TouchSession => Request::TouchSession(pb::TouchSessionRequest {
                session_token: o.string("session_token")?,
                ip_address: o.string("ip_address")?,
            }),
            Rpc::ListActiveSessions => Request::ListActiveSessions(pb::ListActiveSessionsRequest {
                subject: o.subject("subject")?,
                page_size: o.int32("page_size")?,
                page_token: o.string("page_token")?,
                product: o.product("product")?,
            }),
            Rpc::RevokeSession => {
                let device_id = o.optional_string("device_id")?;
                let session_id = o.optional_string("session_id")?;
                let target = match (device_id, session_id) {
                    (Some(_), Some(_)) => {
                        return Err(format!(
                            "{name}: set only one of deviceId and sessionId (oneof target)"
                        ));
                    }
                    (Some(id), None) => Some(pb::revoke_session_request::Target::DeviceId(id)),
                    (None, Some(id)) => Some(pb::revoke_session_request::Target::SessionId(id)),
                    (None, None) => None,
                };
                Request::RevokeSession(pb::RevokeSessionRequest {
                    subject: o.subject("subject")?,
                    validate_only: o.boolean("validate_only")?,
                    target,
                })
            }
            Rpc::RevokeAllSessions => Request::RevokeAllSessions(pb::RevokeAllSessionsRequest {
                subject: o.subject("subject")?,
                validate_only: o.boolean("validate_only")?,
                remove_trusted_devices: o.boolean("remove_trusted_devices")?,
                ..Default::default()
            }),
            Rpc::GetRevocation => Request::GetRevocation(pb::GetRevocationRequest {
                subject: o.subject("subject")?,
                revocation_id: o.string("revocation_id")?,
            }),
            Rpc::ListSecurityEvents => Request::ListSecurityEvents(pb::ListSecurityEventsRequest {
                subject: o.subject("subject")?,
                page_size: o.int32("page_size")?,
                page_token: o.string("page_token")?,
            }),
            Rpc::TrustDevice => Request::TrustDevice(pb::TrustDeviceRequest {
                account_id: o.string("account_id")?,
                device_id: o.string("device_id")?,
                method: o.enumeration("method", "TRUST_METHOD_", |name| {
                    pb::TrustMethod::from_str_name(name).map(|v| v as i32)
                })?,
                duration: o.duration("duration")?,
                product: o.product("product")?,
            }),
            Rpc::ListTrustedDevices => Request::ListTrustedDevices(pb::ListTrustedDevicesRequest {
                subject: o.subject("subject")?,
                page_size: o.int32("page_size")?,
                page_token: o.string("page_token")?,
            }),
            Rpc::RemoveTrustedDevice => {
                Request::RemoveTrustedDevice(pb::RemoveTrustedDeviceRequest {
                    subject: o.subject("subject")?,
                    device_id: o.string("device_id")?,
                    log_out_sessions: o.boolean("log_out_sessions")?,
                })
            }
            Rpc::CheckDeviceTrust => Request::CheckDeviceTrust(pb::CheckDeviceTrustRequest {
                account_id: o.string("account_id")?,
                device_id: o.string("device_id")?,
            }),
            Rpc::CheckEligibility => Request::CheckEligibility(pb::CheckEligibilityRequest {
                subject: o.subject("subject")?,
            }),
            Rpc::GetAccount => Request::GetAccount(pb::GetAccountRequest {
                account_id: o.string("account_id")?,
            }),
            Rpc::SetSsoLink => Request::SetSsoLink(pb::SetSsoLinkRequest {
                account_id: o.string("account_id")?,
                protocol: o.enumeration("protocol", "SSO_PROTOCOL_", |name| {
                    pb::SsoProtocol::from_str_name(name).map(|v| v as i32)
                })?,
                organization_id: o.string("organization_id")?,
            }),
            Rpc::ClearSsoLink => Request::ClearSsoLink(pb::ClearSsoLinkRequest {
                account_id: o.string("account_id")?,
            }),
            Rpc::SetWorkspaceType => Request::SetWorkspaceType(pb::SetWorkspaceTypeRequest {
                account_id: o.string("account_id")?,
                workspace_type: o.enumeration("workspace_type", "WORKSPACE_TYPE_", |name| {
                    pb::WorkspaceType::from_str_name(name).map(|v| v as i32)
                })?,
            }),
            Rpc::HealthCheck => Request::HealthCheck(HealthCheckRequest {
                service: o.string("service")?,
            }),
        };
        o.finish()?;
        Ok(request)
    }

    /// Sends the request on `channel` with `metadata`, asking the server to give up after
    /// `timeout` (`grpc-timeout`).
    pub(crate) async fn invoke(
        self,
        channel: Channel,
        metadata: MetadataMap,
        timeout: Option<Duration>,
    ) -> Result<Outcome, Status> {
        match self {
            Request::RegisterSession(m) => unary!(
                SessionServiceClient,
                register_session,
                m,
                channel,
                metadata,
                timeout
            )
            .map(done),
            Request::ValidateSession(m) => unary!(
                SessionServiceClient,
                validate_session,
                m,
                channel,
                metadata,
                timeout
            )
            .map(|response| Outcome {
                not_valid: !response.valid,
            }),
            Request::TouchSession(m) => unary!(
                SessionServiceClient,
                touch_session,
                m,
                channel,
                metadata,
                timeout
            )
            .map(done),
            Request::ListActiveSessions(m) => unary!(
                SessionServiceClient,
                list_active_sessions,
                m,
                channel,
                metadata,
                timeout
            )
            .map(done),
            Request::RevokeSession(m) => unary!(
                SessionServiceClient,
                revoke_session,
                m,
                channel,
                metadata,
                timeout
            )
            .map(done),
            Request::RevokeAllSessions(m) => unary!(
                SessionServiceClient,
                revoke_all_sessions,
                m,
                channel,
                metadata,
                timeout
            )
            .map(done),
            Request::GetRevocation(m) => unary!(
                SessionServiceClient,
                get_revocation,
                m,
                channel,
                metadata,
                timeout
            )
            .map(done),
            Request::ListSecurityEvents(m) => unary!(
                SessionServiceClient,
                list_security_events,
                m,
                channel,
                metadata,
                timeout
            )
            .map(done),
            Request::TrustDevice(m) => unary!(
                TrustedDeviceServiceClient,
                trust_device,
                m,
                channel,
                metadata,
                timeout
            )
            .map(done),
            Request::ListTrustedDevices(m) => unary!(
                TrustedDeviceServiceClient,
                list_trusted_devices,
                m,
                channel,
                metadata,
                timeout
            )
            .map(done),
            Request::RemoveTrustedDevice(m) => unary!(
                TrustedDeviceServiceClient,
                remove_trusted_device,
                m,
                channel,
                metadata,
                timeout
            )
            .map(done),
            Request::CheckDeviceTrust(m) => unary!(
                TrustedDeviceServiceClient,
                check_device_trust,
                m,
                channel,
                metadata,
                timeout
            )
            .map(done),
            Request::CheckEligibility(m) => unary!(
                AccountEligibilityClient,
                check_eligibility,
                m,
                channel,
                metadata,
                timeout
            )
            .map(done),
            Request::GetAccount(m) => unary!(
                AccountEligibilityClient,
                get_account,
                m,
                channel,
                metadata,
                timeout
            )
            .map(done),
            Request::SetSsoLink(m) => unary!(
                AccountEligibilityClient,
                set_sso_link,
                m,
                channel,
                metadata,
                timeout
            )
            .map(done),
            Request::ClearSsoLink(m) => unary!(
                AccountEligibilityClient,
                clear_sso_link,
                m,
                channel,
                metadata,
                timeout
            )
            .map(done),
            Request::SetWorkspaceType(m) => unary!(
                AccountEligibilityClient,
                set_workspace_type,
                m,
                channel,
                metadata,
                timeout
            )
            .map(done),
            Request::HealthCheck(m) => {
                unary!(HealthClient, check, m, channel, metadata, timeout).map(done)
            }
        }
    }
}

/// Any successful answer that the report does not look into.
fn done<T>(_: T) -> Outcome {
    Outcome::default()
}

/// `session_token` -> `sessionToken`.
fn lower_camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A JSON object being read as one message: each field is taken once, by either spelling, and
/// whatever is left over at the end is an unknown field.
struct Obj<'a> {
    message: &'a str,
    map: Option<&'a Map<String, Value>>,
    taken: Vec<&'a str>,
}

impl<'a> Obj<'a> {
    fn new(message: &'a str, value: &'a Value) -> Result<Self, String> {
        let map = match value {
            Value::Object(map) => Some(map),
            Value::Null => None,
            other => {
                return Err(format!(
                    "{message}: expected a JSON object, got {}",
                    kind(other)
                ));
            }
        };
        Ok(Self {
            message,
            map,
            taken: Vec::new(),
        })
    }

    fn path(&self, field: &str) -> String {
        format!("{}.{}", self.message, lower_camel(field))
    }

    /// The field's value by its snake_case or lowerCamelCase name; `null` counts as absent.
    fn field(&mut self, snake: &str) -> Result<Option<&'a Value>, String> {
        let Some(map) = self.map else {
            return Ok(None);
        };
        let camel = lower_camel(snake);
        let mut found = None;
        for (key, value) in map {
            if key == snake || *key == camel {
                if found.is_some() {
                    return Err(format!(
                        "{}: the field is given twice ({snake} and {camel})",
                        self.path(snake)
                    ));
                }
                self.taken.push(key.as_str());
                found = Some(value);
            }
        }
        Ok(found.filter(|value| !value.is_null()))
    }

    fn optional_string(&mut self, snake: &str) -> Result<Option<String>, String> {
        match self.field(snake)? {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => Err(format!(
                "{}: expected a string, got {}",
                self.path(snake),
                kind(other)
            )),
        }
    }

    fn string(&mut self, snake: &str) -> Result<String, String> {
        Ok(self.optional_string(snake)?.unwrap_or_default())
    }

    fn boolean(&mut self, snake: &str) -> Result<bool, String> {
        match self.field(snake)? {
            None => Ok(false),
            Some(Value::Bool(flag)) => Ok(*flag),
            Some(Value::String(text)) if text == "true" || text == "false" => Ok(text == "true"),
            Some(other) => Err(format!(
                "{}: expected true or false, got {}",
                self.path(snake),
                kind(other)
            )),
        }
    }

    fn int32(&mut self, snake: &str) -> Result<i32, String> {
        let path = self.path(snake);
        let number = match self.field(snake)? {
            None => return Ok(0),
            Some(Value::Number(number)) => number.as_i64(),
            Some(Value::String(text)) => text.trim().parse::<i64>().ok(),
            Some(other) => {
                return Err(format!("{path}: expected an integer, got {}", kind(other)));
            }
        };
        number
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| format!("{path}: expected a 32-bit integer"))
    }

    /// An enum by name (with or without its type prefix, any case) or by number.
    fn enumeration(
        &mut self,
        snake: &str,
        prefix: &str,
        from_name: impl Fn(&str) -> Option<i32>,
    ) -> Result<i32, String> {
        let path = self.path(snake);
        match self.field(snake)? {
            None => Ok(0),
            Some(Value::Number(number)) => number
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| format!("{path}: expected an enum number")),
            Some(Value::String(name)) => {
                let upper = name.trim().to_ascii_uppercase();
                from_name(&upper)
                    .or_else(|| from_name(&format!("{prefix}{upper}")))
                    .ok_or_else(|| {
                        format!(
                            "{path}: unknown value {name:?} (expected a name such as \
                             {prefix}… or a number)"
                        )
                    })
            }
            Some(other) => Err(format!(
                "{path}: expected an enum name, got {}",
                kind(other)
            )),
        }
    }

    fn product(&mut self, snake: &str) -> Result<i32, String> {
        self.enumeration(snake, "PRODUCT_", |name| {
            pb::Product::from_str_name(name).map(|v| v as i32)
        })
    }

    /// `google.protobuf.Duration`: `"3600s"`, `"1.5s"`, or `{"seconds": 3600, "nanos": 0}`.
    fn duration(&mut self, snake: &str) -> Result<Option<prost_types::Duration>, String> {
        let path = self.path(snake);
        let Some(value) = self.field(snake)? else {
            return Ok(None);
        };
        match value {
            Value::String(text) => {
                let seconds = text.trim().strip_suffix('s').ok_or_else(|| {
                    format!("{path}: a Duration is written like \"3600s\", got {text:?}")
                })?;
                let negative = seconds.starts_with('-');
                let (whole, fraction) = seconds
                    .trim_start_matches('-')
                    .split_once('.')
                    .unwrap_or((seconds.trim_start_matches('-'), ""));
                let whole: i64 = whole
                    .parse()
                    .map_err(|_| format!("{path}: invalid Duration {text:?}"))?;
                if fraction.len() > 9 || !fraction.chars().all(|c| c.is_ascii_digit()) {
                    return Err(format!("{path}: invalid Duration {text:?}"));
                }
                let nanos: i32 = format!("{fraction:0<9}")
                    .parse()
                    .map_err(|_| format!("{path}: invalid Duration {text:?}"))?;
                let sign = if negative { -1 } else { 1 };
                Ok(Some(prost_types::Duration {
                    seconds: sign * whole,
                    nanos: sign as i32 * nanos,
                }))
            }
            Value::Object(_) => {
                let mut inner = Obj::new("google.protobuf.Duration", value)?;
                let seconds = match inner.field("seconds")? {
                    None => 0,
                    Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
                    Some(Value::String(s)) => s
                        .parse()
                        .map_err(|_| format!("{path}.seconds: expected an integer"))?,
                    Some(other) => {
                        return Err(format!(
                            "{path}.seconds: expected an integer, got {}",
                            kind(other)
                        ));
                    }
                };
                let nanos = inner.int32("nanos")?;
                inner.finish()?;
                Ok(Some(prost_types::Duration { seconds, nanos }))
            }
            other => Err(format!(
                "{path}: expected a Duration such as \"3600s\", got {}",
                kind(other)
            )),
        }
    }

    /// `Subject`: `{"sessionToken": "..."}` or `{"accountId": "..."}`.
    fn subject(&mut self, snake: &str) -> Result<Option<pb::Subject>, String> {
        let Some(value) = self.field(snake)? else {
            return Ok(None);
        };
        let mut inner = Obj::new("Subject", value)?;
        let token = inner.optional_string("session_token")?;
        let account = inner.optional_string("account_id")?;
        inner.finish()?;
        let subject = match (token, account) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{}: set only one of sessionToken and accountId (oneof subject)",
                    self.path(snake)
                ));
            }
            (Some(token), None) => Some(pb::subject::Subject::SessionToken(token)),
            (None, Some(account)) => Some(pb::subject::Subject::AccountId(account)),
            (None, None) => None,
        };
        Ok(Some(pb::Subject { subject }))
    }

    /// Refuses the fields nothing asked for.
    fn finish(self) -> Result<(), String> {
        let Some(map) = self.map else {
            return Ok(());
        };
        let unknown: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|key| !self.taken.contains(key))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{}: unknown field(s) {}",
                self.message,
                unknown.join(", ")
            ))
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_calls_in_both_ghz_forms() {
        let slash = Rpc::parse("activesessions.v1.SessionService/ValidateSession").unwrap();
        let dot = Rpc::parse("activesessions.v1.SessionService.ValidateSession").unwrap();
        assert_eq!(slash, Rpc::ValidateSession);
        assert_eq!(dot, Rpc::ValidateSession);
        assert_eq!(
            Rpc::parse("grpc.health.v1.Health/Check").unwrap(),
            Rpc::HealthCheck
        );
        for rpc in Rpc::ALL {
            assert_eq!(Rpc::parse(&rpc.full_name()).unwrap(), rpc);
        }
        let streaming = Rpc::parse("activesessions.v1.SessionService/WatchRevocations");
        assert!(streaming.unwrap_err().contains("streaming"));
        let unknown = Rpc::parse("helloworld.Greeter.SayHello").unwrap_err();
        assert!(unknown.contains("supported calls"), "{unknown}");
    }

    #[test]
    fn reads_camel_and_snake_case_enums_and_durations() {
        let camel = json!({
            "accountId": "a", "product": "PRODUCT_CODEX", "clientKind": "BROWSER",
            "deviceId": "d", "authMethod": 2, "lifetime": "3600.5s", "statusUnavailable": true
        });
        let Request::RegisterSession(m) = Request::from_json(Rpc::RegisterSession, &camel).unwrap()
        else {
            panic!("wrong request");
        };
        assert_eq!(m.account_id, "a");
        assert_eq!(m.product, pb::Product::Codex as i32);
        assert_eq!(m.client_kind, pb::ClientKind::Browser as i32);
        assert_eq!(m.auth_method, pb::AuthMethod::Passkey as i32);
        assert_eq!(
            m.lifetime,
            Some(prost_types::Duration {
                seconds: 3600,
                nanos: 500_000_000
            })
        );
        assert!(m.status_unavailable);

        let snake = json!({"subject": {"account_id": "acct"}, "page_size": "20"});
        let Request::ListActiveSessions(m) =
            Request::from_json(Rpc::ListActiveSessions, &snake).unwrap()
        else {
            panic!("wrong request");
        };
        assert_eq!(m.page_size, 20);
        assert_eq!(
            m.subject.unwrap().subject,
            Some(pb::subject::Subject::AccountId("acct".into()))
        );
    }

    #[test]
    fn refuses_unknown_fields_and_bad_values() {
        let error =
            Request::from_json(Rpc::ValidateSession, &json!({"sessionTokn": "x"})).unwrap_err();
        assert!(error.contains("unknown field"), "{error}");
        let error =
            Request::from_json(Rpc::ListActiveSessions, &json!({"product": "NOPE"})).unwrap_err();
        assert!(error.contains("product"), "{error}");
        let error = Request::from_json(
            Rpc::CheckEligibility,
            &json!({"subject": {"accountId": "a", "sessionToken": "t"}}),
        )
        .unwrap_err();
        assert!(error.contains("oneof"), "{error}");
        assert!(Request::from_json(Rpc::HealthCheck, &json!({})).is_ok());
        assert!(Request::from_json(Rpc::HealthCheck, &Value::Null).is_ok());
    }
}
