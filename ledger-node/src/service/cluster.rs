//! Cluster administration: forming a cluster once, adding learners, promoting them, removing
//! members, forcing snapshots. Every membership change runs on the leader and is idempotent
//! (asking for what already is answers "unchanged"), so an operator or a client may retry it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use openraft::ChangeMembers;
use openraft::errors::{ClientWriteError, InitializeError, RaftError};
use openraft::type_config::async_runtime::WatchReceiver;

use super::{Node, ServiceError, not_leader};
use crate::raft::{NodeAddr, NodeId};

/// How long to wait for a node to say who it is.
const NODE_INFO_TIMEOUT: Duration = Duration::from_secs(3);
/// A learner is promoted only when at most this many entries behind the leader (by default):
/// a voter that is far behind adds to the quorum without being able to vote in it.
pub const PROMOTE_LAG_MAX: u64 = 1_000;
/// Longest wait a promote request may ask for.
const PROMOTE_WAIT_MAX: Duration = Duration::from_secs(3_600);
const SNAPSHOT_WAIT: Duration = Duration::from_secs(600);
const PURGE_WAIT: Duration = Duration::from_secs(30);

/// A voter that acknowledged the leader within this long counts as live for the quorum check:
/// 10 heartbeats. Short on purpose: a voter that died a moment ago must not count, because a
/// change that cannot commit leaves the cluster in a joint configuration it cannot leave.
const LIVE_HORIZON: Duration = Duration::from_secs(1);

/// The membership as (id, address, voter) rows, voters first.
pub fn members(node: &Node) -> Vec<(NodeId, NodeAddr, bool)> {
    let metrics = node.raft.metrics().borrow_watched().clone();
    let membership = metrics.membership_config.membership();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    membership.nodes().map(|(id, addr)| (*id, addr.clone(), voters.contains(id))).collect()
}

/// Result of a membership change: whether anything changed.
pub struct Changed(pub bool);

fn write_error(e: RaftError<crate::raft::TypeConfig, ClientWriteError<crate::raft::TypeConfig>>) -> ServiceError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => not_leader(&f),
        RaftError::APIError(ClientWriteError::LogEntryDiscarded(d)) => {
            ServiceError::Unknown(format!("leader changed while the membership change was in flight; retry ({d})"))
        }
        // A change already in progress: nothing was written; retry when it is done.
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => ServiceError::Unavailable(e.to_string()),
        RaftError::APIError(e) => ServiceError::Unavailable(e.to_string()),
        RaftError::Fatal(f) => ServiceError::Fatal(f.to_string()),
    }
}

impl Node {
    /// The leader's client address when this node is not the leader.
    fn require_leader(&self) -> Result<(), ServiceError> {
        if self.raft.is_leader() {
            return Ok(());
        }
        let metrics = self.raft.metrics().borrow_watched().clone();
        let leader_addr =
            metrics.current_leader.and_then(|l| metrics.membership_config.membership().get_node(&l).map(|n| n.api.clone()));
        Err(ServiceError::NotLeader { leader_addr })
    }

    /// Whether this node or any member that answers has ever seen `id` in a membership. Asking
    /// the members too covers a leader that joined after `id` was retired.
    async fn id_was_seen(&self, id: NodeId) -> bool {
        if self.ids_seen.lock().unwrap_or_else(|p| p.into_inner()).contains(id) {
            return true;
        }
        let others: Vec<NodeAddr> = members(self).into_iter().filter(|(m, _, _)| *m != self.id).map(|(_, a, _)| a).collect();
        let answers = futures::future::join_all(
            others.iter().map(|addr| self.peers.node_info(&addr.peer, Duration::from_secs(1))),
        )
        .await;
        answers.into_iter().flatten().any(|info| info.node_ids_seen.contains(&id))
    }

