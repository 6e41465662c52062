//! The client side of the peer transport: openraft's RPCs as CRC-guarded postcard payloads over
//! gRPC (`ledger.raft.v1.RaftPeer`). One lazily connected channel per peer.

use std::future::Future;
use std::time::Duration;

use ledger_proto::raft::raft_peer_client::RaftPeerClient;
use ledger_proto::raft::{RaftMessage, SnapshotChunk};
use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse};
use openraft::{BasicNode, OptionalSend, RaftNetworkV2};
use tokio::io::AsyncReadExt;
use tonic::transport::{Channel, Endpoint};

use super::snapshot::SnapshotFile;
use super::{NodeId, Snapshot, TypeConfig, Vote};
use crate::codec;

/// Bytes of snapshot data per chunk.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;
/// Largest peer message (an AppendEntries of a full batch of large transfers).
pub const PEER_MESSAGE_BYTES_MAX: usize = 64 << 20;

pub fn message(payload: Vec<u8>) -> RaftMessage {
    let crc32 = crc32fast::hash(&payload);
    RaftMessage { payload, crc32 }
}

pub fn open_message<T: serde::de::DeserializeOwned>(what: &str, m: &RaftMessage) -> std::io::Result<T> {
    if crc32fast::hash(&m.payload) != m.crc32 {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("peer {what}: checksum mismatch")));
    }
    codec::decode(&format!("peer {what}"), &m.payload)
}

#[derive(Clone, Default)]
pub struct Network;

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        let channel = Endpoint::from_shared(node.addr.clone())
            .map(|e| e.connect_timeout(Duration::from_secs(2)).connect_lazy())
            .map_err(|e| e.to_string());
        PeerClient { target, channel }
    }
}

pub struct PeerClient {
    target: NodeId,
    channel: Result<Channel, String>,
}

fn unreachable(e: impl std::fmt::Display) -> Unreachable<TypeConfig> {
    Unreachable::from_string(e.to_string())
}

impl PeerClient {
    fn client(&self) -> Result<RaftPeerClient<Channel>, Unreachable<TypeConfig>> {
        let channel = self.channel.clone().map_err(unreachable)?;
        Ok(RaftPeerClient::new(channel)
            .max_decoding_message_size(PEER_MESSAGE_BYTES_MAX)
            .max_encoding_message_size(PEER_MESSAGE_BYTES_MAX))
    }

    async fn call<Req, Resp, F, Fut>(&self, what: &str, request: &Req, ttl: Duration, send: F) -> Result<Resp, RPCError<TypeConfig>>
    where
        Req: serde::Serialize,
        Resp: serde::de::DeserializeOwned,
        F: FnOnce(RaftPeerClient<Channel>, RaftMessage) -> Fut,
        Fut: Future<Output = Result<tonic::Response<RaftMessage>, tonic::Status>>,
    {
        let client = self.client()?;
        let reply = tokio::time::timeout(ttl, send(client, message(codec::encode(request))))
            .await
            .map_err(|_| RPCError::Unreachable(unreachable(format!("{what} to node {} timed out", self.target))))?;
        let reply = reply.map_err(|status| match status.code() {
            tonic::Code::Unavailable | tonic::Code::Unknown => RPCError::Unreachable(unreachable(status.message())),
            _ => RPCError::Network(NetworkError::from_string(format!("{what}: {status}"))),
        })?;
        open_message(what, reply.get_ref()).map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = SnapshotFile;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call("append_entries", &rpc, option.hard_ttl(), |mut c, m| async move { c.append_entries(m).await })
            .await
    }

    async fn vote(&mut self, rpc: VoteRequest<TypeConfig>, option: RPCOption) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call("vote", &rpc, option.hard_ttl(), |mut c, m| async move { c.vote(m).await }).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let mut client = self.client()?;
        let path = snapshot.snapshot.path.clone();
        let header = message(codec::encode(&(vote, snapshot.meta)));
        let (tx, rx) = tokio::sync::mpsc::channel::<SnapshotChunk>(4);
        let reader = tokio::spawn(async move {
            let mut file = tokio::fs::File::open(&path).await?;
            let mut total = crc32fast::Hasher::new();
            let mut header = Some(header);
            loop {
                let mut data = vec![0u8; SNAPSHOT_CHUNK_BYTES];
                let mut filled = 0;
                while filled < data.len() {
                    let n = file.read(&mut data[filled..]).await?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                data.truncate(filled);
                total.update(&data);
                let last = filled < SNAPSHOT_CHUNK_BYTES;
                let chunk = SnapshotChunk {
                    header: header.take(),
                    crc32: crc32fast::hash(&data),
                    data,
                    last,
                    total_crc32: if last { total.clone().finalize() } else { 0 },
                };
                if tx.send(chunk).await.is_err() || last {
                    return Ok::<(), std::io::Error>(());
                }
            }
        });
        let send = client.install_snapshot(tokio_stream::wrappers::ReceiverStream::new(rx));
        let reply = tokio::select! {
            closed = cancel => {
                reader.abort();
                return Err(StreamingError::Closed(closed));
            }
            reply = send => reply,
        };
        match reader.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(StreamingError::Network(NetworkError::new(&e))),
            Err(e) => return Err(StreamingError::Network(NetworkError::from_string(e))),
        }
        let reply = reply.map_err(|status| StreamingError::Unreachable(unreachable(status)))?;
        open_message("snapshot response", reply.get_ref()).map_err(|e| StreamingError::Network(NetworkError::new(&e)))
    }
}
