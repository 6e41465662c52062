//! The configuration of `ledger-node start`: a TOML file (`--config`), every key of which can
//! also be set by an environment variable and by a flag. A flag wins over the environment, which
//! wins over the file, which wins over the default.
//!
//! ```toml
//! node_id = 1                            # LEDGER_NODE_ID, --node-id; required, never reused
//! listen = "127.0.0.1:7070"              # clients (and peers, unless peer_listen is set)
//! peer_listen = "127.0.0.1:7080"         # optional: a separate port for Raft peers
//! advertise = "http://127.0.0.1:7070"    # how clients reach this node; default http://<listen>
//! peer_advertise = "http://127.0.0.1:7080"  # how peers reach it; default http://<peer_listen>
//! data_dir = "./data/node1"
//! cluster_name = "ledger"                # nodes of another cluster are refused when joining
//! bootstrap = false                      # form a new cluster on the first start (once)
//! peers = ["2=http://127.0.0.1:7071", "3=http://127.0.0.1:7072"]  # initial members, with bootstrap
//! verify_tables_at_open = true           # read every SST block once at start (about 1.3 s per
//!                                        # million transfers); a corrupted block refuses the start
//! metrics_listen = "127.0.0.1:9100"     # optional: Prometheus metrics over HTTP (off by default)
//! auth_tokens_file = "/etc/ledger/tokens.toml"  # optional: bearer tokens and roles (mode 600);
//!                                        # needs peer_listen (docs/operations.md, Authentication)
//! tls_cert = "/etc/ledger/node-1.pem"    # LEDGER_TLS_CERT: this node's certificate (TLS on both
//!                                        # ports, and its client certificate towards peers); it
//!                                        # names the node with the URI SAN ledger://<cluster_name>/node/<id>
//! tls_key = "/etc/ledger/node-1-key.pem" # LEDGER_TLS_KEY: its private key, mode 600 (else refused)
//! tls_ca = "/etc/ledger/ca.pem"          # LEDGER_TLS_CA: the cluster CA; peers must present a
//!                                        # certificate from it (mutual TLS on peer_listen)
//! tls_client_ca = "/etc/ledger/clients-ca.pem"  # optional: CA of client certificates, mapped to
//!                                        # principals by the tokens file's [[certificate]] entries
//! cluster_secret_file = "/etc/ledger/cluster-secret"  # TLS off: the secret every peer call carries
//!                                        # (mode 600; required with auth_tokens_file and TLS off)
//! allow_unauthenticated_clients = false  # true: serve a non-loopback listen address without
//!                                        # client authentication (isolated test networks only)
//!
//! TLS: with tls_cert, tls_key and tls_ca set, clients connect over TLS (https:// URLs, the
//! default advertise addresses) and peers over mutual TLS on their own port (peer_listen is then
//! required). Without them the node serves plaintext, which it allows only when every listen
//! address is loopback, and says so at start-up. `ledger-node certs` makes the files.
//!
//! Authentication defaults (docs/operations.md, "Authentication defaults"): a client `listen`
//! address beyond loopback needs client authentication (auth_tokens_file) unless
//! allow_unauthenticated_clients says otherwise; the peer port authenticates peers by mutual TLS,
//! or without TLS by the cluster secret, which auth_tokens_file makes required (without either,
//! the node is a loopback dev/test node where every local process is admin anyway).
//!
//! [raft]                                 # tuning; defaults in `RaftTuning::default` with reasons
//! heartbeat_ms = 100
//! election_timeout_min_ms = 400
//! election_timeout_max_ms = 800
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;

use crate::raft::NodeId;
pub use crate::tls::TlsPaths;

