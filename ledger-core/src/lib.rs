//! The ledger's rules: the deterministic state machine (assets, accounts, transfers, two-phase
//! holds, idempotency, offline wallets, risk limits) and the vocabulary the node and the client
//! share (amounts, result codes, the wallet MAC, the journal schema). Pure functions over a
//! `Store`; it knows nothing of Raft, RocksDB or gRPC, so its tests build without them.

pub mod account;
pub mod amount;
pub mod apply;
pub mod asset;
pub mod audit;
pub mod clock;
pub mod codec;
pub mod feed;
pub mod journal;
pub mod limits;
pub mod pending;
pub mod query;
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
pub use amount::Amount;
pub use result::{ItemResult, ResultCode};
pub use store::{MemStore, ReadStore, Store, Table};
