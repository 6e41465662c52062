//! Start-up and shutdown of one replica: check the data dir's identity, open storage, start Raft,
//! form the cluster when asked (once), serve gRPC (clients, operators and peers).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use ledger_proto::api::cluster_server::ClusterServer;
use ledger_proto::api::ledger_server::LedgerServer;
use ledger_proto::api::audit_server::AuditServer;
use ledger_proto::api::risk_server::RiskServer;
use ledger_proto::api::accounts_server::AccountsServer;
use ledger_proto::api::feed_server::FeedServer;
use ledger_proto::api::query_server::QueryServer;
use ledger_proto::api::wallet_server::WalletServer;
use ledger_proto::raft::raft_peer_server::RaftPeerServer;
use tokio::sync::{oneshot, watch};

use crate::api::MESSAGE_BYTES_MAX;
use crate::api::auth::{self, Auth, AuthLayer, TokenTable};
use crate::api::cluster::ClusterService;
use crate::api::grpc::LedgerService;
pub use crate::config::NodeConfig;
use crate::raft::log_store::LogStore;
use crate::raft::network::{Network, PEER_MESSAGE_BYTES_MAX, PeerChannels};
use crate::raft::peer_auth::ClusterSecret;
use crate::raft::peer_service::PeerService;
use crate::raft::state_machine::StateMachine;
use crate::raft::{NodeAddr, Raft};
use crate::service::identity::{self, IdsSeen};
use crate::service::{Node, ServiceError};
use crate::storage;

/// How often a bootstrapping node retries peers that do not answer yet.
const BOOTSTRAP_RETRY: Duration = Duration::from_secs(1);

/// Why `run` returned without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The caller's shutdown: the graceful steps ran, the database is flushed.
    Shutdown,
    /// Raft stopped on a full disk and space came back: start afresh (`storage_full`).
    StartAfresh,
}