/// The flags of `ledger-node start`; each may also come from the environment or the file.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StartArgs {
    /// This node's id: a positive integer unique in the cluster's whole history.
    #[arg(long, env = "LEDGER_NODE_ID")]
    pub node_id: Option<NodeId>,
    /// Address to serve clients on (and peers, unless --peer-listen is given). Default 127.0.0.1:7070.
    #[arg(long, env = "LEDGER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Separate address to serve Raft peers on. Default: the client address serves peers too.
    #[arg(long, env = "LEDGER_PEER_LISTEN")]
    pub peer_listen: Option<SocketAddr>,
    /// URL clients use to reach this node (sent in leader redirects). Default http://<listen>.
    #[arg(long, env = "LEDGER_ADVERTISE")]
    pub advertise: Option<String>,
    /// URL peers use to reach this node. Default http://<peer_listen>, or --advertise when peers
    /// share the client port.
    #[arg(long, env = "LEDGER_PEER_ADVERTISE")]
    pub peer_advertise: Option<String>,
    /// Where the database, snapshots and the node's identity live. Default ./data.
    #[arg(long, env = "LEDGER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Name of the cluster; a node of another cluster is refused when joining. Default "ledger".
    #[arg(long, env = "LEDGER_CLUSTER_NAME")]
    pub cluster_name: Option<String>,
    /// On the first start of the first node only: form a new cluster of this node and --peer.
    /// Refused when the data dir already holds Raft state.
    #[arg(long, env = "LEDGER_BOOTSTRAP", num_args = 0..=1, default_missing_value = "true")]
    pub bootstrap: Option<bool>,
    /// An initial member for --bootstrap, as ID=PEER_URL; repeat, or comma-separate in the env.
    #[arg(long = "peer", env = "LEDGER_PEERS", value_delimiter = ',')]
    pub peers: Option<Vec<String>>,
    /// Tokens file (TOML, mode 600): `[[token]]` entries of principal, role and the SHA-256 of the
    /// token (`ledger-node hash-token`). With it every client call needs `authorization: Bearer`
    /// and peers must be served on --peer-listen. Without it the node serves without authentication.
    #[arg(long, env = "LEDGER_AUTH_TOKENS_FILE")]
    pub auth_tokens_file: Option<PathBuf>,
    /// At start, read every table block once with checksums verified and refuse to start on a
    /// corrupted one (about 1.3 s per million transfers). Default true.
    #[arg(long, env = "LEDGER_VERIFY_TABLES_AT_OPEN", num_args = 0..=1, default_missing_value = "true")]
    pub verify_tables_at_open: Option<bool>,
    /// Serve Prometheus metrics over plain HTTP on this address (`GET /metrics`; docs/operations.md
    /// lists them). Off by default; unauthenticated: bind it to a private interface.
    #[arg(long, env = "LEDGER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// This node's certificate (PEM), signed by --tls-ca and naming the node with the URI SAN
    /// ledger://<cluster_name>/node/<node_id>. With --tls-key and --tls-ca: TLS on.
    #[arg(long, env = "LEDGER_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM, mode 600: a key others may read is refused).
    #[arg(long, env = "LEDGER_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// The cluster CA (PEM): peers must present a certificate it signed (mutual TLS).
    #[arg(long, env = "LEDGER_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// CA of client certificates (PEM); the tokens file maps their names to principals.
    #[arg(long, env = "LEDGER_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// TLS off: a file (mode 600) with the cluster secret, one line of 32..=1024 visible ASCII
    /// bytes, the same on every node. Every peer call carries it and the receiver checks it.
    /// Required with --auth-tokens-file when TLS is off; refused with TLS (certificates then).
    #[arg(long, env = "LEDGER_CLUSTER_SECRET_FILE")]
    pub cluster_secret_file: Option<PathBuf>,
    /// Serve a non-loopback listen address without client authentication (no tokens file).
    /// Refused by default: anyone who reaches the port would be admin. For isolated test
    /// networks only (the jepsen harness's namespaces).
    #[arg(long, env = "LEDGER_ALLOW_UNAUTHENTICATED_CLIENTS", num_args = 0..=1, default_missing_value = "true")]
    pub allow_unauthenticated_clients: Option<bool>,
    #[command(flatten)]
    #[serde(default)]
    pub raft: RaftArgs,
}

/// Raft tuning keys (`[raft]` in the file).
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftArgs {
    /// Leader heartbeat interval. Default 100.
    #[arg(long = "raft-heartbeat-ms", env = "LEDGER_RAFT_HEARTBEAT_MS")]
    pub heartbeat_ms: Option<u64>,
    /// A follower that hears no leader for a random time in [min, max] starts an election.
    /// Default 400..800.
    #[arg(long = "raft-election-timeout-min-ms", env = "LEDGER_RAFT_ELECTION_TIMEOUT_MIN_MS")]
    pub election_timeout_min_ms: Option<u64>,
    #[arg(long = "raft-election-timeout-max-ms", env = "LEDGER_RAFT_ELECTION_TIMEOUT_MAX_MS")]
    pub election_timeout_max_ms: Option<u64>,
    /// Build a snapshot after this many log entries since the last one.
    #[arg(long = "raft-snapshot-entries", env = "LEDGER_RAFT_SNAPSHOT_ENTRIES")]
    pub snapshot_entries: Option<u64>,
    /// Build a snapshot after this many bytes of log since the last one (whichever comes first).
    #[arg(long = "raft-snapshot-log-bytes", env = "LEDGER_RAFT_SNAPSHOT_LOG_BYTES")]
    pub snapshot_log_bytes: Option<u64>,
    /// Log entries kept behind a snapshot, so a follower a little behind needs no snapshot.
    #[arg(long = "raft-keep-entries-after-snapshot", env = "LEDGER_RAFT_KEEP_ENTRIES_AFTER_SNAPSHOT")]
    pub keep_entries_after_snapshot: Option<u64>,
    /// Entries per AppendEntries message at most (messages are also cut at 32 MiB).
    #[arg(long = "raft-max-payload-entries", env = "LEDGER_RAFT_MAX_PAYLOAD_ENTRIES")]
    pub max_payload_entries: Option<u64>,
    /// A follower further behind than this many entries is sent a snapshot instead of entries.
    #[arg(long = "raft-replication-lag-threshold", env = "LEDGER_RAFT_REPLICATION_LAG_THRESHOLD")]
    pub replication_lag_threshold: Option<u64>,
    /// Time to send and install one snapshot before the leader gives up and retries.
    #[arg(long = "raft-snapshot-timeout-ms", env = "LEDGER_RAFT_SNAPSHOT_TIMEOUT_MS")]
    pub snapshot_timeout_ms: Option<u64>,
}

