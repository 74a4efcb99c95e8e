//! The one call path of the typed clients. A [`Caller`] holds a generated service client and
//! the [`RetryPolicy`]; every unary call, and the opening of the revocation stream, goes through
//! it: the request message carries the time left under the policy's deadline as its
//! `grpc-timeout`, idempotent calls are retried on the failures [`Error::is_retryable`] names,
//! and the final status becomes an [`Error`]. A typed client's method therefore only builds the
//! message, makes one call, and converts the response.

use tonic::{Request, Response, Status};

use crate::{
    Error, RetryPolicy,
    retry::{self, Idempotency},
};

/// A generated client and how its calls are retried.
#[derive(Debug, Clone)]
pub(crate) struct Caller<C> {
    client: C,
    retry: RetryPolicy,
    /// False for a stream: it is long-lived, so no `grpc-timeout` is sent.
    timeout: bool,
}

impl<C: Clone> Caller<C> {
    pub(crate) fn new(client: C, retry: RetryPolicy) -> Self {
        Self {
            client,
            retry,
            timeout: true,
        }
    }

    /// This caller with another retry policy.
    pub(crate) fn with_retry_policy(self, retry: RetryPolicy) -> Self {
        Self { retry, ..self }
    }

    /// This caller for opening a server stream: retried alike, but without a `grpc-timeout`,
    /// as the stream outlives the call that opens it.
    pub(crate) fn for_stream(&self) -> Self {
        Self {
            timeout: false,
            ..self.clone()
        }
    }

    /// Calls `method` (a generated client's method, such as
    /// `SessionServiceClient::validate_session`) with `message`, each attempt bounded by the time
    /// left; returns the response message.
    pub(crate) async fn call<M, R>(
        &self,
        idempotency: Idempotency,
        message: M,
        method: impl AsyncFn(&mut C, Request<M>) -> Result<Response<R>, Status>,
    ) -> Result<R, Error>
    where
        M: Clone,
    {
        let method = &method;
        let response = retry::run(&self.retry, idempotency, |left| {
            let mut client = self.client.clone();
            let mut request = Request::new(message.clone());
            if let Some(left) = left.filter(|_| self.timeout) {
                request.set_timeout(left);
            }
            async move { method(&mut client, request).await }
        })
        .await?;
        Ok(response.into_inner())
    }
}

/// The part of a response that must be there: its absence is the server's fault.
pub(crate) fn required<T>(part: Option<T>, what: &str) -> Result<T, Error> {
    part.ok_or_else(|| Error::Other(Status::internal(format!("no {what} in the response"))))
}

#[cfg(test)]
mod tests {
    use crate::{EligibilityClient, ListOptions, Owner, SessionClient, TrustedDeviceClient};

    fn send<T: Send>(_: T) {}

    /// Every call's future is `Send`, so product servers can spawn and box them: checked when
    /// this compiles (the futures are never polled).
    #[allow(dead_code)]
    fn every_call_is_send(
        sessions: &SessionClient,
        devices: &TrustedDeviceClient,
        eligibility: &EligibilityClient,
    ) {
        let owner = || Owner::account("a");
        send(sessions.validate(""));
        send(sessions.touch("", None));
        send(sessions.list_rows(owner(), ListOptions::new()));
        send(sessions.list_all_rows(owner(), None));
        send(sessions.revoke_row(owner(), "d", true));
        send(sessions.get_revocation(owner(), "r"));
        send(sessions.list_security_events(owner(), ListOptions::new()));
        send(sessions.watch_revocations(None, &[]));
        send(devices.list(owner(), ListOptions::new()));
        send(devices.remove(owner(), "d", false));
        send(devices.check("a", "d"));
        send(eligibility.check(owner()));
        send(eligibility.disable_account("a"));
        send(eligibility.delete_account("a"));
    }
}
