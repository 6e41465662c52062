//! The client side of the peer transport: openraft's RPCs as CRC-guarded postcard payloads over
//! gRPC (`ledger.raft.v1.RaftPeer`). One cached channel per peer address.
//!
//! Every message names the node it is meant for (id and data-dir incarnation); the receiver
//! refuses one meant for another node, and the sender treats that as "unreachable", never as an
//! answer. AppendEntries messages are cut to `APPEND_BYTES_MAX` (the rest goes in the next one).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ledger_proto::raft::raft_peer_client::RaftPeerClient;
use ledger_proto::raft::{NodeInfoRequest, NodeInfoResponse, RaftMessage, SnapshotChunk};
use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest, TransferLeaderResponse, VoteRequest,
    VoteResponse,
};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend, RaftNetworkV2, StorageError};
use tokio::io::AsyncReadExt;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::{LogId, NodeAddr, NodeId, Snapshot, TypeConfig, Vote};
use super::peer_auth::{ClusterSecret, PeerAuth};
use super::snapshot::SnapshotFile;
use ledger_core::codec;

/// Bytes of snapshot data per chunk.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;
/// Largest peer message accepted (either direction).
pub const PEER_MESSAGE_BYTES_MAX: usize = 64 << 20;
/// An AppendEntries carries at most this many bytes of entries (at least one entry): half the
/// message bound, so encoding overhead can never push it over.
pub const APPEND_BYTES_MAX: usize = 32 << 20;
/// Peer addresses with a cached channel at most (members come and go; the cache must not grow).
const CHANNELS_MAX: usize = 256;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// openraft asks for appends within one heartbeat interval; a large append on a loaded host
/// (write + fsync on the follower) takes longer, and cutting it off would only resend it.
const APPEND_TIMEOUT_MIN: Duration = Duration::from_secs(2);
/// Time per byte of an append on top of `APPEND_TIMEOUT_MIN` (~20 MB/s, a slow disk).
const APPEND_NANOS_PER_BYTE: u64 = 50;

/// A message for `target` (id and incarnation): the receiver checks both.
pub fn message_to(payload: Vec<u8>, target: NodeId, incarnation: u64) -> RaftMessage {
    let crc32 = crc32fast::hash(&payload);
    RaftMessage { payload, crc32, target_node_id: target, target_incarnation: incarnation }
}

/// A reply (its sender was checked by the request).
pub fn message(payload: Vec<u8>) -> RaftMessage {
    message_to(payload, 0, 0)
}

pub fn open_message<T: serde::de::DeserializeOwned>(what: &str, m: &RaftMessage) -> std::io::Result<T> {
    if crc32fast::hash(&m.payload) != m.crc32 {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("peer {what}: checksum mismatch")));
    }
    codec::decode(&format!("peer {what}"), &m.payload)
}

/// One lazily connected channel per peer URL, shared by replication, follower reads and joins.
/// With TLS, every channel is mutual TLS: the peer is verified against the cluster CA and this
/// node presents its own certificate (`tls::TlsMaterial::peer_client`). Without TLS, every call
/// carries the cluster secret when one is configured (`peer_auth`).
#[derive(Clone, Default)]
pub struct PeerChannels {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    /// Replaced on a certificate reload (`set_tls`).
    tls: Arc<std::sync::RwLock<Option<ClientTlsConfig>>>,
    auth: PeerAuth,
}

/// A peer client: every call goes through `PeerAuth`.
pub type PeerGrpc = RaftPeerClient<InterceptedService<Channel, PeerAuth>>;

impl PeerChannels {
    pub fn new(tls: Option<ClientTlsConfig>, secret: Option<Arc<ClusterSecret>>) -> PeerChannels {
        PeerChannels { channels: Arc::default(), tls: Arc::new(std::sync::RwLock::new(tls)), auth: PeerAuth(secret) }
    }