/// Raft tuning with every value resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftTuning {
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub snapshot_entries: u64,
    pub snapshot_log_bytes: u64,
    pub keep_entries_after_snapshot: u64,
    pub max_payload_entries: u64,
    pub replication_lag_threshold: u64,
    pub snapshot_timeout_ms: u64,
}

/// Defaults for this class of machine: 2 cores, fsync 0.2-2.4 ms, possibly every replica on one
/// host (README "Configuration" repeats the reasons).
impl Default for RaftTuning {
    fn default() -> RaftTuning {
        RaftTuning {
            // A follower starts an election only after 4-8 missed heartbeats, so a loaded host
            // (apply batches of 40+ ms, fsyncs stalled by compaction) does not cause spurious
            // elections.
            heartbeat_ms: 100,
            // Failover = a follower's timeout (0.4-0.8 s, randomised so candidates rarely split
            // the vote) + the leader lease the other voters honour (openraft: the max timeout,
            // 0.8 s; a candidate refused because of it tries again after another timeout) + one
            // vote round and the new leader's first commit: measured 0.9-2 s on loopback, within
            // the 3 s target. 0.6-1.2 s measured 1.8-3.5 s: too slow.
            election_timeout_min_ms: 400,
            election_timeout_max_ms: 800,
            // A snapshot is a full copy of the state: build one only after enough log that the
            // copy is worth it, and before the log grows large on disk. With 1-transfer entries
            // 100,000 entries are ~30 MiB; with group-committed entries (up to 8,190 transfers
            // each) the 1 GiB bound comes first.
            snapshot_entries: 100_000,
            snapshot_log_bytes: 1 << 30,
            // Entries can be large (group commit): keep few behind a snapshot.
            keep_entries_after_snapshot: 500,
            // Entries are often large; messages are cut at 32 MiB anyway.
            max_payload_entries: 1_000,
            // Above the kept entries: a follower that lost less than the snapshot interval
            // catches up from the log; one further behind gets the snapshot.
            replication_lag_threshold: 150_000,
            // Shipping and installing a snapshot of ~10^6 transfers takes tens of seconds here.
            snapshot_timeout_ms: 600_000,
        }
    }
}

impl RaftArgs {
    fn or(self, other: RaftArgs) -> RaftArgs {
        RaftArgs {
            heartbeat_ms: self.heartbeat_ms.or(other.heartbeat_ms),
            election_timeout_min_ms: self.election_timeout_min_ms.or(other.election_timeout_min_ms),
            election_timeout_max_ms: self.election_timeout_max_ms.or(other.election_timeout_max_ms),
            snapshot_entries: self.snapshot_entries.or(other.snapshot_entries),
            snapshot_log_bytes: self.snapshot_log_bytes.or(other.snapshot_log_bytes),
            keep_entries_after_snapshot: self.keep_entries_after_snapshot.or(other.keep_entries_after_snapshot),
            max_payload_entries: self.max_payload_entries.or(other.max_payload_entries),
            replication_lag_threshold: self.replication_lag_threshold.or(other.replication_lag_threshold),
            snapshot_timeout_ms: self.snapshot_timeout_ms.or(other.snapshot_timeout_ms),
        }
    }

    fn resolve(self) -> RaftTuning {
        let d = RaftTuning::default();
        RaftTuning {
            heartbeat_ms: self.heartbeat_ms.unwrap_or(d.heartbeat_ms),
            election_timeout_min_ms: self.election_timeout_min_ms.unwrap_or(d.election_timeout_min_ms),
            election_timeout_max_ms: self.election_timeout_max_ms.unwrap_or(d.election_timeout_max_ms),
            snapshot_entries: self.snapshot_entries.unwrap_or(d.snapshot_entries),
            snapshot_log_bytes: self.snapshot_log_bytes.unwrap_or(d.snapshot_log_bytes),
            keep_entries_after_snapshot: self.keep_entries_after_snapshot.unwrap_or(d.keep_entries_after_snapshot),
            max_payload_entries: self.max_payload_entries.unwrap_or(d.max_payload_entries),
            replication_lag_threshold: self.replication_lag_threshold.unwrap_or(d.replication_lag_threshold),
            snapshot_timeout_ms: self.snapshot_timeout_ms.unwrap_or(d.snapshot_timeout_ms),
        }
    }
}

/// An initial member given to `--bootstrap`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    pub node_id: NodeId,
    pub peer_address: String,
}

impl std::str::FromStr for PeerSpec {
    type Err = anyhow::Error;
    fn from_str(text: &str) -> anyhow::Result<PeerSpec> {
        let (id, url) = text.trim().split_once('=').with_context(|| format!("peer {text:?}: expected ID=PEER_URL"))?;
        let node_id: NodeId = id.trim().parse().with_context(|| format!("peer {text:?}: the id is not a number"))?;
        if node_id == 0 {
            bail!("peer {text:?}: node ids start at 1");
        }
        Ok(PeerSpec { node_id, peer_address: check_url(url.trim())? })
    }
}

