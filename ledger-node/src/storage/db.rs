//! Opening the node's RocksDB and naming its column families.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, Options, ReadOptions};

use ledger_core::Table;

pub type Db = Arc<rocksdb::DB>;

/// Key in `sm_meta` present while a snapshot install is in progress (raft/snapshot.rs): the
/// ledger tables are then partial, and every reader refuses or waits.
pub const KEY_INSTALLING: &[u8] = b"installing";

/// The error a read gets while a snapshot install is in progress (`ErrorKind::WouldBlock`,
/// which the API answers as UNAVAILABLE: another node, or this one a moment later, can answer).
pub fn install_in_progress_error() -> io::Error {
    io::Error::new(io::ErrorKind::WouldBlock, "a snapshot is being installed on this node: retry, or ask another node")
}

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

/// Opens the database and verifies every table block (see `verify_tables`).
pub fn open(path: &Path) -> io::Result<Db> {
    open_with(path, true)
}

/// The memtables of every column family together (RocksDB's `db_write_buffer_size`): past it,
/// the oldest is flushed. Without it each of the 19 column families could hold its own
/// `WRITE_BUFFER_BYTES` until the WAL cap (256 MiB) forced flushes, so a write spread over many
/// tables (a snapshot install, a busy ledger) kept up to that much in memory per node.
pub const MEMTABLE_BUDGET_BYTES: usize = 256 << 20;

/// The one block cache all column families share. RocksDB's default is a separate 32 MiB cache
/// per column family (about 600 MiB for 19): one bound for the whole node instead.
pub const BLOCK_CACHE_BYTES: usize = 256 << 20;

/// Opens the database; with `verify_tables`, reads every block of every column family once with
/// checksums on and refuses the open on a mismatch.
pub fn open_with(path: &Path, verify_tables: bool) -> io::Result<Db> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    // Write-ahead-log recovery: a torn *tail* is tolerated, any other damage refuses the open.
    // A kill or power cut can leave the last WAL record incomplete (a write batch above the WAL
    // buffer goes out in several write() calls): those bytes were never synced, so no fsync, and
    // no Raft acknowledgement, ever covered them; dropping that one incomplete record recovers
    // exactly the synced state. A record whose checksum does not match, wherever it is, or damage
    // before the last record, is corruption of data that may have been synced and acknowledged:
    // the open fails (`explain_open_error`). So the guarantee is absolute consistency on synced
    // data. `AbsoluteConsistency` (the previous setting) also refused the torn tail: one kill -9
    // during a large write, or a power cut across a rack, left a node (a quorum) that would not
    // start. `PointInTime` (RocksDB's default) silently drops every record after a damaged one,
    // which for a Raft node means forgetting acknowledged entries and votes (found by the jepsen
    // corrupt nemesis). WAL recycling stays off (RocksDB's default; this mode requires it).
    opts.set_wal_recovery_mode(rocksdb::DBRecoveryMode::TolerateCorruptedTailRecords);
    opts.set_max_total_wal_size(256 << 20);
    opts.set_compression_type(DBCompressionType::Lz4);
    opts.set_bottommost_compression_type(DBCompressionType::Zstd);
    opts.increase_parallelism(2);
    // A flush trigger, not a stall: RocksDB's stalling write buffer manager flushes one column
    // family and then waits for usage to fall under the budget, which never happens when the
    // rest is spread over the other column families (seen: a snapshot install hung). Writes
    // that outpace the flushes are held by RocksDB's per-column-family stall instead
    // (`max_write_buffer_number`), and the snapshot install flushes as it goes.
    opts.set_db_write_buffer_size(MEMTABLE_BUDGET_BYTES);
    let block_cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
    let descriptors = all_cfs().into_iter().map(|cf| ColumnFamilyDescriptor::new(cf.name(), cf_options(cf, &block_cache)));
    let db = rocksdb::DB::open_cf_descriptors(&opts, path, descriptors).map_err(|e| explain_open_error(path, e))?;
    if verify_tables {
        let verified = verify_tables_of(&db).inspect_err(|e| tracing::error!(error = %e, path = %path.display(), "refusing to open the database"))?;
        tracing::info!(
            rows = verified.rows,
            bytes = verified.bytes,
            elapsed_ms = verified.elapsed.as_millis() as u64,
            "verified every table block's checksum at open"
        );
    }
    Ok(Arc::new(db))
}

