//! Admission and reads: turns API calls into replicated commands (stamped with the leader's
//! clock), waits for their results, and serves linearizable reads from the local state.

pub mod group_commit;

use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openraft::ReadPolicy;
use openraft::errors::{ClientWriteError, ForwardToLeader, LinearizableReadError, RaftError};

use crate::ledger::store;
use crate::ledger::types::{Command, Operation};
use crate::raft::state_machine::EntryFeed;
use crate::raft::{CommandResponse, NodeId, Raft, TypeConfig};
use crate::storage::{Db, ReadStore};

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
}

fn not_leader(f: &ForwardToLeader<TypeConfig>) -> ServiceError {
    ServiceError::NotLeader { leader_addr: f.leader_node.as_ref().map(|n| n.addr.clone()) }
}

pub fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

#[derive(Clone)]
pub struct Node {
    pub id: NodeId,
    pub raft: Raft,
    pub db: Db,
    pub feed: EntryFeed,
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
        }
    }
}

impl Node {
    /// Proposes one command and waits until it is applied here.
    pub async fn propose(&self, operation: Operation) -> Result<CommandResponse, ServiceError> {
        let command = Command { proposed_at_ns: now_ns(), operation };
        match self.raft.client_write(command).await {
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
    pub async fn read_barrier(&self) -> Result<(), ServiceError> {
        match self.raft.ensure_linearizable(ReadPolicy::ReadIndex).await {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f))) => Err(not_leader(&f)),
            Err(RaftError::APIError(e)) => Err(ServiceError::NoQuorum(e.to_string())),
            Err(RaftError::Fatal(f)) => Err(ServiceError::Fatal(f.to_string())),
        }
    }

    pub fn reader(&self) -> ReadStore<'_> {
        ReadStore { db: &self.db }
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
                Ok(Some(at)) => at <= now_ns(),
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

fn next_expiry_ns(reader: &ReadStore<'_>) -> io::Result<Option<u64>> {
    use crate::ledger::Store;
    let first = reader.scan(store::Table::PendingExpiry, &[], &[0xff; 25], 1, false)?;
    Ok(first.first().and_then(|(k, _)| store::expiry_key_parts(k)).map(|(at, _)| at))
}
