//! One `ledger-node` process: how it is started ([`NodeSpec`]) and the running process
//! ([`NodeProcess`]).

use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::tls::TlsFiles;

/// `LEDGER_LOG` unless a spec says otherwise: the node's own info lines, openraft's warnings,
/// and not its per-heartbeat errors while a peer is down.
pub const LOG_FILTER: &str = "info,openraft=warn,openraft::core::heartbeat=error";

/// How often `wait_ready` and `wait_exit` look again.
const POLL: Duration = Duration::from_millis(20);

/// `ledger-node dev` (a single node that forms its own cluster and serves once it leads) or
/// `ledger-node start --node-id <id>` (a cluster member).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Dev,
    Member { id: u64 },
}

/// Where the node's stdout and stderr go.
#[derive(Clone, Debug)]
pub enum Output {
    /// Appended to this file (kept across restarts; `NodeSpec::log` reads it).
    File(PathBuf),
    /// Stdout discarded, stderr to the caller's stderr (a tool's console).
    Stderr,
}

/// Everything one start of a node needs. Kept by the owner and spawned again for a restart.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub mode: Mode,
    pub data_dir: PathBuf,
    /// The client address, `host:port` (also the peer address unless `peer_listen` is set).
    pub listen: String,
    pub peer_listen: Option<String>,
    pub tls: Option<TlsFiles>,
    /// `Some(peers)`: `--bootstrap` with these `(id, peer URL)`s (`Some(vec![])`: a cluster of
    /// itself). Only a first start bootstraps: `spawn` clears it once the process runs.
    pub bootstrap: Option<Vec<(u64, String)>>,
    /// Flags added to every start (Raft tuning, auth, metrics...).
    pub extra_args: Vec<String>,
    /// Environment variables set on every start.
    pub env: Vec<(String, String)>,
    /// `LEDGER_LOG`.
    pub log_filter: String,
    pub output: Output,
    /// A command the node runs under, e.g. `ip netns exec <ns>` (it must exec the node in place,
    /// so that the child's pid is the node's).
    pub wrapper: Vec<String>,
    /// The `ledger-node` binary.
    pub binary: PathBuf,
}

impl NodeSpec {
    /// A spec with no TLS, no bootstrap, no extra flags, output to `data_dir` + `.log`, the
    /// `ledger-node` that `crate::binary` finds.
    pub fn new(mode: Mode, data_dir: PathBuf, listen: String) -> std::io::Result<NodeSpec> {
        Ok(NodeSpec {
            mode,
            output: Output::File(data_dir.with_extension("log")),
            data_dir,
            listen,
            peer_listen: None,
            tls: None,
            bootstrap: None,
            extra_args: Vec::new(),
            env: Vec::new(),
            log_filter: LOG_FILTER.to_string(),
            wrapper: Vec::new(),
            binary: crate::binary("ledger-node")?,
        })
    }

    /// The node's arguments (without the binary), in one place.
    pub fn args(&self) -> Vec<String> {
        let mut args = match self.mode {
            Mode::Dev => vec!["dev".to_string()],
            Mode::Member { id } => vec!["start".to_string(), "--node-id".into(), id.to_string()],
        };
        args.extend(["--data-dir".to_string(), self.data_dir.display().to_string(), "--listen".into(), self.listen.clone()]);
        if let Some(peer_listen) = &self.peer_listen {
            args.extend(["--peer-listen".to_string(), peer_listen.clone()]);
        }
        args.extend(self.tls.iter().flat_map(TlsFiles::args));
        args.extend(self.extra_args.iter().cloned());
        if let Some(peers) = &self.bootstrap {
            args.push("--bootstrap".into());
            args.extend(peers.iter().flat_map(|(id, url)| ["--peer".to_string(), format!("{id}={url}")]));
        }
        args
    }

