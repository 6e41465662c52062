//! The deterministic ledger state machine: assets, accounts, transfers, two-phase holds and
//! idempotency. Pure functions over a `Store`; it knows nothing of Raft, RocksDB or gRPC.

pub mod account;
pub mod amount;
pub mod apply;
pub mod asset;
pub mod audit;
pub mod journal;
pub mod limits;
pub mod pending;
pub mod result;
pub mod risk;
pub mod store;
pub mod transfer;
pub mod types;
pub mod validate;
pub mod wallet;

#[cfg(test)]
mod tests;

pub use apply::{Applied, apply, record_membership};
pub use result::{ItemResult, ResultCode};
pub use store::{MemStore, Store, Table};
