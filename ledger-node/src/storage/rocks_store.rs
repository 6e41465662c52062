//! The ledger's `Store` over RocksDB. `BatchStore` gathers one apply's writes in an ordered
//! overlay (reads see them) and turns them into one WriteBatch; `ReadStore` serves queries.

use std::collections::BTreeMap;
use std::io;

use rocksdb::{Direction, IteratorMode, ReadOptions, WriteBatch};

use super::db::{Cf, cf, to_io};
use crate::ledger::Table;
use crate::ledger::store::{KeyValue, Store};

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

/// Reads straight from the database (committed, applied state).
pub struct ReadStore<'a> {
    pub db: &'a rocksdb::DB,
}

impl Store for ReadStore<'_> {
    fn get(&self, table: Table, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        self.db.get_cf(cf(self.db, Cf::Ledger(table)), key).map_err(to_io)
    }
    fn scan(&self, table: Table, start: &[u8], end: &[u8], limit: usize, reverse: bool) -> io::Result<Vec<KeyValue>> {
        scan_db(self.db, table, start, end, limit, reverse)
    }
    fn put(&mut self, _: Table, _: &[u8], _: Vec<u8>) {
        unreachable!("ReadStore is read-only")
    }
    fn delete(&mut self, _: Table, _: &[u8]) {
        unreachable!("ReadStore is read-only")
    }
}

/// The writes of one apply, readable before they are written.
pub struct BatchStore<'a> {
    db: &'a rocksdb::DB,
    /// None marks a delete. Ordered, so the WriteBatch is the same bytes on every replica.
    overlay: BTreeMap<(Table, Vec<u8>), Option<Vec<u8>>>,
}

impl<'a> BatchStore<'a> {
    pub fn new(db: &'a rocksdb::DB) -> Self {
        BatchStore { db, overlay: BTreeMap::new() }
    }

    pub fn write_count(&self) -> usize {
        self.overlay.len()
    }

    pub fn into_write_batch(self) -> WriteBatch {
        let mut batch = WriteBatch::default();
        for ((table, key), value) in self.overlay {
            let handle = cf(self.db, Cf::Ledger(table));
            match value {
                Some(v) => batch.put_cf(handle, key, v),
                None => batch.delete_cf(handle, key),
            }
        }
        batch
    }
}

impl Store for BatchStore<'_> {
    fn get(&self, table: Table, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        if let Some(v) = self.overlay.get(&(table, key.to_vec())) {
            return Ok(v.clone());
        }
        self.db.get_cf(cf(self.db, Cf::Ledger(table)), key).map_err(to_io)
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

    fn put(&mut self, table: Table, key: &[u8], value: Vec<u8>) {
        self.overlay.insert((table, key.to_vec()), Some(value));
    }

    fn delete(&mut self, table: Table, key: &[u8]) {
        self.overlay.insert((table, key.to_vec()), None);
    }
}
