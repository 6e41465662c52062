//! A process whose memory is capped well under the ledger's size installs a snapshot of that
//! ledger and hashes the result (issue 18 item 3). The cap is a memory cgroup (v1 or v2, whichever
//! the machine has; the test needs root, like the jepsen nemeses, and fails rather than skips
//! without it): the kernel kills the process if it goes over, so the bound is proved on the real
//! install and hash code and the real RocksDB, not on a counter the code keeps itself.
//!
//! The test re-runs its own binary as the capped child (`CHILD_ENV` names the snapshot and the
//! target directory); the parent builds the ledger and the snapshot uncapped, then compares the
//! child's hash with the sender's.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use openraft::LogId as RaftLogId;
use openraft::impls::leader_id_adv::LeaderId;
use rocksdb::WriteBatch;

use super::snapshot;
use crate::service::backup::hex;
use crate::storage::db::{Cf, cf};
use ledger_core::{Table, codec};

/// The ledger the parent builds: rows of `ROW_BYTES` spread over every table.
const LEDGER_BYTES: usize = 384 << 20;
const ROW_BYTES: usize = 1_024;
/// The child's memory cap: a third of the ledger, page cache included. The child opens the
/// database as the node does; its memtable budget and block cache (256 MiB each) are larger
/// than this cap, so what keeps it under is the install flushing as it goes and the hash
/// bypassing the cache. Measured: about 93 MB of anonymous memory at peak, the same for a
/// 256 MiB ledger; without the install's flushes the child is killed at the cap.
const CAP_BYTES: u64 = 128 << 20;

const CHILD_ENV: &str = "LEDGER_TEST_CAPPED_INSTALL";
const TEST_NAME: &str = "raft::snapshot_memory::a_process_capped_at_a_third_of_the_ledger_installs_its_snapshot_and_hashes_it";

