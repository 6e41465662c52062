//! Harness for end-to-end tests: starts the real `ledger-node` binary on a free loopback port
//! with its own data dir, kills it with SIGKILL or stops it with SIGTERM, restarts it, and runs
//! the `ledger` CLI. The processes themselves are `ledger-harness`'s (shared with jepsen and
//! ledger-bench); this layer adds the test conventions: panics with the node's log instead of
//! errors, clusters in temp dirs, TLS files, and `eventually` for waiting on a condition.
//!
//! The binaries are found by `ledger_harness::binary` (next to the test executable, then
//! `$CARGO_TARGET_DIR/release`); `scripts/test.sh` builds them before running the tests.

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use ledger_harness::{Mode, NodeProcess, NodeSpec, TlsFiles};

/// Path of a workspace binary built in the same profile as the running test.
pub fn binary(name: &str) -> PathBuf {
    ledger_harness::binary(name).unwrap_or_else(|e| panic!("{e}"))
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    ledger_harness::free_port().expect("bind an ephemeral port")
}

/// How long a node may take to shut down gracefully (leadership transfer 5 s + drain 10 s + flush).
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(60);

/// How long a node may take to accept connections after its start.
pub const START_WAIT: Duration = Duration::from_secs(60);

/// Runs `ledger-node` with `args` to completion (e.g. `restore`).
pub fn ledger_node(args: &[&str]) -> Output {
    Command::new(binary("ledger-node")).args(args).stdin(Stdio::null()).output().expect("run ledger-node")
}

/// Polls `check` every `every` until it returns `Ok`, at most `timeout`; then panics with
/// `what` and the last value `check` saw (`Err`), so a test waits on a condition, never a guess.
pub async fn eventually<T, E, F, Fut>(what: &str, timeout: Duration, every: Duration, mut check: F) -> T
where
    E: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(value) => return value,
            Err(last) => last,
        };
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}; last seen: {last:?}");
        tokio::time::sleep(every).await;
    }
}

/// A node started from a spec, restartable: the test-facing layer over `ledger_harness`
/// (every failure is a panic that shows the node's log). `DevNode` and `ClusterNode` deref to it.
pub struct TestNode {
    pub spec: NodeSpec,
    process: Option<NodeProcess>,
}

impl TestNode {
    fn start(spec: NodeSpec) -> TestNode {
        let mut node = TestNode { spec, process: None };
        node.spawn();
        node
    }

    /// Spawns the process and waits until it accepts connections (at most `START_WAIT`).
    fn spawn(&mut self) {
        let mut process = self.spec.spawn().unwrap_or_else(|e| panic!("{e}"));
        process.wait_ready(START_WAIT).unwrap_or_else(|e| panic!("{e}"));
        self.process = Some(process);
    }

    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    pub fn log(&self) -> String {
        self.spec.log()
    }

    /// SIGKILL: no shutdown code runs, as in a crash.
    pub fn kill9(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill9();
        }
    }

    /// Starts the node again on the same data dir and port (never with --bootstrap).
    pub fn restart(&mut self) {
        assert!(self.process.is_none(), "restart a node that is stopped");
        self.spawn();
    }

    /// SIGTERM, a graceful shutdown: waits for the exit (at most `SHUTDOWN_WAIT`); its status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.sigterm();
        self.wait_exit()
    }

    /// Sends SIGTERM and returns at once (`wait_exit` reaps the process).
    pub fn sigterm(&self) {
        self.process.as_ref().expect("signal a running node").signal("TERM").unwrap_or_else(|e| panic!("{e}"));
    }

    /// Sends SIGHUP (reload tokens, cluster secret and TLS files) and returns at once.
    pub fn sighup(&self) {
        self.process.as_ref().expect("signal a running node").signal("HUP").unwrap_or_else(|e| panic!("{e}"));
    }

    /// Waits for the process to exit after `sigterm` (at most `SHUTDOWN_WAIT`).
    pub fn wait_exit(&mut self) -> ExitStatus {
        let process = self.process.take().expect("a running node");
        process.wait_exit(SHUTDOWN_WAIT).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs the node with `once` added, to completion (for starts that must be refused).
    pub fn run_to_exit(&self, once: &[&str]) -> Output {
        assert!(self.process.is_none(), "stop the node first");
        let once: Vec<String> = once.iter().map(|s| s.to_string()).collect();
        self.spec.command(&once).output().expect("run ledger-node")
    }
}