pub async fn run(config: NodeConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<Stopped> {
    // Transport security first: a bad key or a plaintext public address refuses the start before
    // anything touches the data dir.
    let tls = load_transport_security(&config)?;
    let Started { node, me, incarnation, snapshot_dir, appended_bytes, secret } = start_raft(&config, tls.as_ref()).await?;
    let (raft, db) = (node.raft.clone(), node.db.clone());
    let services = ApiServices::new(&config, &node, &me, incarnation, &snapshot_dir, tls.is_some(), secret)?;

    // One signal stops every server: the caller's shutdown (after the graceful steps of
    // `shutdown`: health NOT_SERVING, leadership handed over), a failed bootstrap, or space back
    // after a full disk stopped Raft.
    let (stop_tx, stop_rx, draining_rx) = shutdown_signals(shutdown, raft.clone(), config.node_id);
    let afresh = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tasks = spawn_background_tasks(&node, appended_bytes, &config, (stop_tx.clone(), afresh.clone()));
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    // Health starts NOT_SERVING: the tracker flips it once Raft reports a leader.
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_service_status("", tonic_health::ServingStatus::NotServing).await;
    tokio::spawn(crate::api::health::track_raft(health_reporter, raft.clone(), draining_rx));
    let (reflection_v1, reflection_v1alpha) = crate::api::health::reflection(&advertised_services(&config))?;

    let auth = client_auth(&config, &node)?;
    if let Some(listen) = config.metrics_listen {
        crate::telemetry::install(listen)?;
        tokio::spawn(crate::telemetry::samplers::raft(raft.clone()));
        tokio::spawn(crate::telemetry::samplers::periodic(db.clone(), auth.clone(), snapshot_dir.clone()));
    }
    let (client_listener, peer_listener) = bind_listeners(&config, incarnation, tls.is_some()).await?;
    let failed_rx = spawn_bootstrap(&config, &node, &me, &stop_tx);

    type Serving = std::pin::Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>>;
    let (client_server, peer_server) = (
        tonic::transport::Server::builder().max_concurrent_streams(crate::api::STREAMS_PER_CONNECTION_MAX),
        tonic::transport::Server::builder().max_concurrent_streams(crate::api::STREAMS_PER_CONNECTION_MAX),
    );
    // TLS is accepted by `tls::reload` (not tonic's fixed configuration): certificates reload
    // on SIGHUP.
    let live_tls = match (&config.tls, &tls) {
        (Some(paths), Some(material)) => Some(live_tls(paths, material, &config, &node.peers)?),
        _ => None,
    };
    let forwarder = crate::api::forward::Forwarder::new(node.clone(), auth.tokens.is_some(), tls.as_ref().map(|t| t.forward_client()));
    let ApiServices { ledger, wallet, audit, risk, accounts, feed, query, cluster, peer } = services;
    let clients = client_server
        .layer(crate::telemetry::requests::RequestMetricsLayer)
        .layer(AuthLayer { auth: auth.clone() })
        .layer(crate::api::request_errors::RequestErrorsLayer)
        .layer(crate::api::forward::ForwardLayer { forwarder })
        .add_service(ledger)
        .add_service(cluster)
        .add_service(wallet)
        .add_service(audit)
        .add_service(risk)
        .add_service(accounts)
        .add_service(feed)
        .add_service(query)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    let plain = |l: tokio::net::TcpListener| tonic::transport::server::TcpIncoming::from(l).with_nodelay(Some(true));
    let (serve_clients, serve_peers): (Serving, Serving) = match (peer_listener, live_tls) {
        (None, None) => (
            Box::pin(clients.add_service(peer).serve_with_incoming_shutdown(plain(client_listener), stopped(stop_rx.clone()))),
            Box::pin(async { Ok(()) }),
        ),
        (Some(listener), None) => (
            Box::pin(clients.serve_with_incoming_shutdown(plain(client_listener), stopped(stop_rx.clone()))),
            Box::pin(
                peer_server
                    .layer(crate::api::request_errors::RequestErrorsLayer)
                    .add_service(peer)
                    .serve_with_incoming_shutdown(plain(listener), stopped(stop_rx.clone())),
            ),
        ),
        (Some(listener), Some((client_tls, peer_tls))) => (
            Box::pin(clients.serve_with_incoming_shutdown(
                crate::tls::reload::incoming(client_listener, client_tls),
                stopped(stop_rx.clone()),
            )),
            Box::pin(
                peer_server
                    .layer(crate::api::request_errors::RequestErrorsLayer)
                    .add_service(peer)
                    .serve_with_incoming_shutdown(crate::tls::reload::incoming(listener, peer_tls), stopped(stop_rx.clone())),
            ),
        ),
        (None, Some(_)) => bail!("TLS needs peer_listen (checked with the configuration)"),
    };
    let served = drain(serve_clients, serve_peers, stop_rx.clone()).await;
    if afresh.load(std::sync::atomic::Ordering::SeqCst) {
        return stop_for_a_fresh_start(tasks, raft).await;
    }
    finish(tasks, raft, db, served, failed_rx).await.map(|()| Stopped::Shutdown)
}

/// After a full disk: the tasks and Raft stop, and nothing is flushed (RocksDB refuses writes
/// until reopened; its WAL and the synced Raft log hold everything acknowledged).
async fn stop_for_a_fresh_start(tasks: [tokio::task::JoinHandle<()>; 5], raft: Raft) -> anyhow::Result<Stopped> {
    for task in tasks {
        task.abort();
    }
    if let Err(e) = raft.shutdown().await {
        tracing::warn!(error = %e, "raft shutdown after a full disk");
    }
    Ok(Stopped::StartAfresh)
}

/// Loads the TLS material, or refuses plaintext anywhere but loopback (and says it loudly).
fn load_transport_security(config: &NodeConfig) -> anyhow::Result<Option<crate::tls::TlsMaterial>> {
    let tls = config.tls.as_ref().map(|paths| crate::tls::load(paths, config.node_id, &config.cluster_name)).transpose()?;
    if tls.is_none() {
        crate::config::check_plaintext_on_loopback(config.listen, config.peer_listen)?;
        tracing::warn!(listen = %config.listen, "TLS is off: clients and peers talk plaintext (allowed on loopback only)");
        eprintln!("WARNING: TLS is off: ledger-node serves plaintext on {} (loopback only; for development)", config.listen);
    }
    Ok(tls)
}

/// What `start_raft` hands to the serving steps.
struct Started {
    node: Node,
    me: NodeAddr,
    incarnation: u64,
    snapshot_dir: std::path::PathBuf,
    appended_bytes: Arc<std::sync::atomic::AtomicU64>,
    secret: Option<Arc<ClusterSecret>>,
}

/// Checks the data dir's identity, opens storage, starts Raft and, in dev mode, waits until this
/// node leads its single-node cluster.
async fn start_raft(config: &NodeConfig, tls: Option<&crate::tls::TlsMaterial>) -> anyhow::Result<Started> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let identity_is_new = !identity::exists(&config.data_dir);
    let identity = identity::load_or_create(&config.data_dir, config.node_id, &config.cluster_name)?;
    let ids_seen = IdsSeen::load(&config.data_dir)?;
    let db = storage::db::open_with(&config.data_dir.join("db"), config.verify_tables_at_open).context("opening the database")?;
    identity::bind_database(&config.data_dir, &identity, identity_is_new, &db)?;
    let snapshot_dir = config.data_dir.join("snapshots");
    let log_store = LogStore::new(db.clone())?;
    let appended_bytes = log_store.appended_bytes();
    let state_machine = StateMachine::new(db.clone(), snapshot_dir.clone());
    let feed = state_machine.feed();
    let secret = load_cluster_secret(config)?;
    let network = Network { channels: PeerChannels::new(tls.map(|t| t.peer_client()), secret.clone()) };
    let peers = network.channels.clone();
    let raft: Raft = Raft::new(config.node_id, Arc::new(config.raft_config()?), network, log_store, state_machine)
        .await
        .context("starting raft")?;
    let me = NodeAddr { peer: config.peer_advertise.clone(), api: config.advertise.clone(), incarnation: identity.incarnation };
    let initialized = raft.is_initialized().await?;
    if config.bootstrap && initialized {
        bail!(
            "refusing --bootstrap: the data dir {} already holds Raft state (node {} of a cluster); a cluster is \
             initialised once: start this node without --bootstrap",
            config.data_dir.display(),
            config.node_id
        );
    }
    let node = Node {
        id: config.node_id,
        raft: raft.clone(),
        db,
        feed,
        peers,
        cluster_name: config.cluster_name.clone(),
        ids_seen: Arc::new(Mutex::new(ids_seen)),
        ledger_clock: Arc::default(),
        freshness: Arc::default(),
    };
    if config.dev_single {
        lead_single_node(config, &raft, &me, initialized).await?;
    }
    Ok(Started { node, me, incarnation: identity.incarnation, snapshot_dir, appended_bytes, secret })
}

