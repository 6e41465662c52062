//! Backup while serving, and restore into a new cluster, end to end: real `ledger-node`
//! processes, `ledger backup --dir`, `ledger-node restore`, the restored node started and asked.

use std::collections::BTreeSet;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ledger_client::{
    AccountRecord, ClientConfig, Amount, LedgerClient, Leg, NewAccount, NewAsset, NewTransfer, ResultCode,
    transfer_id_from_key,
};
use ledger_e2e::{Cluster, DevNode, cli, ledger_node};
use ledger_node::service::backup::{Manifest, read_manifest};

const CNY: &str = "CNY";
const ACCOUNTS: std::ops::Range<u128> = 1..9;

/// One node or cluster at a time (a 2-core box).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn client(endpoints: Vec<String>) -> LedgerClient {
    let config = ClientConfig { request_timeout: Duration::from_secs(3), max_retries: 40, ..ClientConfig::default() };
    LedgerClient::connect_with(endpoints, config).expect("client")
}

fn d(text: &str) -> Amount {
    Amount::from_str(text).unwrap()
}

fn json(output: &std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {}", String::from_utf8_lossy(&output.stderr)))
}

/// Accounts, a few transfers and a hold that stays pending (an hour): the audit journal records
/// all of it, so the state hash covers journal lines too.
async fn workload(client: &LedgerClient) {
    assert!(client.create_assets(vec![NewAsset::new(CNY, 2)]).await.unwrap().iter().all(|r| r.is_success()));
    let accounts = ACCOUNTS.map(|id| NewAccount::new(id, CNY, 1)).collect();
    assert!(client.create_accounts(accounts).await.unwrap().iter().all(|r| r.is_success()));
    let hold = NewTransfer::pending(transfer_id_from_key("hold"), "hold", CNY, vec![Leg::new(1, 2, d("5.00"))], 3_600_000);
    let transfers = (0..20)
        .map(|i| {
            let key = format!("setup-{i}");
            NewTransfer::posted(transfer_id_from_key(&key), key, CNY, vec![Leg::new(1 + i % 8, 1 + (i + 1) % 8, d("1.25"))])
        })
        .chain([hold])
        .collect();
    let results = client.create_transfers(transfers).await.unwrap();
    assert!(results.iter().all(|r| r.code == ResultCode::Ok), "{results:?}");
}

/// A writer sending one transfer at a time until stopped: every key it sent, and when each
/// acknowledged one was acknowledged.
struct Writer {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<(String, Option<Instant>)>>,
}

impl Writer {
    fn start(endpoints: Vec<String>) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let client = client(endpoints);
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut sent = Vec::new();
                let mut seq = 0u128;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("load-{seq}");
                    let (debit, credit) = (1 + seq % 8, 1 + (seq + 3) % 8);
                    let transfer = NewTransfer::posted(transfer_id_from_key(&key), key.clone(), CNY, vec![Leg::new(debit, credit, d("0.01"))]);
                    let acked = matches!(client.create_transfers(vec![transfer]).await, Ok(r) if r[0].code == ResultCode::Ok);
                    sent.push((key, acked.then(Instant::now)));
                    seq += 1;
                }
                sent
            }
        });
        Writer { stop, task }
    }

    async fn stop(self) -> Vec<(String, Option<Instant>)> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// `ledger backup --dir` against `endpoint`; checks the answer against the manifest written.
fn backup(endpoint: &str, dir: &Path) -> Manifest {
    let output = cli(endpoint, &["backup", "--dir", dir.to_str().unwrap()]);
    assert!(output.status.success(), "backup: {}", String::from_utf8_lossy(&output.stderr));
    let answer = json(&output);
    let manifest = read_manifest(dir).expect("the backup has its manifest");
    assert_eq!(answer["applied_index"].as_u64(), Some(manifest.applied_index));
    assert_eq!(answer["state_hash"].as_str(), Some(manifest.state_hash.as_str()));
    assert_eq!(answer["files"].as_u64(), Some(manifest.files.len() as u64));
    manifest
}

