//! Bounded-staleness reads under a partition (issue 18 item 10): 5 real nodes, each in its own
//! network namespace; the partition {old leader, one follower} | {three others}. The three elect
//! a new leader and commit a transfer; the follower cut off with the deposed leader still hears
//! its heartbeats. A read on that follower that accepts 2 s of staleness, asked more than 2 s
//! after its last quorum-confirmed read, must not return the balance from before the transfer:
//! freshness comes from a quorum (ReadIndex), never from having heard some leader. It may fail
//! (no quorum) or, after healing, return the new balance.
//!
//! Needs root and `ip netns`. Without them the test is skipped with a message, except under
//! `CI=true`, where it fails: CI must run it. Needs `ledger-node` built next to `jepsen`.
//! Bounded: every wait has a deadline (election 30 s, catch-up 30 s); about 15 s here.

use std::time::{Duration, Instant};

use jepsen::cluster::Cluster;
use jepsen::workload::{self, ASSET};
use ledger_client::{ClientConfig, Amount, LedgerClient, Leg, NewTransfer};

const NODES: usize = 5;
/// The staleness the follower's reads accept.
const MAX_STALENESS: Duration = Duration::from_secs(2);
const ELECTION_WAIT: Duration = Duration::from_secs(30);
const PAYER: u128 = 1;
const PAYEE: u128 = 2;
const BALANCE: i64 = 1000;
const PAID: i64 = 100;

#[test]
fn a_follower_cut_off_with_a_deposed_leader_never_serves_reads_older_than_the_bound() {
    if !namespaces_available() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("jepsen-stale-reads-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let setup = jepsen::cluster::Setup { clock_files: false, disk_mb: None };
    let mut cluster = Cluster::start(NODES, &dir, true, &[], setup).expect("start 5 namespaced nodes");
    runtime.block_on(partitioned_follower_reads(&mut cluster));
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}

async fn partitioned_follower_reads(cluster: &mut Cluster) {
    let tls = cluster.tls();
    let everyone = workload::client(cluster.urls(), tls.clone()).unwrap();
    let leader = wait_for_leader(cluster, &everyone, None).await;
    workload::setup(&everyone, 2, BALANCE).await.expect("setup");
    let follower = (0..NODES).find(|&s| s != leader).unwrap();
    let majority: Vec<usize> = (0..NODES).filter(|&s| s != leader && s != follower).collect();

    // The follower's reads accept 2 s of staleness; one now confirms its freshness by ReadIndex.
    let config = ClientConfig {
        max_staleness: Some(MAX_STALENESS),
        request_timeout: Duration::from_secs(3),
        max_retries: 0,
        tls: tls.clone(),
        ..ClientConfig::default()
    };
    let on_follower = LedgerClient::connect_with(vec![cluster.nodes[follower].url()], config).unwrap();
    assert_eq!(payer_balance(&on_follower).await, Ok(BALANCE), "before the partition");
    let confirmed = Instant::now();

    // {old leader, follower} | {the three others}.
    let net = cluster.net.as_mut().expect("namespaced cluster");
    for cut_off in [leader, follower] {
        for &other in &majority {
            net.cut(cut_off, other).unwrap();
        }
    }
    let urls: Vec<String> = majority.iter().map(|&s| cluster.nodes[s].url()).collect();
    let on_majority = workload::client(urls, tls).unwrap();
    let new_leader = wait_for_leader(cluster, &on_majority, Some(leader)).await;
    assert!(majority.contains(&new_leader), "the new leader {new_leader} is on the majority side");
    let payment = NewTransfer::posted(7, "stale-read-payment", ASSET, vec![Leg::new(PAYER, PAYEE, Amount::from(PAID))]);
    let deadline = Instant::now() + ELECTION_WAIT;
    loop {
        match on_majority.create_transfers(vec![payment.clone()]).await {
            Ok(results) if results[0].is_success() => break,
            outcome => assert!(Instant::now() < deadline, "the majority never committed the payment: {outcome:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("payment committed by the majority (leader slot {new_leader}); old leader slot {leader}, follower slot {follower}");

    // Past the bound since the follower's last confirmed read: its state may be older than 2 s.
    tokio::time::sleep(MAX_STALENESS.saturating_sub(confirmed.elapsed()) + Duration::from_millis(500)).await;
    for attempt in 0..3 {
        let read = payer_balance(&on_follower).await;
        println!("cut-off follower, read {attempt}: {read:?}");
        assert_ne!(read, Ok(BALANCE), "the cut-off follower served a balance older than its {MAX_STALENESS:?} bound");
        // A linearizable read (no staleness accepted) must not either.
        let linearizable = workload::client(vec![cluster.nodes[follower].url()], cluster.tls()).unwrap();
        let read = tokio::time::timeout(Duration::from_secs(10), payer_balance(&linearizable)).await.unwrap_or(Err("timeout".into()));
        assert_ne!(read, Ok(BALANCE), "the cut-off follower served a stale linearizable read");
    }

    // Healed, the follower catches up and serves the new balance within the bound again.
    cluster.net.as_mut().unwrap().heal().unwrap();
    let deadline = Instant::now() + ELECTION_WAIT;
    loop {
        let read = payer_balance(&on_follower).await;
        if read == Ok(BALANCE - PAID) {
            break;
        }
        assert_ne!(read, Ok(BALANCE), "stale after healing");
        assert!(Instant::now() < deadline, "the follower never served the new balance: {read:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn payer_balance(client: &LedgerClient) -> Result<i64, String> {
    let records = client.lookup_accounts(vec![PAYER]).await.map_err(|e| e.to_string())?;
    records.first().map(workload::balance_of).ok_or_else(|| "payer not found".to_string())
}

/// The slot of the leader `client` reports, other than `not`, within `ELECTION_WAIT`.
async fn wait_for_leader(cluster: &Cluster, client: &LedgerClient, not: Option<usize>) -> usize {
    let deadline = Instant::now() + ELECTION_WAIT;
    loop {
        if let Ok(Ok(status)) = tokio::time::timeout(Duration::from_secs(3), client.cluster_status()).await
            && let Some(slot) = status.leader_id.and_then(|id| cluster.slot_of_id(id))
            && Some(slot) != not
        {
            return slot;
        }
        assert!(Instant::now() < deadline, "no leader (other than {not:?}) within {ELECTION_WAIT:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Root and `ip netns`, or a loud skip (a failure under CI=true).
fn namespaces_available() -> bool {
    let root = std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let ip = std::process::Command::new("ip").args(["netns", "list"]).output().is_ok_and(|o| o.status.success());
    if root && ip {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI must run the partition test: needs root and `ip netns`");
    eprintln!("SKIPPED: needs root and `ip netns` (root: {root}, ip netns: {ip})");
    false
}