/// Everything `server::run` needs, resolved and checked.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub node_id: NodeId,
    pub listen: SocketAddr,
    /// `None`: peers are served on `listen`.
    pub peer_listen: Option<SocketAddr>,
    /// URL clients (and redirected clients) use.
    pub advertise: String,
    /// URL peers use.
    pub peer_advertise: String,
    pub data_dir: PathBuf,
    pub cluster_name: String,
    pub bootstrap: bool,
    pub peers: Vec<PeerSpec>,
    pub raft: RaftTuning,
    /// `Some`: clients authenticate with bearer tokens listed in this file (api/auth.rs).
    pub auth_tokens_file: Option<PathBuf>,
    /// `Some`: Prometheus metrics are served over HTTP on this address (`telemetry`).
    pub metrics_listen: Option<SocketAddr>,
    /// Dev mode: form a single-member cluster when the data dir is new, and serve clients only
    /// once this node leads it.
    pub dev_single: bool,
    /// Verify every table block's checksum when the database opens (`storage::db::open_with`).
    pub verify_tables_at_open: bool,
    /// `Some`: TLS for clients, mutual TLS between peers (`tls`). `None`: plaintext, loopback only.
    pub tls: Option<TlsPaths>,
    /// `Some` (TLS off only): peers authenticate with this shared secret (`raft::peer_auth`).
    pub cluster_secret_file: Option<PathBuf>,
}

/// Accepts `http://host:port` or `https://host:port` (a trailing slash is dropped); refuses
/// anything else.
pub fn check_url(url: &str) -> anyhow::Result<String> {
    let url = url.trim().trim_end_matches('/');
    let Some(rest) = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")) else {
        bail!("address {url:?} must start with http:// or https://")
    };
    let (host, port) = rest.rsplit_once(':').with_context(|| format!("address {url:?} has no port"))?;
    if host.is_empty() || port.parse::<u16>().is_err() || rest.contains('/') {
        bail!("address {url:?} must be http(s)://HOST:PORT");
    }
    Ok(url.to_string())
}

/// The scheme nodes of this configuration speak.
pub fn scheme(tls: bool) -> &'static str {
    if tls { "https" } else { "http" }
}

/// Refuses a URL whose scheme is not the one this node speaks (a plaintext peer of a TLS
/// cluster would be a downgrade; an https one of a plaintext node could never connect).
pub fn check_scheme(url: &str, tls: bool, key: &str) -> anyhow::Result<()> {
    let want = scheme(tls);
    if !url.starts_with(&format!("{want}://")) {
        let why = if tls { "TLS is on (tls_cert)" } else { "TLS is off (no tls_cert)" };
        bail!("{key} {url:?} must start with {want}://: {why}");
    }
    Ok(())
}

/// Plaintext is allowed only when every address the node listens on is loopback (metrics, plain
/// HTTP by design, excepted: see `metrics_listen`).
pub fn check_plaintext_on_loopback(listen: SocketAddr, peer_listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let addresses = std::iter::once(("listen", listen)).chain(peer_listen.map(|p| ("peer_listen", p)));
    for (key, addr) in addresses {
        if !addr.ip().is_loopback() {
            bail!(
                "{key} {addr} is not a loopback address and TLS is off: plaintext is allowed only on loopback; \
                 set tls_cert, tls_key and tls_ca (`ledger-node certs` makes them), or listen on 127.0.0.1"
            );
        }
    }
    Ok(())
}

fn default_url(addr: SocketAddr, key: &str, tls: bool) -> anyhow::Result<String> {
    if addr.ip().is_unspecified() {
        bail!("{key} is not set and the listen address {addr} is not one peers or clients can dial: set {key}");
    }
    Ok(format!("{}://{addr}", scheme(tls)))
}

