//! One run: start the cluster, set up the bank, run clients while the nemesis follows its seeded
//! schedule, heal, read the final state from every replica, judge, and write the run directory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use ledger_client::LedgerClient;
use serde::Serialize;
use serde_json::json;

use crate::checker::transfers::FinalState;
use crate::checker::two_phase::{self, HoldState};
use crate::checker::{self, Verdict};
use crate::cluster::{Cluster, Setup};
use crate::history::{self, Op};
use crate::schedule::{self, Fault, Nemesis, PartitionShape, Rng, SnapshotPhase, Target};
use crate::workload::{self, Recorder, Workload};
use crate::report;

#[derive(Clone)]
pub struct Options {
    pub workload: Workload,
    pub nodes: usize,
    pub nemeses: Vec<Nemesis>,
    pub time_limit_s: u64,
    pub rate: u64,
    pub concurrency: u32,
    pub accounts: u64,
    pub seed: u64,
    pub dir: PathBuf,
    /// Raft log entries between snapshots on every node.
    pub snapshot_entries: u64,
    /// `Some(reason)`: an undecided verdict does not fail the run, for this stated reason.
    pub accept_undecided: Option<String>,
}

/// Log entries between snapshots by default: a few hundred, so a 25 s run at 100 ops/s builds
/// several, purges the log behind them, and a node that was down a few seconds needs one.
pub const SNAPSHOT_ENTRIES: u64 = 300;

/// How long a node gets, once a full disk has room again, to serve again by itself.
const RECOVERY_WAIT: Duration = Duration::from_secs(20);
const BALANCE_INITIAL: i64 = 1_000;
/// Size of each node's own filesystem under the `disk-full` nemesis (a run's data is a few MiB).
const DISK_MB: u64 = 128;
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(90);
/// After the load, how long every hold has to be resolved or expired (the leader's expiry tick
/// releases a hold soon after its timeout; a new leader may have to be elected first).
const HOLDS_SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Serialize)]
struct TimelineEvent {
    time_ms: u64,
    phase: &'static str,
    fault: Fault,
    detail: String,
}

struct FaultInjector {
    timeline: Vec<TimelineEvent>,
    start: Instant,
    /// Slots acted on by the open window.
    slots: Vec<usize>,
    faults_injected: usize,
    /// Faults injected per class (`Fault::class`).
    by_class: BTreeMap<&'static str, usize>,
    snapshot_entries: u64,
    /// The leader's last log index when a `snapshot-kill` (install) window began.
    log_index_at_kill: u64,
    /// Times a node was found dead that no fault had killed (a crash: e.g. on a full disk).
    crashes: Vec<String>,
    /// Disk-full windows after which the node (alive) served again only once restarted.
    disk_full_restarts: usize,
    /// `snapshot-kill` (install) kills that landed while a snapshot arrived or installed.
    snapshot_kills_mid_install: usize,
    /// `snapshot-kill` (build) kills that landed while the node wrote a snapshot.
    snapshot_kills_mid_build: usize,
}

/// The leader's status (its last log index), asked of every node.
async fn leader_status(cluster: &Cluster, client: &LedgerClient) -> Option<ledger_client::ClusterStatus> {
    for url in cluster.urls() {
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(2), client.cluster_status_at(&url)).await {
            if s.role == "leader" && s.error.is_none() {
                return Some(s);
            }
        }
    }
    None
}

/// How many lines of `slot`'s log contain `needle`.
fn log_count(cluster: &Cluster, slot: usize, needle: &str) -> usize {
    std::fs::read_to_string(cluster.log_path(slot)).unwrap_or_default().lines().filter(|l| l.contains(needle)).count()
}

async fn leader_slot(cluster: &Cluster, client: &LedgerClient) -> Option<usize> {
    let status = tokio::time::timeout(Duration::from_secs(3), client.cluster_status()).await.ok()?.ok()?;
    cluster.slot_of_id(status.leader_id?)
}

fn others(n: usize, of: &[usize]) -> Vec<usize> {
    (0..n).filter(|s| !of.contains(s)).collect()
}

impl FaultInjector {
    fn log(&mut self, phase: &'static str, fault: &Fault, detail: String) {
        println!("[{:>6} ms] nemesis {phase} {fault:?}: {detail}", self.start.elapsed().as_millis());
        self.timeline.push(TimelineEvent { time_ms: self.start.elapsed().as_millis() as u64, phase, fault: fault.clone(), detail });
    }

    async fn targets(&self, cluster: &Cluster, client: &LedgerClient, target: &Target, rng: &mut Rng) -> Vec<usize> {
        match target {
            Target::Leader => vec![leader_slot(cluster, client).await.unwrap_or_else(|| rng.range(0, cluster.nodes.len() as u64 - 1) as usize)],
            Target::Random { node } => vec![*node],
            Target::Majority { nodes } => nodes.clone(),
        }
    }

