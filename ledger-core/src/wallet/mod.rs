//! Offline HCE wallets: tokens that let a phone spend offline within a hold, and the sync that
//! posts the phone's and terminal's offline records exactly once.
//!
//! Split of duties (why the state machine stays key-free): the node's service layer holds the
//! master key, derives the per-token key (`mac.rs`) and verifies each record's MAC *before*
//! proposing; the Raft command carries each record with its verdict (`mac_valid`). Apply never
//! sees a key, so keys never reach the log, the state, snapshots or exports, and every replica
//! reaches the same result from the same log.
//!
//! Money: issuing a token places a pending transfer (the hold) wallet -> offline-clearing of the
//! offline limit, capped by what the wallet can still spend. Each accepted record releases its
//! amount from the hold and posts it wallet -> merchant in the same step (`spend.rs`), so the
//! merchant is paid at once and both pending and posted totals stay balanced. A complete sync
//! re-issues: the rest of the hold is voided and a new hold of the limit (capped) is placed.

pub mod blocklist;
pub mod mac;
pub mod spend;
pub mod sync;
pub mod token;
pub mod types;

pub use types::*;
