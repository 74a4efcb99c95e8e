//! [`SessionValidator`]: where a request's session token is read from (the `Authorization:
//! Bearer` header, named cookies, in the order set), what it is validated through (a
//! [`ValidationCache`] or the server directly), which products it accepts, and the optional
//! coalesced activity heartbeat. [`SessionLayer`](super::SessionLayer) and the axum extractor
//! both use it.

use std::{fmt, sync::Arc, time::Duration};

use http::HeaderMap;

use super::{SessionRejection, heartbeat::Heartbeat};
use crate::{Error, Product, SessionClient, ValidSession, ValidationCache};

/// The cookie read after the `Authorization` header when no source is configured.
pub const DEFAULT_COOKIE: &str = "active_session";

/// Where a request may carry its session token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `Authorization: Bearer <token>` (the scheme is matched case-insensitively).
    Bearer,
    /// The cookie of this name.
    Cookie(String),
}

/// What a token is validated through.
#[derive(Debug, Clone)]
pub enum ValidateThrough {
    /// The revocation-fed cache: most requests never leave the process.
    Cache(ValidationCache),
    /// The server, on every request.
    Server(Box<SessionClient>),
}

impl From<ValidationCache> for ValidateThrough {
    fn from(cache: ValidationCache) -> Self {
        Self::Cache(cache)
    }
}

impl From<SessionClient> for ValidateThrough {
    fn from(client: SessionClient) -> Self {
        Self::Server(Box::new(client))
    }
}

/// Reads and validates a request's session token. Cheap to clone.
///
/// Built from a [`ValidationCache`] or a [`SessionClient`] (`SessionValidator::from(cache)`, or
/// [`SessionValidator::builder`] for the token sources, products and heartbeat).
#[derive(Clone)]
pub struct SessionValidator {
    inner: Arc<Inner>,
}

struct Inner {
    through: ValidateThrough,
    sources: Vec<TokenSource>,
    products: Vec<Product>,
    heartbeat: Option<Heartbeat>,
}

impl fmt::Debug for SessionValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionValidator")
            .field("through", &self.inner.through)
            .field("sources", &self.inner.sources)
            .field("products", &self.inner.products)
            .field("heartbeat", &self.inner.heartbeat)
            .finish()
    }
}

impl<T: Into<ValidateThrough>> From<T> for SessionValidator {
    fn from(through: T) -> Self {
        SessionValidator::builder(through).build()
    }
}

/// Settings of a [`SessionValidator`], from [`SessionValidator::builder`].
#[derive(Debug)]
pub struct SessionValidatorBuilder {
    through: ValidateThrough,
    sources: Vec<TokenSource>,
    products: Vec<Product>,
    heartbeat: Option<Heartbeat>,
}

impl SessionValidator {
    /// A validator through `through` (a [`ValidationCache`] or a [`SessionClient`]). By default
    /// it reads `Authorization: Bearer`, then the cookie [`DEFAULT_COOKIE`], accepts every
    /// product the calling service may see, and records no activity.
    pub fn builder(through: impl Into<ValidateThrough>) -> SessionValidatorBuilder {
        SessionValidatorBuilder {
            through: through.into(),
            sources: Vec::new(),
            products: Vec::new(),
            heartbeat: None,
        }
    }

