//! Opening the node's RocksDB and naming its column families.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rocksdb::{BlockBasedOptions, ColumnFamilyDescriptor, DBCompressionType, Options};

use crate::ledger::Table;

pub type Db = Arc<rocksdb::DB>;

/// Column families that are not ledger tables.
#[derive(Debug, Clone, Copy)]
pub enum Cf {
    /// log index (u64 BE) -> CRC-32 ‖ postcard(Entry)
    RaftLog,
    /// vote, last purged log id, committed log id
    RaftMeta,
    /// applied log id and membership: written in the same batch as the ledger tables
    SmMeta,
    Ledger(Table),
}

impl Cf {
    pub fn name(self) -> &'static str {
        match self {
            Cf::RaftLog => "raft_log",
            Cf::RaftMeta => "raft_meta",
            Cf::SmMeta => "sm_meta",
            Cf::Ledger(table) => table.name(),
        }
    }
}

pub fn all_cfs() -> Vec<Cf> {
    let mut cfs = vec![Cf::RaftLog, Cf::RaftMeta, Cf::SmMeta];
    cfs.extend(Table::ALL.iter().map(|t| Cf::Ledger(*t)));
    cfs
}

pub fn open(path: &Path) -> io::Result<Db> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    // Any damage in the write-ahead log refuses the open: the default (point-in-time recovery)
    // silently drops every record after a corrupted one, which for a Raft node means forgetting
    // acknowledged log entries and votes (found by the jepsen corrupt nemesis: a node came back
    // with its applied index at 4 and never converged). A node that refuses to open is rebuilt
    // from its peers (README: "Replace a node"). RocksDB turns WAL recycling off in this mode.
    opts.set_wal_recovery_mode(rocksdb::DBRecoveryMode::AbsoluteConsistency);
    opts.set_max_total_wal_size(256 << 20);
    opts.set_compression_type(DBCompressionType::Lz4);
    opts.set_bottommost_compression_type(DBCompressionType::Zstd);
    opts.increase_parallelism(2);
    let descriptors = all_cfs().into_iter().map(|cf| ColumnFamilyDescriptor::new(cf.name(), cf_options(cf)));
    let db = rocksdb::DB::open_cf_descriptors(&opts, path, descriptors).map_err(to_io)?;
    Ok(Arc::new(db))
}

/// Bytes of memtable per column family before it is flushed.
const WRITE_BUFFER_BYTES: usize = 64 << 20;

fn cf_options(cf: Cf) -> Options {
    let mut opts = Options::default();
    opts.set_compression_type(DBCompressionType::Lz4);
    opts.set_bottommost_compression_type(DBCompressionType::Zstd);
    opts.set_write_buffer_size(WRITE_BUFFER_BYTES);
    // Point lookups that mostly miss (a new transfer's id and idempotency key, a new account)
    // or hit (accounts, assets): bloom filters in the memtable and in SST blocks let a miss skip
    // the skiplist search and the disk. Measured: the skiplist search was a quarter of apply CPU.
    let point_lookups = matches!(
        cf,
        Cf::Ledger(Table::Accounts | Table::Assets | Table::Transfers | Table::Idempotency | Table::ExternalRefs)
    );
    if point_lookups {
        opts.set_memtable_whole_key_filtering(true);
        opts.set_memtable_prefix_bloom_ratio(0.1);
        let mut table = BlockBasedOptions::default();
        table.set_bloom_filter(10.0, false);
        opts.set_block_based_table_factory(&table);
    }
    opts
}

pub fn cf(db: &rocksdb::DB, cf: Cf) -> &rocksdb::ColumnFamily {
    db.cf_handle(cf.name()).expect("every column family is created at open")
}

pub fn to_io(e: rocksdb::Error) -> io::Error {
    io::Error::other(format!("rocksdb: {e}"))
}
