//! The nodes under test: real `ledger-node start` processes, each with its own data dir and log,
//! in its own network namespace when partitions are asked for (else on loopback). Every process
//! is killed (and the namespaces deleted) when the `Cluster` is dropped: at the end of a run, on
//! an error, on a panic, and on Ctrl-C (the run future is dropped).
//!
//! Every run uses TLS, as production does: `ledger-node certs` makes a CA and a certificate per
//! node id in `<run dir>/pki` (namespaced nodes listen on non-loopback addresses, where a node
//! refuses plaintext); clients connect over https, peers over mutual TLS on their own port.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::net::Network;

/// The ports every node listens on inside its own namespace: clients, peers.
const NAMESPACED_PORT: u16 = 7070;
const NAMESPACED_PEER_PORT: u16 = 7080;

pub struct Node {
    /// Position in the cluster: its address and namespace; a replaced node keeps its slot.
    pub slot: usize,
    /// Raft id: a node rebuilt from its peers gets a new one (ids are never reused).
    pub id: u64,
    pub listen: String,
    /// The peer port's address (mutual TLS).
    pub peer_listen: String,
    pub data_dir: PathBuf,
    child: Option<Child>,
    pub paused: bool,
}

impl Node {
    /// Where clients reach the node.
    pub fn url(&self) -> String {
        format!("https://{}", self.listen)
    }
    /// Where peers reach the node (the address to give `add-learner`).
    pub fn peer_url(&self) -> String {
        format!("https://{}", self.peer_listen)
    }
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    binary: PathBuf,
    dir: PathBuf,
    next_id: u64,
    /// Dropped after the nodes (field order), so no process outlives its namespace.
    pub net: Option<Network>,
}

/// `ledger-node` next to the running `jepsen` binary (`<target>/release/`), or `LEDGER_NODE_BIN`.
pub fn node_binary() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("LEDGER_NODE_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().context("binary directory")?.to_path_buf();
    // Integration tests run from <target>/release/deps.
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join("ledger-node");
    if !path.exists() {
        bail!("{} not found: build it first (`cargo build --release -p ledger-node`) or set LEDGER_NODE_BIN", path.display());
    }
    Ok(path)
}

