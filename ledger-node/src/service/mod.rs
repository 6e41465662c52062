//! Admission and reads: turns API calls into replicated commands (stamped with the leader's
//! clock), waits for their results, and serves linearizable reads from the local state.

pub mod backup;
pub mod cluster;
pub mod freshness;
pub mod group_commit;
pub mod identity;
pub mod ledger_clock;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openraft::ReadPolicy;
use openraft::errors::{ClientWriteError, ForwardToLeader, LinearizableReadError, RaftError};
use openraft::raft::linearizable_read::{Linearizer, ReadLogId};

use ledger_core::store;
use ledger_core::types::{Command, Operation};
use crate::raft::network::PeerChannels;
use crate::raft::state_machine::EntryFeed;
use crate::raft::{CommandResponse, NodeId, Raft, TypeConfig};
use crate::storage::{Db, ReadStore};

/// How often the leader checks for holds to expire when no writes come.
const EXPIRY_CHECK_INTERVAL_MS: u64 = 200;
/// A follower serving a read asks the leader for a read index for at most this long...
const READ_INDEX_TIMEOUT: Duration = Duration::from_secs(2);
/// ...and then waits at most this long to apply up to it; else the client is sent to the leader.
const FOLLOWER_APPLY_WAIT: Duration = Duration::from_secs(2);

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

#[derive(Clone)]
pub struct Node {
    pub id: NodeId,
    pub raft: Raft,
    pub db: Db,
    pub feed: EntryFeed,
    /// Channels to peers (follower reads ask the leader; joins ask the joining node).
    pub peers: PeerChannels,
    pub cluster_name: String,
    /// Every node id this node has seen in a membership (ids are never reused).
    pub ids_seen: Arc<Mutex<identity::IdsSeen>>,
    /// Bounds the time stamped on proposals by the voters' median clock.
    pub ledger_clock: Arc<ledger_clock::LedgerClock>,
    /// How stale this node's state may be at most (bounded-staleness reads; `freshness`).
    pub freshness: Arc<freshness::ReadFreshness>,
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

    /// Waits until this node's state reflects every write acknowledged before the call (ReadIndex).
    /// On a follower: asks the leader for its read index, then waits to apply up to it; if that
    /// cannot be done quickly, the client is sent to the leader instead.
    /// Every completed barrier records its start in `freshness`.
    pub async fn read_barrier(&self) -> Result<(), ServiceError> {
        let started = std::time::Instant::now();
        let done = match self.raft.ensure_linearizable(ReadPolicy::ReadIndex).await {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f))) => self.follower_read_barrier(&f).await,
            Err(RaftError::APIError(e)) => Err(ServiceError::NoQuorum(e.to_string())),
            Err(RaftError::Fatal(f)) => Err(ServiceError::Fatal(f.to_string())),
        };
        if done.is_ok() {
            self.freshness.confirm(started);
        }
        done
    }

    /// For a read that accepts state up to `max_staleness` old: served from this node's state at
    /// once when a ReadIndex round that started within that time completed here (`freshness`:
    /// quorum-confirmed, so a node cut off with a deposed leader is never fresh); anything else
    /// is a linearizable read, which confirms freshness for the reads that follow.
    pub async fn bounded_read_barrier(&self, max_staleness: Duration) -> Result<(), ServiceError> {
        if self.freshness.fresh_within(max_staleness) {
            return Ok(());
        }
        self.read_barrier().await
    }

    async fn follower_read_barrier(&self, f: &ForwardToLeader<TypeConfig>) -> Result<(), ServiceError> {
        let (Some(leader_id), Some(leader)) = (f.leader_id, f.leader_node.as_ref()) else {
            return Err(not_leader(f));
        };
        let read_log_id = match self.peers.read_index(leader_id, leader, READ_INDEX_TIMEOUT).await {
            Ok(id) => id,
            Err(e) => {
                tracing::debug!(error = %e, "follower read: no read index; redirecting");
                return Err(not_leader(f));
            }
        };
        // The read index is a committed log id of the leader's term: once this node has applied
        // that index, its state holds every write acknowledged before the read began.
        let linearizer = Linearizer::new(self.id, ReadLogId::from_log_id(read_log_id), None);
        match linearizer.try_await_ready(&self.raft, Some(FOLLOWER_APPLY_WAIT)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(state)) => {
                tracing::debug!(read_index = state.read_log_id().index(), "follower read: applying too slowly; redirecting");
                Err(not_leader(f))
            }
            Err(fatal) => Err(ServiceError::Fatal(fatal.to_string())),
        }
    }

    pub fn reader(&self) -> ReadStore<'_> {
        ReadStore::new(&self.db)
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
            let due = match next_expiry_ns(&self.reader()) {
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

/// The earliest time a hold expires or a wallet token's hold is due for release.
fn next_expiry_ns(reader: &ReadStore<'_>) -> io::Result<Option<u64>> {
    use ledger_core::Store;
    let mut earliest: Option<u64> = None;
    for table in [store::Table::PendingExpiry, store::Table::WalletReleases] {
        let first = reader.scan(table, &[], &[0xff; 25], 1, false)?;
        if let Some((at, _)) = first.first().and_then(|(k, _)| store::expiry_key_parts(k)) {
            earliest = Some(earliest.map_or(at, |e| e.min(at)));
        }
    }
    Ok(earliest)
}
