//! RocksDB: one database per node holding the Raft log, the Raft metadata and the ledger
//! tables as column families. One DB means one WAL: the fsync that makes a log append durable
//! also makes every earlier state-machine write durable.

pub mod db;
pub mod rocks_store;

pub use db::{Cf, Db, open};
pub use rocks_store::{BatchStore, ROW_CACHE_ROWS_MAX, RocksSnapshot, RowCache};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod wal_tests;