    /// New TLS settings (a reloaded certificate or CA) for every connection opened from now on:
    /// the cached channels are dropped, so the next call to each peer reconnects with them.
    pub fn set_tls(&self, tls: ClientTlsConfig) {
        *self.tls.write().unwrap_or_else(|p| p.into_inner()) = Some(tls);
        self.channels.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn endpoint(&self, url: &str) -> Result<Endpoint, String> {
        let endpoint = Endpoint::from_shared(url.to_string()).map_err(|e| format!("bad peer address {url:?}: {e}"))?;
        let tls = self.tls.read().unwrap_or_else(|p| p.into_inner()).clone();
        match (&tls, url.starts_with("https://")) {
            (Some(tls), true) => endpoint.tls_config(tls.clone()).map_err(|e| format!("peer address {url:?}: {e}")),
            (None, false) => Ok(endpoint),
            // Never a plaintext channel from a TLS node (a downgrade), nor TLS without the CA.
            (Some(_), false) => Err(format!("peer address {url:?} is plaintext but this node runs TLS: use https://")),
            (None, true) => Err(format!("peer address {url:?} is https but this node runs without TLS")),
        }
    }

    pub fn client(&self, url: &str) -> Result<PeerGrpc, String> {
        let channel = {
            let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
            match channels.get(url) {
                Some(channel) => channel.clone(),
                None => {
                    let channel = self.endpoint(url)?.connect_timeout(CONNECT_TIMEOUT).tcp_nodelay(true).connect_lazy();
                    if channels.len() >= CHANNELS_MAX {
                        channels.clear();
                    }
                    channels.insert(url.to_string(), channel.clone());
                    channel
                }
            }
        };
        Ok(RaftPeerClient::with_interceptor(channel, self.auth.clone())
            .max_decoding_message_size(PEER_MESSAGE_BYTES_MAX)
            .max_encoding_message_size(PEER_MESSAGE_BYTES_MAX))
    }

    /// Who answers at `url`.
    pub async fn node_info(&self, url: &str, timeout: Duration) -> Result<NodeInfoResponse, String> {
        let mut client = self.client(url)?;
        match tokio::time::timeout(timeout, client.node_info(NodeInfoRequest {})).await {
            Ok(Ok(reply)) => Ok(reply.into_inner()),
            Ok(Err(status)) => Err(format!("{url}: {}", status.message())),
            Err(_) => Err(format!("{url}: no answer within {timeout:?}")),
        }
    }

    /// Asks the leader for a read index (the log id to apply before a linearizable read).
    pub async fn read_index(&self, leader_id: NodeId, leader: &NodeAddr, timeout: Duration) -> Result<LogId, String> {
        let mut client = self.client(&leader.peer)?;
        let request = message_to(codec::encode(&()), leader_id, leader.incarnation);
        let reply = match tokio::time::timeout(timeout, client.read_index(request)).await {
            Ok(Ok(reply)) => reply.into_inner(),
            Ok(Err(status)) => return Err(format!("read index from node {leader_id}: {}", status.message())),
            Err(_) => return Err(format!("read index from node {leader_id}: no answer within {timeout:?}")),
        };
        open_message("read index", &reply).map_err(|e| e.to_string())
    }
}

#[derive(Clone, Default)]
pub struct Network {
    pub channels: PeerChannels,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &NodeAddr) -> PeerClient {
        PeerClient { target, node: node.clone(), channels: self.channels.clone() }
    }
}

pub struct PeerClient {
    target: NodeId,
    node: NodeAddr,
    channels: PeerChannels,
}

fn unreachable(e: impl std::fmt::Display) -> Unreachable<TypeConfig> {
    Unreachable::from_string(e.to_string())
}

impl PeerClient {
    fn client(&self) -> Result<PeerGrpc, Unreachable<TypeConfig>> {
        self.channels.client(&self.node.peer).map_err(unreachable)
    }

    fn message(&self, payload: Vec<u8>) -> RaftMessage {
        message_to(payload, self.target, self.node.incarnation)
    }