    async fn begin(&mut self, cluster: &mut Cluster, client: &LedgerClient, fault: &Fault, rng: &mut Rng) -> anyhow::Result<()> {
        let n = cluster.nodes.len();
        let detail = match fault {
            Fault::Kill { target } => {
                self.slots = self.targets(cluster, client, target, rng).await;
                for &s in &self.slots {
                    cluster.kill(s);
                }
                format!("SIGKILL slots {:?}", self.slots)
            }
            Fault::Pause { target } => {
                self.slots = self.targets(cluster, client, target, rng).await;
                for &s in &self.slots {
                    cluster.pause(s)?;
                }
                format!("SIGSTOP slots {:?}", self.slots)
            }
            Fault::Partition { shape } => {
                let leader = leader_slot(cluster, client).await.unwrap_or(0);
                let net = cluster.net.as_mut().context("partitions need the namespaced network")?;
                let sides: Vec<(usize, usize)> = match shape {
                    PartitionShape::IsolateLeader => others(n, &[leader]).into_iter().map(|o| (leader, o)).collect(),
                    PartitionShape::Halves { minority } => {
                        minority.iter().flat_map(|&a| others(n, minority).into_iter().map(move |b| (a, b))).collect()
                    }
                    PartitionShape::Bridge { bridge } => {
                        let rest = others(n, &[*bridge]);
                        let (a, b) = rest.split_at(rest.len() / 2);
                        a.iter().flat_map(|&x| b.iter().map(move |&y| (x, y))).collect()
                    }
                    PartitionShape::Ring => {
                        let mut cut = Vec::new();
                        for a in 0..n {
                            for b in a + 1..n {
                                if b != a + 1 && !(a == 0 && b == n - 1) {
                                    cut.push((a, b));
                                }
                            }
                        }
                        cut
                    }
                };
                for (a, b) in sides {
                    net.cut(a, b)?;
                }
                format!("leader slot {leader}; cut pairs {:?}", net.cut_pairs())
            }
            Fault::ClientPartition { target } => {
                let slots = self.targets(cluster, client, target, rng).await;
                let net = cluster.net.as_mut().context("a client partition needs the namespaced network")?;
                for &s in &slots {
                    net.cut_from_clients(s)?;
                }
                format!("slots {:?} cut from the clients", net.cut_from_clients_slots())
            }
            Fault::Membership { node } => {
                self.slots = vec![*node];
                let id = cluster.nodes[*node].id;
                match tokio::time::timeout(Duration::from_secs(20), client.remove_node(id)).await {
                    Ok(Ok(change)) => {
                        cluster.kill(*node);
                        format!("removed node {id} (slot {node}; changed: {})", change.changed)
                    }
                    Ok(Err(e)) => {
                        self.slots.clear();
                        format!("remove node {id} refused: {e}")
                    }
                    Err(_) => {
                        // Unknown outcome: the node may be out; the end of the window replaces it.
                        cluster.kill(*node);
                        format!("remove node {id} timed out")
                    }
                }
            }
            Fault::Grow => {
                let slot = cluster.add_slot()?;
                self.slots = vec![slot];
                let added = add_learner(cluster, slot).await?;
                format!("started node {} in new slot {slot}; add-learner {added:?}", cluster.nodes[slot].id)
            }
            Fault::Corrupt { node } => {
                self.slots = vec![*node];
                cluster.kill(*node);
                let flipped = cluster.flip_byte(*node, rng.next_u64())?;
                cluster.restart(*node)?;
                format!("flipped {flipped}; restarted slot {node}")
            }
            Fault::Clock { target, offset_secs } => {
                self.slots = self.targets(cluster, client, target, rng).await;
                for &s in &self.slots {
                    cluster.set_clock_offset(s, *offset_secs)?;
                }
                format!("clock of slots {:?} shifted by {offset_secs} s (live)", self.slots)
            }
            Fault::KillAll => {
                self.slots = (0..n).collect();
                for s in 0..n {
                    cluster.kill(s);
                }
                format!("SIGKILL every slot {:?}", self.slots)
            }
            Fault::SnapshotKill { node, during: SnapshotPhase::Install } => {
                // A follower: it comes back behind a purged log, so the leader must send a snapshot.
                let leader = leader_slot(cluster, client).await;
                let slot = if Some(*node) == leader { (*node + 1) % n } else { *node };
                // Removed first: openraft keeps the log a member's replication still needs, so a
                // member that is merely down catches up from the log, never from a snapshot.
                self.log_index_at_kill = leader_status(cluster, client).await.map_or(0, |s| s.last_log_index);
                self.slots = vec![slot];
                let id = cluster.nodes[slot].id;
                let removed = tokio::time::timeout(Duration::from_secs(20), client.remove_node(id)).await;
                cluster.kill(slot);
                format!(
                    "removed node {id} (follower slot {slot}): {:?}; SIGKILL at leader log index {} (leader slot {leader:?})",
                    removed.map(|r| r.map(|c| c.changed).map_err(|e| e.to_string())),
                    self.log_index_at_kill
                )
            }
            Fault::SnapshotKill { node, during: SnapshotPhase::Build } => {
                // Watch the node's snapshot dir for a build's temp file (a build every
                // `--snapshot-entries` entries) and kill the node the moment one appears.
                self.slots = vec![*node];
                let watch_until = Instant::now() + Duration::from_secs(20);
                let seen = loop {
                    if let Some(name) = cluster.snapshot_temp_file(*node, false) {
                        break Some(name);
                    }
                    if Instant::now() > watch_until || !cluster.running(*node) {
                        break None;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                };
                cluster.kill(*node);
                match seen {
                    Some(name) => {
                        self.snapshot_kills_mid_build += 1;
                        format!("SIGKILL slot {node} while it built a snapshot ({name})")
                    }
                    None => format!("SIGKILL slot {node}: no snapshot build seen within 20 s (killed anyway)"),
                }
            }
            Fault::DiskFull { node } => {
                self.slots = vec![*node];
                let ballast = cluster.fill_disk(*node)?;
                format!("filled slot {node}'s filesystem: ballast of {ballast} bytes")
            }
            Fault::CorruptFiles { node } => {
                self.slots = vec![*node];
                cluster.kill(*node);
                let done = cluster.corrupt_files(*node, rng.next_u64())?;
                cluster.restart(*node)?;
                format!("corrupted {done}; restarted slot {node}")
            }
        };
        self.faults_injected += 1;
        *self.by_class.entry(fault.class()).or_default() += 1;
        self.log("start", fault, detail);
        Ok(())
    }

    async fn end(&mut self, cluster: &mut Cluster, client: &LedgerClient, fault: &Fault) -> anyhow::Result<()> {
        let slots = std::mem::take(&mut self.slots);
        let detail = match fault {
            Fault::Kill { .. } => {
                for &s in &slots {
                    cluster.restart(s)?;
                }
                format!("restarted slots {slots:?}")
            }
            Fault::Pause { .. } => {
                for &s in &slots {
                    cluster.resume(s)?;
                }
                format!("SIGCONT slots {slots:?}")
            }
            Fault::Partition { .. } | Fault::ClientPartition { .. } => {
                cluster.net.as_mut().context("partition network")?.heal()?;
                "healed".to_string()
            }
            Fault::Membership { .. } => {
                let mut done = Vec::new();
                for &s in &slots {
                    done.push(rebuild(cluster, s).await?);
                }
                done.join("; ")
            }
            Fault::Grow => {
                let mut done = Vec::new();
                for &s in &slots {
                    let id = cluster.nodes[s].id;
                    done.push(format!("promote node {id} (slot {s}): {:?}", promote(cluster, id).await?));
                }
                done.join("; ")
            }
            Fault::Corrupt { node } => serves_or_rebuild(cluster, client, *node, "the flip (its checksums or WAL recovery coped)").await?,
            Fault::CorruptFiles { node } => serves_or_rebuild(cluster, client, *node, "the corrupted files").await?,
            Fault::Clock { .. } => {
                for &s in &slots {
                    cluster.set_clock_offset(s, 0)?;
                }
                format!("clock of slots {slots:?} back to the true time (a jump)")
            }
            Fault::KillAll => {
                for &s in &slots {
                    cluster.restart(s)?;
                }
                format!("restarted every slot {slots:?}")
            }
            Fault::SnapshotKill { during: SnapshotPhase::Build, .. } => {
                for &s in &slots {
                    cluster.restart(s)?;
                }
                format!("restarted slots {slots:?}")
            }
            Fault::SnapshotKill { during: SnapshotPhase::Install, .. } => {
                let mut done = Vec::new();
                for &s in &slots {
                    done.push(self.kill_during_install(cluster, client, s).await?);
                }
                done.join("; ")
            }
            Fault::DiskFull { node } => {
                // While still full: does the node answer (a status, a read of its own)?
                let url = cluster.nodes[*node].url();
                let status = tokio::time::timeout(Duration::from_secs(3), client.cluster_status_at(&url)).await;
                let full = match &status {
                    Ok(Ok(s)) => format!("role {}, error {:?}", s.role, s.error),
                    Ok(Err(e)) => format!("status refused: {e}"),
                    Err(_) => "no status answer".into(),
                };
                let alive_full = cluster.running(*node);
                cluster.free_disk(*node)?;
                // Space is back: the node must serve again without a restart by the harness. A
                // node whose Raft stopped on the full disk starts afresh by itself
                // (`ledger-node/src/storage_full.rs`: space polled every second, graceful stop,
                // exec): give it `RECOVERY_WAIT`.
                let deadline = tokio::time::Instant::now() + RECOVERY_WAIT;
                let (recovered, status) = loop {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let status = tokio::time::timeout(Duration::from_secs(3), client.cluster_status_at(&url)).await;
                    let recovered = cluster.running(*node) && matches!(&status, Ok(Ok(s)) if s.error.is_none());
                    if recovered || !cluster.running(*node) || tokio::time::Instant::now() >= deadline {
                        break (recovered, status);
                    }
                };
                let mut detail = format!("slot {node} while full: running {alive_full}, {full}; ballast removed; serves again: {recovered}");
                if !cluster.running(*node) {
                    self.crashes.push(format!("slot {node} (node {}) exited on a full disk", cluster.nodes[*node].id));
                    detail += "; the node EXITED: restarted";
                    cluster.restart(*node)?;
                } else if !recovered {
                    let why = match status {
                        Ok(Ok(s)) => format!("{:?}", s.error),
                        Ok(Err(e)) => e.to_string(),
                        Err(_) => "no answer".into(),
                    };
                    // A regression: the node should have started afresh by itself.
                    self.disk_full_restarts += 1;
                    detail += &format!("; Raft stopped, not recovered without a restart ({why}): restarted");
                    cluster.kill(*node);
                    cluster.restart(*node)?;
                }
                detail
            }
        };
        self.log("end", fault, detail);
        Ok(())
    }
}

impl FaultInjector {
    /// The end of a `snapshot-kill` (install) window: let the leader's log run past the snapshot
    /// threshold, restart the follower, and kill it again as the snapshot arrives (its incoming
    /// temp file appears, or its log says it received one); then restart it for good.
    async fn kill_during_install(&mut self, cluster: &mut Cluster, client: &LedgerClient, slot: usize) -> anyhow::Result<String> {
        // Past the snapshot threshold, so the leader has a snapshot and purged the log behind it.
        let needed = self.snapshot_entries + self.snapshot_entries / 6 + 20;
        let until = Instant::now() + Duration::from_secs(30);
        let mut index = self.log_index_at_kill;
        while Instant::now() < until {
            if let Some(s) = leader_status(cluster, client).await {
                index = s.last_log_index;
                if index >= self.log_index_at_kill + needed {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // The slot comes back empty under a new id; as it is added, the leader sends it a
        // snapshot: kill -9 it as the snapshot arrives.
        let id = cluster.replace(slot)?;
        let pid = cluster.nodes[slot].pid().context("a started node has a pid")?;
        let (received, installed) = (log_count(cluster, slot, "snapshot received"), log_count(cluster, slot, "snapshot installed"));
        let watch = async {
            let until = Instant::now() + Duration::from_secs(30);
            loop {
                let caught = if let Some(name) = cluster.snapshot_temp_file(slot, true) {
                    Some(format!("mid-transfer ({name})"))
                } else if log_count(cluster, slot, "snapshot received") > received {
                    Some("mid-install (received, installing)".to_string())
                } else if log_count(cluster, slot, "snapshot installed") > installed {
                    Some("just after the install completed".to_string())
                } else if Instant::now() > until {
                    return "no snapshot sent within 30 s; killed anyway".to_string();
                } else {
                    None
                };
                if let Some(caught) = caught {
                    let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
                    return caught;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        // The add-learner call waits for the learner to catch up; the kill ends that wait.
        let caught = tokio::select! {
            caught = watch => caught,
            added = add_learner(cluster, slot) => format!("add-learner returned first ({added:?}); not killed"),
        };
        if caught.starts_with("mid-") || caught.starts_with("just") {
            self.snapshot_kills_mid_install += 1;
        }
        cluster.kill(slot);
        tokio::time::sleep(Duration::from_millis(500)).await;
        cluster.restart(slot)?;
        let added = add_learner(cluster, slot).await?;
        let promoted = promote(cluster, id).await?;
        Ok(format!(
            "leader log {} -> {index} while slot {slot} was out; rebuilt as node {id}; killed {caught}; restarted on its partial data; add-learner {added:?}, promote {promoted:?}",
            self.log_index_at_kill
        ))
    }
}

/// After a corrupting fault: the node serves right (the checkers judge it), or it refused to
/// start / reports a storage error and is removed and rebuilt from its peers under a new id.
async fn serves_or_rebuild(cluster: &mut Cluster, client: &LedgerClient, node: usize, after: &str) -> anyhow::Result<String> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let url = cluster.nodes[node].url();
    let status = tokio::time::timeout(Duration::from_secs(3), client.cluster_status_at(&url)).await;
    let healthy = cluster.nodes[node].is_running() && matches!(&status, Ok(Ok(s)) if s.error.is_none());
    if healthy {
        return Ok(format!("slot {node} serves after {after}"));
    }
    let why = match status {
        Ok(Ok(s)) => format!("{:?}", s.error),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer".into(),
    };
    let old = cluster.nodes[node].id;
    let removed = tokio::time::timeout(Duration::from_secs(20), client.remove_node(old)).await;
    Ok(format!("slot {node} refused ({why}); remove {old}: {:?}; {}", removed.map(|r| r.map(|c| c.changed)), rebuild(cluster, node).await?))
}

/// Rebuilds a slot from its peers under a new id: empty data dir, add as learner, promote.
async fn rebuild(cluster: &mut Cluster, slot: usize) -> anyhow::Result<String> {
    let id = cluster.replace(slot)?;
    let added = add_learner(cluster, slot).await?;
    let promoted = if added.is_ok() { promote(cluster, id).await? } else { Err("not tried".to_string()) };
    Ok(format!("slot {slot} rebuilt as node {id}: add-learner {added:?}, promote {promoted:?}"))
}

fn member_clients(cluster: &Cluster) -> anyhow::Result<Vec<LedgerClient>> {
    cluster.urls().into_iter().map(|u| workload::client(vec![u], cluster.tls())).collect()
}

/// Adds the (running, empty) node of `slot` as a learner. Tried against every node in turn (any
/// may be the leader, some may be down) for 30 s. `Ok(Err(_))`: the last refusal.
async fn add_learner(cluster: &Cluster, slot: usize) -> anyhow::Result<Result<bool, String>> {
    let (id, url) = (cluster.nodes[slot].id, cluster.nodes[slot].peer_url());
    let clients = member_clients(cluster)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut added = Err("not tried".to_string());
    while Instant::now() < deadline {
        for c in &clients {
            match tokio::time::timeout(Duration::from_secs(10), c.add_learner(id, &url)).await {
                Ok(Ok(change)) => return Ok(Ok(change.changed)),
                Ok(Err(e)) => added = Err(e.to_string()),
                Err(_) => added = Err("timed out".into()),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(added)
}

/// Promotes learner `id` to voter (once it caught up), tried against every node for 30 s.
async fn promote(cluster: &Cluster, id: u64) -> anyhow::Result<Result<bool, String>> {
    let clients = member_clients(cluster)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut promoted = Err("not tried".to_string());
    while Instant::now() < deadline {
        for c in &clients {
            match tokio::time::timeout(Duration::from_secs(35), c.promote_voter(id, Duration::from_secs(30))).await {
                Ok(Ok(change)) => return Ok(Ok(change.changed)),
                Ok(Err(e)) => promoted = Err(e.to_string()),
                Err(_) => promoted = Err("timed out".into()),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(promoted)
}

/// Waits until every running replica reports the same state hash at the same applied index.
async fn converge(cluster: &Cluster) -> anyhow::Result<(Verdict, Vec<serde_json::Value>)> {
    // A client that knows every current node (`state_hash_of` asks only its own endpoints; the
    // membership nemesis may have added nodes since the run began).
    let client = &workload::client(cluster.urls(), cluster.tls())?;
    let mut verdict = Verdict::new("replicas");
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        let mut hashes = Vec::new();
        for node in &cluster.nodes {
            let h = tokio::time::timeout(Duration::from_secs(3), client.cluster_status_at(&node.url())).await;
            let member_ok = matches!(&h, Ok(Ok(s)) if s.error.is_none());
            let hash = tokio::time::timeout(Duration::from_secs(3), client.state_hash_of(&node.url())).await;
            match hash {
                Ok(Ok(h)) if member_ok => hashes.push((node.id, h.applied_index, h.state_hash)),
                _ => {}
            }
        }
        let last: Vec<serde_json::Value> = hashes.iter().map(|(id, index, hash)| json!({"node": id, "applied_index": index, "state_hash": hash})).collect();
        let distinct: BTreeSet<(u64, &String)> = hashes.iter().map(|(_, i, h)| (*i, h)).collect();
        if hashes.len() == cluster.nodes.len() && distinct.len() == 1 {
            return Ok((verdict, last));
        }
        if Instant::now() > deadline {
            verdict.anomaly(format!("replicas did not converge within {CONVERGE_TIMEOUT:?}: {last:?}"));
            return Ok((verdict, last));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub async fn run(options: Options) -> anyhow::Result<bool> {
    std::fs::create_dir_all(&options.dir)?;
    let windows = schedule::plan(options.seed, &options.nemeses, options.nodes, options.time_limit_s * 1000);
    let namespaces = options.nemeses.iter().any(|n| matches!(n, Nemesis::Partition | Nemesis::ClientPartition));
    let setup = Setup {
        clock_files: options.nemeses.contains(&Nemesis::Clock),
        disk_mb: options.nemeses.contains(&Nemesis::DiskFull).then_some(DISK_MB),
    };
    let mut cluster = Cluster::start(options.nodes, &options.dir, namespaces, &snapshot_args(options.snapshot_entries), setup)?;
    let admin = workload::client(cluster.urls(), cluster.tls())?;
    let setup_deadline = Instant::now() + Duration::from_secs(60);
    let initial = loop {
        match workload::setup(&admin, options.accounts, BALANCE_INITIAL).await {
            Ok(initial) => break initial,
            Err(e) if Instant::now() < setup_deadline => {
                println!("setup: {e}; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e.context("set up the bank")),
        }
    };
    let total: i64 = initial.values().sum();
    println!("cluster of {} up, {} accounts funded; running {} s", options.nodes, options.accounts, options.time_limit_s);

    let start = Instant::now();
    let wall_start_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos() as u64;
    let deadline = start + Duration::from_secs(options.time_limit_s);
    let recorder = Recorder::new(start);
    let interval = Duration::from_micros(1_000_000 * u64::from(options.concurrency) / options.rate.max(1));
    let mut workers = Vec::new();
    for process in 0..options.concurrency {
        // Each process prefers another node first, so reads hit every replica.
        let mut urls = cluster.urls();
        let count = urls.len();
        urls.rotate_left(process as usize % count);
        let client = workload::client(urls, cluster.tls())?;
        let (recorder, seed, accounts) = (recorder.clone(), options.seed, options.accounts);
        workers.push(match options.workload {
            Workload::Bank => tokio::spawn(workload::worker(client, recorder, process, seed, accounts, interval, deadline)),
            Workload::TwoPhase => tokio::spawn(workload::two_phase::worker(client, recorder, process, seed, accounts, interval, deadline)),
        });
    }

    let mut nemesis = FaultInjector {
        timeline: Vec::new(),
        start,
        slots: Vec::new(),
        faults_injected: 0,
        by_class: BTreeMap::new(),
        snapshot_entries: options.snapshot_entries,
        log_index_at_kill: 0,
        crashes: Vec::new(),
        disk_full_restarts: 0,
        snapshot_kills_mid_install: 0,
        snapshot_kills_mid_build: 0,
    };
    let mut rng = Rng::new(options.seed ^ 0x6e65_6d65_7369_73);
    for window in &windows {
        tokio::time::sleep_until((start + Duration::from_millis(window.start_ms)).into()).await;
        nemesis.begin(&mut cluster, &admin, &window.fault, &mut rng).await?;
        tokio::time::sleep_until((start + Duration::from_millis(window.end_ms)).into()).await;
        nemesis.end(&mut cluster, &admin, &window.fault).await?;
    }
    let mut unknown = Vec::new();
    for w in workers {
        unknown.extend(w.await?);
    }
    // Everything heals: every node runs (none paused), the network is whole.
    if let Some(net) = cluster.net.as_mut() {
        net.heal()?;
    }
    for slot in 0..cluster.nodes.len() {
        cluster.resume(slot)?;
        cluster.restart(slot)?;
    }
    let ops_end = start.elapsed();
    // Exactly-once probe: each transfer still unknown is sent once more with its key; the
    // answer must be the first result, replayed (or the first application, if it never landed).
    let closer = workload::client(cluster.urls(), cluster.tls())?;
    for op in &unknown {
        workload::attempt_transfer(&closer, &recorder, options.concurrency + 1, op, true).await;
    }
    let events = recorder.events();
    let ops = history::pair(&events).map_err(anyhow::Error::msg)?;
    let ids: BTreeSet<u64> = ops.iter().filter_map(|o| o.op.write_id().map(|(id, _)| id)).collect();
    let hold_ids: BTreeSet<u64> = ops.iter().filter_map(|o| if let Op::Hold { id, .. } = o.op { Some(id) } else { None }).collect();
    if !hold_ids.is_empty() {
        settle_holds(&admin, &hold_ids).await?;
    }
    let (replicas, hashes) = converge(&cluster).await?;
    let mut records = Vec::new();
    for chunk in ids.iter().copied().collect::<Vec<_>>().chunks(4_000) {
        let ids: Vec<u128> = chunk.iter().map(|&i| u128::from(i)).collect();
        records.extend(final_read("final transfer lookup", || admin.lookup_transfers(ids.clone())).await?);
    }
    let present: BTreeSet<u64> = records.iter().map(|r| r.transfer.id as u64).collect();
    let (balances, held) = final_read("final balance read", || workload::read_with_held(&admin, options.accounts)).await?;
    let holds = hold_ids
        .iter()
        .map(|&id| {
            let record = records.iter().find(|r| r.transfer.id as u64 == id);
            (id, record.map_or(HoldState::Absent, |r| hold_state(r.pending_state)))
        })
        .collect();
    let two_phase_end = two_phase::FinalState { holds, present: present.clone(), balances: balances.clone(), held };

    let end = FinalState { present, balances: balances.clone() };
    let accounts: BTreeSet<u64> = initial.keys().copied().collect();
    // The checkers are CPU-bound (the linearizability search can take minutes on a long run):
    // off the async workers, so Ctrl-C is still heard.
    let (judged_ops, judged_initial, workload) = (ops.clone(), initial.clone(), options.workload);
    let (mut verdicts, lost_acknowledged) = tokio::task::spawn_blocking(move || {
        // Two-phase: the transfer checkers judge the posted balances, where a post is a transfer.
        let transfers = match workload {
            Workload::Bank => judged_ops.clone(),
            Workload::TwoPhase => two_phase::posted_view(&judged_ops),
        };
        // Only the posts are transfers there (holds and voids move no posted money).
        let sent: BTreeSet<u64> = transfers.iter().filter_map(|o| if let Op::Transfer { id, .. } = o.op { Some(id) } else { None }).collect();
        let end = FinalState { present: end.present.intersection(&sent).copied().collect(), ..end };
        let bank = checker::bank::check(&transfers, &accounts, total);
        let (durability, exactly_once) = checker::transfers::check(&transfers, &judged_initial, &end);
        let linearizable = checker::linearizable::check(&transfers, &judged_initial, Some(&end.present));
        let atomic_reads = checker::atomic_reads::check(&transfers, &judged_initial, Some(&end.present));
        let ledger_time = checker::ledger_time::check(&judged_ops, wall_start_ns);
        let mut verdicts = vec![bank, atomic_reads, durability, exactly_once, linearizable, ledger_time];
        if workload == Workload::TwoPhase {
            verdicts.push(two_phase::check(&judged_ops, &judged_initial, &two_phase_end));
        }
        // Acknowledged transfers (posts, in two-phase) missing from the ledger at the end.
        let lost = transfers
            .iter()
            .filter(|o| o.outcome == history::Outcome::Ok)
            .filter_map(|o| if let Op::Transfer { id, .. } = o.op { Some(id) } else { None })
            .collect::<BTreeSet<u64>>()
            .iter()
            .filter(|id| !end.present.contains(id))
            .count();
        (verdicts, lost)
    })
    .await?;
    verdicts.push(replicas);
    // A node no fault killed that died (or stayed broken after its fault healed) is a failure.
    let mut alive = Verdict::new("nodes_alive");
    for crash in &nemesis.crashes {
        alive.anomaly(crash.clone());
    }
    verdicts.push(alive);
    let undecided: Vec<&str> = verdicts.iter().filter(|v| v.valid.is_none()).map(|v| v.checker).collect();
    let valid = passes(&verdicts, options.accept_undecided.as_deref());
    let mut snapshots = cluster.snapshot_counts();
    snapshots["purged_index"] = json!(purged_indexes(&cluster).await?);
    let (ok, fail, info) = report::counts(&ops);

    let results = json!({
        "valid": valid,
        "workload": options.workload,
        "seed": options.seed,
        "nodes": options.nodes,
        "nemeses": options.nemeses,
        "time_limit_s": options.time_limit_s,
        "ops_duration_ms": ops_end.as_millis() as u64,
        "counts": {"ok": ok, "fail": fail, "info": info, "total": ops.len()},
        "faults_injected": nemesis.faults_injected,
        "faults_by_class": nemesis.by_class,
        "disk_full_restarts": nemesis.disk_full_restarts,
        "snapshot_kills": {"mid_install": nemesis.snapshot_kills_mid_install, "mid_build": nemesis.snapshot_kills_mid_build},
        // The loss columns of the long-run summary: each must be 0.
        "lost_acknowledged": lost_acknowledged,
        "double_applied": verdicts.iter().find(|v| v.checker == "exactly_once").map_or(0, |v| v.anomaly_count),
        "undecided": undecided,
        "undecided_accepted_because": options.accept_undecided,
        "snapshot_entries": options.snapshot_entries,
        "snapshots": snapshots,
        "final_balances": balances,
        "state_hashes": hashes,
        "checkers": verdicts,
    });
    write(&options.dir, "history.jsonl", &history::to_jsonl(&events))?;
    let timeline: String = nemesis.timeline.iter().map(|e| serde_json::to_string(e).expect("timeline serializes") + "\n").collect();
    write(&options.dir, "timeline.jsonl", &timeline)?;
    write(&options.dir, "schedule.json", &serde_json::to_string_pretty(&windows)?)?;
    write(&options.dir, "results.json", &serde_json::to_string_pretty(&results)?)?;
    let title = format!("{}, nemesis {:?}, {} nodes, seed {}", options.workload.name(), options.nemeses, options.nodes, options.seed);
    write(&options.dir, "report.html", &report::render(&title, &ops, &windows, &verdicts))?;
    println!("ops ok {ok} / fail {fail} / info {info}; faults {}; valid: {valid}", nemesis.faults_injected);
    println!("snapshots (every {} entries): {snapshots}", options.snapshot_entries);
    print_verdicts(&verdicts, options.accept_undecided.as_deref());
    println!("run directory: {}", options.dir.display());
    drop(cluster);
    Ok(valid)
}

/// Whether the run passes: every verdict valid. An undecided verdict (a checker's search budget
/// ran out: an anomaly may hide there) fails too, unless the run states why it is acceptable.
fn passes(verdicts: &[Verdict], accept_undecided: Option<&str>) -> bool {
    verdicts.iter().all(|v| v.valid == Some(true) || (v.valid.is_none() && accept_undecided.is_some()))
}

fn print_verdicts(verdicts: &[Verdict], accept_undecided: Option<&str>) {
    let undecided: Vec<&str> = verdicts.iter().filter(|v| v.valid.is_none()).map(|v| v.checker).collect();
    if !undecided.is_empty() {
        match accept_undecided {
            Some(reason) => println!("undecided {undecided:?}: accepted because {reason}"),
            None => println!("undecided {undecided:?}: a failure (give --accept-undecided REASON if it is acceptable)"),
        }
    }
    for v in verdicts {
        println!("  {:<14} {:?} {}", v.checker, v.valid, v.anomalies.first().cloned().unwrap_or_default());
    }
}

/// Each node's last purged log index (0: nothing purged, or no answer), from its own status.
async fn purged_indexes(cluster: &Cluster) -> anyhow::Result<Vec<u64>> {
    let client = workload::client(cluster.urls(), cluster.tls())?;
    let mut purged = Vec::new();
    for url in cluster.urls() {
        let status = tokio::time::timeout(Duration::from_secs(3), client.cluster_status_at(&url)).await;
        purged.push(status.ok().and_then(Result::ok).map_or(0, |s| s.purged_index));
    }
    Ok(purged)
}

/// The node flags for snapshots every `entries` log entries. Few entries are kept behind a
/// snapshot and a follower more than `entries` behind is sent one, so a node back from a fault
/// usually installs a snapshot instead of replaying the log.
fn snapshot_args(entries: u64) -> Vec<String> {
    let kept = (entries / 6).max(1);
    vec![
        "--raft-snapshot-entries".into(),
        entries.to_string(),
        "--raft-keep-entries-after-snapshot".into(),
        kept.to_string(),
        "--raft-replication-lag-threshold".into(),
        entries.to_string(),
    ]
}

/// How long the final reads (after convergence) keep trying: a leader may change hands (or a node
/// be slow to answer on this shared machine) just after the replicas agreed.
const FINAL_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A read of the final state, retried (reads change nothing) until `FINAL_READ_TIMEOUT`.
async fn final_read<T, F, Fut>(what: &'static str, read: F) -> anyhow::Result<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, ledger_client::ClientError>>,
{
    let deadline = Instant::now() + FINAL_READ_TIMEOUT;
    loop {
        match read().await {
            Ok(value) => return Ok(value),
            Err(e) if Instant::now() < deadline => {
                println!("{what}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(anyhow::Error::new(e).context(what)),
        }
    }
}

fn hold_state(state: ledger_client::PendingState) -> HoldState {
    match state {
        ledger_client::PendingState::Pending => HoldState::Pending,
        ledger_client::PendingState::Posted => HoldState::Posted,
        ledger_client::PendingState::Voided => HoldState::Voided,
        ledger_client::PendingState::Expired => HoldState::Expired,
        // A hold id that names a plain transfer: the two-phase checker reports it as absent.
        ledger_client::PendingState::None => HoldState::Absent,
    }
}

/// Waits until no hold the workload sent is still pending (each is posted, voided or expired).
async fn settle_holds(client: &LedgerClient, hold_ids: &BTreeSet<u64>) -> anyhow::Result<()> {
    let deadline = Instant::now() + HOLDS_SETTLE_TIMEOUT;
    loop {
        let mut pending = 0;
        for chunk in hold_ids.iter().copied().collect::<Vec<_>>().chunks(4_000) {
            let records = client.lookup_transfers(chunk.iter().map(|&i| u128::from(i)).collect()).await.context("hold lookup")?;
            pending += records.iter().filter(|r| r.pending_state == ledger_client::PendingState::Pending).count();
        }
        // Still pending at the deadline: the two-phase checker reports each.
        if pending == 0 || Instant::now() > deadline {
            println!("holds settled: {pending} still pending");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> anyhow::Result<()> {
    std::fs::write(dir.join(name), text).with_context(|| format!("write {name}"))
}


#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(checker: &'static str, valid: Option<bool>) -> Verdict {
        Verdict { valid, ..Verdict::new(checker) }
    }

    #[test]
    fn an_undecided_verdict_fails_the_run_unless_a_reason_is_given() {
        let decided = [verdict("bank", Some(true)), verdict("linearizable", Some(true))];
        assert!(passes(&decided, None));
        let undecided = [verdict("bank", Some(true)), verdict("linearizable", None)];
        assert!(!passes(&undecided, None), "undecided is not a pass");
        assert!(passes(&undecided, Some("a 1 h run: the search budget is known to run out on 2 accounts")));
        let invalid = [verdict("bank", Some(false)), verdict("linearizable", None)];
        assert!(!passes(&invalid, Some("any reason")), "a reason never excuses an anomaly");
    }

    #[test]
    fn snapshot_flags_keep_fewer_entries_than_the_threshold() {
        let args = snapshot_args(300);
        assert_eq!(args, ["--raft-snapshot-entries", "300", "--raft-keep-entries-after-snapshot", "50", "--raft-replication-lag-threshold", "300"]);
        assert_eq!(snapshot_args(1)[3], "1", "at least one entry kept, never more than the threshold");
    }
}
