//! `--spawn`: runs ledger nodes from the same build as this binary, on loopback, in temp data
//! dirs removed at the end. The processes are `ledger-harness`'s (shared with the end-to-end
//! tests and jepsen).

use std::time::Duration;

use anyhow::Context;
use ledger_harness::{Mode, NodeProcess, NodeSpec, Output};

/// How long a node may take to accept connections after its start.
const START_WAIT: Duration = Duration::from_secs(60);

pub struct SpawnedNode {
    pub endpoint: String,
    /// Killed (SIGKILL) when dropped.
    process: NodeProcess,
}

/// The spawned nodes and their data dirs. Fields drop in order: the nodes are killed before
/// their directories are removed.
pub struct SpawnedCluster {
    pub nodes: Vec<SpawnedNode>,
    _data: tempfile::TempDir,
}

impl SpawnedNode {
    /// Resident and peak resident memory in KiB, from /proc.
    pub fn rss_kib(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.pid()?)).ok()?;
        let field = |name: &str| {
            status.lines().find(|l| l.starts_with(name))?.split_whitespace().nth(1)?.parse::<u64>().ok()
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }
}

/// Starts `nodes` nodes (1: `ledger-node dev`; more: `ledger-node start`, node 1 bootstrapping
/// the cluster of all of them), each on its own loopback port and data dir, and waits until each
/// accepts connections. The caller waits for a leader through the client.
pub fn spawn(nodes: u32) -> anyhow::Result<SpawnedCluster> {
    let data = tempfile::Builder::new().prefix("ledger-bench-").tempdir()?;
    let ports: Vec<u16> = (0..nodes).map(|_| ledger_harness::free_port()).collect::<Result<_, _>>()?;
    let endpoint = |port: u16| format!("http://127.0.0.1:{port}");
    let mut spawned = Vec::with_capacity(nodes as usize);
    // Peers first: they wait, empty, for the bootstrapping node 1 to contact them.
    for index in (0..nodes as usize).rev() {
        let id = index as u64 + 1;
        let mode = if nodes == 1 { Mode::Dev } else { Mode::Member { id } };
        let mut spec = NodeSpec::new(mode, data.path().join(format!("node{id}")), format!("127.0.0.1:{}", ports[index]))?;
        if nodes > 1 && id == 1 {
            spec.bootstrap = Some(ports.iter().enumerate().skip(1).map(|(i, &port)| (i as u64 + 1, endpoint(port))).collect());
        }
        spec.log_filter = "warn".into();
        spec.output = Output::Stderr;
        let mut process = spec.spawn().context("starting ledger-node")?;
        process.wait_ready(START_WAIT)?;
        spawned.push(SpawnedNode { endpoint: endpoint(ports[index]), process });
    }
    spawned.reverse();
    Ok(SpawnedCluster { nodes: spawned, _data: data })
}