/// Dev mode serves only once it leads: a client that connects can write at once.
async fn lead_single_node(config: &NodeConfig, raft: &Raft, me: &NodeAddr, initialized: bool) -> anyhow::Result<()> {
    if !initialized {
        raft.initialize(BTreeMap::from([(config.node_id, me.clone())]))
            .await
            .context("initialising the single-node cluster")?;
        tracing::info!(node_id = config.node_id, "initialised a new single-node cluster");
    }
    raft.wait(Some(Duration::from_secs(30)))
        .current_leader(config.node_id, "single node elects itself")
        .await
        .context("waiting for the node to become leader")?;
    Ok(())
}

/// Expiry ticker, clock sampler, member ids, log-size snapshots, the fatal-error watch (which
/// stops the servers through `stop` once a full disk has room again): aborted at shutdown.
fn spawn_background_tasks(
    node: &Node,
    appended_bytes: Arc<std::sync::atomic::AtomicU64>,
    config: &NodeConfig,
    (stop, afresh): (watch::Sender<bool>, Arc<std::sync::atomic::AtomicBool>),
) -> [tokio::task::JoinHandle<()>; 5] {
    [
        tokio::spawn(node.clone().run_expiry_ticker()),
        tokio::spawn(node.clone().run_clock_sampler()),
        tokio::spawn(node.clone().record_member_ids()),
        tokio::spawn(node.clone().run_log_size_snapshots(appended_bytes, config.raft.snapshot_log_bytes)),
        tokio::spawn(crate::storage_full::watch(node.raft.clone(), config.data_dir.clone(), stop, afresh)),
    ]
}