/// The arguments of one node start, in one place (flags such as TLS or auth are added here).
pub fn node_args(node: &Node, pki: &Path, bootstrap_peers: &[(u64, String)]) -> Vec<String> {
    let file = |name: String| pki.join(name).display().to_string();
    let mut args = vec![
        "start".to_string(),
        "--node-id".into(),
        node.id.to_string(),
        "--listen".into(),
        node.listen.clone(),
        "--peer-listen".into(),
        node.peer_listen.clone(),
        "--data-dir".into(),
        node.data_dir.display().to_string(),
        "--tls-cert".into(),
        file(format!("node-{}.pem", node.id)),
        "--tls-key".into(),
        file(format!("node-{}-key.pem", node.id)),
        "--tls-ca".into(),
        file("ca.pem".into()),
        // Namespaced nodes listen beyond loopback, which a node refuses without client
        // authentication unless told so: the run's private namespaces are an isolated network.
        "--allow-unauthenticated-clients".into(),
    ];
    if !bootstrap_peers.is_empty() {
        args.push("--bootstrap".into());
        for (peer, url) in bootstrap_peers {
            args.push("--peer".into());
            args.push(format!("{peer}={url}"));
        }
    }
    args
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Client and peer addresses of a node in `slot`.
fn addresses(net: Option<&Network>, slot: usize) -> anyhow::Result<(String, String)> {
    Ok(match net {
        Some(net) => (format!("{}:{NAMESPACED_PORT}", net.address(slot)), format!("{}:{NAMESPACED_PEER_PORT}", net.address(slot))),
        None => (format!("127.0.0.1:{}", free_port()?), format!("127.0.0.1:{}", free_port()?)),
    })
}

/// The host part of `host:port`.
fn host(address: &str) -> &str {
    address.rsplit_once(':').map(|(h, _)| h).unwrap_or(address)
}

impl Cluster {
    /// Starts `count` nodes and bootstraps them into one cluster of voters.
    pub fn start(count: usize, dir: &Path, namespaces: bool) -> anyhow::Result<Cluster> {
        let net = if namespaces { Some(Network::create(count)?) } else { None };
        let mut nodes = Vec::new();
        for slot in 0..count {
            let (listen, peer_listen) = addresses(net.as_ref(), slot)?;
            let id = slot as u64 + 1;
            nodes.push(Node { slot, id, listen, peer_listen, data_dir: dir.join(format!("n{slot}-id{id}")), child: None, paused: false });
        }
        let mut cluster = Cluster { nodes, binary: node_binary()?, dir: dir.to_path_buf(), next_id: count as u64 + 1, net };
        let peers: Vec<(u64, String)> = cluster.nodes[1..].iter().map(|n| (n.id, n.peer_url())).collect();
        for slot in (1..count).rev() {
            cluster.spawn(slot, &[])?;
        }
        cluster.spawn(0, &peers)?;
        Ok(cluster)
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Node::url).collect()
    }

    fn pki(&self) -> PathBuf {
        self.dir.join("pki")
    }

    /// Client TLS settings: the run's CA.
    pub fn tls(&self) -> Option<ledger_client::ClientTls> {
        // The CA exists once the first node was spawned (`Cluster::start` spawns them all).
        ledger_client::ClientTls::from_files(&self.pki().join("ca.pem"), None, None).ok()
    }

    /// Issues node `slot`'s certificate for its current id (and the CA on the first call), for
    /// its address and loopback. A rebuilt node gets a new id, hence a new certificate.
    fn issue_certificate(&self, slot: usize) -> anyhow::Result<()> {
        let node = &self.nodes[slot];
        if self.pki().join(format!("node-{}.pem", node.id)).exists() {
            return Ok(());
        }
        let hosts = format!("{}={},127.0.0.1,localhost", node.id, host(&node.listen));
        let output = Command::new(&self.binary)
            .args(["certs", "--dir"])
            .arg(self.pki())
            .args(["--node", &hosts])
            .output()
            .with_context(|| format!("run {} certs", self.binary.display()))?;
        if !output.status.success() {
            bail!("ledger-node certs for node {}: {}", node.id, String::from_utf8_lossy(&output.stderr));
        }
        Ok(())
    }

    pub fn slot_of_id(&self, id: u64) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }

    fn spawn(&mut self, slot: usize, bootstrap_peers: &[(u64, String)]) -> anyhow::Result<()> {
        self.issue_certificate(slot)?;
        let node = &self.nodes[slot];
        std::fs::create_dir_all(&node.data_dir)?;
        let log_path = self.dir.join(format!("node-slot{slot}.log"));
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path)?;
        let args = node_args(node, &self.pki(), bootstrap_peers);
        let mut command = match &self.net {
            // `ip netns exec` execs the node in place: the child's pid is the node's.
            Some(net) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &net.namespace(slot)]).arg(&self.binary);
                c
            }
            None => Command::new(&self.binary),
        };
        let child = command
            .args(&args)
            .env("LEDGER_LOG", "info,openraft=warn,openraft::core::heartbeat=error")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawn {}", self.binary.display()))?;
        let node = &mut self.nodes[slot];
        node.child = Some(child);
        node.paused = false;
        Ok(())
    }

    /// SIGKILL (a crash: no shutdown code runs). A paused node is killed too.
    pub fn kill(&mut self, slot: usize) {
        let node = &mut self.nodes[slot];
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        node.paused = false;
    }

    /// Starts a stopped node again on its data dir (no bootstrap: it already has Raft state).
    pub fn restart(&mut self, slot: usize) -> anyhow::Result<()> {
        if self.nodes[slot].is_running() {
            return Ok(());
        }
        self.kill(slot);
        self.spawn(slot, &[])
    }

    fn signal(&self, slot: usize, signal: &str) -> anyhow::Result<()> {
        let Some(pid) = self.nodes[slot].pid() else { return Ok(()) };
        let status = Command::new("kill").args([signal, &pid.to_string()]).status()?;
        if !status.success() {
            bail!("kill {signal} {pid} failed");
        }
        Ok(())
    }

    pub fn pause(&mut self, slot: usize) -> anyhow::Result<()> {
        if self.nodes[slot].is_running() {
            self.signal(slot, "-STOP")?;
            self.nodes[slot].paused = true;
        }
        Ok(())
    }

    pub fn resume(&mut self, slot: usize) -> anyhow::Result<()> {
        if self.nodes[slot].paused {
            self.signal(slot, "-CONT")?;
            self.nodes[slot].paused = false;
        }
        Ok(())
    }

    /// Gives the slot a fresh id and an empty data dir and starts it (to be added as a learner):
    /// how a node whose data is lost or corrupted is rebuilt from its peers.
    pub fn replace(&mut self, slot: usize) -> anyhow::Result<u64> {
        self.kill(slot);
        let id = self.next_id;
        self.next_id += 1;
        let node = &mut self.nodes[slot];
        node.id = id;
        node.data_dir = self.dir.join(format!("n{slot}-id{id}"));
        self.spawn(slot, &[])?;
        Ok(id)
    }

    /// Starts a fresh node (new id, empty data dir) in a new slot, to be added as a learner and
    /// promoted: the cluster grows by one. Returns the slot.
    pub fn add_slot(&mut self) -> anyhow::Result<usize> {
        let slot = self.nodes.len();
        if let Some(net) = self.net.as_mut() {
            let net_slot = net.add_slot()?;
            assert_eq!(net_slot, slot, "one namespace per node slot");
        }
        let (listen, peer_listen) = addresses(self.net.as_ref(), slot)?;
        let id = self.next_id;
        self.next_id += 1;
        self.nodes.push(Node { slot, id, listen, peer_listen, data_dir: self.dir.join(format!("n{slot}-id{id}")), child: None, paused: false });
        self.spawn(slot, &[])?;
        Ok(slot)
    }

    /// Flips one byte of one of the node's files (it must be stopped): an SST if there is one,
    /// else the largest file. Returns what was flipped.
    pub fn flip_byte(&mut self, slot: usize, pick: u64) -> anyhow::Result<String> {
        assert!(self.nodes[slot].child.is_none(), "flip bytes only in a stopped node's files");
        let mut files = Vec::new();
        collect_files(&self.nodes[slot].data_dir, &mut files)?;
        // RocksDB's data: tables, write-ahead logs (where the Raft log and recent state live),
        // the manifest. Other files (identity, CURRENT) would only test a startup parse.
        files.retain(|(path, len)| {
            let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            *len > 0 && (name.ends_with(".sst") || name.ends_with(".log") || name.starts_with("MANIFEST"))
        });
        files.sort();
        // First the kind (each kind present equally likely: a node has one WAL and one manifest
        // but may have many tables, or none before its first flush), then the file.
        let kind = |path: &Path| {
            let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            if name.ends_with(".sst") { 0 } else if name.ends_with(".log") { 1 } else { 2 }
        };
        let mut kinds: Vec<u8> = files.iter().map(|(p, _)| kind(p)).collect();
        kinds.dedup();
        kinds.sort_unstable();
        kinds.dedup();
        let Some(&chosen) = kinds.get((pick % kinds.len().max(1) as u64) as usize) else {
            bail!("node in slot {slot} has no data file to corrupt");
        };
        files.retain(|(p, _)| kind(p) == chosen);
        let (path, len) = files[((pick >> 8) % files.len() as u64) as usize].clone();
        let offset = (pick >> 16) % len;
        let mut bytes = std::fs::read(&path)?;
        bytes[offset as usize] ^= 0x5a;
        std::fs::write(&path, &bytes)?;
        Ok(format!("{} byte {offset} of {len}", path.display()))
    }
}

fn collect_files(dir: &Path, out: &mut Vec<(PathBuf, u64)>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            collect_files(&entry.path(), out)?;
        } else if !entry.file_name().to_string_lossy().starts_with("LOCK") {
            out.push((entry.path(), meta.len()));
        }
    }
    Ok(())
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for slot in 0..self.nodes.len() {
            // A stopped process only dies of SIGKILL, but resume anyway so nothing lingers.
            let _ = self.resume(slot);
            self.kill(slot);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
