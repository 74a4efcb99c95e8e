//! The client's deadline, as the commit point sees it. A call's `grpc-timeout` becomes an
//! instant when the call arrives (`limits::Shed` scopes the call with it); a write transaction
//! checks it right before COMMIT and rolls back instead of committing when less than
//! [`COMMIT_MARGIN`] is left: the client has given up, or will have by the time the answer
//! reaches it.
//!
//! The remaining window: a COMMIT that starts with the margin left but takes longer than it, and
//! the request's time in transit (the client's clock starts before the server sees the call), can
//! still commit a write whose client has already seen DEADLINE_EXCEEDED. tonic also ends the call
//! at its deadline, dropping (and so rolling back) work that has not reached the commit.

use std::time::{Duration, Instant};

/// The least time a write must have left to commit: about one COMMIT round trip and the answer.
pub const COMMIT_MARGIN: Duration = Duration::from_millis(2);

tokio::task_local! {
    static DEADLINE: Option<Instant>;
}

/// The deadline a call's `grpc-timeout` header (if any) sets from now.
pub fn from_headers(headers: &http::HeaderMap) -> Option<Instant> {
    headers
        .get("grpc-timeout")
        .and_then(|value| value.to_str().ok())
        .and_then(parse_grpc_timeout)
        .and_then(|timeout| Instant::now().checked_add(timeout))
}

/// Runs `call` under `deadline`.
pub async fn scope<F: std::future::Future>(deadline: Option<Instant>, call: F) -> F::Output {
    DEADLINE.scope(deadline, call).await
}

/// True when the current call's deadline leaves less than [`COMMIT_MARGIN`] (false outside a
/// call or without a deadline).
pub fn too_late_to_commit() -> bool {
    too_late(current())
}

/// The current call's deadline (`None` outside a call or without one), for work that another
/// task commits on the call's behalf.
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|deadline| *deadline).ok().flatten()
}

/// True when `deadline` leaves less than [`COMMIT_MARGIN`].
pub fn too_late(deadline: Option<Instant>) -> bool {
    deadline
        .is_some_and(|deadline| deadline.saturating_duration_since(Instant::now()) < COMMIT_MARGIN)
}

/// Reads a `grpc-timeout` value: up to 8 digits and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("1m"), Some(Duration::from_millis(1)));
        assert_eq!(parse_grpc_timeout("30S"), Some(Duration::from_secs(30)));
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("999u"), Some(Duration::from_micros(999)));
        for bad in ["", "m", "1x", "123456789S", "-1S", "1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn a_deadline_without_the_margin_left_is_too_late() {
        assert!(!too_late_to_commit());
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-timeout", http::HeaderValue::from_static("1m"));
        assert!(scope(from_headers(&headers), async { too_late_to_commit() }).await);
        headers.insert("grpc-timeout", http::HeaderValue::from_static("10S"));
        assert!(!scope(from_headers(&headers), async { too_late_to_commit() }).await);
    }
}