/// The gRPC services of the node, with their message size bounds.
struct ApiServices {
    ledger: LedgerServer<LedgerService>,
    wallet: WalletServer<crate::api::wallet::WalletService>,
    audit: AuditServer<crate::api::audit::AuditService>,
    risk: RiskServer<crate::api::risk::RiskService>,
    accounts: AccountsServer<crate::api::accounts::AccountsService>,
    feed: FeedServer<crate::api::feed::FeedService>,
    query: QueryServer<crate::api::query::QueryService>,
    cluster: ClusterServer<ClusterService>,
    peer: RaftPeerServer<PeerService>,
}

impl ApiServices {
    fn new(
        config: &NodeConfig,
        node: &Node,
        me: &NodeAddr,
        incarnation: u64,
        snapshot_dir: &std::path::Path,
        mutual_tls: bool,
        secret: Option<Arc<ClusterSecret>>,
    ) -> anyhow::Result<ApiServices> {
        let ledger = LedgerServer::new(LedgerService::new(node.clone()))
            .max_decoding_message_size(MESSAGE_BYTES_MAX)
            .max_encoding_message_size(MESSAGE_BYTES_MAX);
        let wallet = WalletServer::new(crate::api::wallet::WalletService::from_env(node.clone(), config.dev_single)?)
            .max_decoding_message_size(MESSAGE_BYTES_MAX)
            .max_encoding_message_size(MESSAGE_BYTES_MAX);
        let audit = AuditServer::new(crate::api::audit::AuditService::new(node.clone()))
            .max_decoding_message_size(MESSAGE_BYTES_MAX)
            .max_encoding_message_size(MESSAGE_BYTES_MAX);
        let risk = RiskServer::new(crate::api::risk::RiskService { node: node.clone() })
            .max_decoding_message_size(MESSAGE_BYTES_MAX)
            .max_encoding_message_size(MESSAGE_BYTES_MAX);
        let accounts = AccountsServer::new(crate::api::accounts::AccountsService { node: node.clone() })
            .max_decoding_message_size(MESSAGE_BYTES_MAX)
            .max_encoding_message_size(MESSAGE_BYTES_MAX);
        let feed = FeedServer::new(crate::api::feed::FeedService::new(node.clone()))
            .max_decoding_message_size(MESSAGE_BYTES_MAX)
            .max_encoding_message_size(MESSAGE_BYTES_MAX);
        let query = QueryServer::new(crate::api::query::QueryService { node: node.clone() })
            .max_decoding_message_size(MESSAGE_BYTES_MAX)
            .max_encoding_message_size(MESSAGE_BYTES_MAX);
        let cluster = ClusterServer::new(ClusterService { node: node.clone(), me: me.clone() })
            .max_decoding_message_size(MESSAGE_BYTES_MAX)
            .max_encoding_message_size(MESSAGE_BYTES_MAX);
        let peer = RaftPeerServer::new(PeerService {
            raft: node.raft.clone(),
            snapshot_dir: snapshot_dir.to_path_buf(),
            node_id: config.node_id,
            incarnation,
            peer_address: config.peer_advertise.clone(),
            api_address: config.advertise.clone(),
            cluster_name: config.cluster_name.clone(),
            ids_seen: {
                let seen = node.ids_seen.clone();
                Arc::new(move || seen.lock().unwrap_or_else(|p| p.into_inner()).ids().iter().copied().collect())
            },
            mutual_tls,
            secret,
        })
        .max_decoding_message_size(PEER_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(PEER_MESSAGE_BYTES_MAX);
        Ok(ApiServices { ledger, wallet, audit, risk, accounts, feed, query, cluster, peer })
    }
}

/// `(stop_tx, stop_rx, draining_rx)`: the caller's shutdown drains health, hands leadership
/// over, then stops every server.
fn shutdown_signals(
    shutdown: impl Future<Output = ()> + Send + 'static,
    raft: Raft,
    node_id: u64,
) -> (watch::Sender<bool>, watch::Receiver<bool>, watch::Receiver<bool>) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let (draining_tx, draining_rx) = watch::channel(false);
    let stop = stop_tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutdown 1/4: health reports NOT_SERVING");
        let _ = draining_tx.send(true);
        crate::shutdown::step_down(&raft, node_id).await;
        tracing::info!(drain_wait_ms = crate::shutdown::DRAIN_WAIT.as_millis() as u64, "shutdown 3/4: refusing new calls, draining");
        let _ = stop.send(true);
    });
    (stop_tx, stop_rx, draining_rx)
}