impl StartArgs {
    /// Merges flags/env (`self`) over the file named by `config` (if any) and resolves defaults.
    pub fn resolve(self, config: Option<&Path>) -> anyhow::Result<NodeConfig> {
        let file = StartArgs::read_file(config)?;
        let node_id = self.node_id.or(file.node_id).context("node_id is required (--node-id, LEDGER_NODE_ID or the file)")?;
        if node_id == 0 {
            bail!("node_id must be at least 1");
        }
        let listen = self.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7070)));
        let peer_listen = self.peer_listen.or(file.peer_listen).filter(|p| *p != listen);
        let tls = tls_paths(
            self.tls_cert.or(file.tls_cert),
            self.tls_key.or(file.tls_key),
            self.tls_ca.or(file.tls_ca),
            self.tls_client_ca.or(file.tls_client_ca),
        )?;
        let tls_on = tls.is_some();
        check_listeners(tls_on, listen, peer_listen)?;
        let (advertise, peer_advertise) =
            advertised_urls(self.advertise.or(file.advertise), self.peer_advertise.or(file.peer_advertise), listen, peer_listen, tls_on)?;
        let peers = peer_specs(&self.peers.or(file.peers).unwrap_or_default(), node_id, tls_on)?;
        let bootstrap = self.bootstrap.or(file.bootstrap).unwrap_or(false);
        let raft = self.raft.or(file.raft).resolve();
        check_tuning(&raft)?;
        let cluster_name = self.cluster_name.or(file.cluster_name).unwrap_or_else(|| "ledger".into());
        if cluster_name.is_empty() || cluster_name.len() > 64 {
            bail!("cluster_name must be 1..=64 bytes");
        }
        let auth_tokens_file = self.auth_tokens_file.or(file.auth_tokens_file);
        check_tokens_file(tls.as_ref(), auth_tokens_file.is_some(), peer_listen)?;
        let cluster_secret_file = self.cluster_secret_file.or(file.cluster_secret_file);
        let allow_unauthenticated = self.allow_unauthenticated_clients.or(file.allow_unauthenticated_clients).unwrap_or(false);
        check_authentication(listen, tls_on, auth_tokens_file.is_some(), cluster_secret_file.is_some(), allow_unauthenticated)?;
        let metrics_listen = self.metrics_listen.or(file.metrics_listen);
        check_metrics_listen(metrics_listen, listen, peer_listen)?;
        Ok(NodeConfig {
            node_id,
            listen,
            peer_listen,
            advertise,
            peer_advertise,
            data_dir: self.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("./data")),
            cluster_name,
            bootstrap,
            peers,
            raft,
            auth_tokens_file,
            metrics_listen,
            dev_single: false,
            verify_tables_at_open: self.verify_tables_at_open.or(file.verify_tables_at_open).unwrap_or(true),
            tls,
            cluster_secret_file,
        })
    }
}

impl StartArgs {
    /// The configuration file's settings (all unset without a file).
    fn read_file(config: Option<&Path>) -> anyhow::Result<StartArgs> {
        Ok(match config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                toml::from_str::<StartArgs>(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => StartArgs::default(),
        })
    }
}

/// TLS on (all three of cert, key and CA) or off (none of them, and no client CA).
fn tls_paths(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca: Option<PathBuf>,
    client_ca: Option<PathBuf>,
) -> anyhow::Result<Option<TlsPaths>> {
    Ok(match (cert, key, ca, client_ca) {
        (Some(cert), Some(key), Some(ca), client_ca) => Some(TlsPaths { cert, key, ca, client_ca }),
        (None, None, None, None) => None,
        (None, None, None, Some(_)) => bail!("tls_client_ca is set but TLS is off: set tls_cert, tls_key and tls_ca too"),
        _ => bail!("tls_cert, tls_key and tls_ca go together: set all three (TLS on) or none (plaintext, loopback only)"),
    })
}

/// TLS needs a separate peer port; plaintext only on loopback.
fn check_listeners(tls_on: bool, listen: SocketAddr, peer_listen: Option<SocketAddr>) -> anyhow::Result<()> {
    match (tls_on, peer_listen) {
        (true, None) => bail!(
            "TLS is on but peer_listen is not set: peers use mutual TLS with the cluster CA on their own port \
             (set peer_listen)"
        ),
        (false, _) => check_plaintext_on_loopback(listen, peer_listen),
        _ => Ok(()),
    }
}

/// The client and peer URLs other nodes and clients dial, in the scheme this node speaks.
fn advertised_urls(
    advertise: Option<String>,
    peer_advertise: Option<String>,
    listen: SocketAddr,
    peer_listen: Option<SocketAddr>,
    tls_on: bool,
) -> anyhow::Result<(String, String)> {
    let advertise = match advertise {
        Some(url) => check_url(&url)?,
        None => default_url(listen, "advertise", tls_on)?,
    };
    let peer_advertise = match (peer_advertise, peer_listen) {
        (Some(url), _) => check_url(&url)?,
        (None, Some(peer)) => default_url(peer, "peer_advertise", tls_on)?,
        (None, None) => advertise.clone(),
    };
    check_scheme(&advertise, tls_on, "advertise")?;
    check_scheme(&peer_advertise, tls_on, "peer_advertise")?;
    Ok((advertise, peer_advertise))
}

/// The `--peer` entries (blank ones skipped): ids distinct from each other and from this node's,
/// URLs in this node's scheme.
fn peer_specs(peers: &[String], node_id: NodeId, tls_on: bool) -> anyhow::Result<Vec<PeerSpec>> {
    let peers = peers
        .iter()
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.parse())
        .collect::<anyhow::Result<Vec<PeerSpec>>>()?;
    let mut ids: Vec<NodeId> = peers.iter().map(|p| p.node_id).collect();
    ids.push(node_id);
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        bail!("peers and node_id name the same id twice");
    }
    for peer in &peers {
        check_scheme(&peer.peer_address, tls_on, &format!("peer {}", peer.node_id))?;
    }
    Ok(peers)
}

