//! The gRPC API: decodes requests, refuses malformed input before it costs a Raft round trip,
//! maps results and errors to the wire. No ledger rule lives here.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod bounds;
pub mod cluster;
pub mod convert;
pub mod feed;
pub mod forward;
pub mod grpc;
pub mod request_errors;
pub mod risk;
pub mod risk_rules;
pub mod health;
pub mod query;
pub mod status;
pub mod wallet;
pub mod wallet_watch;

/// Largest request or response message.
pub const MESSAGE_BYTES_MAX: usize = 32 << 20;
/// Concurrent HTTP/2 streams (calls in flight, watch streams included) per client or peer
/// connection. tonic leaves it unlimited unless set; more wait for the peer's SETTINGS window.
pub const STREAMS_PER_CONNECTION_MAX: u32 = 1_024;
