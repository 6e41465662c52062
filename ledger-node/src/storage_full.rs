//! A full disk, survived without an operator.
//!
//! When a write finds the disk full (ENOSPC: a Raft log append, an apply, a snapshot file),
//! openraft stops this node's Raft with a fatal storage error, and RocksDB refuses every later
//! write with the same error even after space returns (its background error is sticky, and the
//! Rust binding has no `DB::Resume`). Nothing is lost: the write that failed was never
//! acknowledged, and everything acknowledged before it is in the synced log. What is needed is a
//! fresh open of the database and a fresh Raft, which is what a restart does. So the node:
//!
//! 1. keeps serving: bounded-staleness reads within their bound (its applied state is frozen at
//!    the failure, and `freshness` only ages), status and health (NOT_SERVING); writes and
//!    linearizable reads get UNAVAILABLE naming the full disk, so clients go to another node;
//! 2. polls the data dir's free space every `SPACE_POLL`;
//! 3. once `RESUME_FREE_BYTES` are free, stops its servers and Raft (no flush: RocksDB refuses
//!    it, and the WAL holds everything) and replaces its own process image with a fresh start of
//!    the same binary and arguments (`exec`: same PID, same supervisor, sockets and the
//!    database lock released on the way). The start replays the WAL and the Raft log as after
//!    any stop, and the node catches up with the cluster.
//!
//! Other fatal errors (a corrupted log entry) are not retried: a restart would meet them again.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use openraft::type_config::async_runtime::WatchReceiver;
use tokio::sync::watch;

use crate::raft::Raft;

/// Free bytes in the data dir's filesystem before the node starts again: room for RocksDB to
/// replay its WAL into a memtable, flush it, and take writes for a while. If the disk fills again,
/// the node stops and waits again: nothing is lost either way. On a disk this close to full the
/// operator has been warned by the `ledger_data_dir_free_bytes` gauge long before.
pub const RESUME_FREE_BYTES: u64 = 32 << 20;
/// How often a stopped node looks at the free space.
pub const SPACE_POLL: Duration = Duration::from_secs(1);

/// Whether a storage error is the disk being full (RocksDB's message and the OS error's both
/// carry the C library's text for ENOSPC).
pub fn caused_by_full_disk(why: &str) -> bool {
    why.contains("No space left on device")
}

/// Watches Raft until it stops. A stop by a full disk waits for space, then sets `resume` and
/// stops the servers through `stop`; any other fatal error is logged and left as it is.
pub async fn watch(raft: Raft, data_dir: PathBuf, stop: watch::Sender<bool>, resume: Arc<AtomicBool>) {
    let Some(why) = fatal_error(&raft).await else { return };
    if !caused_by_full_disk(&why) {
        tracing::error!(
            error = %why,
            "raft stopped: this node serves no reads or writes; if its data is corrupted, wipe its data dir \
             and add it back under a new id (README: replace a node)"
        );
        return;
    }
    tracing::error!(
        error = %why,
        resume_free_bytes = RESUME_FREE_BYTES,
        "disk full: raft stopped; writes refused (UNAVAILABLE), bounded-staleness reads served; the node starts \
         again by itself once the data dir has room"
    );
    loop {
        tokio::time::sleep(SPACE_POLL).await;
        match crate::raft::snapshot::available_bytes(&data_dir) {
            Ok(free) if free >= RESUME_FREE_BYTES => break,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the data dir's free space"),
        }
    }
    tracing::warn!("disk has room again: stopping the servers to start afresh");
    resume.store(true, Ordering::SeqCst);
    let _ = stop.send(true);
}

/// The fatal error Raft stopped with, once it stops; `None` if Raft shut down normally.
async fn fatal_error(raft: &Raft) -> Option<String> {
    let mut metrics = raft.metrics();
    loop {
        if let Err(fatal) = &metrics.borrow_watched().running_state {
            return Some(fatal.to_string());
        }
        if metrics.changed().await.is_err() {
            return None;
        }
    }
}

/// Replaces this process with a fresh start of the same binary and arguments. Returns only if
/// that fails (the binary was removed, say): the caller exits with the error, and a supervisor
/// restarts the node as after any exit.
pub fn start_afresh() -> anyhow::Error {
    use std::os::unix::process::CommandExt;
    let binary = match std::env::current_exe() {
        Ok(binary) => binary,
        Err(e) => return anyhow::anyhow!("finding this binary to start afresh after a full disk: {e}"),
    };
    tracing::warn!(binary = %binary.display(), "starting afresh (exec) after a full disk");
    let e = std::process::Command::new(&binary).args(std::env::args_os().skip(1)).exec();
    anyhow::anyhow!("starting {} afresh after a full disk: {e}", binary.display())
}