/// The error of a refused open. RocksDB's own words say which file and offset; a corruption also
/// says what it means for the node and what to do (the open repairs nothing).
fn explain_open_error(path: &Path, e: rocksdb::Error) -> io::Error {
    if e.kind() != rocksdb::ErrorKind::Corruption {
        return to_io(e);
    }
    let message = format!(
        "the database {} is damaged ({}): a record that was synced (and may have been acknowledged) is \
         corrupted, so this node cannot recover its Raft log, vote or ledger state. It refuses to start \
         rather than forget acknowledged writes. Do not delete only the db directory: rebuild the node \
         (docs/operations.md, \"Rebuild a node whose data is lost\")",
        path.display(),
        e.into_string()
    );
    tracing::error!(path = %path.display(), "{message}");
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// A table block whose checksum does not match, found by the scan at open: the node must not
/// serve from this database (rebuild it from its peers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCorruption {
    pub column_family: &'static str,
    /// RocksDB's own words (file, offset, checksums).
    pub detail: String,
}

impl fmt::Display for TableCorruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "corrupted table data in column family {}: {}; this node's database is damaged: remove the node and add a fresh one, which catches up from its peers \
             (docs/operations.md, \"Rebuild a node whose data is lost\")",
            self.column_family, self.detail
        )
    }
}

impl std::error::Error for TableCorruption {}

/// What the scan at open read.
#[derive(Debug, Clone, Copy)]
pub struct Verified {
    pub rows: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// Bytes read ahead by a full scan (sequential reads of whole files).
const SCAN_READAHEAD_BYTES: usize = 2 << 20;

/// Read options for a scan of a whole column family (the checksum scan at open, a snapshot
/// build, the state hash): read ahead, and leave the block cache alone, so that a scan neither
/// evicts the working set nor keeps the ledger's blocks in memory.
pub fn scan_options() -> ReadOptions {
    let mut read = ReadOptions::default();
    read.fill_cache(false);
    read.set_readahead_size(SCAN_READAHEAD_BYTES);
    read
}

/// Reads every row of every column family once, with block checksums verified and the block
/// cache left alone. `AbsoluteConsistency` covers only the write-ahead log: a flipped byte in an
/// SST data block is otherwise found only when that block is first read, possibly after the
/// node has served (and state-hashed) for a while. An iterator over a column family merges every
/// level, so it reads every data block of every live SST file, and the index and filter blocks
/// on the way. A mismatch is `io::ErrorKind::InvalidData` carrying a `TableCorruption`.
pub fn verify_tables_of(db: &rocksdb::DB) -> io::Result<Verified> {
    let started = Instant::now();
    let (mut rows, mut bytes) = (0u64, 0u64);
    for family in all_cfs() {
        let mut read = scan_options();
        read.set_verify_checksums(true);
        let mut iter = db.raw_iterator_cf_opt(cf(db, family), read);
        iter.seek_to_first();
        while iter.valid() {
            rows += 1;
            bytes += (iter.key().map_or(0, <[u8]>::len) + iter.value().map_or(0, <[u8]>::len)) as u64;
            iter.next();
        }
        match iter.status() {
            Ok(()) => {}
            Err(e) if e.kind() == rocksdb::ErrorKind::Corruption => {
                let corruption = TableCorruption { column_family: family.name(), detail: e.into_string() };
                return Err(io::Error::new(io::ErrorKind::InvalidData, corruption));
            }
            Err(e) => return Err(to_io(e)),
        }
    }
    Ok(Verified { rows, bytes, elapsed: started.elapsed() })
}

/// Bytes of memtable per column family before it is flushed. The point-lookup families'
/// memtable bloom filters take a tenth of it each (6.4 MiB), allocated when the memtable is.
const WRITE_BUFFER_BYTES: usize = 64 << 20;

fn cf_options(cf: Cf, block_cache: &Cache) -> Options {
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
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(block_cache);
    if point_lookups {
        opts.set_memtable_whole_key_filtering(true);
        opts.set_memtable_prefix_bloom_ratio(0.1);
        table.set_bloom_filter(10.0, false);
    }
    opts.set_block_based_table_factory(&table);
    opts
}

pub fn cf(db: &rocksdb::DB, cf: Cf) -> &rocksdb::ColumnFamily {
    db.cf_handle(cf.name()).expect("every column family is created at open")
}

pub fn to_io(e: rocksdb::Error) -> io::Error {
    io::Error::other(format!("rocksdb: {e}"))
}