/// One `ledger-node dev` process.
pub struct DevNode {
    pub data_dir: PathBuf,
    pub port: u16,
    node: TestNode,
}

impl DevNode {
    /// Starts a node on a fresh port with `data_dir`, and waits until it serves (a dev node
    /// binds its port only once it leads its cluster of one).
    pub fn start(data_dir: &Path) -> DevNode {
        let port = free_port();
        let mut spec = NodeSpec::new(Mode::Dev, data_dir.to_path_buf(), format!("127.0.0.1:{port}")).unwrap_or_else(|e| panic!("{e}"));
        spec.log_filter = "info,openraft=warn".into();
        DevNode { data_dir: data_dir.to_path_buf(), port, node: TestNode::start(spec) }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// `DevNode` and `ClusterNode` are a `TestNode` with their own constructors and addresses.
macro_rules! deref_to_test_node {
    ($kind:ty) => {
        impl Deref for $kind {
            type Target = TestNode;
            fn deref(&self) -> &TestNode {
                &self.node
            }
        }

        impl DerefMut for $kind {
            fn deref_mut(&mut self) -> &mut TestNode {
                &mut self.node
            }
        }
    };
}

deref_to_test_node!(DevNode);

/// TLS files of a test cluster, made by `ledger-node certs` in one directory: the cluster CA,
/// node certificates for 127.0.0.1 and localhost, client certificates.
pub struct Pki {
    pub dir: PathBuf,
    pub cluster_name: String,
}

impl Pki {
    /// A new CA in `dir` (created).
    pub fn new(dir: &Path) -> Pki {
        let pki = Pki { dir: dir.to_path_buf(), cluster_name: "ledger".into() };
        pki.certs(&[]);
        pki
    }

    fn certs(&self, args: &[String]) {
        let mut all = vec!["--cluster-name".to_string(), self.cluster_name.clone()];
        all.extend_from_slice(args);
        ledger_harness::certs(&binary("ledger-node"), &self.dir, &all).unwrap_or_else(|e| panic!("{e}"));
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Node `id`'s certificate and key (issued on first use).
    pub fn node(&self, id: u64) -> (PathBuf, PathBuf) {
        let files = self.node_files(id);
        (files.cert, files.key)
    }

    /// Node `id`'s TLS files (issued on first use).
    pub fn node_files(&self, id: u64) -> TlsFiles {
        let files = TlsFiles::issued(&self.dir, id);
        if !files.cert.exists() {
            self.certs(&["--node".into(), format!("{id}=127.0.0.1,localhost")]);
        }
        files
    }

    /// A client certificate and key with subject CN `name` (issued on first use).
    pub fn client(&self, name: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = (self.dir.join(format!("client-{name}.pem")), self.dir.join(format!("client-{name}-key.pem")));
        if !cert.exists() {
            self.certs(&["--client".into(), name.into()]);
        }
        (cert, key)
    }

    /// The flags that give node `id` its TLS files.
    pub fn node_args(&self, id: u64) -> Vec<String> {
        self.node_files(id).args()
    }

    /// Client TLS settings trusting this CA, with client certificate `name` if given.
    pub fn client_tls(&self, name: Option<&str>) -> ledger_client::ClientTls {
        let identity = name.map(|n| self.client(n));
        ledger_client::ClientTls::from_files(
            &self.ca(),
            identity.as_ref().map(|(c, _)| c.as_path()),
            identity.as_ref().map(|(_, k)| k.as_path()),
        )
        .expect("client TLS files")
    }
}

/// One `ledger-node start` process of a multi-node cluster, on its own loopback port (clients and
/// peers share it, unless TLS is on: then peers get their own port) and its own data dir.
pub struct ClusterNode {
    pub id: u64,
    pub data_dir: PathBuf,
    pub port: u16,
    /// With TLS: the peer port (mutual TLS).
    pub peer_port: Option<u16>,
    node: TestNode,
}

impl ClusterNode {
    /// Starts node `id` on a fresh port; with `bootstrap`, it forms a new cluster of itself and
    /// those peers on this first start. Returns once the port accepts connections (the node may
    /// not be in a cluster yet).
    pub fn start(id: u64, data_dir: &Path, bootstrap: Option<&[(u64, String)]>, extra_args: &[&str]) -> ClusterNode {
        ClusterNode::start_with_env(id, data_dir, bootstrap, extra_args, &[])
    }

    /// Starts node `id` on `port` (a port chosen before, e.g. to name it in a restore), without
    /// bootstrapping.
    pub fn start_on_port(id: u64, data_dir: &Path, port: u16, extra_args: &[&str]) -> ClusterNode {
        let mut spec = member_spec(id, data_dir, port);
        spec.extra_args = extra_args.iter().map(|s| s.to_string()).collect();
        ClusterNode::from_spec(id, port, None, spec)
    }

    /// `start`, with environment variables set on every start of the process.
    pub fn start_with_env(
        id: u64,
        data_dir: &Path,
        bootstrap: Option<&[(u64, String)]>,
        extra_args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> ClusterNode {
        ClusterNode::start_with(id, data_dir, bootstrap, extra_args, extra_env, None)
    }

    /// `start_with_env`; with `pki`, the node runs TLS (its certificate from `pki`) and serves
    /// peers on a separate port with mutual TLS.
    pub fn start_with(
        id: u64,
        data_dir: &Path,
        bootstrap: Option<&[(u64, String)]>,
        extra_args: &[&str],
        extra_env: &[(&str, &str)],
        pki: Option<&Pki>,
    ) -> ClusterNode {
        let port = free_port();
        let mut spec = member_spec(id, data_dir, port);
        let peer_port = pki.map(|_| free_port());
        spec.peer_listen = peer_port.map(|p| format!("127.0.0.1:{p}"));
        spec.tls = pki.map(|p| p.node_files(id));
        spec.bootstrap = bootstrap.map(<[_]>::to_vec);
        spec.extra_args = extra_args.iter().map(|s| s.to_string()).collect();
        spec.env = extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ClusterNode::from_spec(id, port, peer_port, spec)
    }

    /// Starts the node `spec` describes and waits until it accepts connections.
    fn from_spec(id: u64, port: u16, peer_port: Option<u16>, spec: NodeSpec) -> ClusterNode {
        ClusterNode { id, data_dir: spec.data_dir.clone(), port, peer_port, node: TestNode::start(spec) }
    }

    pub fn endpoint(&self) -> String {
        let scheme = if self.peer_port.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The URL peers reach this node at (the client port unless TLS gave peers their own).
    pub fn peer_endpoint(&self) -> String {
        match self.peer_port {
            Some(port) => format!("https://127.0.0.1:{port}"),
            None => self.endpoint(),
        }
    }

    /// The node's snapshot files (`<data_dir>/snapshots/*.bin`).
    pub fn snapshot_files(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.data_dir.join("snapshots")) else {
            return Vec::new();
        };
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "bin")).collect()
    }

    /// Deletes the node's data dir (the node must be stopped): a disk lost for good.
    pub fn wipe(&mut self) {
        assert!(!self.is_running(), "wipe a node that is stopped");
        std::fs::remove_dir_all(&self.data_dir).expect("wipe the data dir");
    }
}

deref_to_test_node!(ClusterNode);

/// `ledger-node start --node-id <id>` on 127.0.0.1:`port` with `data_dir`, nothing else yet.
fn member_spec(id: u64, data_dir: &Path, port: u16) -> NodeSpec {
    NodeSpec::new(Mode::Member { id }, data_dir.to_path_buf(), format!("127.0.0.1:{port}")).unwrap_or_else(|e| panic!("{e}"))
}

/// N `ledger-node start` processes in one temp dir. Node ids are handed out once, from 1 up.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<ClusterNode>,
    next_id: u64,
    extra_args: Vec<String>,
    /// `Some`: TLS on, with the files of `<dir>/pki`.
    pub pki: Option<Pki>,
}

impl Cluster {
    /// Starts `n` nodes; node 1 bootstraps the cluster of all of them (`--bootstrap --peer ...`).
    pub fn bootstrap(n: u64, extra_args: &[&str]) -> Cluster {
        Cluster::bootstrap_with_env(n, extra_args, &[])
    }