    /// The command that starts the node (through `wrapper`, if any), with `once` flags added;
    /// output not redirected. `spawn` uses it; so can a caller that runs a start to its exit.
    pub fn command(&self, once: &[String]) -> Command {
        let mut command = match self.wrapper.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(&self.binary);
                command
            }
            None => Command::new(&self.binary),
        };
        command
            .args(self.args())
            .args(once)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("LEDGER_LOG", &self.log_filter)
            .stdin(Stdio::null());
        command
    }

    /// Starts the node (returns at once: see `NodeProcess::wait_ready`). A bootstrap happens on
    /// this start only: `bootstrap` is cleared.
    pub fn spawn(&mut self) -> std::io::Result<NodeProcess> {
        let mut command = self.command(&[]);
        match &self.output {
            Output::File(path) => {
                let log = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
                command.stdout(log.try_clone()?).stderr(log);
            }
            Output::Stderr => {
                command.stdout(Stdio::null()).stderr(Stdio::inherit());
            }
        }
        let child = command
            .spawn()
            .map_err(|e| std::io::Error::new(e.kind(), format!("spawn {}: {e}", self.binary.display())))?;
        self.bootstrap = None;
        Ok(NodeProcess { child: Some(child), label: self.label(), listen: self.listen.clone(), output: self.output.clone() })
    }

    /// What the node's output file holds so far ("" without one).
    pub fn log(&self) -> String {
        read_log(&self.output)
    }

    fn label(&self) -> String {
        match self.mode {
            Mode::Dev => format!("ledger-node dev on {}", self.listen),
            Mode::Member { id } => format!("ledger-node {id} on {}", self.listen),
        }
    }
}

fn read_log(output: &Output) -> String {
    match output {
        Output::File(path) => std::fs::read_to_string(path).unwrap_or_default(),
        Output::Stderr => String::new(),
    }
}

/// A running node. Dropped while running, it is killed (SIGKILL) and reaped.
pub struct NodeProcess {
    /// `None` once reaped.
    child: Option<Child>,
    label: String,
    listen: String,
    output: Output,
}

