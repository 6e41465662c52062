//! `--spawn`: runs ledger nodes from the same build as this binary, on loopback, in temp data
//! dirs removed at the end.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub struct SpawnedNode {
    pub endpoint: String,
    child: Child,
}

/// The spawned nodes and their data dirs. Fields drop in order: the nodes are killed before
/// their directories are removed.
pub struct SpawnedCluster {
    pub nodes: Vec<SpawnedNode>,
    _data: tempfile::TempDir,
}

impl SpawnedNode {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident and peak resident memory in KiB, from /proc.
    pub fn rss_kib(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let field = |name: &str| {
            status.lines().find(|l| l.starts_with(name))?.split_whitespace().nth(1)?.parse::<u64>().ok()
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }
}

impl Drop for SpawnedNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.parent().context("binary directory")?.join(name);
    if !path.exists() {
        bail!("{} not found next to ledger-bench: build it (cargo build --release --workspace --bins)", path.display());
    }
    Ok(path)
}

/// Starts `nodes` nodes (1: `ledger-node dev`; more: `ledger-node start`, node 1 bootstrapping
/// the cluster of all of them), each on its own loopback port and data dir, and waits until each
/// accepts connections. The caller waits for a leader through the client.
pub fn spawn(nodes: u32) -> anyhow::Result<SpawnedCluster> {
    let data = tempfile::Builder::new().prefix("ledger-bench-").tempdir()?;
    let ports: Vec<u16> = (0..nodes).map(|_| free_port()).collect::<anyhow::Result<_>>()?;
    let endpoint = |port: u16| format!("http://127.0.0.1:{port}");
    let mut spawned = Vec::with_capacity(nodes as usize);
    // Peers first: they wait, empty, for the bootstrapping node 1 to contact them.
    for index in (0..nodes as usize).rev() {
        let id = index + 1;
        let mut command = Command::new(sibling_binary("ledger-node")?);
        if nodes == 1 {
            command.arg("dev");
        } else {
            command.args(["start", "--node-id", &id.to_string()]);
            if id == 1 {
                command.arg("--bootstrap");
                for (peer_index, &port) in ports.iter().enumerate().skip(1) {
                    command.args(["--peer", &format!("{}={}", peer_index + 1, endpoint(port))]);
                }
            }
        }
        let child = command
            .arg("--data-dir")
            .arg(data.path().join(format!("node{id}")))
            .args(["--listen", &format!("127.0.0.1:{}", ports[index])])
            .env("LEDGER_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting ledger-node")?;
        spawned.push(SpawnedNode { endpoint: endpoint(ports[index]), child });
        wait_for_port(ports[index])?;
    }
    spawned.reverse();
    Ok(SpawnedCluster { nodes: spawned, _data: data })
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_for_port(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("ledger-node did not start serving on port {port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
