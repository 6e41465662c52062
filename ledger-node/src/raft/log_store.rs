//! The Raft log on RocksDB, with group commit: `append` writes its batch without syncing and
//! hands the completion to one flusher thread, which syncs the WAL once for every append
//! queued meanwhile. Completions are reported only after the fsync (openraft's contract).
//! The queue is async on the sending side: a full queue (a slow disk) parks the appending task,
//! never the async worker thread it runs on, so heartbeats and other tasks go on.

use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::mpsc::{Receiver, Sender, channel};

use super::{Entry, LogId, TypeConfig, Vote};
use ledger_core::codec;
use crate::storage::db::{Cf, Db, cf, to_io};

/// Appends waiting for the flusher at most; `append` waits (backpressure, the task parked) beyond it.
const FLUSH_QUEUE_MAX: usize = 4_096;

/// Test hook, never for production: `LEDGER_UNSAFE_SKIP_FSYNC=1` makes the log acknowledge
/// appends without syncing the WAL (written to the OS only). It exists for jepsen's power-cut
/// mutation proof (jepsen/tests/power_cut.rs), which must see the acknowledged writes this loses.
pub const UNSAFE_SKIP_FSYNC_ENV: &str = "LEDGER_UNSAFE_SKIP_FSYNC";

// Keys of the Raft metadata column family (a restore rewrites them: service/backup.rs).
pub(crate) const KEY_VOTE: &[u8] = b"vote";
pub(crate) const KEY_LAST_PURGED: &[u8] = b"last_purged";
pub(crate) const KEY_COMMITTED: &[u8] = b"committed";

#[derive(Clone)]
pub struct LogStore {
    db: Db,
    flusher: Arc<Flusher>,
    /// Bytes appended since start: drives the size-based snapshot trigger (entries vary from a
    /// few hundred bytes to megabytes, so an entry count alone bounds the log poorly).
    appended_bytes: Arc<AtomicU64>,
}

/// The flusher thread and its queue. Dropping the last handle closes the queue and joins the
/// thread, so the database it holds is closed before anyone goes on (closing RocksDB in a
/// detached thread while the process exits aborts in RocksDB's static destructors).
struct Flusher {
    tx: Option<Sender<IOFlushed<TypeConfig>>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Drop for Flusher {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct EntryIndex(u64);
impl std::fmt::Display for EntryIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "raft log entry {}", self.0)
    }
}

impl LogStore {
    pub fn new(db: Db) -> io::Result<LogStore> {
        let (flush_tx, flush_rx) = channel(FLUSH_QUEUE_MAX);
        let flusher_db = db.clone();
        let sync = !unsafe_skip_fsync();
        let thread = thread::Builder::new()
            .name("raft-log-flusher".into())
            .spawn(move || run_flusher(flusher_db, flush_rx, sync))?;
        Ok(LogStore {
            db,
            flusher: Arc::new(Flusher { tx: Some(flush_tx), thread: Some(thread) }),
            appended_bytes: Arc::default(),
        })
    }

    /// Counter of the bytes appended to the log since this store was opened.
    pub fn appended_bytes(&self) -> Arc<AtomicU64> {
        self.appended_bytes.clone()
    }

    fn get_meta<T: serde::de::DeserializeOwned>(&self, key: &'static [u8]) -> io::Result<Option<T>> {
        let what = format!("raft meta {}", String::from_utf8_lossy(key));
        match self.db.get_cf(cf(&self.db, Cf::RaftMeta), key).map_err(to_io)? {
            Some(bytes) => codec::decode(&what, &bytes).map(Some),
            None => Ok(None),
        }
    }

    fn last_entry_log_id(&self) -> io::Result<Option<LogId>> {
        let mut iter = self.db.iterator_cf(cf(&self.db, Cf::RaftLog), IteratorMode::End);
        match iter.next() {
            Some(item) => {
                let (key, value) = item.map_err(to_io)?;
                let entry: Entry = codec::decode(&EntryIndex(index_of(&key)?), &value)?;
                Ok(Some(entry.log_id))
            }
            None => Ok(None),
        }
    }

    /// A blocking WAL sync, off the async runtime's threads.
    async fn sync_wal(&self) -> io::Result<()> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush_wal(true).map_err(to_io)).await.map_err(io::Error::other)?
    }
}

fn index_of(key: &[u8]) -> io::Result<u64> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "corrupted raft log: key is not 8 bytes"))?;
    Ok(u64::from_be_bytes(bytes))
}

/// Whether the test hook is on (only the exact value `1` turns it on, loudly).
fn unsafe_skip_fsync() -> bool {
    let on = std::env::var(UNSAFE_SKIP_FSYNC_ENV).is_ok_and(|v| v == "1");
    if on {
        tracing::error!(
            env = UNSAFE_SKIP_FSYNC_ENV,
            "UNSAFE TEST HOOK: the raft log is NOT fsynced; acknowledged writes are lost on power loss"
        );
    }
    on
}

/// Queues `item` for the flusher thread: an async wait when the queue is full (never a blocking
/// send, which would stall the async worker thread and every task on it).
async fn enqueue<T>(tx: &Sender<T>, item: T) -> io::Result<()> {
    tx.send(item).await.map_err(|_| io::Error::other("raft log flusher stopped"))
}

