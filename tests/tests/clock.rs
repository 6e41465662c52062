//! Ledger time against a wrong clock: real `ledger-node` processes, one of them with a clock a
//! day fast (`LEDGER_TEST_CLOCK_OFFSET_SECS`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ledger_client::{ClientConfig, Amount, LedgerClient, Leg, NewAccount, NewAsset, NewTransfer, PendingState};
use ledger_e2e::{Cluster, ClusterNode};

const DAY_SECS: u64 = 86_400;

fn patient_client(endpoints: Vec<String>) -> LedgerClient {
    let config = ClientConfig { request_timeout: Duration::from_secs(3), max_retries: 40, ..ClientConfig::default() };
    LedgerClient::connect_with(endpoints, config).expect("client")
}

async fn leader(cluster: &Cluster) -> u64 {
    let client = patient_client(cluster.endpoints());
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        for endpoint in cluster.endpoints() {
            if let Ok(status) = client.cluster_status_at(&endpoint).await {
                if status.role == "leader" && status.error.is_none() {
                    return status.node_id;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no leader\n{}", cluster.logs());
}

/// Moves leadership until `wanted` (or, with `avoid`, any other node) leads: a graceful stop of
/// the leader hands leadership over, and the stopped node comes back as a follower.
async fn lead_with(cluster: &mut Cluster, wanted: impl Fn(u64) -> bool) -> u64 {
    for _ in 0..20 {
        let id = leader(cluster).await;
        if wanted(id) {
            return id;
        }
        cluster.node(id).terminate();
        cluster.node(id).restart();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("leadership never moved as wanted\n{}", cluster.logs());
}

fn real_now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// Node 1's clock is a day ahead. A hold of 60 s is placed under an honest leader; then node 1
/// leads and writes: its proposals are clamped to the voters' median clock (plus the 10 s skew),
/// so the hold is still pending, and the new transfer is stamped near real time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_with_a_clock_a_day_fast_does_not_expire_a_60_s_hold() {
    let mut cluster = Cluster::empty(&[]);
    let dir = cluster.dir.path().to_path_buf();
    let others: Vec<ClusterNode> = (2..=3).map(|id| ClusterNode::start(id, &dir.join(format!("node{id}")), None, &[])).collect();
    let members: Vec<(u64, String)> = others.iter().map(|n| (n.id, n.peer_endpoint())).collect();
    let offset = DAY_SECS.to_string();
    let fast = ClusterNode::start_with_env(1, &dir.join("node1"), Some(&members), &[], &[("LEDGER_TEST_CLOCK_OFFSET_SECS", &offset)]);
    cluster.nodes.push(fast);
    cluster.nodes.extend(others);

    lead_with(&mut cluster, |id| id != 1).await;
    let client = patient_client(cluster.endpoints());
    assert!(client.create_assets(vec![NewAsset::new("CNY", 2)]).await.unwrap().iter().all(|r| r.is_success()));
    let accounts = (1..=3).map(|id| NewAccount::new(id, "CNY", 1)).collect();
    assert!(client.create_accounts(accounts).await.unwrap().iter().all(|r| r.is_success()));
    let amount = Amount::new(100, 2);
    let hold = NewTransfer::pending(10, "hold-60s", "CNY", vec![Leg::new(1, 2, amount)], 60_000);
    let placed = client.create_transfers(vec![hold]).await.unwrap().remove(0);
    assert!(placed.is_success(), "{placed:?}");
    let placed_at = Instant::now();

    assert_eq!(lead_with(&mut cluster, |id| id == 1).await, 1);
    let client = patient_client(cluster.endpoints());
    let after = NewTransfer::posted(11, "under-the-fast-leader", "CNY", vec![Leg::new(2, 3, amount)]);
    assert!(client.create_transfers(vec![after]).await.unwrap().remove(0).is_success());
    assert!(placed_at.elapsed() < Duration::from_secs(45), "the test must write well within the hold's 60 s");

    let record = client.lookup_transfer(10).await.unwrap().expect("the hold");
    assert_eq!(record.pending_state, PendingState::Pending, "the fast leader must not expire the hold: {record:?}");
    let stamped = client.lookup_transfer(11).await.unwrap().expect("the new transfer").timestamp_ns;
    let real = real_now_ns();
    assert!(stamped <= real + 15_000_000_000, "stamped near real time, not a day ahead: {stamped} vs {real}");
    assert!(cluster.node(1).log().contains("ahead of the voters' median clock"), "the clamp is logged");
}
