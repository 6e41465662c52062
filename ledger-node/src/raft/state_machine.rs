//! openraft's state machine over the ledger: each `apply` call turns every committed entry it is
//! given into one RocksDB WriteBatch (ledger rows + applied log id + membership), written before
//! any caller hears its result.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures::{Stream, TryStreamExt};
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use tokio::sync::broadcast;

use super::snapshot::{self, KEY_APPLIED, KEY_MEMBERSHIP, SnapshotFile};
use super::{CommandResponse, Entry, LogId, Snapshot, SnapshotMeta, StoredMembership, TypeConfig};
use ledger_core::codec;
use ledger_core::{Table, types::AccountEntry};
use crate::storage::db::{Cf, Db, cf, to_io};
use crate::storage::{BatchStore, ROW_CACHE_ROWS_MAX, RowCache};

/// Committed balance changes, published after they are written (for watch streams).
pub type EntryFeed = broadcast::Sender<Arc<Vec<AccountEntry>>>;
/// Batches of entries kept for slow watchers before they lag.
const ENTRY_FEED_CAPACITY: usize = 1_024;

pub struct StateMachine {
    db: Db,
    snapshot_dir: PathBuf,
    feed: EntryFeed,
    cache: Arc<Mutex<RowCache>>,
    /// Whether `snapshot::check_latest_at_start` ran (the first `applied_state`).
    snapshot_checked: bool,
}

impl StateMachine {
    /// Also removes the temp files of snapshot builds and receives a crash interrupted: call
    /// before Raft starts.
    pub fn new(db: Db, snapshot_dir: PathBuf) -> StateMachine {
        match snapshot::remove_stale_temp_files(&snapshot_dir) {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, dir = %snapshot_dir.display(), "removed interrupted snapshot temp files"),
            Err(e) => tracing::warn!(error = %e, dir = %snapshot_dir.display(), "could not remove interrupted snapshot temp files"),
        }
        let (feed, _) = broadcast::channel(ENTRY_FEED_CAPACITY);
        let cache = Arc::new(Mutex::new(RowCache::new(ROW_CACHE_ROWS_MAX)));
        StateMachine { db, snapshot_dir, feed, cache, snapshot_checked: false }
    }

    pub fn feed(&self) -> EntryFeed {
        self.feed.clone()
    }
}

fn blocking<T: Send + 'static>(f: impl FnOnce() -> io::Result<T> + Send + 'static) -> impl Future<Output = io::Result<T>> {
    async move { tokio::task::spawn_blocking(f).await.map_err(io::Error::other)? }
}

/// Writes gathered in one batch at most before it is written and a new one begins: bounds the
/// memory of one apply call (a follower catching up may get thousands of entries at once).
/// A full entry of 8,190 transfers writes about 50,000 rows.
const BATCH_WRITES_MAX: usize = 500_000;

/// Applies entries to the database: one write batch per call, or several when the entries are
/// many, each carrying the log id of its last entry. Blocking.
fn apply_batch(
    db: &rocksdb::DB,
    cache: &Mutex<RowCache>,
    entries: &[Entry],
    batch_writes_max: usize,
) -> io::Result<(Vec<CommandResponse>, Vec<AccountEntry>)> {
    let mut store = BatchStore::with_cache(db, cache);
    let mut responses = Vec::with_capacity(entries.len());
    let mut changes = Vec::new();
    let mut membership = None;
    for (position, entry) in entries.iter().enumerate() {
        match &entry.payload {
            EntryPayload::Blank => responses.push(CommandResponse::default()),
            EntryPayload::Normal(command) => {
                let applied = ledger_core::apply(&mut store, command)?;
                responses.push(CommandResponse { results: applied.results });
                changes.extend(applied.entries);
            }
            EntryPayload::Membership(m) => {
                // The journal records who the replicas are; the ledger sees plain node ids only.
                let learners = m.nodes().map(|(id, _)| *id).filter(|id| !m.voter_ids().any(|v| v == *id)).collect();
                ledger_core::record_membership(&mut store, entry.log_id.index(), m.voter_ids().collect(), learners)?;
                membership = Some(StoredMembership::new(Some(entry.log_id.clone()), m.clone()));
                responses.push(CommandResponse::default());
            }
        }
        let last = position + 1 == entries.len();
        if last || store.write_count() >= batch_writes_max {
            let full = std::mem::replace(&mut store, BatchStore::with_cache(db, cache));
            write_applied(db, cache, full, &entry.log_id, membership.take())?;
        }
    }
    Ok((responses, changes))
}