    async fn call<Resp, F, Fut>(&self, what: &str, request: RaftMessage, ttl: Duration, send: F) -> Result<Resp, RPCError<TypeConfig>>
    where
        Resp: serde::de::DeserializeOwned,
        F: FnOnce(PeerGrpc, RaftMessage) -> Fut,
        Fut: Future<Output = Result<tonic::Response<RaftMessage>, tonic::Status>>,
    {
        let client = self.client()?;
        let reply = tokio::time::timeout(ttl, send(client, request))
            .await
            .map_err(|_| RPCError::Unreachable(unreachable(format!("{what} to node {} timed out after {ttl:?}", self.target))))?;
        // Every refusal (down, wrong node, stopped Raft) backs off rather than retrying hot.
        let reply = reply.map_err(|status| {
            RPCError::Unreachable(unreachable(format!("{what} to node {}: {:?} {}", self.target, status.code(), status.message())))
        })?;
        open_message(what, reply.get_ref()).map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }
}

/// Encodes `rpc`, keeping only as many entries as fit `APPEND_BYTES_MAX` (at least one).
/// Returns the message and the log id of the last entry cut off, if any were.
fn encode_append(mut rpc: AppendEntriesRequest<TypeConfig>) -> (Vec<u8>, Option<LogId>) {
    let mut bytes = 0usize;
    let mut keep = rpc.entries.len();
    for (i, entry) in rpc.entries.iter().enumerate() {
        // Size of our own plain data: cannot fail; if it did, count it as too large.
        bytes += postcard::experimental::serialized_size(entry).unwrap_or(APPEND_BYTES_MAX);
        if bytes > APPEND_BYTES_MAX && i > 0 {
            keep = i;
            break;
        }
    }
    let cut = keep < rpc.entries.len();
    rpc.entries.truncate(keep);
    let last_sent = if cut { rpc.entries.last().map(|e| e.log_id.clone()) } else { None };
    (codec::encode(&rpc), last_sent)
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = SnapshotFile;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let (payload, cut_after) = encode_append(rpc);
        let ttl = option.hard_ttl().max(APPEND_TIMEOUT_MIN + Duration::from_nanos(payload.len() as u64 * APPEND_NANOS_PER_BYTE));
        let reply: AppendEntriesResponse<TypeConfig> =
            self.call("append_entries", self.message(payload), ttl, |mut c, m| async move { c.append_entries(m).await }).await?;
        Ok(match (reply, cut_after) {
            // The follower took everything it was sent, which was a prefix of what was asked.
            (AppendEntriesResponse::Success, Some(last_sent)) => AppendEntriesResponse::PartialSuccess(Some(last_sent)),
            (reply, _) => reply,
        })
    }

    async fn vote(&mut self, rpc: VoteRequest<TypeConfig>, option: RPCOption) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let request = self.message(codec::encode(&rpc));
        self.call("vote", request, option.hard_ttl(), |mut c, m| async move { c.vote(m).await }).await
    }

    async fn transfer_leader(
        &mut self,
        rpc: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        let request = self.message(codec::encode(&rpc));
        self.call("transfer_leader", request, option.hard_ttl(), |mut c, m| async move { c.transfer_leader(m).await }).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let mut client = self.client()?;
        let path = snapshot.snapshot.path.clone();
        let signature = snapshot.meta.signature();
        let header = self.message(codec::encode(&(vote, snapshot.meta)));
        let (tx, rx) = tokio::sync::mpsc::channel::<SnapshotChunk>(4);
        // Streams the file and checks it against its own trailing checksum on the way: a snapshot
        // corrupted on this disk is never passed on as if it were good.
        let reader = tokio::spawn(async move {
            let mut file = tokio::fs::File::open(&path).await?;
            let len = file.metadata().await?.len();
            let mut total = crc32fast::Hasher::new();
            let mut own = crc32fast::Hasher::new();
            let mut sent: u64 = 0;
            let mut trailer = Vec::with_capacity(4);
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
                // The file's last 4 bytes are the CRC-32 of everything before them.
                let body_end = len.saturating_sub(4);
                let body_here = body_end.saturating_sub(sent).min(filled as u64) as usize;
                own.update(&data[..body_here]);
                trailer.extend_from_slice(&data[body_here..]);
                sent += filled as u64;
                let last = filled < SNAPSHOT_CHUNK_BYTES;
                if last {
                    if sent != len || trailer.len() != 4 || own.clone().finalize().to_le_bytes()[..] != trailer[..] {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("corrupted snapshot {}: checksum mismatch while sending", path.display()),
                        ));
                    }
                }
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
        let ttl = option.hard_ttl();
        let send = tokio::time::timeout(ttl, client.install_snapshot(tokio_stream::wrappers::ReceiverStream::new(rx)));
        let reply = tokio::select! {
            closed = cancel => {
                reader.abort();
                return Err(StreamingError::Closed(closed));
            }
            reply = send => reply,
        };
        match reader.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                // Our own snapshot is bad: a storage error stops this node's Raft (it must not
                // lead with a corrupted disk); the operator rebuilds it from its peers.
                tracing::error!(error = %e, "refusing to send a corrupted snapshot");
                return Err(StreamingError::StorageError(StorageError::from_io_error(
                    ErrorSubject::Snapshot(Some(signature)),
                    ErrorVerb::Read,
                    e,
                )));
            }
            Ok(Err(e)) => return Err(StreamingError::Network(NetworkError::new(&e))),
            Err(e) => return Err(StreamingError::Network(NetworkError::from_string(e))),
        }
        let reply = reply.map_err(|_| StreamingError::Unreachable(unreachable(format!("snapshot to node {} took over {ttl:?}", self.target))))?;
        let reply = reply.map_err(|status| {
            StreamingError::Unreachable(unreachable(format!("snapshot to node {}: {:?} {}", self.target, status.code(), status.message())))
        })?;
        open_message("snapshot response", reply.get_ref()).map_err(|e| StreamingError::Network(NetworkError::new(&e)))
    }
}