/// Client certificates authenticate through the tokens file; authentication needs the peers
/// on their own port.
fn check_tokens_file(tls: Option<&TlsPaths>, tokens_file: bool, peer_listen: Option<SocketAddr>) -> anyhow::Result<()> {
    if tls.is_some_and(|t| t.client_ca.is_some()) && !tokens_file {
        bail!(
            "tls_client_ca is set but auth_tokens_file is not: client certificates authenticate through the \
             tokens file's [[certificate]] entries (principal and role per certificate name)"
        );
    }
    if tokens_file && peer_listen.is_none() {
        bail!(
            "auth_tokens_file is set but peer_listen is not: with authentication on, Raft peers must be \
             served on their own port (set peer_listen)"
        );
    }
    Ok(())
}

fn check_tuning(t: &RaftTuning) -> anyhow::Result<()> {
    if t.heartbeat_ms == 0 || t.election_timeout_min_ms < 3 * t.heartbeat_ms {
        bail!("raft: election_timeout_min_ms must be at least 3 heartbeats (heartbeat_ms > 0)");
    }
    if t.election_timeout_max_ms <= t.election_timeout_min_ms {
        bail!("raft: election_timeout_max_ms must be above election_timeout_min_ms");
    }
    if t.snapshot_entries == 0 || t.snapshot_log_bytes == 0 || t.max_payload_entries == 0 || t.snapshot_timeout_ms == 0 {
        bail!("raft: snapshot_entries, snapshot_log_bytes, max_payload_entries and snapshot_timeout_ms must be positive");
    }
    // Upper bounds: beyond them a typo (an extra zero or two), not a tuning.
    if t.election_timeout_max_ms > ELECTION_TIMEOUT_MS_MAX {
        bail!("raft: election_timeout_max_ms must be at most {ELECTION_TIMEOUT_MS_MAX} (a leader loss would go unnoticed that long)");
    }
    if t.max_payload_entries > PAYLOAD_ENTRIES_MAX {
        bail!("raft: max_payload_entries must be at most {PAYLOAD_ENTRIES_MAX} (messages are cut at 32 MiB anyway)");
    }
    if t.keep_entries_after_snapshot > t.snapshot_entries {
        bail!("raft: keep_entries_after_snapshot must not exceed snapshot_entries (the log would never shrink)");
    }
    Ok(())
}

/// The authentication defaults (issue 18 item 7):
/// - a client port beyond loopback without client authentication is refused (anyone reaching it
///   would be admin), unless `allow_unauthenticated_clients`;
/// - peers always authenticate: by mutual TLS, or without TLS by the cluster secret, which client
///   authentication makes required (else the peer port would be the way around it). A plaintext
///   node without tokens is a loopback dev/test node whose client port already admits every local
///   process as admin; the secret is optional there.
fn check_authentication(listen: SocketAddr, tls: bool, tokens: bool, secret: bool, allow_unauthenticated: bool) -> anyhow::Result<()> {
    if !listen.ip().is_loopback() && !tokens && !allow_unauthenticated {
        bail!(
            "listen {listen} is not a loopback address and auth_tokens_file is not set: anyone who reaches the port              would be admin; set auth_tokens_file (docs/operations.md, Authentication), or              allow_unauthenticated_clients = true on an isolated test network"
        );
    }
    if tls && secret {
        bail!("cluster_secret_file is set but TLS is on: peers authenticate by their certificates (remove it)");
    }
    if !tls && tokens && !secret {
        bail!(
            "auth_tokens_file is set but TLS is off and cluster_secret_file is not: the peer port must \
             authenticate peers too (set cluster_secret_file, the same on every node; \
             `openssl rand -hex 32`, mode 600)"
        );
    }
    Ok(())
}

/// Largest `election_timeout_max_ms` accepted.
const ELECTION_TIMEOUT_MS_MAX: u64 = 60_000;
/// Largest `max_payload_entries` accepted.
const PAYLOAD_ENTRIES_MAX: u64 = 100_000;

/// The metrics listener must not take a gRPC port: the second bind would fail at start with
/// "address in use", naming neither key.
fn check_metrics_listen(metrics: Option<SocketAddr>, listen: SocketAddr, peer_listen: Option<SocketAddr>) -> anyhow::Result<()> {
    if let Some(metrics) = metrics
        && (metrics == listen || Some(metrics) == peer_listen)
    {
        bail!("metrics_listen {metrics} is also listen or peer_listen: give the metrics endpoint its own port");
    }
    Ok(())
}

impl NodeConfig {
    /// `ledger-node dev`: one node, id 1, its own single-member cluster.
    pub fn dev(data_dir: PathBuf, listen: SocketAddr, metrics_listen: Option<SocketAddr>) -> NodeConfig {
        let advertise = format!("http://{listen}");
        NodeConfig {
            node_id: 1,
            listen,
            peer_listen: None,
            peer_advertise: advertise.clone(),
            advertise,
            data_dir,
            cluster_name: "ledger".into(),
            bootstrap: false,
            peers: Vec::new(),
            raft: RaftTuning::default(),
            auth_tokens_file: None,
            metrics_listen,
            dev_single: true,
            verify_tables_at_open: true,
            // The README's one-command start: plaintext, and `dev` listens on loopback only.
            tls: None,
            // No client authentication either: every local process is admin of a dev node, so a
            // peer secret would add nothing (docs/operations.md, Authentication defaults).
            cluster_secret_file: None,
        }
    }

