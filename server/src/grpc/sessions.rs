//! `activesessions.v1.SessionService`: registration and validation for product backends, the
//! Active sessions rows and log-outs for the settings page and operators, the revocation stream
//! and the security history.

use std::{future::Future, pin::Pin};

use active_sessions::v1::{self as pb, session_service_server::SessionService};
use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::{
    authenticate::{authentication_of, caller_of},
    budget::{fit_page, split_batch},
    convert::{
        fields::OwnerPage,
        revocations::{
            GetRevocation, RevokeAllSessions, RevokeSession, WatchRevocations, revocation_message,
        },
        sessions::{ListActiveSessions, ListDeviceSessions, TouchSession},
    },
};
use crate::domain::token::SessionToken;
use crate::service::sessions::{NewSession, Sessions};

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

#[tonic::async_trait]
impl SessionService for SessionApi {
    #[tracing::instrument(name = "RegisterSession", skip_all, fields(account_id = %request.get_ref().account_id.escape_debug(), session_id))]
    async fn register_session(
        &self,
        request: Request<pb::RegisterSessionRequest>,
    ) -> Result<Response<pb::RegisterSessionResponse>, Status> {
        let caller = caller_of(&request)?;
        let new_session = NewSession::try_from(request.into_inner())?;
        let actor = caller.authorize_product_write(new_session.product)?;
        // Request ids are scoped to the caller, so two products never collide.
        let registered = self
            .sessions
            .register(caller.name(), new_session, &actor)
            .await?;
        tracing::Span::current().record(
            "session_id",
            tracing::field::display(registered.session.session_id),
        );
        Ok(Response::new(registered.into()))
    }

    #[tracing::instrument(name = "ValidateSession", skip_all, fields(session_id))]
    async fn validate_session(
        &self,
        request: Request<pb::ValidateSessionRequest>,
    ) -> Result<Response<pb::ValidateSessionResponse>, Status> {
        let scope = caller_of(&request)?.product_scope()?;
        let token = SessionToken::try_from(request.into_inner())?;
        // Another product's session is not valid for this caller, as if it did not exist.
        let valid = self
            .sessions
            .validate(&token)
            .await?
            .filter(|valid| scope.covers(valid.product));
        if let Some(valid) = &valid {
            tracing::Span::current()
                .record("session_id", tracing::field::display(valid.session_id));
        }
        Ok(Response::new(valid.map(Into::into).unwrap_or_default()))
    }

    #[tracing::instrument(name = "TouchSession", skip_all, fields(session_id))]
    async fn touch_session(
        &self,
        request: Request<pb::TouchSessionRequest>,
    ) -> Result<Response<pb::TouchSessionResponse>, Status> {
        let scope = caller_of(&request)?.product_scope()?;
        let touch = TouchSession::try_from(request.into_inner())?;
        let valid = self
            .sessions
            .touch(&touch.token, touch.ip, |product| scope.covers(product))
            .await?;
        tracing::Span::current().record("session_id", tracing::field::display(valid.session_id));
        Ok(Response::new(valid.into()))
    }

    #[tracing::instrument(name = "ListActiveSessions", skip_all)]
    async fn list_active_sessions(
        &self,
        request: Request<pb::ListActiveSessionsRequest>,
    ) -> Result<Response<pb::ListActiveSessionsResponse>, Status> {
        let caller = caller_of(&request)?;
        let list = ListActiveSessions::try_from(request.into_inner())?;
        caller.authorize_owner_call(&list.subject)?;
        let page = self
            .sessions
            .list_rows(
                &list.subject,
                list.product,
                list.size,
                list.page_token.as_deref(),
            )
            .await?;
        Ok(Response::new(page.into()))
    }

    #[tracing::instrument(name = "ListDeviceSessions", skip_all)]
    async fn list_device_sessions(
        &self,
        request: Request<pb::ListDeviceSessionsRequest>,
    ) -> Result<Response<pb::ListDeviceSessionsResponse>, Status> {
        let caller = caller_of(&request)?;
        let list = ListDeviceSessions::try_from(request.into_inner())?;
        caller.authorize_owner_call(&list.subject)?;
        let page = self
            .sessions
            .list_device_sessions(
                &list.subject,
                &list.device_id,
                list.product,
                list.size,
                list.page_token.as_deref(),
            )
            .await?;
        Ok(Response::new(page.into()))
    }

