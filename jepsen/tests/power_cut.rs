//! The power-cut mutation proof (issue 19): a `ledger-node dev`, then a 3-node cluster, each
//! node's data dir on its own `powercut-fs` (a FUSE pass-through that keeps unsynced writes in
//! memory), takes acknowledged transfers; then the power is cut on every node at once (nodes
//! SIGKILLed, every unsynced byte dropped) and the nodes restart over what a power loss leaves. The durability check — every acknowledged transfer
//! is found by id and the balances conserve — must pass with the Raft log's fsync, and must
//! FAIL with the fsync skipped (`LEDGER_UNSAFE_SKIP_FSYNC=1`): a check that cannot see a missing
//! fsync proves nothing, and kill -9 alone cannot (the page cache survives it).
//!
//! Needs root and /dev/fuse. Without them the test is skipped with a message, except under
//! `CI=true`, where it fails: CI must run it. Builds `powercut-fs` (its own workspace) into
//! `<target>/powercut-fs`; needs `ledger-node` built next to `jepsen`. Bounded: about 2 s a run
//! here; every wait is bounded (serving 30 s, election 20 s).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use jepsen::{power_cut, workload};
use ledger_client::{Amount, Leg, NewTransfer};

/// Accounts funded with `BALANCE` each; their total must survive any power cut.
const ACCOUNTS: u64 = 4;
const BALANCE: i64 = 1000;
/// Transfers sent one at a time after the setup (each acknowledged only once committed).
const TRANSFERS: u128 = 120;
/// How long a node may take to serve (fresh or after a power cut).
const SERVE_WAIT: Duration = Duration::from_secs(30);
/// How long a cluster may take to elect a leader and answer (fresh or after a power cut).
const ELECTION_WAIT: Duration = Duration::from_secs(20);

#[test]
fn power_cut_loses_no_acknowledged_transfer_with_fsync_and_the_check_sees_a_skipped_fsync() {
    if !fuse_available() {
        return;
    }
    let fs_bin = power_cut::build(&target_dir()).expect("build powercut-fs");
    // One dev node, then a 3-node cluster whose nodes all lose power at once.
    for nodes in [1, 3] {
        let synced = run_power_cut(&fs_bin, nodes, false, Fault::PowerCut);
        println!("{nodes} node(s), with fsync: {}", synced.summary());
        assert_eq!(durability_violations(&synced), Vec::<String>::new(), "{nodes} node(s): with fsync, a power cut lost data");

        if nodes == 1 {
            // The blind spot this fault closes: kill -9 alone (the page cache survives) misses it.
            let killed = run_power_cut(&fs_bin, nodes, true, Fault::KillOnly);
            println!("{nodes} node(s), fsync skipped, kill -9 only: {}", killed.summary());
            assert_eq!(durability_violations(&killed), Vec::<String>::new(), "kill -9 alone lost data: {}", killed.summary());
        }

        let unsynced = run_power_cut(&fs_bin, nodes, true, Fault::PowerCut);
        println!("{nodes} node(s), fsync skipped: {}", unsynced.summary());
        let violations = durability_violations(&unsynced);
        assert!(!violations.is_empty(), "{nodes} node(s): mutation not detected: the power cut lost nothing: {}", unsynced.summary());
        println!("{nodes} node(s): mutation detected: {violations:?}");
    }
}

/// Root and /dev/fuse, or a loud skip (a failure under CI=true).
fn fuse_available() -> bool {
    let Err(why) = power_cut::available() else { return true };
    assert!(std::env::var("CI").map_or(true, |v| v != "true"), "{why}: CI must run this test");
    eprintln!("SKIPPED: {why}");
    false
}

/// `<target>` of this test binary (`<target>/release/deps/power_cut-…`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.ancestors().nth(3).expect("<target>/release/deps/<test>").to_path_buf()
}

/// What the node holds after the power cut, against what was acknowledged before it.
enum Survivors {
    /// The node serves again: the acknowledged transfers it cannot find, and its balances.
    Read { acknowledged: usize, missing: Vec<u128>, balances: Vec<i64>, dropped: String },
    /// The node did not serve again: nothing acknowledged can be read back.
    Unreadable { acknowledged: usize, why: String },
}

