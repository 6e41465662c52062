//! Tests of the ledger state machine over the in-memory store: no Raft, no RocksDB.
//! `fixtures` builds commands and a small harness; each other file tests one concern.

mod fixtures;

mod account_changes;
mod account_status;
mod balance_limits;
mod entries;
mod expiry;
mod feed;
mod idempotency;
mod lifecycle;
pub mod journal;
mod multi_leg;
mod properties;
mod query;
mod result_codes;
pub mod risk;
mod risk_rules;
mod timestamps;
mod two_phase;
mod wallet;
