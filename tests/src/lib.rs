//! Harness for end-to-end tests: starts the real `ledger-node` binary on a free loopback port
//! with its own data dir, kills it with SIGKILL, restarts it, and runs the `ledger` CLI.
//!
//! The binaries are found next to the test executable's directory (`target/<profile>/`);
//! `scripts/test.sh` builds them before running the tests.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Path of a workspace binary built in the same profile as the running test.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile> directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: build the binaries first (`cargo build --release --workspace --bins`, done by scripts/test.sh)",
        path.display()
    );
    path
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port").local_addr().expect("local addr").port()
}

/// One `ledger-node dev` process.
pub struct DevNode {
    pub data_dir: PathBuf,
    pub port: u16,
    log_path: PathBuf,
    child: Option<Child>,
}

impl DevNode {
    /// Starts a node on a fresh port with `data_dir`, and waits until it serves.
    pub fn start(data_dir: &Path) -> DevNode {
        let mut node = DevNode {
            data_dir: data_dir.to_path_buf(),
            port: free_port(),
            log_path: data_dir.with_extension("log"),
            child: None,
        };
        node.spawn();
        node
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log_path).expect("node log file");
        let child = Command::new(binary("ledger-node"))
            .args(["dev", "--data-dir"])
            .arg(&self.data_dir)
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .env("LEDGER_LOG", "info,openraft=warn")
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn ledger-node");
        self.child = Some(child);
        self.wait_serving(Duration::from_secs(60));
    }

    /// The node binds its port only once it is leader of its cluster: a connect means ready.
    fn wait_serving(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("ledger-node exited with {status}; log:\n{}", self.log());
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("ledger-node did not serve within {timeout:?}; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// SIGKILL: no shutdown code runs, as in a crash.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL ledger-node");
            child.wait().expect("reap ledger-node");
        }
    }

    /// Starts the node again on the same data dir and port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart a node that is stopped");
        self.spawn();
    }
}

impl Drop for DevNode {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs the `ledger` CLI against `endpoint` with `--output json`.
pub fn cli(endpoint: &str, args: &[&str]) -> Output {
    Command::new(binary("ledger"))
        .args(["--endpoint", endpoint, "--output", "json"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the ledger CLI")
}
