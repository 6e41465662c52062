//! openraft glue: the type configuration, the log store, the state-machine adapter, snapshots,
//! and the peer network. Knows nothing of accounts: it moves `Command`s and their responses.

pub mod log_store;
pub mod network;
pub mod peer_auth;
pub mod peer_service;
pub mod snapshot;
pub mod state_machine;

use serde::{Deserialize, Serialize};

use ledger_core::ItemResult;
use ledger_core::types::Command;

openraft::declare_raft_types!(
    pub TypeConfig:
        D = Command,
        R = CommandResponse,
        NodeId = u64,
        Node = NodeAddr,
);

/// A member as the membership records it: where to reach it, and which data dir answers there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddr {
    /// URL of its peer service (`ledger.raft.v1.RaftPeer`).
    pub peer: String,
    /// URL of its client service (`ledger.v1.Ledger`), handed to redirected clients.
    pub api: String,
    /// Random id of its data dir. Peer messages carry it, and a node answering with another
    /// (the id wiped and restarted, or a different node on a reused address) refuses them: a
    /// member that lost its log must never count towards a quorum again.
    pub incarnation: u64,
}

pub type NodeId = u64;
pub type Raft = openraft::Raft<TypeConfig, state_machine::StateMachine>;
pub type LogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
pub type Entry = openraft::type_config::alias::EntryOf<TypeConfig>;
pub type Vote = openraft::type_config::alias::VoteOf<TypeConfig>;
pub type StoredMembership = openraft::type_config::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<TypeConfig>;
pub type Snapshot = openraft::type_config::alias::SnapshotOf<TypeConfig, snapshot::SnapshotFile>;

/// What applying one log entry returned to its proposer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandResponse {
    pub results: Vec<ItemResult>,
}


#[cfg(test)]
mod tests;
#[cfg(test)]
mod snapshot_memory;