/// The services reflection lists (the peer service only where it shares the client port).
fn advertised_services(config: &NodeConfig) -> Vec<&'static str> {
    let mut advertised = vec![
        ledger_proto::api::ledger_server::SERVICE_NAME,
        ledger_proto::api::cluster_server::SERVICE_NAME,
        ledger_proto::api::wallet_server::SERVICE_NAME,
        ledger_proto::api::audit_server::SERVICE_NAME,
        ledger_proto::api::risk_server::SERVICE_NAME,
        ledger_proto::api::accounts_server::SERVICE_NAME,
        ledger_proto::api::feed_server::SERVICE_NAME,
        ledger_proto::api::query_server::SERVICE_NAME,
    ];
    if config.peer_listen.is_none() {
        advertised.push(ledger_proto::raft::raft_peer_server::SERVICE_NAME);
    }
    advertised
}

/// Client authentication: the tokens file (reloaded on SIGHUP, refusals journaled), or none
/// (said loudly).
fn client_auth(config: &NodeConfig, node: &Node) -> anyhow::Result<Arc<Auth>> {
    Ok(match &config.auth_tokens_file {
        Some(path) => {
            let auth = Auth::with_tokens(TokenTable::load(path)?);
            tokio::spawn(reload_tokens_on_sighup(auth.clone()));
            tokio::spawn(drain_denials(auth.clone(), node.clone()));
            auth
        }
        None => {
            let why = if config.dev_single { "insecure dev mode" } else { "no auth_tokens_file" };
            tracing::warn!(
                listen = %config.listen,
                "{why}: client calls are NOT authenticated; for tests and isolated networks only"
            );
            eprintln!("WARNING: {why}: ledger-node serves {} without authentication", config.listen);
            Auth::disabled()
        }
    })
}

/// Binds the client (and peer) ports and announces the node.
async fn bind_listeners(
    config: &NodeConfig,
    incarnation: u64,
    tls_on: bool,
) -> anyhow::Result<(tokio::net::TcpListener, Option<tokio::net::TcpListener>)> {
    let client_listener = bind(config.listen).await?;
    let peer_listener = match config.peer_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    tracing::info!(
        node_id = config.node_id,
        incarnation = format!("{:x}", incarnation),
        listen = %config.listen,
        peer_listen = ?config.peer_listen,
        advertise = %config.advertise,
        tls = tls_on,
        data_dir = %config.data_dir.display(),
        "ledger node serving"
    );
    println!("ledger-node {} serving on {} (data dir {})", config.node_id, config.listen, config.data_dir.display());
    Ok((client_listener, peer_listener))
}

