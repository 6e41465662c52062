//! The server side of the peer transport: hands openraft's RPCs to the local Raft, after
//! checking that each message is meant for this node (id and data-dir incarnation).

use std::path::PathBuf;
use std::sync::Arc;

use ledger_proto::raft::raft_peer_server::RaftPeer;
use ledger_proto::raft::{NodeInfoRequest, NodeInfoResponse, RaftMessage, SnapshotChunk};
use openraft::ReadPolicy;
use openraft::errors::{LinearizableReadError, RaftError};
use openraft::raft::{AppendEntriesRequest, TransferLeaderRequest, VoteRequest};
use tokio::io::AsyncWriteExt;
use tonic::{Request, Response, Status, Streaming};

use super::network::{message, open_message};
use super::snapshot::SnapshotFile;
use super::{NodeId, Raft, Snapshot, SnapshotMeta, TypeConfig, Vote};
use ledger_core::codec;

pub struct PeerService {
    pub raft: Raft,
    pub snapshot_dir: PathBuf,
    pub node_id: NodeId,
    pub incarnation: u64,
    pub peer_address: String,
    pub api_address: String,
    pub cluster_name: String,
    /// Node ids this node has seen in a membership (shared with the service layer's record).
    pub ids_seen: Arc<dyn Fn() -> Vec<NodeId> + Send + Sync>,
    /// TLS on: every call must come from a node certificate of this cluster (`check_sender`).
    pub mutual_tls: bool,
    /// TLS off: every call must carry this cluster secret (`peer_auth`). `None` with TLS off only
    /// on a node without client authentication either (loopback, dev and tests; `config`).
    pub secret: Option<Arc<super::peer_auth::ClusterSecret>>,
}

fn bad_message(e: std::io::Error) -> Status {
    Status::invalid_argument(e.to_string())
}

/// Raft refused or stopped: the sender backs off and retries (maybe elsewhere).
fn raft_error(e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("raft: {e}"))
}

impl PeerService {
    /// With mutual TLS, who sent a call: the node id its certificate names (the handshake already
    /// checked the chain to the cluster CA). A node that is not in this node's membership (voters
    /// and learners) is refused with PERMISSION_DENIED and logged, except while this node holds no
    /// Raft state: then it is waiting to be joined, and the joining leader is not known yet.
    /// Without TLS, the call must carry the cluster secret instead (when one is configured).
    fn check_sender<T>(&self, request: &Request<T>, method: &'static str) -> Result<(), Status> {
        use openraft::type_config::async_runtime::WatchReceiver;
        if !self.mutual_tls {
            let Some(secret) = &self.secret else { return Ok(()) };
            return secret.verify(request).inspect_err(|status| {
                tracing::warn!(method, remote = ?request.remote_addr(), reason = status.message(), "peer call refused");
            });
        }
        let certs = request.peer_certs().ok_or_else(|| Status::unauthenticated("no peer certificate"))?;
        let der = certs.first().ok_or_else(|| Status::unauthenticated("no peer certificate"))?;
        let sender = match crate::tls::node_id_in(der, &self.cluster_name) {
            Ok(id) => id,
            Err(why) => {
                tracing::warn!(method, remote = ?request.remote_addr(), reason = %why, "peer call refused: not a node of this cluster");
                return Err(Status::permission_denied(format!("not a node of cluster {:?}: {why}", self.cluster_name)));
            }
        };
        let metrics = self.raft.metrics().borrow_watched().clone();
        let membership = metrics.membership_config.membership();
        let joining = membership.nodes().next().is_none();
        if joining || membership.get_node(&sender).is_some() {
            return Ok(());
        }
        tracing::warn!(
            method,
            sender,
            remote = ?request.remote_addr(),
            "peer call refused: node {sender} is not a member of this cluster"
        );
        Err(Status::permission_denied(format!("node {sender} is not a member of this cluster")))
    }

