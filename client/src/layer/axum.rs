//! The axum extractors (`axum` feature): a handler takes [`ValidSession`] to require a
//! signed-in session, or `Option<ValidSession>` to work signed out too. They read what
//! [`SessionLayer`](super::SessionLayer) put in the request; without the layer they validate
//! themselves through a [`SessionValidator`] extension (`.layer(Extension(validator))`).

use axum_core::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    response::{IntoResponse, Response},
};
use http::request::Parts;

use super::{SessionRejection, SessionValidator, SignedOut};
use crate::ValidSession;

impl<S: Send + Sync> FromRequestParts<S> for ValidSession {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(session) = parts.extensions.get::<ValidSession>() {
            return Ok(session.clone());
        }
        if let Some(SignedOut(rejection)) = parts.extensions.get::<SignedOut>() {
            return Err(rejection.clone());
        }
        let Some(validator) = parts.extensions.get::<SessionValidator>().cloned() else {
            tracing::error!(
                "ValidSession extractor without a SessionLayer or a SessionValidator extension"
            );
            return Err(SessionRejection::NotConfigured);
        };
        let session = validator.check(&parts.headers).await?;
        parts.extensions.insert(session.clone());
        Ok(session)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for ValidSession {
    type Rejection = SessionRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match <Self as FromRequestParts<S>>::from_request_parts(parts, state).await {
            Ok(session) => Ok(Some(session)),
            Err(rejection) if rejection.is_signed_out() => Ok(None),
            Err(rejection) => Err(rejection),
        }
    }
}

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        self.http_response().map(axum_core::body::Body::new)
    }
}
