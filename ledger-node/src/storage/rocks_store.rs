//! The ledger's stores over RocksDB, read and write split (TiKV `engine_traits`): `BatchStore`
//! gathers one apply's writes in an ordered overlay (reads see them) and turns them into one
//! WriteBatch (`ReadStore + Store`); `RocksSnapshot` is a read-only view for queries
//! (`ReadStore` alone).

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::Mutex;

use rocksdb::{Direction, IteratorMode, ReadOptions, WriteBatch};

use super::db::{Cf, Db, KEY_INSTALLING, cf, install_in_progress_error, to_io};
use ledger_core::Table;
use ledger_core::store::{KeyValue, ReadStore, Store};

fn scan_db(
    db: &rocksdb::DB,
    table: Table,
    start: &[u8],
    end: &[u8],
    limit: usize,
    reverse: bool,
) -> io::Result<Vec<KeyValue>> {
    if start >= end || limit == 0 {
        return Ok(Vec::new());
    }
    let mut opts = ReadOptions::default();
    opts.set_iterate_lower_bound(start.to_vec());
    opts.set_iterate_upper_bound(end.to_vec());
    let mode = if reverse { IteratorMode::End } else { IteratorMode::From(start, Direction::Forward) };
    let mut out = Vec::new();
    for item in db.iterator_cf_opt(cf(db, Cf::Ledger(table)), opts, mode) {
        let (k, v) = item.map_err(to_io)?;
        out.push((k.to_vec(), v.to_vec()));
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// A consistent read-only view of committed, applied state: one RocksDB snapshot (TiKV
/// `engine_traits::Snapshot`). Every read through one `RocksSnapshot` sees the same applied
/// index, so a lookup of several accounts never sees half of a transfer (one leg's debit
/// without its credit) that was applied between two of its gets. It reads and cannot write:
/// it implements `ReadStore` alone. It owns its handle on the database, so it can move to a
/// blocking task (an audit export) and outlive the call that made it.
///
/// A snapshot taken while a Raft snapshot is being installed (its marker in `sm_meta`) holds
/// partial tables: every read through it fails with `install_in_progress_error`.
pub struct RocksSnapshot {
    // Declared before `db`, so dropped first: it borrows the database `db` keeps alive.
    snapshot: rocksdb::Snapshot<'static>,
    db: Db,
    installing: bool,
}

impl RocksSnapshot {
    pub fn new(db: &Db) -> RocksSnapshot {
        let db = db.clone();
        // SAFETY: the snapshot borrows the `DB` behind the `Arc`, whose address never changes;
        // `db`, a clone of that `Arc`, is a field of the same struct and is dropped after the
        // snapshot (field order), so the borrow never outlives the database. rocksdb's snapshot
        // is `Send + Sync`; nothing else can reach the `'static` it is given here.
        let snapshot = unsafe { std::mem::transmute::<rocksdb::Snapshot<'_>, rocksdb::Snapshot<'static>>(db.snapshot()) };
        // A failed lookup here fails the reads too (same database): only a present marker counts.
        let installing = snapshot.get_cf(cf(&db, Cf::SmMeta), KEY_INSTALLING).is_ok_and(|v| v.is_some());
        RocksSnapshot { snapshot, db, installing }
    }

    fn check(&self) -> io::Result<()> {
        if self.installing { Err(install_in_progress_error()) } else { Ok(()) }
    }
}

impl ReadStore for RocksSnapshot {
    fn get(&self, table: Table, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        self.check()?;
        self.snapshot.get_cf(cf(&self.db, Cf::Ledger(table)), key).map_err(to_io)
    }
    fn scan(&self, table: Table, start: &[u8], end: &[u8], limit: usize, reverse: bool) -> io::Result<Vec<KeyValue>> {
        self.check()?;
        if start >= end || limit == 0 {
            return Ok(Vec::new());
        }
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(start.to_vec());
        opts.set_iterate_upper_bound(end.to_vec());
        let mode = if reverse { IteratorMode::End } else { IteratorMode::From(start, Direction::Forward) };
        let mut out = Vec::new();
        for item in self.snapshot.iterator_cf_opt(cf(&self.db, Cf::Ledger(table)), opts, mode) {
            let (k, v) = item.map_err(to_io)?;
            out.push((k.to_vec(), v.to_vec()));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}

/// Committed rows of the hot tables (accounts, assets), kept in memory for the apply path.
///
/// Every transfer rewrites its accounts, so RocksDB's memtable fills with versions of the same
/// keys and each read searches a deep skiplist (a third of apply's CPU, measured). The cache
/// changes only speed: it holds committed bytes, is updated after each successful write and
/// cleared when a snapshot replaces the state. Bounded: cleared when it reaches `rows_max`.
pub struct RowCache {
    rows: HashMap<(Table, Vec<u8>), Vec<u8>>,
    rows_max: usize,
}

/// Rows the apply path keeps in memory by default (~256 B each with its key: ~64 MiB).
pub const ROW_CACHE_ROWS_MAX: usize = 262_144;

impl RowCache {
    pub fn new(rows_max: usize) -> RowCache {
        RowCache { rows: HashMap::new(), rows_max }
    }

    pub fn caches(table: Table) -> bool {
        matches!(table, Table::Accounts | Table::Assets)
    }

    fn insert(&mut self, table: Table, key: Vec<u8>, value: Vec<u8>) {
        if self.rows.len() >= self.rows_max {
            self.rows.clear();
        }
        self.rows.insert((table, key), value);
    }

    /// Makes the cache match rows just written.
    pub fn apply(&mut self, written: Vec<((Table, Vec<u8>), Option<Vec<u8>>)>) {
        for ((table, key), value) in written {
            match value {
                Some(v) => self.insert(table, key, v),
                None => {
                    self.rows.remove(&(table, key));
                }
            }
        }
    }

    pub fn clear(&mut self) {
        self.rows.clear();
    }
}

/// The writes of one apply, readable before they are written.
pub struct BatchStore<'a> {
    db: &'a rocksdb::DB,
    /// None marks a delete. Ordered, so the WriteBatch is the same bytes on every replica.
    overlay: BTreeMap<(Table, Vec<u8>), Option<Vec<u8>>>,
    cache: Option<&'a Mutex<RowCache>>,
}

/// Rows for the cache, to apply once their batch is written.
pub type CachedWrites = Vec<((Table, Vec<u8>), Option<Vec<u8>>)>;

impl<'a> BatchStore<'a> {
    pub fn new(db: &'a rocksdb::DB) -> Self {
        BatchStore { db, overlay: BTreeMap::new(), cache: None }
    }

    pub fn with_cache(db: &'a rocksdb::DB, cache: &'a Mutex<RowCache>) -> Self {
        BatchStore { db, overlay: BTreeMap::new(), cache: Some(cache) }
    }

    pub fn write_count(&self) -> usize {
        self.overlay.len()
    }

    pub fn into_write_batch(self) -> WriteBatch {
        self.into_parts().0
    }

    /// The WriteBatch, and the writes the row cache must take once the batch is written.
    pub fn into_parts(self) -> (WriteBatch, CachedWrites) {
        let mut batch = WriteBatch::default();
        let mut cached = Vec::new();
        for ((table, key), value) in self.overlay {
            let handle = cf(self.db, Cf::Ledger(table));
            match &value {
                Some(v) => batch.put_cf(handle, &key, v),
                None => batch.delete_cf(handle, &key),
            }
            if self.cache.is_some() && RowCache::caches(table) {
                cached.push(((table, key), value));
            }
        }
        (batch, cached)
    }
}

impl ReadStore for BatchStore<'_> {
    fn get(&self, table: Table, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        let row = (table, key.to_vec());
        if let Some(v) = self.overlay.get(&row) {
            return Ok(v.clone());
        }
        let cache = self.cache.filter(|_| RowCache::caches(table));
        if let Some(cache) = cache {
            if let Some(v) = cache.lock().expect("row cache lock").rows.get(&row) {
                return Ok(Some(v.clone()));
            }
        }
        let value = self.db.get_cf(cf(self.db, Cf::Ledger(table)), key).map_err(to_io)?;
        if let (Some(cache), Some(v)) = (cache, &value) {
            cache.lock().expect("row cache lock").insert(table, row.1, v.clone());
        }
        Ok(value)
    }

    fn scan(&self, table: Table, start: &[u8], end: &[u8], limit: usize, reverse: bool) -> io::Result<Vec<KeyValue>> {
        if start >= end {
            return Ok(Vec::new());
        }
        let pending: Vec<(&Vec<u8>, &Option<Vec<u8>>)> = self
            .overlay
            .range((table, start.to_vec())..(table, end.to_vec()))
            .map(|((_, k), v)| (k, v))
            .collect();
        // Deletes in the overlay may hide database rows: read enough to still fill `limit`.
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> =
            scan_db(self.db, table, start, end, limit + pending.len(), reverse)?.into_iter().collect();
        for (k, v) in pending {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        let out: Vec<KeyValue> = if reverse {
            merged.into_iter().rev().take(limit).collect()
        } else {
            merged.into_iter().take(limit).collect()
        };
        Ok(out)
    }
}

impl Store for BatchStore<'_> {
    fn put(&mut self, table: Table, key: &[u8], value: Vec<u8>) {
        self.overlay.insert((table, key.to_vec()), Some(value));
    }

    fn delete(&mut self, table: Table, key: &[u8]) {
        self.overlay.insert((table, key.to_vec()), None);
    }
}