    /// `bootstrap`, every node started with `extra_env` set (nodes added later are not).
    pub fn bootstrap_with_env(n: u64, extra_args: &[&str], extra_env: &[(&str, &str)]) -> Cluster {
        Cluster::bootstrap_with(n, extra_args, extra_env, false)
    }

    /// `bootstrap` with TLS: a new CA in `<dir>/pki`, a certificate per node, peers on their
    /// own ports with mutual TLS, clients over https.
    pub fn bootstrap_tls(n: u64, extra_args: &[&str]) -> Cluster {
        Cluster::bootstrap_with(n, extra_args, &[], true)
    }

    fn bootstrap_with(n: u64, extra_args: &[&str], extra_env: &[(&str, &str)], tls: bool) -> Cluster {
        let mut cluster = Cluster::empty(extra_args);
        if tls {
            cluster.pki = Some(Pki::new(&cluster.dir.path().join("pki")));
        }
        let pki = cluster.pki.as_ref();
        // Peers first: they wait, empty, for the bootstrapping node to contact them.
        let peers: Vec<ClusterNode> = (2..=n)
            .map(|id| {
                ClusterNode::start_with(id, &cluster.dir.path().join(format!("node{id}")), None, extra_args, extra_env, pki)
            })
            .collect();
        let members: Vec<(u64, String)> = peers.iter().map(|p| (p.id, p.peer_endpoint())).collect();
        let first =
            ClusterNode::start_with(1, &cluster.dir.path().join("node1"), Some(&members), extra_args, extra_env, pki);
        cluster.nodes.push(first);
        cluster.nodes.extend(peers);
        cluster.next_id = n + 1;
        cluster
    }

