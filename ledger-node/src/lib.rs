//! A ledger replica. Layers, each knowing only the one below it:
//! `api` (gRPC) → `service` (admission, reads) → `raft` (openraft glue) → `ledger` (the rules)
//! over `storage` (RocksDB).

pub mod ledger;
pub mod codec;
pub mod config;
pub mod fuzz;
pub mod raft;
pub mod storage;
pub mod api;
pub mod restore;
pub mod server;
pub mod shutdown;
pub mod service;
pub mod telemetry;
pub mod tls;
pub mod certs;
