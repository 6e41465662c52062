//! Graceful shutdown, on SIGTERM or ctrl-c: (1) health reports NOT_SERVING, so load balancers
//! stop sending; (2) a leader hands leadership to its most up-to-date voter and waits, up to
//! `LEADER_TRANSFER_WAIT`, until another node leads; (3) the servers stop accepting and in-flight
//! calls get up to `DRAIN_WAIT` to finish; (4) Raft stops and RocksDB is flushed and closed. The
//! process exits 0. A second signal during any step exits at once (status 1), as a kill would.
//! `server::run` drives the steps; this module holds the signal and the step-down.

use std::time::{Duration, Instant};

use openraft::type_config::async_runtime::WatchReceiver;

use crate::raft::{NodeId, Raft};
use crate::storage::db::{all_cfs, cf, to_io};

/// How long a leader waits for another node to take over before it stops anyway (the others
/// then elect a leader after an election timeout, as after a crash).
pub const LEADER_TRANSFER_WAIT: Duration = Duration::from_secs(5);
/// How long in-flight calls (and open streams) get once the servers stop accepting new ones.
pub const DRAIN_WAIT: Duration = Duration::from_secs(10);

async fn any_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Resolves on the first SIGTERM or ctrl-c. From then on, a second one ends the process at once.
pub async fn signal() {
    any_signal().await;
    tracing::info!(
        leader_transfer_wait_ms = LEADER_TRANSFER_WAIT.as_millis() as u64,
        drain_wait_ms = DRAIN_WAIT.as_millis() as u64,
        "shutdown signal received: shutting down gracefully (a second signal exits at once)"
    );
    tokio::spawn(async {
        any_signal().await;
        tracing::warn!("second shutdown signal: exiting at once");
        std::process::exit(1);
    });
}

/// The voter (other than `me`) whose log the leader knows to match furthest, if this node leads.
fn successor(raft: &Raft, me: NodeId) -> Option<NodeId> {
    let metrics = raft.metrics().borrow_watched().clone();
    let replication = metrics.replication.as_ref()?;
    metrics
        .membership_config
        .membership()
        .voter_ids()
        .filter(|id| *id != me)
        .max_by_key(|id| (replication.get(id).cloned().flatten().map(|l| l.index()), std::cmp::Reverse(*id)))
}

/// If this node leads, hands leadership to the most up-to-date other voter and waits until
/// another node leads (at most `LEADER_TRANSFER_WAIT`). Returns the new leader, if any.
pub async fn step_down(raft: &Raft, me: NodeId) -> Option<NodeId> {
    if !raft.is_leader() {
        tracing::info!("shutdown: not the leader; nothing to hand over");
        return None;
    }
    let Some(to) = successor(raft, me) else {
        tracing::info!("shutdown: this leader is the only voter; nobody to hand over to");
        return None;
    };
    let started = Instant::now();
    tracing::info!(to, "shutdown: transferring leadership");
    if let Err(e) = raft.trigger().transfer_leader(to).await {
        tracing::warn!(error = %e, "shutdown: leadership transfer not started");
        return None;
    }
    let other_leads = |m: &openraft::RaftMetrics<crate::raft::TypeConfig>| m.current_leader.is_some_and(|l| l != me);
    match raft.wait(Some(LEADER_TRANSFER_WAIT)).metrics(other_leads, "another node leads").await {
        Ok(m) => {
            let leader = m.current_leader;
            tracing::info!(new_leader = ?leader, elapsed_ms = started.elapsed().as_millis() as u64, "shutdown: leadership transferred");
            leader
        }
        Err(e) => {
            tracing::warn!(error = %e, wait_ms = LEADER_TRANSFER_WAIT.as_millis() as u64, "shutdown: no other leader in time; stopping anyway");
            None
        }
    }
}

/// Makes everything written durable in SST files: the WAL synced, every memtable flushed (the
/// next start replays nothing). Blocking.
pub fn flush_db(db: &rocksdb::DB) -> std::io::Result<()> {
    let started = Instant::now();
    db.flush_wal(true).map_err(to_io)?;
    let families: Vec<_> = all_cfs().into_iter().map(|c| cf(db, c)).collect();
    db.flush_cfs_opt(&families, &rocksdb::FlushOptions::default()).map_err(to_io)?;
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "shutdown: database flushed");
    Ok(())
}
