//! The change feed end to end: real nodes, the Rust client's `subscribe` and `ledger feed`.
//! Every event once in cursor order, resumable at any cursor, each filter, follow mode, the
//! subscriber bound, and a consumer following a 3-node cluster while its leader is killed.
//! (Roles: auth.rs, `the_feed_shows_each_principal_its_own_events`.) Also the history queries
//! (`Query/GetAccountHistory`), over the same ledger.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ledger_client::{
    AccountStatus, HistoryRange, Amount, ClientConfig, ClientError, FeedEvent, FeedFilter, LedgerClient, Leg, NewAccount, NewAsset, NewTransfer, ResultCode,
    transfer_id_from_key,
};
use ledger_e2e::{Cluster, DevNode, cli, eventually};
use serde_json::Value;

const CNY: &str = "CNY";
const USD: &str = "USD";

fn d(text: &str) -> Amount {
    Amount::from_str(text).expect("decimal literal")
}

fn patient_client(endpoints: Vec<String>) -> LedgerClient {
    let config = ClientConfig { request_timeout: Duration::from_secs(3), max_retries: 40, ..ClientConfig::default() };
    LedgerClient::connect_with(endpoints, config).expect("client")
}

async fn client(node: &DevNode) -> LedgerClient {
    let c = patient_client(vec![node.endpoint()]);
    eventually("the node serves", Duration::from_secs(30), Duration::from_millis(50), || async {
        c.cluster_status().await.map(drop).map_err(|e| e.to_string())
    })
    .await;
    c
}

fn ok(results: &[ledger_client::WriteResult]) {
    assert!(results.iter().all(|r| r.is_success()), "{results:?}");
}

/// Accounts 1..=4 in CNY (codes 1, 1, 2, 3), account 5 in USD (code 4); transfers of codes 0 and
/// 7, a hold posted, a freeze.
async fn setup(c: &LedgerClient) {
    ok(&c.create_assets(vec![NewAsset::new(CNY, 2), NewAsset::new(USD, 2)]).await.unwrap());
    let accounts = [(1, CNY, 1), (2, CNY, 1), (3, CNY, 2), (4, CNY, 3), (5, USD, 4), (6, USD, 4)];
    ok(&c.create_accounts(accounts.iter().map(|&(id, asset, code)| NewAccount::new(id, asset, code)).collect()).await.unwrap());
    ok(&c.create_transfers(vec![NewTransfer::posted(100, "t100", CNY, vec![Leg::new(1, 2, d("50.00")), Leg::new(2, 3, d("5.00"))])]).await.unwrap());
    ok(&c.create_transfers(vec![NewTransfer::posted(101, "t101", CNY, vec![Leg::new(1, 4, d("1.00"))]).with_code(7)]).await.unwrap());
    ok(&c.create_transfers(vec![NewTransfer::pending(102, "t102", CNY, vec![Leg::new(2, 3, d("2.00"))], 0)]).await.unwrap());
    ok(&c.create_transfers(vec![NewTransfer::post(103, "t103", 102, vec![])]).await.unwrap());
    ok(&c.create_transfers(vec![NewTransfer::posted(104, "t104", USD, vec![Leg::new(5, 6, d("3.00"))]).with_code(7)]).await.unwrap());
    ok(&c.set_account_status(vec![(4, AccountStatus::Frozen, "test".into())]).await.unwrap());
}

async fn read_all(c: &LedgerClient, from: u64, filter: &FeedFilter) -> Vec<FeedEvent> {
    let mut subscription = c.subscribe(from, filter, false).await.expect("subscribe");
    let mut events = Vec::new();
    while let Some(page) = subscription.next().await {
        events.extend(page.expect("a page").events);
    }
    events
}

fn cursors(events: &[FeedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.cursor).collect()
}

fn event_json(e: &FeedEvent) -> Value {
    serde_json::from_str::<Value>(&e.line).expect("a JSON line")["event"].clone()
}

