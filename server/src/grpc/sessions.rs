//! `activesessions.v1.SessionService`: registration and validation for product backends, the
//! Active sessions rows and log-outs for the settings page and operators, the revocation stream
//! and the security history.

use std::{future::Future, pin::Pin};

use active_sessions::v1::{self as pb, session_service_server::SessionService};
use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::{
    budget::{fit_page, split_batch},
    proto::{account_id, owner_page, required_enum, subject},
    session_proto::{
        MAX_USER_AGENT_LEN, auth_method, client_kind_from_proto, cursor, free_text,
        identity_reason_from_proto, ip_address, optional_duration, outcome_to_proto, page_size,
        page_token, product_filter, product_from_proto, product_to_proto, products,
        revocation_event_to_proto, revocation_id, revocation_to_proto, row_to_proto,
        security_event_to_proto, session_id, session_to_proto, valid_session_to_proto,
    },
};
use crate::auth::{Authentication, Caller, ProductScope};
use crate::domain::{
    ids::{DeviceId, RequestId},
    revocation::{Effect, TrustedDevices},
    text::Violations,
    token::SessionToken,
};
use crate::service::sessions::{LogOutAllRequest, NewSession, RevokeTarget, Sessions};

/// The SessionService handlers.
#[derive(Debug, Clone)]
pub struct SessionApi {
    sessions: Sessions,
    shutdown: CancellationToken,
}