    /// Voters known to be up: the leader itself, and those that acknowledged it recently.
    fn live_nodes(&self) -> BTreeSet<NodeId> {
        use openraft::Instant as _;
        let metrics = self.raft.metrics().borrow_watched().clone();
        let mut live = BTreeSet::from([self.id]);
        if let Some(heartbeats) = &metrics.heartbeat {
            for (id, acked) in heartbeats {
                if acked.as_ref().is_some_and(|at| at.elapsed() < LIVE_HORIZON) {
                    live.insert(*id);
                }
            }
        }
        live
    }

    /// Refuses a voter change whose new voter set has no majority of live nodes: the change
    /// (joint consensus needs both majorities) could not commit, and the cluster would stop
    /// taking writes until the dead voters came back.
    fn check_quorum_after(&self, new_voters: &BTreeSet<NodeId>) -> Result<(), ServiceError> {
        let live = self.live_nodes();
        let live_count = new_voters.intersection(&live).count();
        if live_count * 2 <= new_voters.len() {
            let dead: Vec<&NodeId> = new_voters.difference(&live).collect();
            return Err(ServiceError::Refused(format!(
                "after this change the voters would be {new_voters:?}, of which {dead:?} are not answering: no majority \
                 could commit it and the cluster would stop; bring them back (or remove dead voters first)"
            )));
        }
        Ok(())
    }

    /// Asks the node at `peer_address` who it is; it must be `expected`, of this cluster, and
    /// hold no Raft state (a node with state belongs to some cluster already).
    async fn fresh_node(&self, expected: NodeId, peer_address: &str) -> Result<NodeAddr, ServiceError> {
        let info = self
            .peers
            .node_info(peer_address, NODE_INFO_TIMEOUT)
            .await
            .map_err(|e| ServiceError::Unavailable(format!("node {expected} did not answer: {e}")))?;
        if info.node_id != expected {
            return Err(ServiceError::Refused(format!(
                "the node at {peer_address} is node {}, not node {expected}",
                info.node_id
            )));
        }
        if info.cluster_name != self.cluster_name {
            return Err(ServiceError::Refused(format!(
                "node {expected} belongs to cluster {:?}, this is {:?}",
                info.cluster_name, self.cluster_name
            )));
        }
        if info.format_version != ledger_core::codec::FORMAT_VERSION {
            return Err(ServiceError::Refused(format!(
                "node {expected} runs data format {}, this cluster format {}: every member must run a release of \
                 the same format (docs/operations.md, Upgrades)",
                info.format_version,
                ledger_core::codec::FORMAT_VERSION
            )));
        }
        if info.initialized {
            return Err(ServiceError::Refused(format!(
                "node {expected} at {peer_address} already holds Raft state (it was a member of a cluster): \
                 start it on an empty data dir under a new id"
            )));
        }
        Ok(NodeAddr { peer: peer_address.to_string(), api: info.api_address, incarnation: info.incarnation })
    }

    /// Forms a new cluster of this node (`me`) and `others`, all voters. Exactly once: refused
    /// when this node or any other holds Raft state.
    pub async fn init_cluster(&self, me: NodeAddr, others: &[(NodeId, String)]) -> Result<Changed, ServiceError> {
        let already = || {
            ServiceError::Refused(format!(
                "node {} already belongs to a cluster: a cluster is initialised once (add nodes with `ledger cluster add-learner`)",
                self.id
            ))
        };
        if self.raft.is_initialized().await.map_err(|f| ServiceError::Fatal(f.to_string()))? {
            return Err(already());
        }
        let mut members = BTreeMap::from([(self.id, me)]);
        for (id, peer_address) in others {
            if members.contains_key(id) {
                return Err(ServiceError::Refused(format!("node id {id} is named twice")));
            }
            members.insert(*id, self.fresh_node(*id, peer_address).await?);
        }
        tracing::info!(members = ?members.keys().collect::<Vec<_>>(), "initialising a new cluster");
        match self.raft.initialize(members).await {
            Ok(()) => Ok(Changed(true)),
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Err(already()),
            Err(RaftError::APIError(e)) => Err(ServiceError::Refused(e.to_string())),
            Err(RaftError::Fatal(f)) => Err(ServiceError::Fatal(f.to_string())),
        }
    }

