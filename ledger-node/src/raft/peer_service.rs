//! The server side of the peer transport: hands openraft's RPCs to the local Raft.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use ledger_proto::raft::raft_peer_server::RaftPeer;
use ledger_proto::raft::{RaftMessage, SnapshotChunk};
use openraft::raft::{AppendEntriesRequest, VoteRequest};
use tokio::io::AsyncWriteExt;
use tonic::{Request, Response, Status, Streaming};

use super::network::{message, open_message};
use super::snapshot::SnapshotFile;
use super::{Raft, Snapshot, SnapshotMeta, TypeConfig, Vote};
use crate::codec;

pub struct PeerService {
    pub raft: Raft,
    pub snapshot_dir: PathBuf,
}

fn bad_message(e: std::io::Error) -> Status {
    Status::invalid_argument(e.to_string())
}

#[tonic::async_trait]
impl RaftPeer for PeerService {
    async fn vote(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let rpc: VoteRequest<TypeConfig> = open_message("vote", request.get_ref()).map_err(bad_message)?;
        let reply = self.raft.vote(rpc).await.map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(message(codec::encode(&reply))))
    }

    async fn append_entries(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let rpc: AppendEntriesRequest<TypeConfig> =
            open_message("append_entries", request.get_ref()).map_err(bad_message)?;
        let reply = self.raft.append_entries(rpc).await.map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(message(codec::encode(&reply))))
    }

    async fn install_snapshot(&self, request: Request<Streaming<SnapshotChunk>>) -> Result<Response<RaftMessage>, Status> {
        let mut stream = request.into_inner();
        tokio::fs::create_dir_all(&self.snapshot_dir).await.map_err(|e| Status::internal(e.to_string()))?;
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let path = self.snapshot_dir.join(format!("incoming-{nanos}.tmp"));
        let result = receive(&mut stream, &path).await;
        let (vote, meta) = match result {
            Ok(parts) => parts,
            Err(status) => {
                let _ = tokio::fs::remove_file(&path).await;
                return Err(status);
            }
        };
        let snapshot = Snapshot { meta, snapshot: SnapshotFile { path } };
        let reply = self.raft.install_full_snapshot(vote, snapshot).await.map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(message(codec::encode(&reply))))
    }
}

/// Writes the streamed snapshot to `path`, checking every chunk's CRC and the whole file's.
async fn receive(stream: &mut Streaming<SnapshotChunk>, path: &PathBuf) -> Result<(Vote, SnapshotMeta), Status> {
    let io = |e: std::io::Error| Status::internal(e.to_string());
    let mut file = tokio::fs::File::create(path).await.map_err(io)?;
    let mut total = crc32fast::Hasher::new();
    let mut header: Option<(Vote, SnapshotMeta)> = None;
    loop {
        let chunk = stream.message().await?.ok_or_else(|| Status::invalid_argument("snapshot stream ended early"))?;
        if let Some(h) = &chunk.header {
            header = Some(open_message("snapshot header", h).map_err(bad_message)?);
        }
        if crc32fast::hash(&chunk.data) != chunk.crc32 {
            return Err(Status::data_loss("snapshot chunk checksum mismatch"));
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