    /// Refuses a message meant for another node: another id, or this id in another data dir
    /// (a wiped node must not answer for the member whose log it lost). Every request names
    /// both (`network::message_to`): a message naming no one (0) is refused too, so a sender
    /// must know this node's incarnation.
    fn check_target(&self, m: &RaftMessage) -> Result<(), Status> {
        if m.target_node_id == 0 || m.target_incarnation == 0 {
            return Err(Status::failed_precondition("a peer message must name its target node and incarnation"));
        }
        if m.target_node_id != self.node_id {
            return Err(Status::failed_precondition(format!(
                "this is node {}, not node {}: the address now belongs to another node",
                self.node_id, m.target_node_id
            )));
        }
        if m.target_incarnation != self.incarnation {
            return Err(Status::failed_precondition(format!(
                "node {} was re-created (data dir incarnation {:x}, the cluster knows {:x}): it lost its \
                 state and cannot rejoin under its old id; add it back under a new id",
                self.node_id, self.incarnation, m.target_incarnation
            )));
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl RaftPeer for PeerService {
    async fn vote(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        self.check_sender(&request, "vote")?;
        self.check_target(request.get_ref())?;
        let rpc: VoteRequest<TypeConfig> = open_message("vote", request.get_ref()).map_err(bad_message)?;
        let reply = self.raft.vote(rpc).await.map_err(raft_error)?;
        Ok(Response::new(message(codec::encode(&reply))))
    }

    async fn transfer_leader(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        self.check_sender(&request, "transfer_leader")?;
        self.check_target(request.get_ref())?;
        let rpc: TransferLeaderRequest<TypeConfig> = open_message("transfer_leader", request.get_ref()).map_err(bad_message)?;
        let reply = self.raft.handle_transfer_leader(rpc).await.map_err(raft_error)?;
        Ok(Response::new(message(codec::encode(&reply))))
    }

    async fn append_entries(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        self.check_sender(&request, "append_entries")?;
        self.check_target(request.get_ref())?;
        let rpc: AppendEntriesRequest<TypeConfig> =
            open_message("append_entries", request.get_ref()).map_err(bad_message)?;
        let reply = self.raft.append_entries(rpc).await.map_err(raft_error)?;
        Ok(Response::new(message(codec::encode(&reply))))
    }

    async fn install_snapshot(&self, request: Request<Streaming<SnapshotChunk>>) -> Result<Response<RaftMessage>, Status> {
        self.check_sender(&request, "install_snapshot")?;
        let mut stream = request.into_inner();
        tokio::fs::create_dir_all(&self.snapshot_dir).await.map_err(|e| Status::internal(e.to_string()))?;
        let path = super::snapshot::unique_temp_path(&self.snapshot_dir, "incoming");
        let bytes_max = super::snapshot::receive_bytes_max(&self.snapshot_dir).map_err(|e| Status::internal(e.to_string()))?;
        let result = receive(&mut stream, &path, bytes_max, |h| self.check_target(h)).await;
        let (vote, meta) = match result {
            Ok(parts) => parts,
            Err(status) => {
                let _ = tokio::fs::remove_file(&path).await;
                tracing::warn!(error = %status.message(), "snapshot refused");
                return Err(status);
            }
        };
        // The file must check out before Raft sees it: a failed install is a storage error that
        // stops this node, while a refused transfer is only retried.
        let verify_path = path.clone();
        let verified = tokio::task::spawn_blocking(move || super::snapshot::verify(&verify_path)).await;
        match verified {
            Ok(Ok(file_meta)) if file_meta == meta => {}
            Ok(Ok(_)) => {
                let _ = tokio::fs::remove_file(&path).await;
                return Err(Status::data_loss("snapshot file meta differs from its header"));
            }
            Ok(Err(e)) => {
                let _ = tokio::fs::remove_file(&path).await;
                tracing::warn!(error = %e, "received snapshot is corrupted; refused");
                return Err(Status::data_loss(e.to_string()));
            }
            Err(e) => return Err(Status::internal(e.to_string())),
        }
        tracing::info!(last_log_id = ?meta.last_log_id, "snapshot received; installing");
        let snapshot = Snapshot { meta, snapshot: SnapshotFile { path: path.clone() } };
        let reply = self.raft.install_full_snapshot(vote, snapshot).await;
        // Installed snapshots are renamed into place; anything left here is a refused one.
        let _ = tokio::fs::remove_file(&path).await;
        let reply = reply.map_err(raft_error)?;
        Ok(Response::new(message(codec::encode(&reply))))
    }

    async fn node_info(&self, request: Request<NodeInfoRequest>) -> Result<Response<NodeInfoResponse>, Status> {
        self.check_sender(&request, "node_info")?;
        let initialized = self.raft.is_initialized().await.map_err(raft_error)?;
        Ok(Response::new(NodeInfoResponse {
            node_id: self.node_id,
            incarnation: self.incarnation,
            peer_address: self.peer_address.clone(),
            api_address: self.api_address.clone(),
            initialized,
            cluster_name: self.cluster_name.clone(),
            node_ids_seen: (self.ids_seen)(),
            format_version: ledger_core::codec::FORMAT_VERSION,
            now_ns: crate::service::now_ns(),
        }))
    }

    async fn read_index(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        self.check_sender(&request, "read_index")?;
        self.check_target(request.get_ref())?;
        // Confirms leadership with a quorum (ReadIndex), like a read on the leader itself.
        let linearizer = match self.raft.get_read_linearizer(ReadPolicy::ReadIndex).await {
            Ok(l) => l,
            Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(_))) => {
                return Err(Status::unavailable("not the leader"));
            }
            Err(e) => return Err(raft_error(e)),
        };
        let read_log_id = linearizer.read_log_id().log_id().clone();
        Ok(Response::new(message(codec::encode(&read_log_id))))
    }
}

/// Writes the streamed snapshot to `path`, checking the header's addressee, every chunk's CRC
/// and the whole file's, and that it stays within `bytes_max` (`snapshot::receive_bytes_max`).
async fn receive(
    stream: &mut Streaming<SnapshotChunk>,
    path: &PathBuf,
    bytes_max: u64,
    check_target: impl Fn(&RaftMessage) -> Result<(), Status>,
) -> Result<(Vote, SnapshotMeta), Status> {
    let io = |e: std::io::Error| Status::internal(e.to_string());
    let mut file = tokio::fs::File::create(path).await.map_err(io)?;
    let mut total = crc32fast::Hasher::new();
    let mut received: u64 = 0;
    let mut header: Option<(Vote, SnapshotMeta)> = None;
    loop {
        let chunk = stream.message().await?.ok_or_else(|| Status::invalid_argument("snapshot stream ended early"))?;
        if let Some(h) = &chunk.header {
            check_target(h)?;
            header = Some(open_message("snapshot header", h).map_err(bad_message)?);
        }
        if header.is_none() {
            return Err(Status::invalid_argument("snapshot stream must start with its header"));
        }
        if crc32fast::hash(&chunk.data) != chunk.crc32 {
            return Err(Status::data_loss("snapshot chunk checksum mismatch"));
        }
        received += chunk.data.len() as u64;
        if received > bytes_max {
            return Err(Status::resource_exhausted(format!(
                "snapshot larger than {bytes_max} bytes, half the disk space free when it began: refused"
            )));
        }
        total.update(&chunk.data);
        file.write_all(&chunk.data).await.map_err(io)?;
        if chunk.last {
            if total.finalize() != chunk.total_crc32 {
                return Err(Status::data_loss("snapshot checksum mismatch"));
            }
            break;
        }
    }
    file.sync_all().await.map_err(io)?;
    header.ok_or_else(|| Status::invalid_argument("snapshot stream had no header"))
}
