//! When to retry, where, and how long to wait.
//!
//! Retrying a write is safe here because every write is idempotent on the server: a transfer
//! carries its idempotency key (a repeat replays the first result), and creating an asset or an
//! account that exists with the same fields answers EXISTS. What retrying cannot do is tell the
//! caller whether an attempt that timed out was applied; so each failure is classified as
//! "certainly not applied" or "maybe applied", and the client reports `Unknown` rather than
//! `Unavailable` when the last word was a maybe.

use std::collections::hash_map::RandomState;
use std::error::Error as _;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;
use tonic::{Code, Status};

/// Response metadata key a follower sets on UNAVAILABLE to name the leader's client endpoint.
pub const LEADER_METADATA_KEY: &str = "x-ledger-leader";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// A definite answer (INVALID_ARGUMENT, NOT_FOUND, ...): the same request fails the same way.
    Fatal,
    /// The request was not applied (could not connect, or a follower refused it). Retry; go to
    /// `leader` at once when the server named one.
    RetryNotApplied { leader: Option<String> },
    /// The request may have been applied (sent, then timed out or lost its connection). Retrying
    /// is safe because writes are idempotent, but if no later attempt gets an answer the outcome
    /// is unknown.
    RetryMaybeApplied,
}

impl Disposition {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Disposition::Fatal)
    }
}

/// Classifies a failed gRPC call.
pub fn classify(status: &Status) -> Disposition {
    // Checked before the code: tonic maps connect failures to UNAVAILABLE, and only the
    // ConnectError in the source chain proves no byte of the request left this process.
    if is_connect_error(status) {
        return Disposition::RetryNotApplied { leader: None };
    }
    // A status built by tonic from a local transport error carries a source; one decoded from
    // the server's trailers does not. Server-sent codes mean what the server says; transport
    // errors (stream reset, connection closed mid-call) mean "sent, fate unknown".
    let from_transport = status.source().is_some();
    match status.code() {
        Code::Unavailable => match leader_hint(status) {
            Some(leader) => Disposition::RetryNotApplied { leader },
            // Without the redirect header we cannot tell a refusal before append from a
            // connection lost after sending (or Raft discarding an appended entry).
            None => Disposition::RetryMaybeApplied,
        },
        Code::DeadlineExceeded | Code::Cancelled | Code::Aborted => Disposition::RetryMaybeApplied,
        Code::Unknown | Code::Internal if from_transport => Disposition::RetryMaybeApplied,
        // Never retried: InvalidArgument, PermissionDenied, Unauthenticated, NotFound, and every
        // other code the server chose deliberately (FailedPrecondition, ResourceExhausted for
        // an oversized message, Unimplemented, ...).
        _ => Disposition::Fatal,
    }
}

/// `Some(Some(url))`: the server named the leader; `Some(None)`: the header is present but empty
/// (a follower that knows no leader yet: rotate); `None`: no header.
fn leader_hint(status: &Status) -> Option<Option<String>> {
    let value = status.metadata().get(LEADER_METADATA_KEY)?;
    let text = value.to_str().ok().map(str::trim).unwrap_or("");
    if text.is_empty() { Some(None) } else { Some(Some(normalize_endpoint(text))) }
}

/// Accepts "host:port" as well as a URL, so a server that sends a bare address still redirects.
pub fn normalize_endpoint(endpoint: &str) -> String {
    let endpoint = endpoint.trim();
    let (scheme, rest) = endpoint.split_once("://").unwrap_or(("http", endpoint));
    // "http://a:1/" and "http://a:1" are one endpoint: one channel, one entry in the list.
    format!("{scheme}://{}", rest.trim_end_matches('/'))
}

fn is_connect_error(status: &Status) -> bool {
    let mut source = status.source();
    while let Some(error) = source {
        if error.is::<tonic::ConnectError>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// Exponential backoff: `initial` doubling per retry up to `max`, with "equal jitter" (half
/// fixed, half random) so clients that failed together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { initial: Duration::from_millis(50), max: Duration::from_secs(1) }
    }
}

impl Backoff {
    /// The ceiling for retry number `retry` (0-based): initial * 2^retry, capped at max.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        let half = ceiling / 2;
        let half_ns = half.as_nanos() as u64;
        if half_ns == 0 {
            return ceiling;
        }
        // std's RandomState is seeded randomly per instance: enough randomness for jitter
        // without a dependency on `rand`.
        let random = RandomState::new().build_hasher().finish();
        half + Duration::from_nanos(random % half_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataValue;

    fn with_leader(value: &'static str) -> Status {
        let mut status = Status::unavailable("not the leader");
        status.metadata_mut().insert(LEADER_METADATA_KEY, MetadataValue::from_static(value));
        status
    }

    #[test]
    fn never_retries_definite_answers() {
        for code in [
            Code::InvalidArgument,
            Code::PermissionDenied,
            Code::Unauthenticated,
            Code::NotFound,
            Code::AlreadyExists,
            Code::FailedPrecondition,
            Code::ResourceExhausted,
            Code::Unimplemented,
            Code::OutOfRange,
            Code::DataLoss,
            Code::Internal,
            Code::Unknown,
        ] {
            assert_eq!(classify(&Status::new(code, "x")), Disposition::Fatal, "{code:?}");
        }
    }

    #[test]
    fn retries_transient_failures_as_maybe_applied() {
        for code in [Code::Unavailable, Code::DeadlineExceeded, Code::Cancelled, Code::Aborted] {
            assert_eq!(classify(&Status::new(code, "x")), Disposition::RetryMaybeApplied, "{code:?}");
        }
        // A local transport error (connection reset mid-call) is Unknown with a source.
        let reset = std::io::Error::new(std::io::ErrorKind::Other, "connection reset");
        let status = Status::from_error(Box::new(reset));
        assert_eq!(status.code(), Code::Unknown);
        assert_eq!(classify(&status), Disposition::RetryMaybeApplied);
    }

    #[test]
    fn connect_errors_are_not_applied() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let status = Status::from_error(Box::new(tonic::ConnectError(Box::new(refused))));
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(classify(&status), Disposition::RetryNotApplied { leader: None });
    }

    #[test]
    fn leader_redirects() {
        assert_eq!(
            classify(&with_leader("http://127.0.0.1:7071")),
            Disposition::RetryNotApplied { leader: Some("http://127.0.0.1:7071".into()) }
        );
        assert_eq!(
            classify(&with_leader("127.0.0.1:7072")),
            Disposition::RetryNotApplied { leader: Some("http://127.0.0.1:7072".into()) }
        );
        assert_eq!(classify(&with_leader("")), Disposition::RetryNotApplied { leader: None });
        // The header only means something on UNAVAILABLE.
        let mut status = Status::invalid_argument("bad");
        status.metadata_mut().insert(LEADER_METADATA_KEY, MetadataValue::from_static("http://x:1"));
        assert_eq!(classify(&status), Disposition::Fatal);
    }

    #[test]
    fn backoff_doubles_to_cap_with_bounded_jitter() {
        let backoff = Backoff::default();
        let ceilings: Vec<u64> = (0..8).map(|r| backoff.ceiling(r).as_millis() as u64).collect();
        assert_eq!(ceilings, vec![50, 100, 200, 400, 800, 1000, 1000, 1000]);
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(1));
        for retry in 0..10 {
            let delay = backoff.delay(retry);
            assert!(delay >= backoff.ceiling(retry) / 2 && delay <= backoff.ceiling(retry));
        }
    }
}