impl Survivors {
    fn summary(&self) -> String {
        match self {
            Survivors::Read { acknowledged, missing, balances, dropped } => {
                format!("{acknowledged} acknowledged, {} missing, balances {balances:?}; {dropped}", missing.len())
            }
            Survivors::Unreadable { acknowledged, why } => format!("{acknowledged} acknowledged, node unreadable: {why}"),
        }
    }
}

/// The durability checker: every acknowledged transfer present, the total conserved.
fn durability_violations(survivors: &Survivors) -> Vec<String> {
    match survivors {
        Survivors::Unreadable { acknowledged, why } => vec![format!("{acknowledged} acknowledged transfers unreadable: {why}")],
        Survivors::Read { missing, balances, .. } => {
            let mut violations = Vec::new();
            if !missing.is_empty() {
                violations.push(format!("{} acknowledged transfers lost, e.g. {:?}", missing.len(), &missing[..missing.len().min(5)]));
            }
            let total: i64 = balances.iter().sum();
            if balances.len() as u64 != ACCOUNTS || total != ACCOUNTS as i64 * BALANCE {
                violations.push(format!("balances {balances:?} do not conserve {}", ACCOUNTS as i64 * BALANCE));
            }
            violations
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// SIGKILL, then the power cut (unsynced bytes dropped, filesystem remounted).
    PowerCut,
    /// SIGKILL only: the filesystem keeps what the node wrote, as the page cache does.
    KillOnly,
}

/// One run on `nodes` nodes (1: `ledger-node dev`; more: a bootstrapped cluster), each on its
/// own disk: start, write, kill every node (and cut every disk's power), restart, read back.
fn run_power_cut(fs_bin: &Path, nodes: u64, skip_fsync: bool, fault: Fault) -> Survivors {
    let root = std::env::temp_dir().join(format!("powercut-{}-{nodes}-{skip_fsync}-{fault:?}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let slots = (1..=nodes)
        .map(|id| Slot { id, child: None, disk: power_cut::Disk::new(fs_bin, &root.join(format!("n{id}"))).expect("disk"), port: free_port() })
        .collect();
    let mut rig = Rig { slots, root: root.clone() };
    let survivors = cut_and_read_back(&mut rig, skip_fsync, fault);
    drop(rig);
    let _ = std::fs::remove_dir_all(&root);
    survivors
}

fn cut_and_read_back(rig: &mut Rig, skip_fsync: bool, fault: Fault) -> Survivors {
    rig.slots.iter_mut().for_each(|s| s.disk.mount().expect("mount"));
    rig.start_all(skip_fsync, true).unwrap_or_else(|why| panic!("fresh nodes did not serve: {why}"));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let acknowledged = runtime.block_on(write_transfers(rig.urls()));
    rig.kill_all();
    let mut dropped = Vec::new();
    if fault == Fault::PowerCut {
        for slot in &mut rig.slots {
            dropped.push(slot.disk.cut().expect("power cut"));
            slot.disk.mount().expect("remount");
        }
    }
    let dropped = if dropped.is_empty() { "no power cut".to_string() } else { dropped.join("; ") };
    if let Err(why) = rig.start_all(false, false) {
        return Survivors::Unreadable { acknowledged: acknowledged.len(), why };
    }
    match runtime.block_on(read_back(rig.urls(), &acknowledged)) {
        Ok((missing, balances)) => Survivors::Read { acknowledged: acknowledged.len(), missing, balances, dropped },
        Err(why) => Survivors::Unreadable { acknowledged: acknowledged.len(), why },
    }
}

/// Sets up the accounts and sends the transfers one at a time; the ids acknowledged.
async fn write_transfers(urls: Vec<String>) -> Vec<u128> {
    let client = workload::client(urls, None).expect("client");
    retry_until_elected(|| workload::setup(&client, ACCOUNTS, BALANCE)).await.expect("setup");
    let mut acknowledged: Vec<u128> = (1..=ACCOUNTS).map(|id| u128::from(1_000_000 + id)).collect();
    for id in 1..=TRANSFERS {
        let (from, to) = (id % ACCOUNTS as u128 + 1, (id + 1) % ACCOUNTS as u128 + 1);
        let leg = Leg::new(from, to, Amount::from(1 + id as i64 % 7));
        let transfer = NewTransfer::posted(id, format!("pc-{id}"), workload::ASSET, vec![leg]);
        if let Ok(results) = client.create_transfers(vec![transfer]).await {
            if results.first().is_some_and(|r| r.is_success()) {
                acknowledged.push(id);
            }
        }
    }
    assert!(acknowledged.len() as u128 > TRANSFERS / 2, "too few transfers acknowledged: {}", acknowledged.len());
    acknowledged
}

/// `op` until it succeeds or `ELECTION_WAIT` passes (a cluster just started has no leader yet).
async fn retry_until_elected<T, F, Fut>(mut op: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let deadline = Instant::now() + ELECTION_WAIT;
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The acknowledged ids the node cannot find, and every account's balance.
async fn read_back(urls: Vec<String>, acknowledged: &[u128]) -> Result<(Vec<u128>, Vec<i64>), String> {
    let client = workload::client(urls, None).map_err(|e| e.to_string())?;
    let found = retry_until_elected(|| async { Ok(client.lookup_transfers(acknowledged.to_vec()).await?) }).await.map_err(|e| e.to_string())?;
    let found: std::collections::BTreeSet<u128> = found.iter().map(|r| r.transfer.id).collect();
    let missing = acknowledged.iter().copied().filter(|id| !found.contains(id)).collect();
    let accounts = client.lookup_accounts((1..=ACCOUNTS).map(u128::from).collect()).await.map_err(|e| e.to_string())?;
    Ok((missing, accounts.iter().map(workload::balance_of).collect()))
}

/// One node and its disk.
struct Slot {
    id: u64,
    child: Option<Child>,
    disk: power_cut::Disk,
    port: u16,
}

impl Slot {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The nodes and their disks; the nodes are killed, the disks unmounted on drop.
struct Rig {
    slots: Vec<Slot>,
    root: PathBuf,
}

impl Rig {
    fn urls(&self) -> Vec<String> {
        self.slots.iter().map(Slot::url).collect()
    }

    /// Starts every node (with `bootstrap`, node 1 forms the cluster of all); peers first.
    fn start_all(&mut self, skip_fsync: bool, bootstrap: bool) -> Result<(), String> {
        let members: Vec<String> = self.slots[1..].iter().map(|s| format!("{}={}", s.id, s.url())).collect();
        for index in (0..self.slots.len()).rev() {
            let mut command = self.command(index, skip_fsync);
            if bootstrap && index == 0 && self.slots.len() > 1 {
                command.arg("--bootstrap");
                for member in &members {
                    command.args(["--peer", member]);
                }
            }
            self.slots[index].child = Some(command.spawn().expect("spawn ledger-node"));
            self.wait_serving(index)?;
        }
        Ok(())
    }

    fn command(&self, index: usize, skip_fsync: bool) -> Command {
        let slot = &self.slots[index];
        let node_bin = Path::new(env!("CARGO_BIN_EXE_jepsen")).with_file_name("ledger-node");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path(slot.id)).expect("node log");
        let mut command = Command::new(node_bin);
        if self.slots.len() == 1 {
            command.arg("dev");
        } else {
            command.args(["start", "--node-id", &slot.id.to_string()]);
        }
        command
            .arg("--data-dir")
            .arg(slot.disk.mountpoint().join("node"))
            .args(["--listen", &format!("127.0.0.1:{}", slot.port)])
            .env("LEDGER_LOG", "info,openraft=warn")
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        if skip_fsync {
            command.env("LEDGER_UNSAFE_SKIP_FSYNC", "1");
        }
        command
    }

    fn log_path(&self, id: u64) -> PathBuf {
        self.root.join(format!("node{id}.log"))
    }

    /// Until the node binds its port (a dev node: once it leads its one-node cluster).
    fn wait_serving(&mut self, index: usize) -> Result<(), String> {
        let deadline = Instant::now() + SERVE_WAIT;
        let (id, port) = (self.slots[index].id, self.slots[index].port);
        while Instant::now() < deadline {
            if let Some(status) = self.slots[index].child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.slots[index].child = None;
                return Err(format!("ledger-node {id} exited with {status}; log: {}", self.log_tail(id)));
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("ledger-node {id} did not serve within {SERVE_WAIT:?}; log: {}", self.log_tail(id)))
    }

    fn log_tail(&self, id: u64) -> String {
        let log = std::fs::read_to_string(self.log_path(id)).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// SIGKILL every node: the first half of a power cut (the processes die with the machines).
    fn kill_all(&mut self) {
        for slot in &mut self.slots {
            if let Some(mut child) = slot.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.kill_all(); // before the disks unmount
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}
