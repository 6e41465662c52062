//! `ledger.v1.Cluster`: membership changes, forced snapshots and backups, for operators. Also the member
//! rows shared with `Ledger.ClusterStatus`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ledger_proto::api as pb;
use ledger_proto::api::cluster_server::Cluster;
use tonic::{Request, Response, Status};

use super::status::to_status;
use crate::config::check_url;
use crate::raft::{NodeAddr, NodeId};
use crate::service::cluster::{Changed, PROMOTE_LAG_MAX};
use crate::service::{Node, ServiceError};

pub struct ClusterService {
    pub node: Node,
    /// This node as a member (for `InitCluster`).
    pub me: NodeAddr,
}

/// One row per member, as this node sees the membership; replication progress only on the leader.
pub fn member_rows(node: &Node) -> Vec<pb::NodeStatus> {
    let metrics = node.metrics();
    let membership = metrics.membership_config.membership();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let last_log = metrics.last_log_index.unwrap_or(0);
    membership
        .nodes()
        .map(|(id, addr)| {
            let role = if Some(*id) == metrics.current_leader {
                "leader"
            } else if voters.contains(id) {
                "follower"
            } else {
                "learner"
            };
            // The leader's own entry is its last log; others' are what replication confirmed.
            let matched = metrics.replication.as_ref().map(|r| {
                if *id == metrics.id { last_log } else { r.get(id).cloned().flatten().map(|l| l.index()).unwrap_or(0) }
            });
            pb::NodeStatus {
                node_id: *id,
                address: addr.api.clone(),
                role: role.into(),
                voter: voters.contains(id),
                peer_address: addr.peer.clone(),
                matched_index: matched,
                lag_entries: matched.map(|m| last_log.saturating_sub(m)),
            }
        })
        .collect()
}

/// Bytes in a peer address a membership change may name (it is stored in every membership).
pub const PEER_ADDRESS_BYTES_MAX: usize = 256;

/// A peer URL of this node's scheme (https:// when it runs TLS, else http://), bounded.
fn peer_url(url: &str, me: &NodeAddr) -> Result<String, Status> {
    if url.len() > PEER_ADDRESS_BYTES_MAX {
        return Err(Status::invalid_argument(format!("peer address of {} bytes; at most {PEER_ADDRESS_BYTES_MAX}", url.len())));
    }
    let url = check_url(url).map_err(|e| Status::invalid_argument(e.to_string()))?;
    crate::config::check_scheme(&url, me.peer.starts_with("https://"), "peer address")
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    Ok(url)
}

fn node_id(id: u64) -> Result<NodeId, Status> {
    if id == 0 { Err(Status::invalid_argument("node ids start at 1")) } else { Ok(id) }
}

impl ClusterService {
    fn answer(&self, changed: Result<Changed, ServiceError>) -> Result<Response<pb::MembershipResponse>, Status> {
        let Changed(changed) = changed.map_err(to_status)?;
        Ok(Response::new(pb::MembershipResponse { changed, nodes: member_rows(&self.node) }))
    }
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn init_cluster(&self, request: Request<pb::InitClusterRequest>) -> Result<Response<pb::MembershipResponse>, Status> {
        let req = request.into_inner();
        if req.members.len() > 64 {
            return Err(Status::invalid_argument("at most 64 initial members"));
        }
        let others = req
            .members
            .iter()
            .map(|m| Ok((node_id(m.node_id)?, peer_url(&m.peer_address, &self.me)?)))
            .collect::<Result<Vec<_>, Status>>()?;
        let changed = self.node.init_cluster(self.me.clone(), &others).await;
        self.answer(changed)
    }

    async fn add_learner(&self, request: Request<pb::AddLearnerRequest>) -> Result<Response<pb::MembershipResponse>, Status> {
        let req = request.into_inner();
        let changed = self.node.add_learner(node_id(req.node_id)?, &peer_url(&req.peer_address, &self.me)?).await;
        self.answer(changed)
    }

    async fn promote_voter(&self, request: Request<pb::PromoteVoterRequest>) -> Result<Response<pb::MembershipResponse>, Status> {
        let req = request.into_inner();
        let max_lag = if req.max_lag_entries == 0 { PROMOTE_LAG_MAX } else { req.max_lag_entries };
        let changed = self.node.promote(node_id(req.node_id)?, Duration::from_millis(req.wait_ms), max_lag).await;
        self.answer(changed)
    }

    async fn remove_node(&self, request: Request<pb::RemoveNodeRequest>) -> Result<Response<pb::MembershipResponse>, Status> {
        let changed = self.node.remove(node_id(request.into_inner().node_id)?).await;
        self.answer(changed)
    }

    async fn trigger_snapshot(
        &self,
        request: Request<pb::TriggerSnapshotRequest>,
    ) -> Result<Response<pb::TriggerSnapshotResponse>, Status> {
        let (snapshot_index, purged_index) = self.node.snapshot_now(request.into_inner().purge_log).await.map_err(to_status)?;
        Ok(Response::new(pb::TriggerSnapshotResponse { snapshot_index, purged_index }))
    }

    async fn backup(&self, request: Request<pb::BackupRequest>) -> Result<Response<pb::BackupResponse>, Status> {
        let dir = PathBuf::from(request.into_inner().dir);
        let Some(running) = BackupRunning::claim() else {
            return Err(Status::resource_exhausted("a backup of this node is already running; retry when it is done"));
        };
        let started = Instant::now();
        // Held by the work, not the call: a cancelled call does not free the slot early.
        let manifest = self
            .node
            .backup(dir.clone(), running)
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidInput => Status::invalid_argument(e.to_string()),
                std::io::ErrorKind::AlreadyExists => Status::already_exists(e.to_string()),
                _ => Status::internal(format!("backup failed: {e}")),
            })?;
        Ok(Response::new(pb::BackupResponse {
            dir: dir.display().to_string(),
            applied_index: manifest.applied_index,
            state_hash: manifest.state_hash.clone(),
            files: manifest.files.len() as u64,
            bytes: manifest.total_bytes(),
            elapsed_ms: started.elapsed().as_millis() as u64,
        }))
    }
}

/// One backup at a time per node: a second would double the disk and I/O load for nothing.
static BACKUP_RUNNING: AtomicBool = AtomicBool::new(false);

/// The claim on `BACKUP_RUNNING`, released when dropped.
struct BackupRunning;

impl BackupRunning {
    fn claim() -> Option<BackupRunning> {
        (!BACKUP_RUNNING.swap(true, Ordering::AcqRel)).then_some(BackupRunning)
    }
}

impl Drop for BackupRunning {
    fn drop(&mut self) {
        BACKUP_RUNNING.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_addresses_are_bounded() {
        let url = |host_len: usize| format!("http://{}:7070", "h".repeat(host_len));
        let fits = PEER_ADDRESS_BYTES_MAX - "http://:7070".len();
        let me = NodeAddr { peer: "http://127.0.0.1:7080".into(), api: "http://127.0.0.1:7070".into(), incarnation: 1 };
        assert_eq!(peer_url(&url(fits), &me).unwrap().len(), PEER_ADDRESS_BYTES_MAX);
        assert_eq!(peer_url(&url(fits + 1), &me).unwrap_err().code(), tonic::Code::InvalidArgument);
    }
}