    /// Starts `n` empty nodes and forms the cluster with `ledger cluster init` sent to node 1.
    pub fn init_with_cli(n: u64, extra_args: &[&str]) -> Cluster {
        let mut cluster = Cluster::empty(extra_args);
        for _ in 0..n {
            cluster.start_node(false);
        }
        let mut args = vec!["cluster".to_string(), "init".to_string()];
        for node in &cluster.nodes[1..] {
            args.push("--peer".into());
            args.push(format!("{}={}", node.id, node.peer_endpoint()));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = cli(&cluster.nodes[0].endpoint(), &args);
        assert!(
            output.status.success(),
            "cluster init: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            cluster.logs()
        );
        cluster
    }

    /// No nodes yet; `start_node` adds them.
    pub fn empty(extra_args: &[&str]) -> Cluster {
        Cluster {
            dir: tempfile::Builder::new().prefix("ledger-cluster-").tempdir().expect("temp dir"),
            nodes: Vec::new(),
            next_id: 1,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            pki: None,
        }
    }

    /// Starts a node with the next unused id (with `bootstrap`, it forms a cluster of itself).
    pub fn start_node(&mut self, bootstrap: bool) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let extra: Vec<&str> = self.extra_args.iter().map(String::as_str).collect();
        let node = ClusterNode::start_with(
            id,
            &self.dir.path().join(format!("node{id}")),
            bootstrap.then_some(&[][..]),
            &extra,
            &[],
            self.pki.as_ref(),
        );
        self.nodes.push(node);
        id
    }

    pub fn node(&mut self, id: u64) -> &mut ClusterNode {
        self.nodes.iter_mut().find(|n| n.id == id).unwrap_or_else(|| panic!("no node {id}"))
    }

    /// Endpoints of the running nodes.
    pub fn endpoints(&self) -> Vec<String> {
        self.nodes.iter().filter(|n| n.is_running()).map(ClusterNode::endpoint).collect()
    }

    pub fn logs(&self) -> String {
        self.nodes.iter().map(|n| format!("==== node {} ====\n{}\n", n.id, n.log())).collect()
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

/// `cli` over TLS: the nodes verified against `pki`'s CA, client certificate `name` if given.
pub fn cli_tls(endpoint: &str, pki: &Pki, client: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(binary("ledger"));
    command.args(["--endpoint", endpoint, "--output", "json", "--tls-ca"]).arg(pki.ca());
    if let Some(name) = client {
        let (cert, key) = pki.client(name);
        command.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
    }
    command.args(args).stdin(Stdio::null()).output().expect("run the ledger CLI")
}