/// The accounts an event names, read from its JSON (the test's own reading, not the node's).
fn named_accounts(event: &Value) -> BTreeSet<String> {
    let mut named: BTreeSet<String> = ["account_id", "clearing_account_id", "merchant_account_id"]
        .iter()
        .filter_map(|k| event[k].as_str().map(str::to_string))
        .collect();
    for leg in event["legs"].as_array().into_iter().flatten() {
        named.insert(leg["debit_account_id"].as_str().unwrap().to_string());
        named.insert(leg["credit_account_id"].as_str().unwrap().to_string());
    }
    named
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_serves_every_event_once_in_order_resumes_at_any_cursor_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let c = client(&node).await;
    setup(&c).await;
    let head = c.journal_head().await.unwrap().seq;

    let all = read_all(&c, 0, &FeedFilter::default()).await;
    assert_eq!(cursors(&all), (1..=head).collect::<Vec<_>>(), "every line once, in order");
    let t100 = all.iter().find(|e| e.line.contains("\"transfer_id\":\"100\"")).expect("transfer 100");
    let sides: Vec<_> = t100.entries.iter().map(|e| (e.leg_index, e.account_id, e.is_debit)).collect();
    assert_eq!(sides, vec![(0, 1, true), (0, 2, false), (1, 2, true), (1, 3, false)]);
    assert_eq!(t100.entries[3].balances_after.credits_posted, d("5.00"), "the balances after the leg");
    for from in [1, head / 2, head - 1, head, head + 3] {
        let rest = read_all(&c, from, &FeedFilter::default()).await;
        assert_eq!(cursors(&rest), (from + 1..=head).collect::<Vec<_>>(), "resumed after {from}: no gap, no duplicate");
    }

    // Each filter against the test's own reading of every line.
    let check = |filter: FeedFilter, keep: &dyn Fn(&Value) -> bool| {
        let expected: Vec<u64> = all.iter().filter(|e| keep(&event_json(e))).map(|e| e.cursor).collect();
        (filter, expected)
    };
    let cases = [
        check(FeedFilter { kinds: vec!["movement".into()], ..FeedFilter::default() }, &|e| e["type"] == "movement"),
        check(FeedFilter { accounts: vec![4], ..FeedFilter::default() }, &|e| named_accounts(e).contains("4")),
        check(FeedFilter { transfer_codes: vec![7], ..FeedFilter::default() }, &|e| e["type"] == "movement" && e["code"] == 7),
        check(FeedFilter { asset: Some(USD.into()), ..FeedFilter::default() }, &|e| {
            e["asset"] == USD || ["5", "6"].iter().any(|a| named_accounts(e).contains(*a)) && e["asset"].is_null()
        }),
        check(FeedFilter { account_codes: vec![3], ..FeedFilter::default() }, &|e| named_accounts(e).contains("4")),
    ];
    for (filter, expected) in cases {
        assert!(!expected.is_empty(), "{filter:?} selects something");
        assert!(expected.len() < all.len(), "{filter:?} leaves something out");
        assert_eq!(cursors(&read_all(&c, 0, &filter).await), expected, "{filter:?}");
    }

    // The CLI: one JSON object per event, from a cursor, filtered.
    let out = cli(&node.endpoint(), &["feed", "--from", "2", "--kind", "movement", "--transfer-code", "7"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let codes: Vec<_> = lines.iter().map(|l| (l["kind"].as_str().unwrap().to_string(), l["event"]["code"].as_u64().unwrap())).collect();
    assert_eq!(codes, vec![("movement".to_string(), 7); 2]);
    assert!(lines.iter().all(|l| l["cursor"].as_u64().unwrap() > 2 && !l["entries"].as_array().unwrap().is_empty()));
    let bad = cli(&node.endpoint(), &["feed", "--kind", "Not-A-Kind"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("kind"), "a bad filter is refused");
    drop(node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_of_the_feed_gets_new_events_as_they_commit_and_subscribers_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let c = client(&node).await;
    setup(&c).await;
    let head = c.journal_head().await.unwrap().seq;

    // A cursor beyond the head waits; the events after it arrive as they commit.
    let mut follower = c.subscribe(head + 1, &FeedFilter::default(), true).await.unwrap();
    for i in 0..3 {
        ok(&c.create_transfers(vec![NewTransfer::posted(200 + i, format!("f{i}"), CNY, vec![Leg::new(1, 2, d("1.00"))])]).await.unwrap());
    }
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let page = tokio::time::timeout(Duration::from_secs(10), follower.next()).await.expect("an event within 10 s").unwrap().unwrap();
        seen.extend(page.events);
    }
    assert_eq!(cursors(&seen), vec![head + 2, head + 3]);
    assert!(seen[1].line.contains("\"transfer_id\":\"202\""));

    // The node serves 256 subscribers at once; the next is RESOURCE_EXHAUSTED until one leaves.
    let mut held = vec![follower];
    for _ in 1..256 {
        held.push(c.subscribe(0, &FeedFilter { kinds: vec!["none_such".into()], ..FeedFilter::default() }, true).await.unwrap());
    }
    match c.subscribe(0, &FeedFilter::default(), true).await {
        Err(ClientError::Rejected { code: tonic::Code::ResourceExhausted, .. }) => {}
        other => panic!("the 257th subscriber: {other:?}"),
    }
    held.truncate(255);
    eventually("a place freed", Duration::from_secs(10), Duration::from_millis(50), || async {
        c.subscribe(0, &FeedFilter::default(), false).await.map(drop).map_err(|e| e.to_string())
    })
    .await;
    drop(held);
    drop(node);
}

/// The test: a consumer follows the feed of a 3-node cluster under load, the leader is
/// killed, the consumer's subscription resumes on another node from its last cursor, and in the
/// end it has seen every committed event exactly once, in cursor order, with the same bytes a
/// survivor serves, every acknowledged transfer among them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_following_the_feed_sees_every_event_exactly_once_across_a_leader_kill() {
    let mut cluster = Cluster::bootstrap(3, &[]);
    let admin = patient_client(cluster.endpoints());
    ok(&admin.create_assets(vec![NewAsset::new(CNY, 2)]).await.unwrap());
    ok(&admin.create_accounts((1..=4).map(|id| NewAccount::new(id, CNY, 1)).collect()).await.unwrap());
    let leader = admin.cluster_status().await.unwrap().leader_id.expect("a leader");
    let leader_endpoint = cluster.nodes.iter().find(|n| n.id == leader).unwrap().endpoint();

    // The consumer starts on the leader (its first endpoint), following from the start.
    let mut endpoints = vec![leader_endpoint.clone()];
    endpoints.extend(cluster.endpoints().into_iter().filter(|e| *e != leader_endpoint));
    let consumer = patient_client(endpoints);
    let seen = Arc::new(std::sync::Mutex::new(Vec::<(u64, String)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let consuming = {
        let (seen, stop) = (seen.clone(), stop.clone());
        let mut subscription = consumer.subscribe(0, &FeedFilter::default(), true).await.unwrap();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(next) = tokio::time::timeout(Duration::from_millis(200), subscription.next()).await else { continue };
                let page = next.expect("a follow never ends").expect("the subscription rides out the kill");
                seen.lock().unwrap().extend(page.events.into_iter().map(|e| (e.cursor, e.line)));
            }
        })
    };

    // Writers, one transfer at a time; the leader is killed after some acknowledgements.
    let acked = Arc::new(std::sync::Mutex::new(Vec::<u128>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let writing = Arc::new(AtomicBool::new(true));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (client, acked, count, writing) = (patient_client(cluster.endpoints()), acked.clone(), count.clone(), writing.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while writing.load(Ordering::Relaxed) {
                    let key = format!("w{w}-{i}");
                    let id = transfer_id_from_key(&key);
                    let transfer = NewTransfer::posted(id, key, CNY, vec![Leg::new(1 + w, 3, d("1.00"))]);
                    if let Ok(results) = client.create_transfers(vec![transfer]).await {
                        assert_eq!(results[0].code, ResultCode::Ok, "{results:?}");
                        acked.lock().unwrap().push(id);
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    i += 1;
                }
            })
        })
        .collect();
    let acks = |n: usize| {
        let count = count.clone();
        async move {
            eventually("acknowledgements", Duration::from_secs(60), Duration::from_millis(10), || async {
                if count.load(Ordering::Relaxed) >= n { Ok(()) } else { Err(count.load(Ordering::Relaxed)) }
            })
            .await
        }
    };
    acks(100).await;
    cluster.node(leader).kill9();
    let killed_at = Instant::now();
    acks(count.load(Ordering::Relaxed) + 100).await;
    println!("FEED: 100 transfers acknowledged by the new leader {} ms after the kill", killed_at.elapsed().as_millis());
    writing.store(false, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }

    // The consumer catches up with a survivor's head.
    let survivor = patient_client(cluster.endpoints());
    let head = survivor.journal_head().await.unwrap().seq;
    eventually("the consumer catching up", Duration::from_secs(30), Duration::from_millis(50), || async {
        let last = seen.lock().unwrap().last().map_or(0, |(c, _)| *c);
        if last >= head { Ok(()) } else { Err(format!("at {last} of {head}")) }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    consuming.await.unwrap();

    let seen = seen.lock().unwrap().clone();
    let seen_cursors: Vec<u64> = seen.iter().map(|(c, _)| *c).collect();
    assert_eq!(seen_cursors[..head as usize], (1..=head).collect::<Vec<_>>()[..], "every event once, in order, no gap");
    assert!(seen_cursors.windows(2).all(|w| w[1] == w[0] + 1), "no duplicate after the resume");
    let served: Vec<(u64, String)> = read_all(&survivor, 0, &FeedFilter::default()).await.into_iter().map(|e| (e.cursor, e.line)).take(head as usize).collect();
    assert_eq!(seen[..head as usize], served[..], "the same bytes a survivor serves");
    let moved: BTreeSet<String> = seen.iter().filter_map(|(_, line)| {
        let event = serde_json::from_str::<Value>(line).unwrap()["event"].clone();
        event["transfer_id"].as_str().map(str::to_string)
    }).collect();
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 200);
    assert!(acked.iter().all(|id| moved.contains(&id.to_string())), "every acknowledged transfer is in the feed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accounts_history_pages_its_balances_after_each_change_in_a_time_range() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let c = client(&node).await;
    setup(&c).await;
    // Account 2: credited 50.00 and debited 5.00 in one step (t100), held 2.00 (t102), posted (t103).
    let all = c.get_account_history(2, HistoryRange::default()).await.unwrap();
    assert_eq!(all.next_cursor_timestamp_ns, None);
    let steps: Vec<_> = all.changes.iter().map(|ch| (ch.transfer_id, ch.balances.credits_posted, ch.balances.debits_posted, ch.balances.debits_pending)).collect();
    assert_eq!(steps, vec![(100, d("50.00"), d("5.00"), d("0")), (102, d("50.00"), d("5.00"), d("2.00")), (103, d("50.00"), d("7.00"), d("0"))]);

    // Pages of one, either way, give the same changes.
    for reverse in [false, true] {
        let (mut paged, mut cursor) = (Vec::new(), 0);
        loop {
            let page = c.get_account_history(2, HistoryRange { limit: 1, reverse, cursor_timestamp_ns: cursor, ..HistoryRange::default() }).await.unwrap();
            paged.extend(page.changes);
            match page.next_cursor_timestamp_ns {
                Some(next) => cursor = next,
                None => break,
            }
        }
        let mut expected = all.changes.clone();
        if reverse {
            expected.reverse();
        }
        assert_eq!(paged, expected, "reverse {reverse}");
    }
    // A time range, inclusive.
    let (from, to) = (all.changes[1].timestamp_ns, all.changes[2].timestamp_ns);
    let ranged = c.get_account_history(2, HistoryRange { from_timestamp_ns: from, to_timestamp_ns: to, ..HistoryRange::default() }).await.unwrap();
    assert_eq!(ranged.changes, all.changes[1..].to_vec());
    let ranged = c.get_account_history(2, HistoryRange { to_timestamp_ns: from - 1, ..HistoryRange::default() }).await.unwrap();
    assert_eq!(ranged.changes, all.changes[..1].to_vec());
    // Bounds and absence.
    for (account, range, code) in [
        (2, HistoryRange { limit: 8_191, ..HistoryRange::default() }, tonic::Code::InvalidArgument),
        (2, HistoryRange { from_timestamp_ns: 5, to_timestamp_ns: 4, ..HistoryRange::default() }, tonic::Code::InvalidArgument),
        (77, HistoryRange::default(), tonic::Code::NotFound),
    ] {
        match c.get_account_history(account, range).await {
            Err(ClientError::Rejected { code: got, .. }) => assert_eq!(got, code, "{range:?}"),
            other => panic!("{range:?}: {other:?}"),
        }
    }
    assert_eq!(c.get_account_history(2, HistoryRange { limit: 8_190, ..HistoryRange::default() }).await.unwrap().changes.len(), 3);

    // The CLI.
    let out = cli(&node.endpoint(), &["query", "history", "2", "--reverse", "--limit", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let page: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<_> = page["changes"].as_array().unwrap().iter().map(|ch| ch["transfer_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, vec!["103", "102"]);
    assert_eq!(page["changes"][0]["balances"]["debits_posted"], "7.00");
    assert_eq!(page["next_cursor_timestamp_ns"].as_u64(), Some(all.changes[1].timestamp_ns));
    let missing = cli(&node.endpoint(), &["query", "history", "77"]);
    assert_eq!(missing.status.code(), Some(1), "not found exits 1");
    drop(node);
}