impl SessionApi {
    /// Builds the handlers; streams end when `shutdown` is cancelled.
    pub fn new(sessions: Sessions, shutdown: CancellationToken) -> Self {
        Self { sessions, shutdown }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchRevocationsResponse, Status>> + Send>>;

/// Whether `caller` (as a reload left it) may still watch `products` (empty: every product).
fn may_still_watch(
    caller: &Caller,
    products: &[crate::domain::session::Product],
) -> Result<(), Status> {
    match caller.product_scope()? {
        ProductScope::All => Ok(()),
        ProductScope::Only(own)
            if !products.is_empty() && products.iter().all(|product| own.contains(product)) =>
        {
            Ok(())
        }
        ProductScope::Only(_) => Err(crate::auth::denied(
            "after a callers-file reload this caller may no longer watch these products",
        )),
    }
}

fn token(violations: &mut Violations, field: &str, raw: &str) -> Option<SessionToken> {
    violations.check(
        field,
        SessionToken::parse(raw).map_err(|err| err.to_string()),
    )
}

#[tonic::async_trait]
impl SessionService for SessionApi {
    #[tracing::instrument(name = "RegisterSession", skip_all, fields(account_id = %request.get_ref().account_id.escape_debug(), session_id))]
    async fn register_session(
        &self,
        request: Request<pb::RegisterSessionRequest>,
    ) -> Result<Response<pb::RegisterSessionResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let mut v = Violations::new();
        let request_id = if request.request_id.is_empty() {
            Some(None)
        } else {
            v.check("request_id", RequestId::parse(&request.request_id))
                .map(Some)
        };
        let account = account_id(&mut v, "account_id", &request.account_id);
        let product = required_enum(&mut v, "product", request.product, product_from_proto);
        let client_kind = required_enum(
            &mut v,
            "client_kind",
            request.client_kind,
            client_kind_from_proto,
        );
        let device_id = v.check("device_id", DeviceId::parse(&request.device_id));
        let user_agent = free_text(
            &mut v,
            "user_agent",
            &request.user_agent,
            MAX_USER_AGENT_LEN,
        );
        let ip = ip_address(&mut v, "ip_address", &request.ip_address);
        let auth = auth_method(&mut v, "auth_method", request.auth_method);
        let lifetime = optional_duration(&mut v, "lifetime", request.lifetime.as_ref());
        let new_session = match (
            request_id,
            account,
            product,
            client_kind,
            device_id,
            user_agent,
            ip,
            auth,
            lifetime,
        ) {
            (
                Some(request_id),
                Some(account_id),
                Some(product),
                Some(client_kind),
                Some(device_id),
                Some(user_agent),
                Some(ip),
                Some(auth_method),
                Some(lifetime),
            ) => Some(NewSession {
                request_id,
                account_id,
                product,
                client_kind,
                device_id,
                user_agent,
                ip,
                auth_method,
                lifetime,
                status_unavailable: request.status_unavailable,
            }),
            _ => None,
        };
        let new_session = v.finish(new_session)?;
        let actor = caller.authorize_product_write(new_session.product)?;
        // Request ids are scoped to the caller, so two products never collide.
        let registered = self
            .sessions
            .register(caller.name(), new_session, &actor)
            .await?;
        tracing::Span::current().record("session_id", registered.session.session_id.to_string());
        Ok(Response::new(pb::RegisterSessionResponse {
            session: Some(session_to_proto(&registered.session, false)),
            session_token: registered.token.expose(),
            replayed: registered.replayed,
        }))
    }

    #[tracing::instrument(name = "ValidateSession", skip_all, fields(session_id))]
    async fn validate_session(
        &self,
        request: Request<pb::ValidateSessionRequest>,
    ) -> Result<Response<pb::ValidateSessionResponse>, Status> {
        let scope = Caller::of(&request)?.product_scope()?;
        let mut v = Violations::new();
        let token = token(&mut v, "session_token", &request.get_ref().session_token);
        let token = v.finish(token)?;
        // Another product's session is not valid for this caller, as if it did not exist.
        let valid = self
            .sessions
            .validate(&token)
            .await?
            .filter(|valid| scope.covers(valid.product));
        if let Some(valid) = &valid {
            tracing::Span::current().record("session_id", valid.session_id.to_string());
        }
        Ok(Response::new(valid_session_to_proto(valid)))
    }

    #[tracing::instrument(name = "TouchSession", skip_all, fields(session_id))]
    async fn touch_session(
        &self,
        request: Request<pb::TouchSessionRequest>,
    ) -> Result<Response<pb::TouchSessionResponse>, Status> {
        let scope = Caller::of(&request)?.product_scope()?;
        let request = request.into_inner();
        let mut v = Violations::new();
        let token = token(&mut v, "session_token", &request.session_token);
        let ip = ip_address(&mut v, "ip_address", &request.ip_address);
        let (token, ip) = v.finish(token.zip(ip))?;
        let valid = self
            .sessions
            .touch(&token, ip, |product| scope.covers(product))
            .await?;
        tracing::Span::current().record("session_id", valid.session_id.to_string());
        Ok(Response::new(pb::TouchSessionResponse {
            session_id: valid.session_id.to_string(),
        }))
    }

    #[tracing::instrument(name = "ListActiveSessions", skip_all)]
    async fn list_active_sessions(
        &self,
        request: Request<pb::ListActiveSessionsRequest>,
    ) -> Result<Response<pb::ListActiveSessionsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let mut v = Violations::new();
        let subject = subject(&mut v, "subject", request.subject.as_ref());
        let size = page_size(&mut v, "page_size", request.page_size);
        let product = product_filter(&mut v, "product", request.product);
        let (subject, size) = v.finish(subject.zip(size))?;
        caller.authorize_owner_call(&subject)?;
        let page = self
            .sessions
            .list_rows(&subject, product, size, page_token(&request.page_token))
            .await?;
        let rows = page
            .rows
            .iter()
            .map(|row| row_to_proto(row, page.current_session))
            .collect();
        let (rows, next_page_token) = fit_page(rows, page.tokens_after, page.next_page_token);
        Ok(Response::new(pb::ListActiveSessionsResponse {
            rows,
            next_page_token,
        }))
    }