fn run_flusher(db: Db, mut rx: Receiver<IOFlushed<TypeConfig>>, sync: bool) {
    while let Some(first) = rx.blocking_recv() {
        let mut waiting = vec![first];
        loop {
            match rx.try_recv() {
                Ok(next) => waiting.push(next),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let result = db.flush_wal(sync);
        tracing::trace!(appends = waiting.len(), "raft log fsync");
        for callback in waiting {
            let outcome = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(io::Error::other(format!("raft log fsync failed: {e}"))),
            };
            callback.io_completed(outcome);
        }
        if let Err(e) = result {
            // A failed fsync leaves the WAL's durability unknown: stop acknowledging anything.
            tracing::error!(error = %e, "raft log fsync failed; the flusher stops");
            return;
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + std::fmt::Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<Entry>> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i + 1,
            Bound::Unbounded => 0,
        };
        let mut entries = Vec::new();
        let mode = IteratorMode::From(&start.to_be_bytes(), Direction::Forward);
        for item in self.db.iterator_cf(cf(&self.db, Cf::RaftLog), mode) {
            let (key, value) = item.map_err(to_io)?;
            let index = index_of(&key)?;
            if !range.contains(&index) {
                break;
            }
            let entry: Entry = codec::decode(&EntryIndex(index), &value)?;
            if entry.log_id.index() != index {
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("raft log entry {index} holds another index")));
            }
            if let Some(previous) = entries.last().map(|e: &Entry| e.log_id.index()) {
                if previous + 1 != index {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, format!("raft log has a hole before {index}")));
                }
            }
            entries.push(entry);
        }
        Ok(entries)
    }

    async fn read_vote(&mut self) -> io::Result<Option<Vote>> {
        self.get_meta(KEY_VOTE)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> io::Result<LogState<TypeConfig>> {
        let last_purged_log_id: Option<LogId> = self.get_meta(KEY_LAST_PURGED)?;
        let last_log_id = self.last_entry_log_id()?.or_else(|| last_purged_log_id.clone());
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> io::Result<()> {
        self.db.put_cf(cf(&self.db, Cf::RaftMeta), KEY_VOTE, codec::encode(vote)).map_err(to_io)?;
        self.sync_wal().await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> io::Result<()> {
        // Not synced: after a crash the committed index is re-learned; this only lets a
        // restarted node re-apply what it knows is committed without waiting for a leader.
        self.db.put_cf(cf(&self.db, Cf::RaftMeta), KEY_COMMITTED, codec::encode(&committed)).map_err(to_io)
    }

    async fn read_committed(&mut self) -> io::Result<Option<LogId>> {
        Ok(self.get_meta::<Option<LogId>>(KEY_COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> io::Result<()>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::default();
        let log_cf = cf(&self.db, Cf::RaftLog);
        let mut bytes = 0u64;
        for entry in entries {
            let value = codec::encode(&entry);
            bytes += value.len() as u64;
            batch.put_cf(log_cf, entry.log_id.index().to_be_bytes(), value);
        }
        self.appended_bytes.fetch_add(bytes, Ordering::Relaxed);
        let mut opts = WriteOptions::default();
        opts.set_sync(false);
        self.db.write_opt(batch, &opts).map_err(to_io)?;
        let tx = self.flusher.tx.as_ref().expect("the queue closes only when the last handle drops");
        enqueue(tx, callback).await
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> io::Result<()> {
        let from = last_log_id.map(|id| id.index() + 1).unwrap_or(0);
        // 9 bytes of 0xff sort after every 8-byte key, u64::MAX included.
        self.db.delete_range_cf(cf(&self.db, Cf::RaftLog), from.to_be_bytes().to_vec(), vec![0xff; 9]).map_err(to_io)?;
        self.sync_wal().await
    }

    async fn purge(&mut self, log_id: LogId) -> io::Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(cf(&self.db, Cf::RaftMeta), KEY_LAST_PURGED, codec::encode(&log_id));
        batch.delete_range_cf(cf(&self.db, Cf::RaftLog), 0u64.to_be_bytes(), (log_id.index() + 1).to_be_bytes());
        // Not synced on its own: the WAL is ordered, so the next synced append covers it.
        self.db.write(batch).map_err(to_io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Issue 18 item 9: a full fsync queue (a slow disk) parks the appending task; the async
    /// worker thread goes on running other tasks (heartbeats). One worker thread here: a
    /// blocking send would hang it, and the watchdog below would fail the test.
    #[test]
    fn a_full_flush_queue_parks_the_task_not_the_worker_thread() {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let (tx, mut rx) = channel::<u32>(1);
                enqueue(&tx, 1).await.unwrap();
                let parked = tokio::spawn(async move { enqueue(&tx, 2).await });
                tokio::time::sleep(Duration::from_millis(50)).await;
                assert!(!parked.is_finished(), "the queue is full: the append waits");
                assert_eq!(rx.recv().await, Some(1), "the thread is free: other tasks run");
                parked.await.unwrap().unwrap();
                assert_eq!(rx.recv().await, Some(2));
            });
            done_tx.send(()).unwrap();
        });
        done_rx.recv_timeout(Duration::from_secs(10)).expect("the worker thread was blocked by a full queue");
    }
}