impl NodeProcess {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The process has not exited (a stopped process counts as running).
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Waits until the node accepts TCP connections on its client address, at most `timeout`.
    /// A member binds its port before it has a cluster; `ledger-node dev` binds once it leads.
    /// Fails at once if the process exits, and on timeout, with the node's log either way.
    pub fn wait_ready(&mut self, timeout: Duration) -> std::io::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(self.error(format!("exited with {status} before serving")));
            }
            if self.accepts_connections() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.error(format!("did not accept connections within {timeout:?}")));
            }
            std::thread::sleep(POLL);
        }
    }

    fn accepts_connections(&self) -> bool {
        let Ok(addresses) = self.listen.to_socket_addrs() else { return false };
        addresses.into_iter().any(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok())
    }

    /// SIGKILL and reap: no shutdown code runs, as in a crash. Nothing happens if it has exited.
    pub fn kill9(mut self) {
        self.reap_killed();
    }

    fn reap_killed(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (a `kill` name: "TERM", "STOP", "CONT") and returns at once.
    pub fn signal(&self, signal: &str) -> std::io::Result<()> {
        let Some(pid) = self.pid() else { return Err(self.error("has been reaped".into())) };
        let status = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status()?;
        if !status.success() {
            return Err(self.error(format!("kill -{signal} {pid} failed")));
        }
        Ok(())
    }

    /// Waits for the process to exit, at most `timeout` (then kills it and fails).
    pub fn wait_exit(mut self, timeout: Duration) -> std::io::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().expect("a process not yet reaped");
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Ok(status);
            }
            std::thread::sleep(POLL);
        }
        self.reap_killed();
        Err(self.error(format!("did not exit within {timeout:?} (killed)")))
    }

    /// SIGTERM, a graceful shutdown, then `wait_exit(timeout)`.
    pub fn terminate(self, timeout: Duration) -> std::io::Result<ExitStatus> {
        self.signal("TERM")?;
        self.wait_exit(timeout)
    }

    /// What the node's output file holds so far.
    pub fn log(&self) -> String {
        read_log(&self.output)
    }

    fn error(&self, what: String) -> std::io::Error {
        std::io::Error::other(format!("{} {what}; log:\n{}", self.label, self.log()))
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.reap_killed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory for one test's logs.
    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ledger-harness-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A spec whose "node" is `script` run by `sh -c` (the node's own arguments become the
    /// script's `$0 $1...` and are ignored), on 127.0.0.1:`port`, logging to `<dir>/<name>.log`.
    fn fake(script: &str, port: u16, dir: &std::path::Path, name: &str) -> NodeSpec {
        NodeSpec {
            mode: Mode::Member { id: 1 },
            data_dir: dir.join(name),
            listen: format!("127.0.0.1:{port}"),
            peer_listen: None,
            tls: None,
            bootstrap: Some(vec![(2, "http://127.0.0.1:1".into())]),
            extra_args: Vec::new(),
            env: Vec::new(),
            log_filter: LOG_FILTER.into(),
            output: Output::File(dir.join(format!("{name}.log"))),
            wrapper: vec!["sh".into(), "-c".into(), script.into()],
            binary: PathBuf::from("ledger-node"),
        }
    }

    /// A stand-in node that says "up" and listens on `port` until killed.
    fn listener(port: u16) -> String {
        format!("echo up; exec python3 -c 'import socket,time; s=socket.socket(); s.bind((\"127.0.0.1\",{port})); s.listen(); time.sleep(60)'")
    }

    #[test]
    fn arguments_name_every_setting_and_bootstrap_only_the_first_start() {
        let dir = scratch("args");
        let mut spec = fake("exit 0", 7070, &dir, "n1");
        spec.peer_listen = Some("127.0.0.1:7080".into());
        spec.tls = Some(TlsFiles::issued(&dir, 1));
        spec.extra_args = vec!["--metrics-listen".into(), "127.0.0.1:9100".into()];
        let args = spec.args().join(" ");
        assert!(args.starts_with("start --node-id 1 --data-dir "), "{args}");
        for part in ["--listen 127.0.0.1:7070", "--peer-listen 127.0.0.1:7080", "node-1.pem", "node-1-key.pem", "ca.pem", "--metrics-listen", "--bootstrap --peer 2=http://127.0.0.1:1"] {
            assert!(args.contains(part), "{part} missing from {args}");
        }
        assert!(spec.spawn().unwrap().wait_exit(Duration::from_secs(10)).unwrap().success());
        assert!(!spec.args().contains(&"--bootstrap".to_string()), "a restart never bootstraps");
    }

    #[test]
    fn ready_once_the_port_accepts_and_sigterm_or_drop_ends_it() {
        let dir = scratch("ready");
        let port = crate::free_port().unwrap();
        let mut spec = fake(&listener(port), port, &dir, "n1");
        let mut process = spec.spawn().unwrap();
        process.wait_ready(Duration::from_secs(30)).unwrap();
        assert!(process.is_running());
        assert_eq!(process.log().trim(), "up", "the output goes to the log file");
        let status = process.terminate(Duration::from_secs(10)).unwrap();
        assert!(!status.success(), "ended by SIGTERM: {status}");
        // Dropped while running: killed and reaped, so the port is free again at once.
        let mut process = spec.spawn().unwrap();
        process.wait_ready(Duration::from_secs(30)).unwrap();
        drop(process);
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(), "the dropped process was killed");
    }

    #[test]
    fn a_process_that_exits_or_never_listens_is_reported_with_its_log() {
        let dir = scratch("exit");
        let port = crate::free_port().unwrap();
        let mut spec = fake("echo refusing to start >&2; exit 3", port, &dir, "n1");
        let err = spec.spawn().unwrap().wait_ready(Duration::from_secs(30)).unwrap_err().to_string();
        assert!(err.contains("exited with exit status: 3") && err.contains("refusing to start"), "{err}");

        let mut process = fake("sleep 30", port, &dir, "n2").spawn().unwrap();
        let started = Instant::now();
        let err = process.wait_ready(Duration::from_millis(300)).unwrap_err().to_string();
        assert!(err.contains("did not accept connections within 300ms"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let err = process.wait_exit(Duration::from_millis(100)).unwrap_err().to_string();
        assert!(err.contains("did not exit within 100ms (killed)"), "{err}");
    }
}
