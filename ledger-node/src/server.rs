//! Start-up and shutdown of one replica: open storage, start Raft, serve gRPC.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ledger_proto::api::ledger_server::LedgerServer;
use ledger_proto::raft::raft_peer_server::RaftPeerServer;
use openraft::{BasicNode, SnapshotPolicy};

use crate::api::MESSAGE_BYTES_MAX;
use crate::api::grpc::LedgerService;
use crate::raft::log_store::LogStore;
use crate::raft::network::{Network, PEER_MESSAGE_BYTES_MAX};
use crate::raft::peer_service::PeerService;
use crate::raft::state_machine::StateMachine;
use crate::raft::{NodeId, Raft};
use crate::service::Node;
use crate::storage;

pub struct NodeConfig {
    pub node_id: NodeId,
    pub listen: SocketAddr,
    /// The address peers and redirected clients use to reach this node (`http://host:port`).
    pub advertise: String,
    pub data_dir: PathBuf,
    /// Form a single-member cluster on first start (dev mode).
    pub bootstrap_single: bool,
}

/// Raft timing for this class of machine: 2 cores, a disk whose fsync costs 0.2-2.4 ms, all
/// replicas possibly on one host. Elections are slow enough not to fire under a loaded apply,
/// fast enough for failover well under 3 s.
pub fn raft_config() -> anyhow::Result<openraft::Config> {
    let config = openraft::Config {
        cluster_name: "ledger".into(),
        heartbeat_interval: 100,
        election_timeout_min: 600,
        election_timeout_max: 1_200,
        max_payload_entries: 1_000,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(50_000),
        max_in_snapshot_log_to_keep: 1_000,
        purge_batch_size: 1_024,
        install_snapshot_timeout: 60_000,
        ..Default::default()
    };
    Ok(config.validate()?)
}

pub async fn run(config: NodeConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let db = storage::open(&config.data_dir.join("db")).context("opening the database")?;
    let snapshot_dir = config.data_dir.join("snapshots");
    let log_store = LogStore::new(db.clone())?;
    let state_machine = StateMachine::new(db.clone(), snapshot_dir.clone());
    let feed = state_machine.feed();
    let raft: Raft = Raft::new(config.node_id, Arc::new(raft_config()?), Network, log_store, state_machine)
        .await
        .context("starting raft")?;

    if config.bootstrap_single && !raft.is_initialized().await? {
        let members = BTreeMap::from([(config.node_id, BasicNode { addr: config.advertise.clone() })]);
        raft.initialize(members).await.context("initialising the single-node cluster")?;
        tracing::info!(node_id = config.node_id, "initialised a new single-node cluster");
    }
    let node = Node { id: config.node_id, raft: raft.clone(), db: db.clone(), feed };
    if config.bootstrap_single {
        raft.wait(Some(Duration::from_secs(30)))
            .current_leader(config.node_id, "single node elects itself")
            .await
            .context("waiting for the node to become leader")?;
    }
    let ticker = tokio::spawn(node.clone().run_expiry_ticker());

    let ledger = LedgerServer::new(LedgerService::new(node.clone()))
        .max_decoding_message_size(MESSAGE_BYTES_MAX)
        .max_encoding_message_size(MESSAGE_BYTES_MAX);
    let peer = RaftPeerServer::new(PeerService { raft: raft.clone(), snapshot_dir })
        .max_decoding_message_size(PEER_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(PEER_MESSAGE_BYTES_MAX);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    // tonic's own TCP_NODELAY setting does not apply to a listener we bind ourselves; without it,
    // small responses wait out delayed ACKs (~40 ms per read).
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tracing::info!(node_id = config.node_id, listen = %config.listen, data_dir = %config.data_dir.display(), "ledger node serving");
    println!("ledger-node {} serving on {} (data dir {})", config.node_id, config.listen, config.data_dir.display());
    tonic::transport::Server::builder()
        .add_service(ledger)
        .add_service(peer)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .context("serving gRPC")?;
    ticker.abort();
    tracing::info!("shutting down raft");
    raft.shutdown().await.map_err(|e| anyhow::anyhow!("raft shutdown: {e}"))?;
    Ok(())
}