    pub async fn add_learner(&self, id: NodeId, peer_address: &str) -> Result<Changed, ServiceError> {
        if id == 0 {
            return Err(ServiceError::Refused("node ids start at 1".into()));
        }
        self.require_leader()?;
        if let Some((_, addr, voter)) = members(self).into_iter().find(|(m, _, _)| *m == id) {
            if addr.peer == peer_address {
                // A retry of an add that succeeded (or the node is already a voter).
                return Ok(Changed(false));
            }
            return Err(ServiceError::Refused(format!(
                "node id {id} is already a {} at {}: ids are never reused",
                if voter { "voter" } else { "learner" },
                addr.peer
            )));
        }
        if self.id_was_seen(id).await {
            return Err(ServiceError::Refused(format!(
                "node id {id} was a member of this cluster before: ids are never reused, choose a new one"
            )));
        }
        let addr = self.fresh_node(id, peer_address).await?;
        tracing::info!(id, peer = %addr.peer, api = %addr.api, "adding a learner");
        // Not blocking: the learner catches up in the background (`promote` waits for it).
        self.raft.add_learner(id, addr, false).await.map_err(write_error)?;
        Ok(Changed(true))
    }

    pub async fn promote(&self, id: NodeId, wait: Duration, max_lag: u64) -> Result<Changed, ServiceError> {
        self.require_leader()?;
        match members(self).into_iter().find(|(m, _, _)| *m == id) {
            None => return Err(ServiceError::Refused(format!("node {id} is not a member: add it as a learner first"))),
            Some((_, _, true)) => return Ok(Changed(false)),
            Some(_) => {}
        }
        let deadline = Instant::now() + wait.min(PROMOTE_WAIT_MAX);
        loop {
            self.require_leader()?;
            let metrics = self.raft.metrics().borrow_watched().clone();
            let last = metrics.last_log_index.unwrap_or(0);
            let matched = metrics
                .replication
                .as_ref()
                .and_then(|r| r.get(&id).cloned().flatten())
                .map(|l| l.index())
                .unwrap_or(0);
            let lag = last.saturating_sub(matched);
            // Caught up, and answering: a learner added a moment ago has acknowledged nothing
            // yet, and promoting it then is refused by the live-majority check below.
            if lag <= max_lag && self.live_nodes().contains(&id) {
                break;
            }
            if Instant::now() >= deadline {
                if lag <= max_lag {
                    return Err(ServiceError::Refused(format!(
                        "learner {id} has not answered the leader within the last {LIVE_HORIZON:?}; is it running?"
                    )));
                }
                return Err(ServiceError::Refused(format!(
                    "learner {id} is {lag} entries behind the leader (holds {matched} of {last}); wait for it to catch up"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut new_voters: BTreeSet<NodeId> = members(self).into_iter().filter(|(_, _, v)| *v).map(|(m, _, _)| m).collect();
        new_voters.insert(id);
        self.check_quorum_after(&new_voters)?;
        tracing::info!(id, "promoting a learner to voter");
        self.raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false).await.map_err(write_error)?;
        Ok(Changed(true))
    }

    pub async fn remove(&self, id: NodeId) -> Result<Changed, ServiceError> {
        self.require_leader()?;
        let members = members(self);
        let Some((_, _, voter)) = members.iter().find(|(m, _, _)| *m == id) else { return Ok(Changed(false)) };
        let change = if *voter {
            if members.iter().filter(|(_, _, v)| *v).count() == 1 {
                return Err(ServiceError::Refused(format!("node {id} is the last voter: a cluster cannot remove it")));
            }
            let new_voters: BTreeSet<NodeId> = members.iter().filter(|(m, _, v)| *v && *m != id).map(|(m, _, _)| *m).collect();
            self.check_quorum_after(&new_voters)?;
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        tracing::info!(id, voter, "removing a member");
        // retain = false: a removed voter leaves the cluster instead of staying as a learner.
        self.raft.change_membership(change, false).await.map_err(write_error)?;
        Ok(Changed(true))
    }

    /// Builds a snapshot of everything applied so far; with `purge`, deletes the log it covers.
    /// Returns (snapshot index, purged index).
    pub async fn snapshot_now(&self, purge: bool) -> Result<(u64, u64), ServiceError> {
        let fatal = |e: openraft::errors::Fatal<crate::raft::TypeConfig>| ServiceError::Fatal(e.to_string());
        let applied = self.raft.metrics().borrow_watched().last_applied.as_ref().map(|l| l.index()).unwrap_or(0);
        self.raft.trigger().snapshot().await.map_err(fatal)?;
        let metrics = self
            .raft
            .wait(Some(SNAPSHOT_WAIT))
            .metrics(|m| m.snapshot.as_ref().is_some_and(|s| s.index() >= applied), "snapshot covers the applied log")
            .await
            .map_err(|e| ServiceError::Unavailable(format!("snapshot not built: {e}")))?;
        let snapshot_index = metrics.snapshot.as_ref().map(|s| s.index()).unwrap_or(0);
        let mut purged = metrics.purged.as_ref().map(|p| p.index()).unwrap_or(0);
        if purge {
            self.raft.trigger().purge_log(snapshot_index).await.map_err(fatal)?;
            // Purging waits for replication that still reads those entries: best effort.
            if let Ok(m) = self
                .raft
                .wait(Some(PURGE_WAIT))
                .metrics(|m| m.purged.as_ref().is_some_and(|p| p.index() >= snapshot_index), "log purged")
                .await
            {
                purged = m.purged.as_ref().map(|p| p.index()).unwrap_or(0);
            }
        }
        tracing::info!(snapshot_index, purged, "snapshot on request");
        Ok((snapshot_index, purged))
    }

    /// Records every id of every membership this node sees (runs until the node stops).
    pub async fn record_member_ids(self) {
        let mut metrics = self.raft.metrics();
        loop {
            let ids: Vec<NodeId> = {
                let m = metrics.borrow_watched();
                m.membership_config.membership().nodes().map(|(id, _)| *id).collect()
            };
            if let Err(e) = self.ids_seen.lock().unwrap_or_else(|p| p.into_inner()).record(ids) {
                tracing::error!(error = %e, "recording member ids failed");
            }
            if metrics.changed().await.is_err() {
                return;
            }
        }
    }
}

impl Node {
    /// Builds a snapshot whenever `limit` bytes were appended to the log since the last one (the
    /// entry-count policy is openraft's `LogsSinceLast`). Runs until the node stops.
    pub async fn run_log_size_snapshots(self, appended: std::sync::Arc<std::sync::atomic::AtomicU64>, limit: u64) {
        use std::sync::atomic::Ordering;
        let snapshot_index = |node: &Node| node.raft.metrics().borrow_watched().snapshot.as_ref().map(|s| s.index());
        let mut base = appended.load(Ordering::Relaxed);
        let mut last_snapshot = snapshot_index(&self);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let now = snapshot_index(&self);
            if now != last_snapshot {
                // A snapshot was built (by either policy): count from here.
                last_snapshot = now;
                base = appended.load(Ordering::Relaxed);
                continue;
            }
            let grown = appended.load(Ordering::Relaxed).saturating_sub(base);
            if grown >= limit {
                tracing::info!(log_bytes = grown, "log grew past the snapshot threshold; building a snapshot");
                if self.raft.trigger().snapshot().await.is_err() {
                    return;
                }
                base = appended.load(Ordering::Relaxed);
            }
        }
    }
}
