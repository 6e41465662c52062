//! The writes of a linked chain, held in memory over the command's store until the chain's
//! last item passes: reads see the chain's own earlier writes, `commit` hands them to the store
//! in key order, dropping the overlay discards them (no partial write of a failed chain).

use std::collections::BTreeMap;
use std::io;

use crate::store::{KeyValue, ReadStore, Store, Table};

pub struct Overlay<'s, S: Store> {
    base: &'s mut S,
    /// `None`: deleted by the chain.
    writes: BTreeMap<(Table, Vec<u8>), Option<Vec<u8>>>,
}

impl<'s, S: Store> Overlay<'s, S> {
    pub fn new(base: &'s mut S) -> Self {
        Overlay { base, writes: BTreeMap::new() }
    }

    /// The chain passed: its writes go to the store.
    pub fn commit(self) {
        for ((table, key), value) in self.writes {
            match value {
                Some(value) => self.base.put(table, &key, value),
                None => self.base.delete(table, &key),
            }
        }
    }
}

impl<S: Store> ReadStore for Overlay<'_, S> {
    fn get(&self, table: Table, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        match self.writes.get(&(table, key.to_vec())) {
            Some(written) => Ok(written.clone()),
            None => self.base.get(table, key),
        }
    }

    /// The store's pairs with the chain's writes laid over them. The store is asked for `limit`
    /// plus as many pairs as the chain wrote in the range, so deletions cannot shorten a page.
    fn scan(&self, table: Table, start: &[u8], end: &[u8], limit: usize, reverse: bool) -> io::Result<Vec<KeyValue>> {
        if start >= end {
            return Ok(Vec::new());
        }
        let range = (table, start.to_vec())..(table, end.to_vec());
        let ours: Vec<_> = self.writes.range(range).collect();
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> =
            self.base.scan(table, start, end, limit.saturating_add(ours.len()), reverse)?.into_iter().collect();
        for ((_, key), value) in ours {
            match value {
                Some(value) => merged.insert(key.clone(), value.clone()),
                None => merged.remove(key),
            };
        }
        let pairs: Vec<KeyValue> =
            if reverse { merged.into_iter().rev().take(limit).collect() } else { merged.into_iter().take(limit).collect() };
        Ok(pairs)
    }
}

impl<S: Store> Store for Overlay<'_, S> {
    fn put(&mut self, table: Table, key: &[u8], value: Vec<u8>) {
        self.writes.insert((table, key.to_vec()), Some(value));
    }

    fn delete(&mut self, table: Table, key: &[u8]) {
        self.writes.insert((table, key.to_vec()), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemStore;

    #[test]
    fn reads_see_the_chain_and_only_commit_writes() {
        let mut base = MemStore::default();
        for key in [1u8, 2, 3, 4] {
            base.put(Table::Transfers, &[key], vec![key]);
        }
        let mut overlay = Overlay::new(&mut base);
        overlay.delete(Table::Transfers, &[2]);
        overlay.put(Table::Transfers, &[5], vec![50]);
        overlay.put(Table::Transfers, &[1], vec![10]);
        assert_eq!(overlay.get(Table::Transfers, &[2]).unwrap(), None);
        assert_eq!(overlay.get(Table::Transfers, &[3]).unwrap(), Some(vec![3]));
        let page = overlay.scan(Table::Transfers, &[0], &[9], 3, false).unwrap();
        assert_eq!(page, vec![(vec![1], vec![10]), (vec![3], vec![3]), (vec![4], vec![4])]);
        let back = overlay.scan(Table::Transfers, &[0], &[9], 2, true).unwrap();
        assert_eq!(back, vec![(vec![5], vec![50]), (vec![4], vec![4])]);
        drop(overlay);
        assert_eq!(base.get(Table::Transfers, &[2]).unwrap(), Some(vec![2]), "dropped: nothing written");
        let mut overlay = Overlay::new(&mut base);
        overlay.delete(Table::Transfers, &[2]);
        overlay.commit();
        assert_eq!(base.get(Table::Transfers, &[2]).unwrap(), None);
    }
}
