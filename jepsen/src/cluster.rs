//! The nodes under test: real `ledger-node start` processes, each with its own data dir and log,
//! in its own network namespace when partitions are asked for (else on loopback). Every process
//! is killed (and the namespaces deleted) when the `Cluster` is dropped: at the end of a run, on
//! an error, on a panic, and on Ctrl-C (the run future is dropped).
//!
//! The processes are `ledger-harness`'s (shared with the end-to-end tests and ledger-bench).
//!
//! Every run uses TLS, as production does: `ledger-node certs` makes a CA and a certificate per
//! node id in `<run dir>/pki` (namespaced nodes listen on non-loopback addresses, where a node
//! refuses plaintext); clients connect over https, peers over mutual TLS on their own port.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use ledger_harness::{Mode, NodeProcess, NodeSpec, Output, TlsFiles};

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
    process: Option<NodeProcess>,
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
        self.process.as_mut().is_some_and(NodeProcess::is_running)
    }
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(NodeProcess::pid)
    }
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    binary: PathBuf,
    dir: PathBuf,
    next_id: u64,
    /// Flags every node gets (Raft tuning).
    extra_args: Vec<String>,
    setup: Setup,
    /// Filesystems mounted for data dirs (`Setup::disk_mb`), unmounted on drop.
    mounts: Vec<PathBuf>,
    /// Dropped after the nodes (field order), so no process outlives its namespace.
    pub net: Option<Network>,
}

/// What the nemeses need of the nodes, fixed when the cluster starts.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    /// Give every node `LEDGER_TEST_CLOCK_OFFSET_FILE=<run dir>/clock-slot<i>` (the `clock`
    /// nemesis writes a shift in seconds there; the node re-reads it live).
    pub clock_files: bool,
    /// Put every data dir on its own tmpfs of this many MiB (the `disk-full` nemesis fills it).
    pub disk_mb: Option<u64>,
}

/// How long a node of a new cluster may take to accept connections.
const START_WAIT: Duration = Duration::from_secs(60);

/// `ledger-node` next to the running `jepsen` binary (`<target>/release/`), or `LEDGER_NODE_BIN`
/// (see `ledger_harness::binary`).
pub fn node_binary() -> anyhow::Result<PathBuf> {
    Ok(ledger_harness::binary("ledger-node")?)
}

