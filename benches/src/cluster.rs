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

pub fn spawn_single() -> anyhow::Result<SpawnedNode> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let data = tempfile::Builder::new().prefix("ledger-bench-").tempdir()?;
    let child = Command::new(sibling_binary("ledger-node")?)
        .args(["dev", "--data-dir"])
        .arg(data.path().join("node1"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("LEDGER_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting ledger-node")?;
    let node = SpawnedNode { endpoint: format!("http://127.0.0.1:{port}"), child, _data: data };
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("ledger-node did not start serving on port {port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(node)
}
