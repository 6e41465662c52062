//! Opening the node's RocksDB and naming its column families.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rocksdb::{ColumnFamilyDescriptor, DBCompressionType, Options};

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
    // Reusing WAL files avoids a metadata flush on every fsync of a growing file
    // (../shared/notes/measurements.md: several times faster syncs on this class of disk).
    opts.set_recycle_log_file_num(4);
    opts.set_max_total_wal_size(256 << 20);
    opts.set_compression_type(DBCompressionType::Lz4);
    opts.set_bottommost_compression_type(DBCompressionType::Zstd);
    opts.increase_parallelism(2);
    let descriptors = all_cfs().into_iter().map(|cf| {
        let mut cf_opts = Options::default();
        cf_opts.set_compression_type(DBCompressionType::Lz4);
        cf_opts.set_bottommost_compression_type(DBCompressionType::Zstd);
        ColumnFamilyDescriptor::new(cf.name(), cf_opts)
    });
    let db = rocksdb::DB::open_cf_descriptors(&opts, path, descriptors).map_err(to_io)?;
    Ok(Arc::new(db))
}

pub fn cf(db: &rocksdb::DB, cf: Cf) -> &rocksdb::ColumnFamily {
    db.cf_handle(cf.name()).expect("every column family is created at open")
}

pub fn to_io(e: rocksdb::Error) -> io::Error {
    io::Error::other(format!("rocksdb: {e}"))
}
