//! Against a running ledger-node, when `LEDGER_TEST_ENDPOINT` is set (else these tests pass
//! without doing anything). Run: `LEDGER_TEST_ENDPOINT=http://127.0.0.1:7070 cargo test --release
//! -p ledger-client --test live_node -- --nocapture`. Uses fresh random-ish ids each run.

use ledger_client::*;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn endpoint() -> Option<String> {
    std::env::var("LEDGER_TEST_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batcher_against_a_live_node() {
    let Some(endpoint) = endpoint() else { return };
    let client = LedgerClient::connect(vec![endpoint]).unwrap();
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let (debit, credit) = ((run as u128) << 32, ((run as u128) << 32) + 1);
    let assets = client
        .create_assets(vec![NewAsset::new("LIVE", 2)])
        .await
        .unwrap();
    assert!(assets[0].is_success(), "{assets:?}");
    let accounts = client
        .create_accounts(vec![
            NewAccount::new(debit, "LIVE", 1),
            NewAccount::new(credit, "LIVE", 1),
        ])
        .await
        .unwrap();
    assert!(accounts.iter().all(WriteResult::is_success), "{accounts:?}");

    let batcher = client.batcher(BatcherConfig {
        linger: Duration::from_millis(2),
        ..BatcherConfig::default()
    });
    let count = 20_000u128;
    let amount = parse_amount("0.01").unwrap();
    let started = Instant::now();
    let submits = (0..count).map(|n| {
        let transfer = NewTransfer::posted(
            debit + 2 + n,
            format!("live-{run}-{n}"),
            "LIVE",
            vec![Leg::new(debit, credit, amount)],
        );
        batcher.submit(transfer)
    });
    let results = futures::future::join_all(submits).await;
    let elapsed = started.elapsed();
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().is_ok_and(WriteResult::is_success))
    );
    eprintln!(
        "{count} transfers through the batcher in {elapsed:?} ({:.0}/s)",
        count as f64 / elapsed.as_secs_f64()
    );

    let account = client.lookup_account(credit).await.unwrap().unwrap();
    assert_eq!(
        account.balances.credits_posted,
        amount * ledger_client::Amount::from(count as u64)
    );
    let page = client
        .list_account_entries(credit, 0, 10, false)
        .await
        .unwrap();
    assert_eq!(page.entries.len(), 10);
    assert!(page.next_cursor_timestamp_ns.is_some());
}