/// Writes the ledger rows with the applied log id (and membership) in one WriteBatch.
fn write_applied(
    db: &rocksdb::DB,
    cache: &Mutex<RowCache>,
    store: BatchStore<'_>,
    applied: &LogId,
    membership: Option<StoredMembership>,
) -> io::Result<()> {
    let (mut batch, cached) = store.into_parts();
    let sm_meta = cf(db, Cf::SmMeta);
    batch.put_cf(sm_meta, KEY_APPLIED, codec::encode(&Some(applied.clone())));
    if let Some(m) = membership {
        batch.put_cf(sm_meta, KEY_MEMBERSHIP, codec::encode(&m));
    }
    // Not synced: the Raft log holds these entries durably and shares this WAL, so the next log
    // fsync covers this write; after a power loss the entries are re-applied from the log.
    let written = db.write(batch).map_err(to_io);
    let mut cache = cache.lock().expect("row cache lock");
    match written {
        Ok(()) => cache.apply(cached),
        // The rows read into the cache during this batch are committed ones; still, after a
        // failed write nothing about the batch is trusted.
        Err(_) => cache.clear(),
    }
    written
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotFile;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> io::Result<(Option<LogId>, StoredMembership)> {
        let db = self.db.clone();
        // Raft reads this first at start (and a few more times then): an install a crash
        // interrupted is finished before, and then, once, a damaged snapshot file replaced.
        let check_snapshot = (!self.snapshot_checked).then(|| self.snapshot_dir.clone());
        self.snapshot_checked = true;
        blocking(move || {
            snapshot::finish_interrupted_install(&db)?;
            if let Some(dir) = check_snapshot {
                snapshot::check_latest_at_start(&db, &dir)?;
            }
            snapshot::read_sm_meta(|k| db.get_cf(cf(&db, Cf::SmMeta), k).map_err(to_io))
        })
        .await
    }

    async fn apply<Strm>(&mut self, entries: Strm) -> io::Result<()>
    where Strm: Stream<Item = io::Result<EntryResponder<TypeConfig>>> + Unpin + OptionalSend {
        let items: Vec<EntryResponder<TypeConfig>> = entries.try_collect().await?;
        if items.is_empty() {
            return Ok(());
        }
        let (entries, responders): (Vec<Entry>, Vec<_>) = items.into_iter().unzip();
        let (db, cache) = (self.db.clone(), self.cache.clone());
        let count = entries.len();
        let started = std::time::Instant::now();
        let (responses, changes) = blocking(move || apply_batch(&db, &cache, &entries, BATCH_WRITES_MAX)).await?;
        metrics::histogram!(crate::telemetry::APPLY_LATENCY_SECONDS).record(started.elapsed().as_secs_f64());
        metrics::histogram!(crate::telemetry::APPLY_ENTRIES).record(count as f64);
        assert_eq!(responses.len(), count, "one response per entry");
        for (responder, response) in responders.into_iter().zip(responses) {
            if let Some(responder) = responder {
                responder.send(response);
            }
        }
        if !changes.is_empty() {
            // No receiver is fine: nobody is watching.
            let _ = self.feed.send(Arc::new(changes));
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder { db: self.db.clone(), dir: self.snapshot_dir.clone() }
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, data: SnapshotFile) -> io::Result<()> {
        let (db, cache) = (self.db.clone(), self.cache.clone());
        let dir = self.snapshot_dir.clone();
        let meta = meta.clone();
        blocking(move || {
            // Published first: the install marker names the file, and a crash mid-install is
            // finished from it at the next start, so it must be in place (not a temp file).
            let path = snapshot::published_path(&dir, snapshot::snapshot_index(&meta));
            if data.path != path {
                std::fs::create_dir_all(&dir)?;
                snapshot::publish(&data.path, &path)?;
            }
            // Whatever happens to the install, the cached rows may no longer be the state's.
            cache.lock().expect("row cache lock").clear();
            let installed = snapshot::install(&db, &path, &meta);
            cache.lock().expect("row cache lock").clear();
            installed.map(|_| ())
        })
        .await
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<Snapshot>> {
        let Some(file) = snapshot::latest(&self.snapshot_dir)? else { return Ok(None) };
        let meta = snapshot::read_meta(&file.path)?;
        Ok(Some(Snapshot { meta, snapshot: file }))
    }
}

pub struct SnapshotBuilder {
    db: Db,
    dir: PathBuf,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotFile;

    async fn build_snapshot(&mut self) -> io::Result<Snapshot> {
        let db = self.db.clone();
        let dir = self.dir.clone();
        let (meta, file) = blocking(move || snapshot::build(&db, &dir)).await?;
        Ok(Snapshot { meta, snapshot: file })
    }
}

/// The applied index and a SHA-256 over every ledger row, read from one point-in-time view.
/// Streams: one row in memory at a time, whatever the ledger's size. Refused while a snapshot
/// install is in progress (the tables are partial then).
pub fn state_hash(db: &rocksdb::DB) -> io::Result<(u64, [u8; 32])> {
    use sha2::{Digest, Sha256};
    let view = db.snapshot();
    let sm_get = |k: &[u8]| view.get_cf(cf(db, Cf::SmMeta), k).map_err(to_io);
    if snapshot::install_in_progress(sm_get)? {
        return Err(crate::storage::db::install_in_progress_error());
    }
    let (applied, _) = snapshot::read_sm_meta(sm_get)?;
    // The bytes `ledger_core::store::state_hash` hashes, row by row (`streamed_hash_matches_the_ledger_hash`).
    let mut hasher = Sha256::new();
    for table in Table::ALL {
        let mut rows = view.raw_iterator_cf_opt(cf(db, Cf::Ledger(table)), crate::storage::db::scan_options());
        rows.seek_to_first();
        while let (Some(key), Some(value)) = (rows.key(), rows.value()) {
            hasher.update([table as u8]);
            hasher.update((key.len() as u32).to_le_bytes());
            hasher.update(key);
            hasher.update((value.len() as u32).to_le_bytes());
            hasher.update(value);
            rows.next();
        }
        rows.status().map_err(to_io)?;
    }
    Ok((applied.map(|id| id.index()).unwrap_or(0), hasher.finalize().into()))
}

#[cfg(test)]
mod tests {
    use openraft::{EntryPayload, LogId as RaftLogId};

    use super::*;
    use ledger_core::types::{AssetInput, Command, Operation};

    fn entries() -> Vec<Entry> {
        (1..=5u64)
            .map(|index| {
                let code = format!("A{index}");
                let command = Command { proposed_at_ns: index, operation: Operation::CreateAssets(vec![AssetInput { code, scale: 2 }]) };
                let leader = openraft::impls::leader_id_adv::LeaderId { term: 1, node_id: 1 };
                Entry { log_id: RaftLogId::new(leader, index), payload: EntryPayload::Normal(command) }
            })
            .collect()
    }

    /// Many entries split over several write batches give the same state and results as one.
    #[test]
    fn split_batches_match_one_batch() {
        let (one, split) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (db_one, db_split) = (crate::storage::open(one.path()).unwrap(), crate::storage::open(split.path()).unwrap());
        let cache = || Mutex::new(RowCache::new(2));
        let (results_one, _) = apply_batch(&db_one, &cache(), &entries(), BATCH_WRITES_MAX).unwrap();
        let (results_split, _) = apply_batch(&db_split, &cache(), &entries(), 1).unwrap();
        assert_eq!(results_one, results_split);
        assert_eq!(state_hash(&db_one).unwrap(), state_hash(&db_split).unwrap());
        assert_eq!(state_hash(&db_split).unwrap().0, 5, "applied index of the last entry");
    }

    /// The streamed hash hashes exactly what `ledger_core::store::state_hash` does over every row.
    #[test]
    fn streamed_hash_matches_the_ledger_hash() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::storage::open(dir.path()).unwrap();
        apply_batch(&db, &Mutex::new(RowCache::new(2)), &entries(), BATCH_WRITES_MAX).unwrap();
        let mut rows = Vec::new();
        for table in Table::ALL {
            for item in db.iterator_cf(cf(&db, Cf::Ledger(table)), rocksdb::IteratorMode::Start) {
                let (k, v) = item.unwrap();
                rows.push((table, k, v));
            }
        }
        assert!(rows.len() >= 5);
        let expected = ledger_core::store::state_hash(rows.iter().map(|(t, k, v)| (*t, &k[..], &v[..])));
        assert_eq!(state_hash(&db).unwrap(), (5, expected));
    }
}