    /// The request's token: from the first configured source present in `headers`.
    pub fn token<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        self.inner.sources.iter().find_map(|source| match source {
            TokenSource::Bearer => bearer(headers),
            TokenSource::Cookie(name) => cookie(headers, name),
        })
    }

    /// The request's session, or why there is none to let through.
    pub async fn check(&self, headers: &HeaderMap) -> Result<ValidSession, SessionRejection> {
        self.validate(self.token(headers)).await
    }

    /// `token`'s session, or why there is none to let through.
    pub async fn validate(&self, token: Option<&str>) -> Result<ValidSession, SessionRejection> {
        let Some(token) = token else {
            return Err(SessionRejection::MissingToken);
        };
        let answer = match &self.inner.through {
            ValidateThrough::Cache(cache) => cache.validate(token).await,
            ValidateThrough::Server(client) => client.validate(token).await,
        };
        match answer {
            Ok(Some(session)) => self.accept(session, token),
            Ok(None) => Err(SessionRejection::InvalidToken),
            Err(err) => Err(unavailable(&err)),
        }
    }

    /// What [`validate`](Self::validate) would answer, when that needs no waiting: no token,
    /// or a session the cache holds. `None` when `validate` must be awaited.
    pub(super) fn validate_now(
        &self,
        token: Option<&str>,
    ) -> Option<Result<ValidSession, SessionRejection>> {
        let Some(token) = token else {
            return Some(Err(SessionRejection::MissingToken));
        };
        let ValidateThrough::Cache(cache) = &self.inner.through else {
            return None;
        };
        let session = cache.cached(token)?;
        Some(self.accept(session, token))
    }

    /// A signed-in `session` of `token`, let through if its product is accepted (and its
    /// activity recorded when there is a heartbeat).
    fn accept(&self, session: ValidSession, token: &str) -> Result<ValidSession, SessionRejection> {
        let inner = &self.inner;
        if !inner.products.is_empty() && !inner.products.contains(&session.product) {
            return Err(SessionRejection::InvalidToken);
        }
        if let Some(heartbeat) = &inner.heartbeat {
            heartbeat.beat(&session, token);
        }
        Ok(session)
    }
}

/// The refusal for a validation that failed: the request can be neither let through nor
/// refused as signed out.
fn unavailable(err: &Error) -> SessionRejection {
    match err {
        Error::Unauthenticated | Error::PermissionDenied => tracing::error!(
            error = %err,
            "session validation refused this service's credential; answering unavailable"
        ),
        _ => tracing::warn!(error = %err, "session validation failed; answering unavailable"),
    }
    let retry_after = err
        .retry_after()
        .unwrap_or(Duration::from_secs(1))
        .max(Duration::from_secs(1));
    SessionRejection::Unavailable { retry_after }
}

impl SessionValidatorBuilder {
    /// Reads `Authorization: Bearer <token>` (next, after the sources added before).
    pub fn bearer(mut self) -> Self {
        self.sources.push(TokenSource::Bearer);
        self
    }

    /// Reads the cookie `name` (next, after the sources added before).
    pub fn cookie(mut self, name: impl Into<String>) -> Self {
        self.sources.push(TokenSource::Cookie(name.into()));
        self
    }

    /// Only sessions of these products are let through (by default, every product the calling
    /// service may see; the server already hides other products' sessions from a product
    /// backend).
    pub fn products(mut self, products: impl IntoIterator<Item = Product>) -> Self {
        self.products = products.into_iter().collect();
        self
    }

    /// Records activity (`TouchSession`) through `client`, at most once per `every` per session
    /// and in the background, so use shows on the Active sessions page without a call per
    /// request.
    pub fn heartbeat(mut self, client: SessionClient, every: Duration) -> Self {
        self.heartbeat = Some(Heartbeat::new(client, every));
        self
    }

    /// The validator.
    pub fn build(self) -> SessionValidator {
        let sources = if self.sources.is_empty() {
            vec![
                TokenSource::Bearer,
                TokenSource::Cookie(DEFAULT_COOKIE.into()),
            ]
        } else {
            self.sources
        };
        SessionValidator {
            inner: Arc::new(Inner {
                through: self.through,
                sources,
                products: self.products,
                heartbeat: self.heartbeat,
            }),
        }
    }
}

/// The token of an `Authorization: Bearer` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The value of the cookie `name`, from any `Cookie` header.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            let value = value.trim().trim_matches('"');
            (key.trim() == name && !value.is_empty()).then_some(value)
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, http::HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn tokens_are_read_from_the_bearer_header_and_cookies() {
        let h = headers(&[("authorization", "bearer  ast_x ")]);
        assert_eq!(bearer(&h), Some("ast_x"));
        assert_eq!(bearer(&headers(&[("authorization", "Basic abc")])), None);
        assert_eq!(bearer(&headers(&[("authorization", "Bearer ")])), None);
        let h = headers(&[
            ("cookie", "theme=dark; sid=\"ast_y\""),
            ("cookie", "other=1"),
        ]);
        assert_eq!(cookie(&h, "sid"), Some("ast_y"));
        assert_eq!(cookie(&h, "other"), Some("1"));
        assert_eq!(cookie(&h, "missing"), None);
        assert_eq!(cookie(&headers(&[("cookie", "sid=")]), "sid"), None);
    }
}