#[test]
fn a_process_capped_at_a_third_of_the_ledger_installs_its_snapshot_and_hashes_it() {
    if let Ok(job) = std::env::var(CHILD_ENV) {
        return child(&job);
    }
    let work = tempfile::tempdir().unwrap();
    let source = build_ledger(&work.path().join("source"), 777);
    let (meta, file) = snapshot::build(&source, &work.path().join("snapshots")).unwrap();
    let expected = crate::raft::state_machine::state_hash(&source).unwrap();
    drop(source);
    let target = work.path().join("target");
    let cgroup = MemoryCgroup::create(&format!("ledger-capped-install-{}", std::process::id()), CAP_BYTES)
        .expect("a memory cgroup (root, cgroup v1 memory controller or v2): the test proves a memory bound with it");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"echo $$ > "$0" && exec "$@""#)
        .arg(cgroup.procs())
        .arg(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{}\n{}", file.path.display(), target.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Sampled while it runs: the cgroup's peak counts page cache too; the anonymous part is
    // what the process itself holds.
    let mut anon_peak_bytes = 0u64;
    while child.try_wait().unwrap().is_none() {
        anon_peak_bytes = anon_peak_bytes.max(cgroup.anon_bytes());
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let peak = cgroup.peak_bytes();
    let oom_kills = cgroup.oom_kills();
    eprintln!(
        "capped child: {:?}, peak {peak:?} bytes (page cache included) of a {CAP_BYTES}-byte cap, anonymous memory peak \
         {anon_peak_bytes} bytes (sampled), {oom_kills} OOM kills",
        output.status
    );
    assert!(
        output.status.success(),
        "the capped child failed ({:?}, OOM kills {oom_kills}): {stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(oom_kills, 0);
    let line = stdout.lines().find_map(|l| l.split_once("installed ").map(|(_, result)| result)).expect("the child's result line");
    assert_eq!(line, format!("applied={} hash={}", expected.0, hex(&expected.1)), "the sender's state, hashed");
    assert_eq!(snapshot::snapshot_index(&meta), 777);
    if let Some(peak) = peak {
        assert!(peak <= CAP_BYTES, "{peak}");
    }
}

/// The capped child: open an empty database within the small budget, install, hash, print.
fn child(job: &str) {
    let (snapshot_path, target) = job.split_once('\n').expect("snapshot path and target dir");
    let db = crate::storage::db::open_with(&Path::new(target).join("db"), false).unwrap();
    let meta = snapshot::verify(Path::new(snapshot_path)).unwrap();
    let installed = snapshot::install(&db, Path::new(snapshot_path), &meta).unwrap();
    assert_eq!(installed.records as usize, LEDGER_BYTES / ROW_BYTES);
    let (applied, hash) = crate::raft::state_machine::state_hash(&db).unwrap();
    let mut out = io::stdout().lock();
    writeln!(out, "installed applied={applied} hash={}", hex(&hash)).unwrap();
}

/// A ledger of `LEDGER_BYTES` (incompressible rows, so the files are that large too) applied at
/// `index`, written in batches.
fn build_ledger(dir: &Path, index: u64) -> crate::storage::Db {
    let db = crate::storage::open(&dir.join("db")).unwrap();
    let rows = LEDGER_BYTES / ROW_BYTES;
    let mut batch = WriteBatch::default();
    let mut value = vec![0u8; ROW_BYTES];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..rows {
        for byte in value.iter_mut() {
            // xorshift: incompressible, deterministic.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = state as u8;
        }
        let table = Table::ALL[i % Table::ALL.len()];
        batch.put_cf(cf(&db, Cf::Ledger(table)), format!("key-{i:08}"), &value);
        if batch.len() == 1_024 {
            db.write(std::mem::take(&mut batch)).unwrap();
        }
    }
    let applied = RaftLogId::new(LeaderId { term: 1, node_id: 1 }, index);
    batch.put_cf(cf(&db, Cf::SmMeta), snapshot::KEY_APPLIED, codec::encode(&Some(applied)));
    db.write(batch).unwrap();
    db
}

/// A memory cgroup made for one test and removed after it.
struct MemoryCgroup {
    dir: PathBuf,
    v2: bool,
}

impl MemoryCgroup {
    /// Under this process's own memory cgroup on v1 (so the sandbox's limits still hold), under
    /// the root on v2 (a v2 cgroup with processes cannot delegate the controller).
    fn create(name: &str, limit_bytes: u64) -> io::Result<Self> {
        let v2_root = Path::new("/sys/fs/cgroup");
        let v2 = fs::read_to_string(v2_root.join("cgroup.controllers")).is_ok_and(|c| c.split_whitespace().any(|c| c == "memory"));
        let group = if v2 {
            let _ = fs::write(v2_root.join("cgroup.subtree_control"), "+memory");
            let dir = v2_root.join(name);
            fs::create_dir(&dir)?;
            let group = Self { dir, v2 };
            fs::write(group.dir.join("memory.max"), limit_bytes.to_string())?;
            let _ = fs::write(group.dir.join("memory.swap.max"), "0");
            group
        } else {
            let own = fs::read_to_string("/proc/self/cgroup")?
                .lines()
                .find_map(|l| l.split_once(":memory:").map(|(_, path)| path.trim_start_matches('/').to_owned()))
                .ok_or_else(|| io::Error::other("no memory cgroup (v1) and no v2 memory controller"))?;
            let dir = Path::new("/sys/fs/cgroup/memory").join(own).join(name);
            fs::create_dir(&dir)?;
            let group = Self { dir, v2 };
            fs::write(group.dir.join("memory.limit_in_bytes"), limit_bytes.to_string())?;
            // No swap on the test machines; where there is, keep the child from using it.
            let _ = fs::write(group.dir.join("memory.swappiness"), "0");
            let _ = fs::write(group.dir.join("memory.memsw.limit_in_bytes"), limit_bytes.to_string());
            group
        };
        Ok(group)
    }

    fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    fn peak_bytes(&self) -> Option<u64> {
        let file = if self.v2 { "memory.peak" } else { "memory.max_usage_in_bytes" };
        fs::read_to_string(self.dir.join(file)).ok()?.trim().parse().ok()
    }

    /// Anonymous memory charged now (`rss` on v1, `anon` on v2).
    fn anon_bytes(&self) -> u64 {
        let key = if self.v2 { "anon " } else { "rss " };
        let text = fs::read_to_string(self.dir.join("memory.stat")).unwrap_or_default();
        text.lines().find_map(|l| l.strip_prefix(key)).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
    }

    fn oom_kills(&self) -> u64 {
        let file = if self.v2 { "memory.events" } else { "memory.oom_control" };
        let text = fs::read_to_string(self.dir.join(file)).unwrap_or_default();
        text.lines().find_map(|l| l.strip_prefix("oom_kill ")).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.dir);
    }
}