fn restore(backup: &Path, data_dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["restore", "--backup", backup.to_str().unwrap(), "--data-dir", data_dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    ledger_node(&args)
}

async fn balances(client: &LedgerClient) -> Vec<AccountRecord> {
    client.lookup_accounts(ACCOUNTS.collect()).await.unwrap()
}

/// Waits until the node answers GetStateHash; returns (applied index, hash).
async fn state_hash(client: &LedgerClient) -> (u64, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client.state_hash().await {
            Ok(h) => return (h.applied_index, h.state_hash),
            Err(e) if Instant::now() < deadline => {
                println!("state hash not yet: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no state hash: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_writing_restores_to_the_same_state_hash() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let live = DevNode::start(&tmp.path().join("live"));
    let live_client = client(vec![live.endpoint()]);
    workload(&live_client).await;

    // 1. While a writer keeps writing.
    let writer = Writer::start(vec![live.endpoint()]);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let backup_started = Instant::now();
    let dir = tmp.path().join("backup-busy");
    let manifest = {
        let (endpoint, dir) = (live.endpoint(), dir.clone());
        tokio::task::spawn_blocking(move || backup(&endpoint, &dir)).await.unwrap()
    };
    let backup_took = backup_started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = writer.stop().await;
    let acked_before: Vec<&str> =
        sent.iter().filter(|(_, at)| at.is_some_and(|at| at < backup_started)).map(|(k, _)| k.as_str()).collect();
    assert!(acked_before.len() > 10, "the writer wrote before the backup: {}", acked_before.len());
    let acked_after = sent.iter().filter(|(_, at)| at.is_some_and(|at| at > backup_started + backup_took)).count();
    assert!(acked_after > 0, "the writer went on writing during and after the backup");
    println!("backup of a busy node: {backup_took:?}, applied index {}, {} files", manifest.applied_index, manifest.files.len());

    let restored_dir = tmp.path().join("restored");
    let output = restore(&dir, &restored_dir, &[]);
    assert!(output.status.success(), "restore: {}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains(&manifest.state_hash));
    let restored = DevNode::start(&restored_dir);
    let restored_client = client(vec![restored.endpoint()]);
    let (applied, hash) = state_hash(&restored_client).await;
    assert_eq!(hash, manifest.state_hash, "the restored node's state is the backup's");
    // The new cluster's first leader appends one blank entry; nothing else is applied.
    assert!((manifest.applied_index..=manifest.applied_index + 1).contains(&applied), "{applied} vs {}", manifest.applied_index);

    // Everything acknowledged before the backup began is in it; of the rest, the transfers it
    // holds are each applied exactly once (the balances are the sum of exactly those).
    let ids: Vec<u128> = sent.iter().map(|(k, _)| transfer_id_from_key(k)).collect();
    let stored: BTreeSet<u128> = restored_client.lookup_transfers(ids).await.unwrap().into_iter().map(|t| t.transfer.id).collect();
    for key in &acked_before {
        assert!(stored.contains(&transfer_id_from_key(key)), "{key} was acknowledged before the backup and is missing");
    }
    let before: BTreeSet<u128> = acked_before.iter().map(|k| transfer_id_from_key(k)).collect();
    assert!(stored.len() >= before.len());
    let mut net = std::collections::BTreeMap::<u128, Amount>::new();
    for (seq, (key, _)) in sent.iter().enumerate() {
        if stored.contains(&transfer_id_from_key(key)) {
            let seq = seq as u128;
            *net.entry(1 + seq % 8).or_default() += d("0.01");
            *net.entry(1 + (seq + 3) % 8).or_default() -= d("0.01");
        }
    }
    let setup_only = {
        // The same accounts with the setup transfers only: the restored balances minus the load.
        let mut expected = Vec::new();
        for record in balances(&restored_client).await {
            let id = record.account.id;
            expected.push((id, record.balances.debits_posted - record.balances.credits_posted - net.get(&id).copied().unwrap_or_default()));
        }
        expected
    };
    for (id, setup_net) in setup_only {
        // Setup: 20 transfers of 1.25, leg i from 1+i%8 to 1+(i+1)%8: every account debited and
        // credited equally often (20 = 2×8+4: accounts 1..4 debited 3 times, 2..5 credited 3 times).
        let debits = (0..20u128).filter(|i| 1 + i % 8 == id).count() as i64;
        let credits = (0..20u128).filter(|i| 1 + (i + 1) % 8 == id).count() as i64;
        assert_eq!(setup_net, d("1.25") * Amount::from(debits - credits), "account {id}");
    }
    let head = restored_client.journal_head().await.unwrap();
    assert!(head.seq > 0);

    // 2. A quiet node: the backup is exactly the live state, journal head included.
    let (live_applied, live_hash) = state_hash(&live_client).await;
    let live_head = live_client.journal_head().await.unwrap();
    let quiet_dir = tmp.path().join("backup-quiet");
    let quiet = {
        let (endpoint, dir) = (live.endpoint(), quiet_dir.clone());
        tokio::task::spawn_blocking(move || backup(&endpoint, &dir)).await.unwrap()
    };
    assert_eq!((quiet.applied_index, quiet.state_hash.as_str()), (live_applied, live_hash.as_str()));
    drop(restored);
    let again_dir = tmp.path().join("restored-quiet");
    assert!(restore(&quiet_dir, &again_dir, &[]).status.success());
    let again = DevNode::start(&again_dir);
    let again_client = client(vec![again.endpoint()]);
    assert_eq!(state_hash(&again_client).await.1, live_hash);
    assert_eq!(again_client.journal_head().await.unwrap(), live_head, "the journal continues from the same head");
    assert_eq!(balances(&again_client).await, balances(&live_client).await);
    // The restored node is a working ledger: it takes writes, and the journal grows from there.
    let key = "after-restore";
    let result = again_client
        .create_transfers(vec![NewTransfer::posted(transfer_id_from_key(key), key, CNY, vec![Leg::new(3, 4, d("2.00"))])])
        .await
        .unwrap();
    assert_eq!(result[0].code, ResultCode::Ok);
    assert!(again_client.journal_head().await.unwrap().seq > live_head.seq);

    // 3. A backup dir that exists already is refused; so is a relative one.
    let refused = cli(&live.endpoint(), &["backup", "--dir", quiet_dir.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already exists"), "{}", String::from_utf8_lossy(&refused.stderr));
    let relative = cli(&live.endpoint(), &["backup", "--dir", "backups/today"]);
    assert!(String::from_utf8_lossy(&relative.stderr).contains("relative"), "{}", String::from_utf8_lossy(&relative.stderr));
}

#[test]
fn a_tampered_backup_is_refused_at_restore_naming_the_file() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let live = DevNode::start(&tmp.path().join("live"));
    runtime.block_on(workload(&client(vec![live.endpoint()])));
    let dir = tmp.path().join("backup");
    let manifest = backup(&live.endpoint(), &dir);
    drop(live);
    let victim = manifest.files.iter().filter(|f| f.name.ends_with(".sst")).max_by_key(|f| f.bytes).unwrap();
    let path = dir.join(&victim.name);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    // A new file, not a write through the hard link the checkpoint may share with the node.
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let restored_dir = tmp.path().join("restored");
    let output = restore(&dir, &restored_dir, &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&victim.name) && stderr.contains("damaged"), "{stderr}");
    assert!(!restored_dir.exists(), "a refused restore leaves no data dir");
    // A manifest edited to match the changed file does not help: the state hash is checked too.
    let text = std::fs::read_to_string(dir.join("backup.toml")).unwrap();
    let sha = sha256_hex(&bytes);
    std::fs::write(dir.join("backup.toml"), text.replace(&victim.sha256, &sha)).unwrap();
    let output = restore(&dir, &restored_dir, &[]);
    assert!(!output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    assert!(!restored_dir.exists());
}

/// SHA-256 (hex) of `bytes`, by `sha256sum` (coreutils; the tests crate has no hash crate).
fn sha256_hex(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

/// A 3-node cluster: a backup from a follower and one from the leader both restore to their own
/// manifest's state, and the restored node forms a new cluster that a fresh node joins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_from_a_follower_and_the_leader_of_three_nodes_restore_into_a_new_cluster() {
    let _serial = serial();
    let mut cluster = Cluster::bootstrap(3, &[]);
    let all = client(cluster.endpoints());
    workload(&all).await;
    let status = all.cluster_status().await.unwrap();
    let leader_id = status.leader_id.expect("a leader");
    let follower_id = (1..=3).find(|id| *id != leader_id).unwrap();
    let writer = Writer::start(cluster.endpoints());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut manifests = Vec::new();
    for id in [follower_id, leader_id] {
        let dir = cluster.dir.path().join(format!("backup-of-{id}"));
        let endpoint = cluster.node(id).endpoint();
        let manifest = tokio::task::spawn_blocking(move || backup(&endpoint, &dir)).await.unwrap();
        assert_eq!(manifest.node_id, id);
        manifests.push((id, manifest));
    }
    writer.stop().await;

    for (id, manifest) in &manifests {
        let restored_dir = cluster.dir.path().join(format!("restored-from-{id}"));
        let port = ledger_e2e::free_port();
        let url = format!("http://127.0.0.1:{port}");
        let output = restore(
            &cluster.dir.path().join(format!("backup-of-{id}")),
            &restored_dir,
            &["--node-id", "1", "--cluster-name", "recovered", "--advertise", &url],
        );
        assert!(output.status.success(), "restore: {}", String::from_utf8_lossy(&output.stderr));
        // Started as a cluster member (no --bootstrap: it is a cluster of one already).
        let mut node = ledger_e2e::ClusterNode::start_on_port(1, &restored_dir, port, &["--cluster-name", "recovered"]);
        let restored = client(vec![node.endpoint()]);
        let (_, hash) = state_hash(&restored).await;
        assert_eq!(hash, manifest.state_hash, "restored from node {id}");
        if *id == leader_id {
            // A new empty node joins the new cluster through the usual flow and converges on it.
            let joiner_dir = cluster.dir.path().join("joiner");
            let joiner = ledger_e2e::ClusterNode::start(2, &joiner_dir, None, &["--cluster-name", "recovered"]);
            let add = cli(&node.endpoint(), &["cluster", "add-learner", "2", &joiner.endpoint()]);
            assert!(add.status.success(), "add-learner: {}\n{}", String::from_utf8_lossy(&add.stderr), node.log());
            let promote = cli(&node.endpoint(), &["cluster", "promote", "2"]);
            assert!(promote.status.success(), "promote: {}", String::from_utf8_lossy(&promote.stderr));
            let joined = client(vec![joiner.endpoint()]);
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let leader = restored.state_hash_of(&node.endpoint()).await.map(|h| (h.applied_index, h.state_hash));
                let learner = joined.state_hash_of(&joiner.endpoint()).await.map(|h| (h.applied_index, h.state_hash));
                if let (Ok(leader), Ok(learner)) = (&leader, &learner) {
                    if leader == learner {
                        break;
                    }
                }
                assert!(Instant::now() < deadline, "the joiner did not converge: {leader:?} {learner:?}\n{}", joiner.log());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        node.kill9();
    }
    // The old cluster never heard of any of it.
    assert_eq!(all.cluster_status().await.unwrap().nodes.len(), 3);
}