/// With `--bootstrap`, forms the cluster in the background; a failure stops the servers and is
/// returned by `run`.
fn spawn_bootstrap(config: &NodeConfig, node: &Node, me: &NodeAddr, stop_tx: &watch::Sender<bool>) -> oneshot::Receiver<anyhow::Error> {
    let (failed_tx, failed_rx) = oneshot::channel::<anyhow::Error>();
    if config.bootstrap {
        let (node, me, others) = (node.clone(), me.clone(), config.peers.iter().map(|p| (p.node_id, p.peer_address.clone())).collect());
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            if let Err(e) = bootstrap(node, me, others).await {
                let _ = failed_tx.send(e);
                let _ = stop_tx.send(true);
            }
        });
    }
    failed_rx
}

/// After serving: stops the background tasks and Raft, flushes the database, and reports the
/// first failure.
async fn finish(
    tasks: [tokio::task::JoinHandle<()>; 5],
    raft: Raft,
    db: storage::db::Db,
    (clients_served, peers_served): (Result<(), tonic::transport::Error>, Result<(), tonic::transport::Error>),
    mut failed_rx: oneshot::Receiver<anyhow::Error>,
) -> anyhow::Result<()> {
    for task in tasks {
        task.abort();
    }
    tracing::info!("shutdown 4/4: stopping raft, flushing the database");
    raft.shutdown().await.map_err(|e| anyhow::anyhow!("raft shutdown: {e}"))?;
    tokio::task::spawn_blocking(move || crate::shutdown::flush_db(&db)).await?.context("flushing the database")?;
    clients_served.context("serving clients")?;
    peers_served.context("serving peers")?;
    if let Ok(e) = failed_rx.try_recv() {
        return Err(e.context("bootstrap failed"));
    }
    Ok(())
}

/// Serves until stopped, then lets in-flight calls finish for at most `shutdown::DRAIN_WAIT`.
async fn drain<F>(clients: F, peers: F, stop: watch::Receiver<bool>) -> (Result<(), tonic::transport::Error>, Result<(), tonic::transport::Error>)
where F: Future<Output = Result<(), tonic::transport::Error>> {
    let serving = async { tokio::join!(clients, peers) };
    tokio::pin!(serving);
    let deadline = async move {
        let mut stop = stop;
        let _ = stop.wait_for(|stop| *stop).await;
        tokio::time::sleep(crate::shutdown::DRAIN_WAIT).await;
    };
    tokio::select! {
        served = &mut serving => {
            tracing::info!("shutdown: every call finished");
            served
        }
        () = deadline => {
            tracing::warn!(drain_wait_ms = crate::shutdown::DRAIN_WAIT.as_millis() as u64, "shutdown: calls still open after the drain time; closing them");
            (Ok(()), Ok(()))
        }
    }
}

/// Re-reads the tokens file on SIGHUP: tokens rotate without a restart. A bad file is refused and
/// the tokens in force stay.
async fn reload_tokens_on_sighup(auth: Arc<Auth>) {
    let Some(tokens) = auth.tokens.clone() else { return };
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::error!("cannot listen for SIGHUP: tokens reload only with a restart");
        return;
    };
    while hup.recv().await.is_some() {
        match tokens.reload() {
            Ok(count) => tracing::info!(tokens = count, "tokens file reloaded"),
            Err(e) => tracing::error!(error = %format!("{e:#}"), "tokens file reload refused; the previous tokens stay in force"),
        }
    }
}