#[cfg(test)]
mod tests {
    use openraft::{EntryPayload, LogId as RaftLogId};

    use super::*;
    use ledger_core::types::{AssetInput, Command, Operation};

    fn entry(index: u64, code_bytes: usize) -> super::super::Entry {
        let command = Command {
            proposed_at_ns: index,
            operation: Operation::CreateAssets(vec![AssetInput { code: "A".repeat(code_bytes), scale: 2 }]),
        };
        let leader = openraft::impls::leader_id_adv::LeaderId { term: 1, node_id: 1 };
        super::super::Entry { log_id: RaftLogId::new(leader, index), payload: EntryPayload::Normal(command) }
    }

    fn request(entries: Vec<super::super::Entry>) -> AppendEntriesRequest<TypeConfig> {
        let leader = openraft::impls::leader_id_adv::LeaderId { term: 1, node_id: 1 };
        AppendEntriesRequest { vote: Vote::new_committed(1, 1), prev_log_id: Some(RaftLogId::new(leader, 0)), entries, leader_commit: None }
    }

    #[test]
    fn large_appends_are_cut_to_a_prefix_that_fits() {
        let (bytes, cut) = encode_append(request((1..=3).map(|i| entry(i, 10)).collect()));
        assert!(cut.is_none());
        let decoded: AppendEntriesRequest<TypeConfig> = codec::decode(&"test", &bytes).unwrap();
        assert_eq!(decoded.entries.len(), 3);

        // Three entries of 12 MiB: two fit 32 MiB, the third waits for the next message.
        let big = 12 << 20;
        let (bytes, cut) = encode_append(request((1..=3).map(|i| entry(i, big)).collect()));
        let decoded: AppendEntriesRequest<TypeConfig> = codec::decode(&"test", &bytes).unwrap();
        assert_eq!(decoded.entries.len(), 2);
        assert_eq!(cut.map(|id| id.index()), Some(2));
        assert!(bytes.len() < PEER_MESSAGE_BYTES_MAX);

        // One entry larger than the bound still goes (alone): the log must move.
        let (bytes, cut) = encode_append(request(vec![entry(1, 40 << 20), entry(2, 1)]));
        let decoded: AppendEntriesRequest<TypeConfig> = codec::decode(&"test", &bytes).unwrap();
        assert_eq!(decoded.entries.len(), 1);
        assert_eq!(cut.map(|id| id.index()), Some(1));
    }
}