    #[tracing::instrument(name = "RevokeSession", skip_all, fields(validate_only = request.get_ref().validate_only))]
    async fn revoke_session(
        &self,
        request: Request<pb::RevokeSessionRequest>,
    ) -> Result<Response<pb::RevokeSessionResponse>, Status> {
        let caller = caller_of(&request)?;
        let revoke = RevokeSession::try_from(request.into_inner())?;
        let actor = caller.authorize_owner_call(&revoke.subject)?;
        let result = self
            .sessions
            .revoke(&revoke.subject, &revoke.target, revoke.effect, &actor)
            .await?;
        Ok(Response::new(result.into()))
    }

    #[tracing::instrument(name = "RevokeAllSessions", skip_all, fields(validate_only = request.get_ref().validate_only))]
    async fn revoke_all_sessions(
        &self,
        request: Request<pb::RevokeAllSessionsRequest>,
    ) -> Result<Response<pb::RevokeAllSessionsResponse>, Status> {
        let caller = caller_of(&request)?;
        let revoke = RevokeAllSessions::try_from(request.into_inner())?;
        let actor = caller.authorize_log_out_all(&revoke.subject, revoke.reason)?;
        let revocation = self
            .sessions
            .revoke_all(&revoke.subject, &revoke.command(), &actor)
            .await?;
        Ok(Response::new(pb::RevokeAllSessionsResponse {
            revocation: Some(revocation_message(&revocation, revoke.effect)),
        }))
    }

    #[tracing::instrument(name = "GetRevocation", skip_all, fields(revocation_id = %request.get_ref().revocation_id.escape_debug()))]
    async fn get_revocation(
        &self,
        request: Request<pb::GetRevocationRequest>,
    ) -> Result<Response<pb::GetRevocationResponse>, Status> {
        let caller = caller_of(&request)?;
        let get = GetRevocation::try_from(request.into_inner())?;
        caller.authorize_owner_call(&get.subject)?;
        let revocation = self
            .sessions
            .get_revocation(&get.subject, get.revocation_id)
            .await?;
        Ok(Response::new(pb::GetRevocationResponse {
            revocation: Some((&revocation).into()),
        }))
    }

    type WatchRevocationsStream = WatchStream;

    #[tracing::instrument(name = "WatchRevocations", skip_all)]
    async fn watch_revocations(
        &self,
        request: Request<pb::WatchRevocationsRequest>,
    ) -> Result<Response<Self::WatchRevocationsStream>, Status> {
        let scope = caller_of(&request)?.product_scope()?;
        let authentication = authentication_of(&request);
        let watch = WatchRevocations::try_from(request.into_inner())?;
        // A product backend sees only its own products' revocations.
        let products = scope.watchable(watch.products)?;
        // A callers-file reload that removes the caller, or no longer lets it watch these
        // products, ends the stream at once.
        let watched = products.clone();
        let revoked: Pin<Box<dyn Future<Output = Status> + Send>> = Box::pin(async move {
            Status::from(
                authentication
                    .revoked(move |caller| caller.may_still_watch(&watched))
                    .await,
            )
        });
        let batches = self
            .sessions
            .watch_revocations(watch.cursor, products, self.shutdown.clone())
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
                            batch.events.iter().map(Into::into).collect(),
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
        let caller = caller_of(&request)?;
        let page = OwnerPage::try_from(request.into_inner())?;
        caller.authorize_owner_call(&page.subject)?;
        let (events, tokens_after, next) = self
            .sessions
            .security_events(&page.subject, page.size, page.page_token.as_deref())
            .await?;
        let events = events.iter().map(Into::into).collect();
        let (events, next_page_token) = fit_page(events, tokens_after, next);
        Ok(Response::new(pb::ListSecurityEventsResponse {
            events,
            next_page_token,
        }))
    }
}