    /// openraft's configuration from the tuning.
    pub fn raft_config(&self) -> anyhow::Result<openraft::Config> {
        let t = &self.raft;
        let config = openraft::Config {
            cluster_name: self.cluster_name.clone(),
            heartbeat_interval: t.heartbeat_ms,
            election_timeout_min: t.election_timeout_min_ms,
            election_timeout_max: t.election_timeout_max_ms,
            max_payload_entries: t.max_payload_entries,
            replication_lag_threshold: t.replication_lag_threshold,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(t.snapshot_entries),
            max_in_snapshot_log_to_keep: t.keep_entries_after_snapshot,
            // Purging is one delete_range: no reason to do it in small steps.
            purge_batch_size: 1_024,
            install_snapshot_timeout: t.snapshot_timeout_ms,
            ..Default::default()
        };
        Ok(config.validate()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        start: StartArgs,
    }

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("ledger-node").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn flags_win_over_the_file_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        std::fs::write(
            &file,
            r#"
node_id = 2
listen = "127.0.0.1:7171"
data_dir = "/var/lib/ledger"
peers = ["1=http://127.0.0.1:7170/"]
[raft]
heartbeat_ms = 50
election_timeout_min_ms = 300
election_timeout_max_ms = 600
"#,
        )
        .unwrap();
        let cli = parse(&["--config", file.to_str().unwrap(), "--listen", "127.0.0.1:7272", "--raft-heartbeat-ms", "60"]);
        let config = cli.start.resolve(cli.config.as_deref()).unwrap();
        assert_eq!(config.node_id, 2);
        assert_eq!(config.listen.to_string(), "127.0.0.1:7272");
        assert_eq!(config.advertise, "http://127.0.0.1:7272");
        assert_eq!(config.peer_advertise, "http://127.0.0.1:7272", "peers share the client port by default");
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/ledger"));
        assert_eq!(config.peers, vec![PeerSpec { node_id: 1, peer_address: "http://127.0.0.1:7170".into() }]);
        assert_eq!(config.raft.heartbeat_ms, 60);
        assert_eq!(config.raft.election_timeout_min_ms, 300);
        assert_eq!(config.raft.snapshot_entries, RaftTuning::default().snapshot_entries);
        assert!(!config.bootstrap);
        assert!(config.verify_tables_at_open, "on unless turned off");
        config.raft_config().unwrap();
        let cli = parse(&["--config", file.to_str().unwrap(), "--verify-tables-at-open", "false"]);
        assert!(!cli.start.resolve(cli.config.as_deref()).unwrap().verify_tables_at_open);
    }

    #[test]
    fn a_separate_peer_port_gets_its_own_address() {
        let cli = parse(&["--node-id", "3", "--listen", "127.0.0.1:7070", "--peer-listen", "127.0.0.1:7080", "--bootstrap"]);
        let config = cli.start.resolve(None).unwrap();
        assert_eq!(config.peer_listen.map(|a| a.to_string()).as_deref(), Some("127.0.0.1:7080"));
        assert_eq!(config.peer_advertise, "http://127.0.0.1:7080");
        assert_eq!(config.advertise, "http://127.0.0.1:7070");
        assert!(config.bootstrap);
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        let refuse = |args: &[&str]| parse(args).start.resolve(None).unwrap_err().to_string();
        assert!(refuse(&[]).contains("node_id is required"));
        assert!(refuse(&["--node-id", "0"]).contains("at least 1"));
        assert!(refuse(&["--node-id", "1", "--peer", "1=http://a:1"]).contains("same id twice"));
        assert!(refuse(&["--node-id", "1", "--peer", "2=a:1"]).contains("http://"));
        assert!(refuse(&["--node-id", "1", "--peer", "x=http://a:1"]).contains("not a number"));
        let tls = ["--tls-cert", "/c.pem", "--tls-key", "/k.pem", "--tls-ca", "/ca.pem"];
        let with_tls = |args: &[&str]| refuse(&[&["--node-id", "1"], &tls[..], args].concat());
        assert!(with_tls(&["--listen", "0.0.0.0:7070", "--peer-listen", "10.0.0.1:7080"]).contains("set advertise"));
        assert!(refuse(&["--node-id", "1", "--raft-heartbeat-ms", "500"]).contains("3 heartbeats"));
        assert!(refuse(&["--node-id", "1", "--auth-tokens-file", "/t.toml"]).contains("set peer_listen"));
        assert!(refuse(&["--node-id", "1", "--metrics-listen", "127.0.0.1:7070"]).contains("its own port"));
        assert!(refuse(&["--node-id", "1", "--raft-election-timeout-max-ms", "800000"]).contains("at most 60000"));
        assert!(refuse(&["--node-id", "1", "--raft-max-payload-entries", "1000000"]).contains("at most 100000"));
        assert!(
            refuse(&["--node-id", "1", "--raft-snapshot-entries", "100", "--raft-keep-entries-after-snapshot", "500"])
                .contains("never shrink")
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "node_id = 1\nlisten_typo = \"x\"\n").unwrap();
        let err = parse(&[]).start.resolve(Some(&file)).unwrap_err();
        assert!(format!("{err:#}").contains("listen_typo"), "{err:#}");
    }

