//! Admission and reads: turns API calls into replicated commands (stamped with the leader's
//! clock), waits for their results, and hands out consistent read views after the barrier their
//! consistency asks for (`read.rs`: `Node::read`, the one read door).

pub mod backup;
pub mod cluster;
pub mod freshness;
pub mod group_commit;
pub mod identity;
pub mod ledger_clock;
pub mod read;

pub use read::{Consistency, Snapshot};

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openraft::errors::{ClientWriteError, ForwardToLeader, RaftError};
use openraft::type_config::async_runtime::WatchReceiver;
use tokio::sync::broadcast;

use ledger_core::types::{AccountEntry, Command, Operation};
use crate::raft::network::PeerChannels;
use crate::raft::state_machine::EntryFeed;
use crate::raft::{CommandResponse, NodeId, Raft, TypeConfig};
use crate::storage::Db;

/// How often the leader checks for holds to expire when no writes come.
const EXPIRY_CHECK_INTERVAL_MS: u64 = 200;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// This node is not the leader; the caller should go to `leader_addr` (if known).
    #[error("not the leader; leader is {}", leader_addr.as_deref().unwrap_or("unknown"))]
    NotLeader { leader_addr: Option<String> },
    /// The command may or may not have been committed (leader changed while it was in flight).
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// No quorum could confirm this node's leadership for a read.
    #[error("no quorum: {0}")]
    NoQuorum(String),
    #[error("node stopped: {0}")]
    Fatal(String),
    #[error("storage: {0}")]
    Storage(#[from] io::Error),
    /// Refused for good as asked (an operator error: a reused id, a node of another cluster).
    #[error("{0}")]
    Refused(String),
    /// Not possible right now, nothing changed (a peer did not answer, a change in progress).
    #[error("{0}")]
    Unavailable(String),
}

pub(crate) fn not_leader(f: &ForwardToLeader<TypeConfig>) -> ServiceError {
    ServiceError::NotLeader { leader_addr: f.leader_node.as_ref().map(|n| n.api.clone()) }
}

/// This node's wall clock (ns since the Unix epoch). `LEDGER_TEST_CLOCK_OFFSET_SECS` (signed,
/// read once) shifts it: for tests of a node whose clock is wrong, never for production.
/// `LEDGER_TEST_CLOCK_OFFSET_FILE` (a path, read once) adds a live shift: the file holds signed
/// seconds and is re-read at most every 100 ms (missing or unparsable: 0), so a test can step
/// a running node's clock forward or back (the fault-injection suite's `clock` nemesis).
pub fn now_ns() -> u64 {
    static OFFSET_NS: std::sync::OnceLock<i128> = std::sync::OnceLock::new();
    let offset = *OFFSET_NS.get_or_init(|| {
        let secs = std::env::var("LEDGER_TEST_CLOCK_OFFSET_SECS").ok().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
        if secs != 0 {
            tracing::warn!(offset_secs = secs, "LEDGER_TEST_CLOCK_OFFSET_SECS shifts this node's clock (tests only)");
        }
        i128::from(secs) * 1_000_000_000
    });
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0);
    (now + offset + test_clock_file_offset_ns()).clamp(0, i128::from(u64::MAX)) as u64
}

/// The live clock shift of `LEDGER_TEST_CLOCK_OFFSET_FILE` (0 when the variable is not set).
fn test_clock_file_offset_ns() -> i128 {
    struct Live {
        path: std::path::PathBuf,
        /// When the file was last read, and the shift it held.
        read: Mutex<Option<(std::time::Instant, i128)>>,
    }
    static LIVE: std::sync::OnceLock<Option<Live>> = std::sync::OnceLock::new();
    let live = LIVE.get_or_init(|| {
        let path = std::env::var_os("LEDGER_TEST_CLOCK_OFFSET_FILE")?;
        tracing::warn!(path = %std::path::Path::new(&path).display(), "LEDGER_TEST_CLOCK_OFFSET_FILE shifts this node's clock live (tests only)");
        Some(Live { path: path.into(), read: Mutex::new(None) })
    });
    let Some(live) = live else { return 0 };
    let mut read = live.read.lock().unwrap_or_else(|p| p.into_inner());
    let now = std::time::Instant::now();
    match *read {
        Some((at, offset)) if now.duration_since(at) < Duration::from_millis(100) => offset,
        _ => {
            let secs = std::fs::read_to_string(&live.path).ok().and_then(|s| s.trim().parse::<i64>().ok()).unwrap_or(0);
            let offset = i128::from(secs) * 1_000_000_000;
            *read = Some((now, offset));
            offset
        }
    }
}

/// This node's service: what the API layer asks for (proposals, reads through `read`, cluster
/// operations), behind methods. The fields are the crate's start-up wiring (`server.rs`), not
/// the API's: `api/` reaches none of them.
#[derive(Clone)]
pub struct Node {
    pub(crate) id: NodeId,
    pub(crate) raft: Raft,
    pub(crate) db: Db,
    pub(crate) feed: EntryFeed,
    /// Channels to peers (follower reads ask the leader; joins ask the joining node).
    pub(crate) peers: PeerChannels,
    pub(crate) cluster_name: String,
    /// Every node id this node has seen in a membership (ids are never reused).
    pub(crate) ids_seen: Arc<Mutex<identity::IdsSeen>>,
    /// Bounds the time stamped on proposals by the voters' median clock.
    pub(crate) ledger_clock: Arc<ledger_clock::LedgerClock>,
    /// How stale this node's state may be at most (bounded-staleness reads; `freshness`).
    pub(crate) freshness: Arc<freshness::ReadFreshness>,
}