/// How one start of `node` is made, in one place (flags such as TLS or auth are added here).
fn node_spec(node: &Node, binary: &Path, pki: &Path, log: PathBuf, bootstrap_peers: &[(u64, String)]) -> NodeSpec {
    NodeSpec {
        mode: Mode::Member { id: node.id },
        data_dir: node.data_dir.clone(),
        listen: node.listen.clone(),
        peer_listen: Some(node.peer_listen.clone()),
        tls: Some(TlsFiles::issued(pki, node.id)),
        bootstrap: (!bootstrap_peers.is_empty()).then(|| bootstrap_peers.to_vec()),
        // Namespaced nodes listen beyond loopback, which a node refuses without client
        // authentication unless told so: the run's private namespaces are an isolated network.
        extra_args: vec!["--allow-unauthenticated-clients".into()],
        env: Vec::new(),
        log_filter: ledger_harness::LOG_FILTER.to_string(),
        output: Output::File(log),
        wrapper: Vec::new(),
        binary: binary.to_path_buf(),
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(ledger_harness::free_port()?)
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
    /// Starts `count` nodes, each with `extra_args`, and bootstraps them into one cluster of voters.
    pub fn start(count: usize, dir: &Path, namespaces: bool, extra_args: &[String], setup: Setup) -> anyhow::Result<Cluster> {
        if setup.disk_mb.is_some() {
            ensure_root("the disk-full nemesis (a tmpfs of limited size per data dir, mount(8))")?;
        }
        let net = if namespaces { Some(Network::create(count)?) } else { None };
        let mut nodes = Vec::new();
        for slot in 0..count {
            let (listen, peer_listen) = addresses(net.as_ref(), slot)?;
            let id = slot as u64 + 1;
            nodes.push(Node { slot, id, listen, peer_listen, data_dir: dir.join(format!("n{slot}-id{id}")), process: None, paused: false });
        }
        let extra_args = extra_args.to_vec();
        let mut cluster = Cluster { nodes, binary: node_binary()?, dir: dir.to_path_buf(), next_id: count as u64 + 1, extra_args, setup, mounts: Vec::new(), net };
        let peers: Vec<(u64, String)> = cluster.nodes[1..].iter().map(|n| (n.id, n.peer_url())).collect();
        // Peers first, each accepting connections before the bootstrapping node contacts them.
        for slot in (1..count).rev() {
            cluster.spawn(slot, &[])?;
            cluster.wait_ready(slot)?;
        }
        cluster.spawn(0, &peers)?;
        cluster.wait_ready(0)?;
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
        ledger_harness::certs(&self.binary, &self.pki(), &["--node".into(), hosts]).with_context(|| format!("certificate of node {}", node.id))
    }

    /// Waits until the node of `slot` accepts connections (at most `START_WAIT`): the namespaced
    /// addresses are reachable from the root namespace through the bridge.
    fn wait_ready(&mut self, slot: usize) -> anyhow::Result<()> {
        let process = self.nodes[slot].process.as_mut().context("a spawned node")?;
        Ok(process.wait_ready(START_WAIT)?)
    }

    pub fn slot_of_id(&self, id: u64) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }

    fn spawn(&mut self, slot: usize, bootstrap_peers: &[(u64, String)]) -> anyhow::Result<()> {
        self.issue_certificate(slot)?;
        let data_dir = self.nodes[slot].data_dir.clone();
        std::fs::create_dir_all(&data_dir)?;
        if let Some(mb) = self.setup.disk_mb {
            if !self.mounts.contains(&data_dir) {
                mount_tmpfs(&data_dir, mb)?;
                self.mounts.push(data_dir.clone());
            }
        }
        let node = &self.nodes[slot];
        let log = self.log_path(slot);
        let mut spec = node_spec(node, &self.binary, &self.pki(), log, bootstrap_peers);
        spec.extra_args.extend(self.extra_args.iter().cloned());
        if self.setup.clock_files {
            spec.env.push(("LEDGER_TEST_CLOCK_OFFSET_FILE".into(), self.clock_file(slot).display().to_string()));
        }
        if let Some(net) = &self.net {
            // `ip netns exec` execs the node in place: the child's pid is the node's.
            spec.wrapper = vec!["ip".into(), "netns".into(), "exec".into(), net.namespace(slot)];
        }
        let process = spec.spawn().with_context(|| format!("start the node of slot {slot}"))?;
        let node = &mut self.nodes[slot];
        node.process = Some(process);
        node.paused = false;
        Ok(())
    }

    /// How many snapshots the nodes built and installed, from their logs (every slot's log,
    /// across restarts and rebuilds): `{"built": n, "installed": m}`.
    pub fn snapshot_counts(&self) -> serde_json::Value {
        let (mut built, mut installed) = (0, 0);
        for slot in 0..self.nodes.len() {
            let log = std::fs::read_to_string(self.log_path(slot)).unwrap_or_default();
            built += log.lines().filter(|l| l.contains("snapshot built")).count();
            installed += log.lines().filter(|l| l.contains("snapshot installed")).count();
        }
        serde_json::json!({"built": built, "installed": installed})
    }

    pub fn log_path(&self, slot: usize) -> PathBuf {
        self.dir.join(format!("node-slot{slot}.log"))
    }

    /// The file holding the live clock shift (seconds) of the node in `slot` (`Setup::clock_files`).
    pub fn clock_file(&self, slot: usize) -> PathBuf {
        self.dir.join(format!("clock-slot{slot}"))
    }

    /// Shifts the clock of the node in `slot` by `secs` (0: the true time), live.
    pub fn set_clock_offset(&self, slot: usize, secs: i64) -> anyhow::Result<()> {
        anyhow::ensure!(self.setup.clock_files, "clock files are off in this cluster");
        // Written whole and renamed, so the node never reads half a number.
        let tmp = self.dir.join(format!("clock-slot{slot}.tmp"));
        std::fs::write(&tmp, format!("{secs}\n"))?;
        std::fs::rename(&tmp, self.clock_file(slot))?;
        Ok(())
    }

    /// The ballast file that fills the filesystem of the node in `slot`.
    fn ballast(&self, slot: usize) -> PathBuf {
        self.nodes[slot].data_dir.join("ballast")
    }

    /// Fills the node's filesystem (its own tmpfs) with a ballast file, to the last byte.
    /// Returns the ballast's size.
    pub fn fill_disk(&self, slot: usize) -> anyhow::Result<u64> {
        anyhow::ensure!(self.setup.disk_mb.is_some(), "data dirs are not on their own filesystems in this cluster");
        use std::io::Write;
        let path = self.ballast(slot);
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).with_context(|| format!("open {}", path.display()))?;
        let block = vec![0u8; 1 << 16];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => return Err(e).with_context(|| format!("write {}", path.display())),
            }
        }
        // The last partial block: byte by byte, until not even one fits.
        while let Ok(1) = file.write(&[0u8]) {}
        Ok(std::fs::metadata(&path)?.len())
    }

    /// Removes the ballast file: the space comes back.
    pub fn free_disk(&self, slot: usize) -> anyhow::Result<()> {
        match std::fs::remove_file(self.ballast(slot)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Whether the node is in the middle of a snapshot transfer to it (`incoming-*.tmp`) or of
    /// a build (any other `*.tmp`) in `<data dir>/snapshots`.
    pub fn snapshot_temp_file(&self, slot: usize, incoming: bool) -> Option<String> {
        let dir = self.nodes[slot].data_dir.join("snapshots");
        std::fs::read_dir(dir).ok()?.flatten().map(|e| e.file_name().to_string_lossy().to_string()).find(|name| {
            name.ends_with(".tmp") && name.starts_with("incoming") == incoming
        })
    }

    /// The node's newest published snapshot file, if it has one.
    pub fn newest_snapshot(&self, slot: usize) -> Option<PathBuf> {
        let dir = self.nodes[slot].data_dir.join("snapshots");
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir).ok()?.flatten().map(|e| e.path()).filter(|p| {
            p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("snapshot-") && n.to_string_lossy().ends_with(".bin"))
        }).collect();
        files.sort();
        files.pop()
    }

    /// Corrupts a stopped node's newest snapshot file (a flipped byte in its middle) and its
    /// `identity.toml` (a flipped byte in its first line). Returns what was done.
    pub fn corrupt_files(&mut self, slot: usize, pick: u64) -> anyhow::Result<String> {
        assert!(self.nodes[slot].process.is_none(), "corrupt only a stopped node's files");
        // One in three: the snapshot only; one in three: the identity only; else both (so
        // each is seen on its own: a refused identity would hide what a bad snapshot does).
        let (snapshot, identity) = match pick % 3 {
            0 => (true, false),
            1 => (false, true),
            _ => (true, true),
        };
        let mut done = Vec::new();
        match self.newest_snapshot(slot).filter(|_| snapshot) {
            Some(path) => {
                let mut bytes = std::fs::read(&path)?;
                let offset = if bytes.is_empty() { None } else { Some(((pick >> 8) % bytes.len() as u64) as usize) };
                if let Some(offset) = offset {
                    bytes[offset] ^= 0x5a;
                    std::fs::write(&path, &bytes)?;
                    done.push(format!("{} byte {offset} of {}", path.display(), bytes.len()));
                }
            }
            None if snapshot => done.push("no snapshot file yet".to_string()),
            None => {}
        }
        if !identity {
            return Ok(done.join("; "));
        }
        let identity = self.nodes[slot].data_dir.join("identity.toml");
        let mut bytes = std::fs::read(&identity).with_context(|| format!("read {}", identity.display()))?;
        let line_end = bytes.iter().position(|&b| b == b'\n').unwrap_or(bytes.len()).max(1);
        let offset = ((pick >> 32) % line_end as u64) as usize;
        bytes[offset] ^= 0x01;
        std::fs::write(&identity, &bytes)?;
        done.push(format!("{} byte {offset}", identity.display()));
        Ok(done.join("; "))
    }

    /// Whether the process of `slot` runs (a node that refused to start has exited).
    pub fn running(&mut self, slot: usize) -> bool {
        self.nodes[slot].is_running()
    }

    /// SIGKILL (a crash: no shutdown code runs). A paused node is killed too.
    pub fn kill(&mut self, slot: usize) {
        let node = &mut self.nodes[slot];
        if let Some(process) = node.process.take() {
            process.kill9();
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
        let Some(process) = &self.nodes[slot].process else { return Ok(()) };
        Ok(process.signal(signal)?)
    }

    pub fn pause(&mut self, slot: usize) -> anyhow::Result<()> {
        if self.nodes[slot].is_running() {
            self.signal(slot, "STOP")?;
            self.nodes[slot].paused = true;
        }
        Ok(())
    }

    pub fn resume(&mut self, slot: usize) -> anyhow::Result<()> {
        if self.nodes[slot].paused {
            self.signal(slot, "CONT")?;
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
        self.nodes.push(Node { slot, id, listen, peer_listen, data_dir: self.dir.join(format!("n{slot}-id{id}")), process: None, paused: false });
        self.spawn(slot, &[])?;
        Ok(slot)
    }

    /// Flips one byte of one of the node's files (it must be stopped): an SST if there is one,
    /// else the largest file. Returns what was flipped.
    pub fn flip_byte(&mut self, slot: usize, pick: u64) -> anyhow::Result<String> {
        assert!(self.nodes[slot].process.is_none(), "flip bytes only in a stopped node's files");
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

fn ensure_root(what: &str) -> anyhow::Result<()> {
    let uid = std::process::Command::new("id").arg("-u").output().context("run `id -u`")?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        bail!("{what} needs root");
    }
    Ok(())
}

/// Mounts a tmpfs of `mb` MiB at `dir` (the data dir of one node, so it fills on its own).
fn mount_tmpfs(dir: &Path, mb: u64) -> anyhow::Result<()> {
    let output = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={mb}m,mode=0700"), "ledger-jepsen"])
        .arg(dir)
        .output()
        .context("run mount(8)")?;
    if !output.status.success() {
        bail!("mount a {mb} MiB tmpfs at {}: {}", dir.display(), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
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
        for mount in std::mem::take(&mut self.mounts) {
            // Lazily: a process not yet reaped may still hold a file open.
            let _ = std::process::Command::new("umount").arg("-l").arg(&mount).status();
        }
    }
}
