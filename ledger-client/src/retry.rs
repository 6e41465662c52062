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

/// Response metadata a node sets on UNAVAILABLE to name the leader's endpoint (a URL such as
/// `http://127.0.0.1:7071`; a bare `host:port` is accepted too).
pub const LEADER_METADATA_KEY: &str = "x-ledger-leader";
/// Response metadata a node sets to `unknown` on UNAVAILABLE when the write was handed to Raft
/// and its fate is not known (e.g. leadership changed while it was in flight).
pub const OUTCOME_METADATA_KEY: &str = "x-ledger-outcome";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// A definite answer (INVALID_ARGUMENT, NOT_FOUND, ...): the same request fails the same way.
    Fatal,
    /// The request was not applied (could not connect, or a node refused it before proposing
    /// it). Retry; go to `leader` at once when the server named one.
    RetryNotApplied { leader: Option<String> },
    /// The request may have been applied (sent, then timed out or lost its connection, or the
    /// server said so). Retrying is safe because writes are idempotent, but if no later attempt
    /// gets an answer the outcome is unknown.
    RetryMaybeApplied,
}

impl Disposition {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Disposition::Fatal)
    }
}

/// Classifies a failed gRPC call.
///
/// The contract with ledger-node: a server-sent UNAVAILABLE means "refused before proposing"
/// (not the leader, no quorum for a read) unless it carries `x-ledger-outcome: unknown`.
pub fn classify(status: &Status) -> Disposition {
    // Checked before the code: tonic maps connect failures to UNAVAILABLE, and only the
    // ConnectError in the source chain proves no byte of the request left this process.
    if is_connect_error(status) {
        return Disposition::RetryNotApplied { leader: None };
    }
    // A status built by tonic from a local transport error carries a source; one decoded from
    // the server's trailers does not. Server-sent codes mean what the server says; transport
    // errors (stream reset, connection closed or keep-alive timeout mid-call) mean "sent, fate
    // unknown".
    let from_transport = status.source().is_some();
    match status.code() {
        Code::Unavailable if from_transport || outcome_unknown(status) => {
            Disposition::RetryMaybeApplied
        }
        Code::Unavailable => Disposition::RetryNotApplied {
            leader: leader_hint(status),
        },
        // Deadlines, cancellation, and INTERNAL / UNKNOWN (a node whose Raft or storage failed
        // mid-write): another attempt, maybe on another node, may succeed, but this one may have
        // been appended to the log first.
        Code::DeadlineExceeded
        | Code::Cancelled
        | Code::Aborted
        | Code::Internal
        | Code::Unknown => Disposition::RetryMaybeApplied,
        // Never retried: InvalidArgument, PermissionDenied, Unauthenticated, NotFound, and every
        // other code the server chose deliberately (FailedPrecondition, ResourceExhausted for an
        // oversized message, Unimplemented, DataLoss for a node refusing corrupt state, ...).
        _ => Disposition::Fatal,
    }
}

fn outcome_unknown(status: &Status) -> bool {
    status
        .metadata()
        .get(OUTCOME_METADATA_KEY)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("unknown"))
}

/// The leader a node named, if any (an empty value means "no leader known": rotate).
fn leader_hint(status: &Status) -> Option<String> {
    let text = status
        .metadata()
        .get(LEADER_METADATA_KEY)?
        .to_str()
        .ok()?
        .trim();
    if text.is_empty() {
        None
    } else {
        Some(normalize_endpoint(text))
    }
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
        Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_secs(1),
        }
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

    fn with_metadata(mut status: Status, key: &'static str, value: &'static str) -> Status {
        status
            .metadata_mut()
            .insert(key, MetadataValue::from_static(value));
        status
    }

    fn with_leader(value: &'static str) -> Status {
        with_metadata(
            Status::unavailable("not the leader"),
            LEADER_METADATA_KEY,
            value,
        )
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
        ] {
            assert_eq!(
                classify(&Status::new(code, "x")),
                Disposition::Fatal,
                "{code:?}"
            );
        }
    }

    #[test]
    fn retries_transient_failures_as_maybe_applied() {
        for code in [
            Code::DeadlineExceeded,
            Code::Cancelled,
            Code::Aborted,
            Code::Internal,
            Code::Unknown,
        ] {
            assert_eq!(
                classify(&Status::new(code, "x")),
                Disposition::RetryMaybeApplied,
                "{code:?}"
            );
        }
        // A local transport error (connection reset mid-call) is Unknown with a source.
        let reset = std::io::Error::other("connection reset");
        let status = Status::from_error(Box::new(reset));
        assert_eq!(status.code(), Code::Unknown);
        assert_eq!(classify(&status), Disposition::RetryMaybeApplied);
        // The server says the write may have been proposed.
        let unknown = with_metadata(
            Status::unavailable("leader changed"),
            OUTCOME_METADATA_KEY,
            "unknown",
        );
        assert_eq!(classify(&unknown), Disposition::RetryMaybeApplied);
        let unknown = with_metadata(with_leader("http://a:1"), OUTCOME_METADATA_KEY, "unknown");
        assert_eq!(
            classify(&unknown),
            Disposition::RetryMaybeApplied,
            "unknown wins over a redirect"
        );
        // A transport-level UNAVAILABLE (keep-alive timeout) after sending.
        #[derive(Debug)]
        struct Transport(Status);
        impl std::fmt::Display for Transport {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("transport error")
            }
        }
        impl std::error::Error for Transport {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let keep_alive = Status::from_error(Box::new(Transport(Status::unavailable(
            "keep-alive timed out",
        ))));
        assert_eq!(keep_alive.code(), Code::Unavailable);
        assert_eq!(classify(&keep_alive), Disposition::RetryMaybeApplied);
    }

    #[test]
    fn server_unavailable_without_outcome_is_not_applied() {
        // No leader known (election in progress) or no quorum for a read: refused before Raft.
        assert_eq!(
            classify(&Status::unavailable("no leader")),
            Disposition::RetryNotApplied { leader: None }
        );
    }

    #[test]
    fn connect_errors_are_not_applied() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let status = Status::from_error(Box::new(tonic::ConnectError(Box::new(refused))));
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            classify(&status),
            Disposition::RetryNotApplied { leader: None }
        );
    }

    #[test]
    fn leader_redirects() {
        assert_eq!(
            classify(&with_leader("http://127.0.0.1:7071")),
            Disposition::RetryNotApplied {
                leader: Some("http://127.0.0.1:7071".into())
            }
        );
        assert_eq!(
            classify(&with_leader("127.0.0.1:7072")),
            Disposition::RetryNotApplied {
                leader: Some("http://127.0.0.1:7072".into())
            }
        );
        assert_eq!(
            classify(&with_leader("")),
            Disposition::RetryNotApplied { leader: None }
        );
        // The header only means something on UNAVAILABLE.
        let status = with_metadata(
            Status::invalid_argument("bad"),
            LEADER_METADATA_KEY,
            "http://x:1",
        );
        assert_eq!(classify(&status), Disposition::Fatal);
    }

    #[test]
    fn backoff_doubles_to_cap_with_bounded_jitter() {
        let backoff = Backoff::default();
        let ceilings: Vec<u64> = (0..8)
            .map(|r| backoff.ceiling(r).as_millis() as u64)
            .collect();
        assert_eq!(ceilings, vec![50, 100, 200, 400, 800, 1000, 1000, 1000]);
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(1));
        for retry in 0..10 {
            let delay = backoff.delay(retry);
            assert!(delay >= backoff.ceiling(retry) / 2 && delay <= backoff.ceiling(retry));
        }
    }
}