    #[tracing::instrument(name = "ListDeviceSessions", skip_all)]
    async fn list_device_sessions(
        &self,
        request: Request<pb::ListDeviceSessionsRequest>,
    ) -> Result<Response<pb::ListDeviceSessionsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let mut v = Violations::new();
        let subject = subject(&mut v, "subject", request.subject.as_ref());
        let device = v.check("device_id", DeviceId::parse(&request.device_id));
        let size = page_size(&mut v, "page_size", request.page_size);
        let product = product_filter(&mut v, "product", request.product);
        let ((subject, device), size) = v.finish(subject.zip(device).zip(size))?;
        caller.authorize_owner_call(&subject)?;
        let page = self
            .sessions
            .list_device_sessions(
                &subject,
                &device,
                product,
                size,
                page_token(&request.page_token),
            )
            .await?;
        let sessions = page
            .sessions
            .iter()
            .map(|s| session_to_proto(s, Some(s.session_id) == page.current_session))
            .collect();
        let (sessions, next_page_token) =
            fit_page(sessions, page.tokens_after, page.next_page_token);
        Ok(Response::new(pb::ListDeviceSessionsResponse {
            sessions,
            next_page_token,
        }))
    }

    #[tracing::instrument(name = "RevokeSession", skip_all, fields(validate_only = request.get_ref().validate_only))]
    async fn revoke_session(
        &self,
        request: Request<pb::RevokeSessionRequest>,
    ) -> Result<Response<pb::RevokeSessionResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let mut v = Violations::new();
        let subject = subject(&mut v, "subject", request.subject.as_ref());
        let target = match &request.target {
            None => {
                v.add("target", "must set device_id or session_id");
                None
            }
            Some(pb::revoke_session_request::Target::DeviceId(device)) => v
                .check("device_id", DeviceId::parse(device))
                .map(RevokeTarget::Device),
            Some(pb::revoke_session_request::Target::SessionId(id)) => {
                session_id(&mut v, "session_id", id).map(RevokeTarget::Session)
            }
        };
        let (subject, target) = v.finish(subject.zip(target))?;
        let actor = caller.authorize_owner_call(&subject)?;
        let result = self
            .sessions
            .revoke(
                &subject,
                &target,
                Effect::from_validate_only(request.validate_only),
                &actor,
            )
            .await?;
        Ok(Response::new(pb::RevokeSessionResponse {
            outcome: outcome_to_proto(result.outcome) as i32,
            session_ids: result.session_ids.iter().map(ToString::to_string).collect(),
            products: result
                .products
                .iter()
                .map(|p| product_to_proto(*p) as i32)
                .collect(),
            trust_removed: result.trust_removed,
            revocation: result
                .revocation
                .as_ref()
                .map(|r| revocation_to_proto(r, true)),
            session_count: i64::try_from(result.session_count).unwrap_or(i64::MAX),
        }))
    }

    #[tracing::instrument(name = "RevokeAllSessions", skip_all, fields(validate_only = request.get_ref().validate_only))]
    async fn revoke_all_sessions(
        &self,
        request: Request<pb::RevokeAllSessionsRequest>,
    ) -> Result<Response<pb::RevokeAllSessionsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let mut v = Violations::new();
        let subject = subject(&mut v, "subject", request.subject.as_ref());
        let reason = match pb::RevocationReason::try_from(request.reason) {
            Ok(pb::RevocationReason::Unspecified) => Some(None),
            Ok(value) => match identity_reason_from_proto(value) {
                Some(reason) => Some(Some(reason)),
                None => {
                    v.add(
                        "reason",
                        "must be PASSWORD_CHANGED, FACTOR_CHANGED, ACCOUNT_DISABLED or SECURITY_RESET",
                    );
                    None
                }
            },
            Err(_) => {
                v.add("reason", "is not a known value");
                None
            }
        };
        let keep = if request.keep_session_id.is_empty() {
            Some(None)
        } else {
            session_id(&mut v, "keep_session_id", &request.keep_session_id).map(Some)
        };
        let (subject, (reason, keep_session)) = v.finish(subject.zip(reason.zip(keep)))?;
        let actor = caller.authorize_log_out_all(&subject, reason.is_some())?;
        let revocation = self
            .sessions
            .revoke_all(
                &subject,
                &LogOutAllRequest {
                    effect: Effect::from_validate_only(request.validate_only),
                    trusted_devices: TrustedDevices::from_remove_flag(
                        request.remove_trusted_devices,
                    ),
                    reason,
                    keep_session,
                    include_hidden_kinds: request.include_hidden_kinds,
                },
                &actor,
            )
            .await?;
        Ok(Response::new(pb::RevokeAllSessionsResponse {
            revocation: Some(revocation_to_proto(&revocation, !request.validate_only)),
        }))
    }

    #[tracing::instrument(name = "GetRevocation", skip_all, fields(revocation_id = %request.get_ref().revocation_id.escape_debug()))]
    async fn get_revocation(
        &self,
        request: Request<pb::GetRevocationRequest>,
    ) -> Result<Response<pb::GetRevocationResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let mut v = Violations::new();
        let subject = subject(&mut v, "subject", request.subject.as_ref());
        let id = revocation_id(&mut v, "revocation_id", &request.revocation_id);
        let (subject, id) = v.finish(subject.zip(id))?;
        caller.authorize_owner_call(&subject)?;
        let revocation = self.sessions.get_revocation(&subject, id).await?;
        Ok(Response::new(pb::GetRevocationResponse {
            revocation: Some(revocation_to_proto(&revocation, true)),
        }))
    }

    type WatchRevocationsStream = WatchStream;

    #[tracing::instrument(name = "WatchRevocations", skip_all)]
    async fn watch_revocations(
        &self,
        request: Request<pb::WatchRevocationsRequest>,
    ) -> Result<Response<Self::WatchRevocationsStream>, Status> {
        let scope = Caller::of(&request)?.product_scope()?;
        let authentication = Authentication::of(&request);
        let request = request.into_inner();
        let mut v = Violations::new();
        let cursor = cursor(&mut v, "cursor", &request.cursor);
        let mut products = products(&mut v, "products", &request.products);
        let cursor = v.finish(cursor)?;
        // A product backend sees only its own products' revocations.
        if let ProductScope::Only(own) = &scope {
            if products.iter().any(|product| !own.contains(product)) {
                return Err(crate::auth::denied(
                    "a product backend may watch only its own products",
                ));
            }
            if products.is_empty() {
                products = own.clone();
            }
        }
        // A callers-file reload that removes the caller, or no longer lets it watch these
        // products, ends the stream at once.
        let watched = products.clone();
        let revoked: Pin<Box<dyn Future<Output = Status> + Send>> =
            Box::pin(authentication.revoked(move |caller| may_still_watch(caller, &watched)));
        let batches = self
            .sessions
            .watch_revocations(cursor, products, self.shutdown.clone())
            .await?;
        let stream = futures::stream::unfold(Some((batches, revoked)), |state| async move {
            let (mut batches, mut revoked) = state?;
            tokio::select! {
                biased;
                status = &mut revoked => Some((vec![Err(status)], None)),
                batch = batches.recv() => {
                    // A long batch goes out as several messages, each under the byte budget.
                    let items: Vec<Result<pb::WatchRevocationsResponse, Status>> = match batch? {
                        Ok(batch) => split_batch(
                            batch.events.iter().map(revocation_event_to_proto).collect(),
                            batch.cursor.to_string(),
                        )
                        .into_iter()
                        .map(Ok)
                        .collect(),
                        Err(err) => vec![Err(Status::from(err))],
                    };
                    Some((items, Some((batches, revoked))))
                }
            }
        })
        .flat_map(futures::stream::iter);
        Ok(Response::new(Box::pin(stream)))
    }

    #[tracing::instrument(name = "ListSecurityEvents", skip_all)]
    async fn list_security_events(
        &self,
        request: Request<pb::ListSecurityEventsRequest>,
    ) -> Result<Response<pb::ListSecurityEventsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let (subject, size) = owner_page(&caller, request.subject.as_ref(), request.page_size)?;
        let (events, tokens_after, next) = self
            .sessions
            .security_events(&subject, size, page_token(&request.page_token))
            .await?;
        let events = events.iter().map(security_event_to_proto).collect();
        let (events, next_page_token) = fit_page(events, tokens_after, next);
        Ok(Response::new(pb::ListSecurityEventsResponse {
            events,
            next_page_token,
        }))
    }
}