/// The cluster secret peers authenticate with when TLS is off (`raft::peer_auth`), reloaded on
/// SIGHUP. Without TLS and without a secret, the peer port checks no sender: `config` allows
/// that only on a loopback node without client authentication, and the node says so.
fn load_cluster_secret(config: &NodeConfig) -> anyhow::Result<Option<Arc<ClusterSecret>>> {
    let Some(path) = &config.cluster_secret_file else {
        if config.tls.is_none() {
            tracing::warn!("no TLS and no cluster_secret_file: the peer port does not authenticate peers (loopback dev/test only)");
        }
        return Ok(None);
    };
    let secret = Arc::new(ClusterSecret::load(path)?);
    let reloaded = secret.clone();
    tokio::spawn(on_sighup("cluster secret", move || reloaded.reload().map(|()| 1)));
    Ok(Some(secret))
}

/// Runs `reload` on every SIGHUP, logging the outcome; a failed reload keeps what is in force.
async fn on_sighup(what: &'static str, reload: impl Fn() -> anyhow::Result<usize> + Send + 'static) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::error!(what, "cannot listen for SIGHUP: reload only with a restart");
        return;
    };
    while hup.recv().await.is_some() {
        match reload() {
            Ok(count) => tracing::info!(what, count, "reloaded on SIGHUP"),
            Err(e) => tracing::error!(what, error = %format!("{e:#}"), "reload refused; what was in force stays"),
        }
    }
}

/// Journals refused calls once a second (see `auth::journal_denied`).
async fn drain_denials(auth: Arc<Auth>, node: crate::service::Node) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        auth::journal_denied(&auth.denials, &node).await;
    }
}

/// Binds `addr`. Accepted connections get TCP_NODELAY (tonic's own setting does not apply to a
/// listener we bind ourselves; without it, small responses wait out delayed ACKs, ~40 ms per
/// read): `TcpIncoming::with_nodelay` for plaintext, `tls::reload::incoming` for TLS.
async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))
}

type LiveTls = (Arc<crate::tls::reload::LiveServerTls>, Arc<crate::tls::reload::LiveServerTls>);

/// The client and peer ports' TLS, reloaded on SIGHUP: the files are read and checked again
/// (`tls::load`), and only a complete, valid set replaces what is served (new handshakes and new
/// outgoing peer connections); a bad set is refused and logged, the old one stays.
fn live_tls(paths: &crate::tls::TlsPaths, material: &crate::tls::TlsMaterial, config: &NodeConfig, peers: &crate::raft::network::PeerChannels) -> anyhow::Result<LiveTls> {
    use crate::tls::reload::{LiveServerTls, Port};
    let client = LiveServerTls::new(material, Port::Client).context("TLS on the client port")?;
    let peer = LiveServerTls::new(material, Port::Peer).context("mutual TLS on the peer port")?;
    let (paths, node_id, cluster_name) = (paths.clone(), config.node_id, config.cluster_name.clone());
    let (client_live, peer_live, peers) = (client.clone(), peer.clone(), peers.clone());
    tokio::spawn(on_sighup("TLS certificates", move || {
        let material = crate::tls::load(&paths, node_id, &cluster_name)?;
        client_live.replace(&material)?;
        peer_live.replace(&material)?;
        peers.set_tls(material.peer_client());
        Ok(1)
    }));
    Ok((client, peer))
}

/// Forms the cluster of this node and `others`, retrying while some peer does not answer yet
/// (peers may start in any order). Any other refusal ends the node: it must not run half-formed.
async fn bootstrap(node: Node, me: NodeAddr, others: Vec<(u64, String)>) -> anyhow::Result<()> {
    let mut waited = 0u64;
    loop {
        match node.init_cluster(me.clone(), &others).await {
            Ok(_) => {
                tracing::info!(members = others.len() + 1, "bootstrapped a new cluster");
                return Ok(());
            }
            Err(ServiceError::Unavailable(why)) => {
                if waited % 10 == 0 {
                    tracing::info!(reason = %why, "bootstrap: waiting for peers");
                }
                waited += 1;
                tokio::time::sleep(BOOTSTRAP_RETRY).await;
            }
            Err(e) => return Err(anyhow::anyhow!("{e}")),
        }
    }
}
