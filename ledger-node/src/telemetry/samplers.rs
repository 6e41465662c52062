//! Gauges read from state other modules own: Raft's metrics watch (on every change), RocksDB
//! properties and the auth denial counters (every `SAMPLE_INTERVAL`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use openraft::type_config::async_runtime::WatchReceiver;

use super::*;
use crate::api::auth::Auth;
use crate::raft::Raft;
use crate::storage::{Cf, Db};

/// How often RocksDB properties and counters are sampled: a fraction of a typical 15 s scrape.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// Follows Raft's metrics watch until Raft stops.
pub async fn raft(raft: Raft) {
    let mut watch = raft.metrics();
    let mut leader: Option<u64> = None;
    loop {
        {
            let m = watch.borrow_watched();
            metrics::gauge!(RAFT_TERM).set(m.current_term as f64);
            metrics::gauge!(RAFT_LEADER_ID).set(m.current_leader.unwrap_or(0) as f64);
            metrics::gauge!(RAFT_IS_LEADER).set(if m.current_leader == Some(m.id) { 1.0 } else { 0.0 });
            if m.current_leader != leader {
                // The first observation is a change too: a restarted node counts its first leader.
                metrics::counter!(RAFT_LEADER_CHANGES_TOTAL).increment(1);
                leader = m.current_leader;
            }
            let index = |l: &Option<crate::raft::LogId>| l.as_ref().map(|l| l.index()).unwrap_or(0) as f64;
            metrics::gauge!(RAFT_LAST_LOG_INDEX).set(m.last_log_index.unwrap_or(0) as f64);
            metrics::gauge!(RAFT_COMMITTED_INDEX).set(index(&m.local_committed));
            metrics::gauge!(RAFT_APPLIED_INDEX).set(index(&m.last_applied));
            metrics::gauge!(RAFT_SNAPSHOT_INDEX).set(index(&m.snapshot));
            metrics::gauge!(RAFT_PURGED_INDEX).set(index(&m.purged));
        }
        if watch.changed().await.is_err() {
            return;
        }
    }
}

/// Samples RocksDB properties and the auth denial counters on a timer, forever.
pub async fn periodic(db: Db, auth: Arc<Auth>, snapshot_dir: std::path::PathBuf) {
    let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
    loop {
        tick.tick().await;
        let (db, snapshot_dir) = (db.clone(), snapshot_dir.clone());
        // Property reads take RocksDB's mutex briefly: off the async threads.
        let sampled = tokio::task::spawn_blocking(move || {
            [
                (ROCKSDB_PENDING_COMPACTION_BYTES, "rocksdb.estimate-pending-compaction-bytes"),
                (ROCKSDB_MEMTABLE_BYTES, "rocksdb.cur-size-all-mem-tables"),
                (ROCKSDB_LIVE_DATA_BYTES, "rocksdb.estimate-live-data-size"),
            ]
            .map(|(metric, property)| (metric, sum_over_cfs(&db, property)))
            .into_iter()
            .chain([(RAFT_LOG_BYTES, raft_log_bytes(&db)), (SNAPSHOT_BYTES, dir_bytes(&snapshot_dir))])
            .chain([(DATA_DIR_FREE_BYTES, crate::raft::snapshot::available_bytes(&snapshot_dir).unwrap_or(0))])
            .collect::<Vec<_>>()
        })
        .await;
        if let Ok(values) = sampled {
            for (metric, value) in values {
                metrics::gauge!(metric).set(value as f64);
            }
        }
        let denials = &auth.denials;
        metrics::counter!(AUTH_DENIALS_TOTAL, "reason" => "unauthenticated")
            .absolute(denials.unauthenticated_total.load(Ordering::Relaxed));
        metrics::counter!(AUTH_DENIALS_TOTAL, "reason" => "permission_denied")
            .absolute(denials.permission_denied_total.load(Ordering::Relaxed));
    }
}

/// The Raft log's column family on disk and in memory.
fn raft_log_bytes(db: &Db) -> u64 {
    let Some(handle) = db.cf_handle(Cf::RaftLog.name()) else { return 0 };
    ["rocksdb.total-sst-files-size", "rocksdb.cur-size-all-mem-tables"]
        .iter()
        .filter_map(|property| db.property_int_value_cf(handle, *property).ok().flatten())
        .sum()
}

/// Bytes of the regular files directly in `dir` (0 if it cannot be read).
fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum()
}

/// A RocksDB integer property summed over every column family (each reports its own).
fn sum_over_cfs(db: &Db, property: &str) -> u64 {
    crate::storage::db::all_cfs()
        .into_iter()
        .filter_map(|cf: Cf| db.cf_handle(cf.name()))
        .filter_map(|handle| db.property_int_value_cf(handle, property).ok().flatten())
        .sum()
}