    /// Issue 18 item 7: the defaults refuse a node others could reach unauthenticated.
    #[test]
    fn clients_beyond_loopback_and_peers_always_authenticate() {
        let refuse = |args: &[&str]| format!("{:#}", parse(args).start.resolve(None).unwrap_err());
        let tls = ["--node-id", "1", "--tls-cert", "/c.pem", "--tls-key", "/k.pem", "--tls-ca", "/ca.pem"];
        let public = [&tls[..], &["--listen", "10.1.2.3:7070", "--peer-listen", "10.1.2.3:7080"]].concat();
        let err = refuse(&public);
        assert!(err.contains("not a loopback address and auth_tokens_file is not set"), "{err}");
        let ok = |args: &[&str]| parse(args).start.resolve(None).unwrap();
        ok(&[&public[..], &["--auth-tokens-file", "/t.toml"]].concat());
        ok(&[&public[..], &["--allow-unauthenticated-clients"]].concat());
        // TLS on a loopback listen address without tokens: a local test setup, allowed.
        ok(&[&tls[..], &["--peer-listen", "127.0.0.1:7080"]].concat());

        // Tokens without TLS: the peer port must authenticate too.
        let plain = ["--node-id", "1", "--peer-listen", "127.0.0.1:7080", "--auth-tokens-file", "/t.toml"];
        let err = refuse(&plain);
        assert!(err.contains("set cluster_secret_file"), "{err}");
        let config = ok(&[&plain[..], &["--cluster-secret-file", "/s"]].concat());
        assert_eq!(config.cluster_secret_file, Some(PathBuf::from("/s")));
        let err = refuse(&[&public[..], &["--auth-tokens-file", "/t.toml", "--cluster-secret-file", "/s"]].concat());
        assert!(err.contains("peers authenticate by their certificates"), "{err}");
        // Neither TLS nor tokens: a loopback dev/test node; a secret is optional.
        assert!(ok(&["--node-id", "1"]).cluster_secret_file.is_none());
        ok(&["--node-id", "1", "--cluster-secret-file", "/s"]);
    }

    #[test]
    fn plaintext_only_on_loopback_and_tls_keys_go_together() {
        let refuse = |args: &[&str]| format!("{:#}", parse(args).start.resolve(None).unwrap_err());
        let err = refuse(&["--node-id", "1", "--listen", "10.1.2.3:7070"]);
        assert!(err.contains("not a loopback address and TLS is off"), "{err}");
        let err = refuse(&["--node-id", "1", "--peer-listen", "10.1.2.3:7080"]);
        assert!(err.contains("peer_listen 10.1.2.3:7080 is not a loopback"), "{err}");
        assert!(refuse(&["--node-id", "1", "--tls-cert", "/c.pem"]).contains("go together"));
        assert!(refuse(&["--node-id", "1", "--tls-client-ca", "/c.pem"]).contains("TLS is off"));
        let tls = ["--node-id", "1", "--tls-cert", "/c.pem", "--tls-key", "/k.pem", "--tls-ca", "/ca.pem"];
        assert!(refuse(&tls).contains("set peer_listen"));
        let with_peer = [&tls[..], &["--listen", "10.1.2.3:7070", "--peer-listen", "10.1.2.3:7080"]].concat();
        assert!(refuse(&[&with_peer[..], &["--peer", "2=http://10.1.2.4:7080"]].concat()).contains("must start with https://"));
        assert!(refuse(&[&with_peer[..], &["--advertise", "http://db1:7070"]].concat()).contains("must start with https://"));
        assert!(refuse(&[&with_peer[..], &["--tls-client-ca", "/cc.pem"]].concat()).contains("auth_tokens_file"));
        let err = refuse(&["--node-id", "1", "--peer", "2=https://127.0.0.1:7081"]);
        assert!(err.contains("must start with http://") && err.contains("TLS is off"), "{err}");

        let with_tokens = [&with_peer[..], &["--auth-tokens-file", "/t.toml"]].concat();
        let config = parse(&[&with_tokens[..], &["--peer", "2=https://10.1.2.4:7080"]].concat()).start.resolve(None).unwrap();
        assert_eq!(config.advertise, "https://10.1.2.3:7070", "TLS on: https by default");
        assert_eq!(config.peer_advertise, "https://10.1.2.3:7080");
        assert_eq!(config.tls.unwrap().ca, PathBuf::from("/ca.pem"));
        let plain = parse(&["--node-id", "1", "--listen", "127.0.0.1:7070", "--peer-listen", "[::1]:7080"]).start;
        assert!(plain.resolve(None).unwrap().tls.is_none(), "plaintext on loopback is allowed");
    }
}