impl ServiceError {
    /// The same error for another waiter of one coalesced proposal.
    pub fn duplicate(&self) -> ServiceError {
        match self {
            ServiceError::NotLeader { leader_addr } => ServiceError::NotLeader { leader_addr: leader_addr.clone() },
            ServiceError::Unknown(why) => ServiceError::Unknown(why.clone()),
            ServiceError::NoQuorum(why) => ServiceError::NoQuorum(why.clone()),
            ServiceError::Fatal(why) => ServiceError::Fatal(why.clone()),
            ServiceError::Storage(e) => ServiceError::Storage(io::Error::new(e.kind(), e.to_string())),
            ServiceError::Refused(why) => ServiceError::Refused(why.clone()),
            ServiceError::Unavailable(why) => ServiceError::Unavailable(why.clone()),
        }
    }
}

impl Node {
    /// Proposes one command and waits until it is applied here.
    pub async fn propose(&self, operation: Operation) -> Result<CommandResponse, ServiceError> {
        let command = Command { proposed_at_ns: self.ledger_clock.proposal_ns(), operation };
        let started = std::time::Instant::now();
        let written = self.raft.client_write(command).await;
        metrics::histogram!(crate::telemetry::COMMIT_LATENCY_SECONDS).record(started.elapsed().as_secs_f64());
        match written {
            Ok(reply) => Ok(reply.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => Err(not_leader(&f)),
            Err(RaftError::APIError(ClientWriteError::LogEntryDiscarded(f))) => {
                Err(ServiceError::Unknown(format!("leader changed while the write was in flight; retry with the same idempotency key ({f})")))
            }
            Err(RaftError::APIError(e)) => Err(ServiceError::Unknown(e.to_string())),
            Err(RaftError::Fatal(f)) => Err(ServiceError::Fatal(f.to_string())),
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Raft's view of this node and its cluster now (role, leader, indexes, membership).
    pub fn metrics(&self) -> openraft::RaftMetrics<TypeConfig> {
        self.raft.metrics().borrow_watched().clone()
    }

    /// The entries of every batch applied here from now on (watch streams).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Vec<AccountEntry>>> {
        self.feed.subscribe()
    }

    /// The last log index this node has applied.
    pub fn applied_index(&self) -> u64 {
        self.raft.metrics().borrow_watched().last_applied.as_ref().map_or(0, |l| l.index())
    }

    /// Returns once this node has applied past `index`, or after `timeout` (the change feed's
    /// wake-up: every committed event is applied after its index).
    pub async fn wait_applied_beyond(&self, index: u64, timeout: Duration) {
        let mut metrics = self.raft.metrics();
        let beyond = async move {
            loop {
                if metrics.borrow_watched().last_applied.as_ref().map_or(0, |l| l.index()) > index {
                    return;
                }
                if metrics.changed().await.is_err() {
                    return; // Raft stopped: the caller's next read says why.
                }
            }
        };
        let _ = tokio::time::timeout(timeout, beyond).await;
    }

    /// Every node id this node has seen in a membership, ascending.
    pub fn ids_seen(&self) -> Vec<NodeId> {
        self.ids_seen.lock().unwrap_or_else(|p| p.into_inner()).ids().iter().copied().collect()
    }

    /// The applied index and the state hash of this node's state (`state_machine::state_hash`),
    /// from a blocking task.
    pub async fn state_hash(&self) -> Result<io::Result<(u64, [u8; 32])>, tokio::task::JoinError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || crate::raft::state_machine::state_hash(&db)).await
    }

    /// A backup of this node into `dir` (`backup::create`), from a blocking task that holds
    /// `held` until the work is done (a cancelled call does not end it early).
    pub async fn backup<H: Send + 'static>(&self, dir: std::path::PathBuf, held: H) -> Result<io::Result<backup::Manifest>, tokio::task::JoinError> {
        let (db, cluster_name, node_id) = (self.db.clone(), self.cluster_name.clone(), self.id);
        tokio::task::spawn_blocking(move || {
            let _held = held;
            backup::create(&db, &dir, &cluster_name, node_id)
        })
        .await
    }

    /// On the leader, proposes a `Tick` whenever a hold's time is up, so expiry does not wait for
    /// the next write. Runs until the node shuts down.
    pub async fn run_expiry_ticker(self) {
        let mut interval = tokio::time::interval(Duration::from_millis(EXPIRY_CHECK_INTERVAL_MS));
        loop {
            interval.tick().await;
            if !self.raft.is_leader() {
                continue;
            }
            let due = match self.snapshot().next_expiry_ns() {
                // The bounded clock: a fast clock would otherwise propose a tick every interval
                // for a hold that ledger time has not reached.
                Ok(Some(at)) => at <= self.ledger_clock.proposal_ns(),
                Ok(None) => false,
                Err(e) => {
                    tracing::error!(error = %e, "reading the expiry index failed");
                    false
                }
            };
            if due {
                if let Err(e) = self.propose(Operation::Tick).await {
                    tracing::debug!(error = %e, "expiry tick not applied");
                }
            }
        }
    }
}
