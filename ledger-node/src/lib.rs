//! A ledger replica. Layers, each knowing only the one below it:
//! `api` (gRPC) → `service` (admission, reads) → `raft` (openraft glue) → `ledger_core` (the
//! rules, a crate of their own) over `storage` (RocksDB).

pub mod config;
pub mod fuzz;
pub mod raft;
pub mod storage;
pub mod api;
pub mod restore;
pub mod server;
pub mod shutdown;
pub mod storage_full;
pub mod service;
pub mod telemetry;
pub mod tls;
pub mod certs;
