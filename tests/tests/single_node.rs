//! The single-node ledger end to end: the real `ledger-node` binary, the Rust client, SIGKILL.

use std::str::FromStr;

use ledger_client::{
    AccountStatus, ClientError, Amount, LedgerClient, Leg, NewAccount, NewAsset, NewTransfer, PendingState, ResultCode,
    TransferKind, WriteResult,
};
use ledger_e2e::DevNode;

const CNY: &str = "CNY";
const USD: &str = "USD";
const TOPUP: u128 = 1;
const PAYER: u128 = 2;
const MERCHANT: u128 = 3;
const FEE: u128 = 4;
const PLATFORM: u128 = 5;
const USD_WALLET: u128 = 6;

fn d(text: &str) -> Amount {
    Amount::from_str(text).expect("decimal literal")
}

fn ok(results: &[WriteResult]) {
    for r in results {
        assert!(r.is_success(), "expected success, got {r:?}");
    }
}

async fn client(node: &DevNode) -> LedgerClient {
    LedgerClient::connect(vec![node.endpoint()]).expect("client")
}

async fn setup(c: &LedgerClient) {
    ok(&c.create_assets(vec![NewAsset::new(CNY, 2), NewAsset::new(USD, 2)]).await.unwrap());
    let wallet = |id, asset: &str| NewAccount { debits_must_not_exceed_credits: true, ..NewAccount::new(id, asset, 1) };
    ok(&c
        .create_accounts(vec![
            NewAccount::new(TOPUP, CNY, 100),
            wallet(PAYER, CNY),
            NewAccount::new(MERCHANT, CNY, 2),
            NewAccount::new(FEE, CNY, 3),
            NewAccount::new(PLATFORM, CNY, 4),
            wallet(USD_WALLET, USD),
        ])
        .await
        .unwrap());
}

async fn balance(c: &LedgerClient, id: u128) -> (Amount, Amount, Amount, Amount) {
    let b = c.lookup_account(id).await.unwrap().expect("account exists").balances;
    (b.debits_posted, b.credits_posted, b.debits_pending, b.credits_pending)
}

async fn submit_one(c: &LedgerClient, t: NewTransfer) -> WriteResult {
    let mut results = c.create_transfers(vec![t]).await.expect("transfer request");
    assert_eq!(results.len(), 1);
    results.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_survive_kill_9_and_retries_return_the_first_result() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = DevNode::start(&dir.path().join("node"));
    let c = client(&node).await;
    setup(&c).await;

    let mut acknowledged = Vec::new();
    let topup = submit_one(&c, NewTransfer::posted(101, "topup-1", CNY, vec![Leg::new(TOPUP, PAYER, d("1000.00"))])).await;
    assert_eq!(topup.code, ResultCode::Ok);
    acknowledged.push(101u128);

    // Payer -> merchant, fee, platform: three legs, one transfer.
    let order = NewTransfer::posted(
        102,
        "order-1",
        CNY,
        vec![
            Leg::new(PAYER, MERCHANT, d("95.00")),
            Leg::new(PAYER, FEE, d("3.00")),
            Leg::new(PAYER, PLATFORM, d("2.00")),
        ],
    );
    let first = submit_one(&c, order.clone()).await;
    assert_eq!(first.code, ResultCode::Ok);
    assert!(!first.replay);
    acknowledged.push(102);
    assert_eq!(balance(&c, PAYER).await, (d("100.00"), d("1000.00"), d("0"), d("0")));
    assert_eq!(balance(&c, MERCHANT).await.1, d("95.00"));
    assert_eq!(balance(&c, FEE).await.1, d("3.00"));
    assert_eq!(balance(&c, PLATFORM).await.1, d("2.00"));

    // A hold of 200, posted partially: 150 moves, 50 is released.
    let hold = submit_one(&c, NewTransfer::pending(103, "hold-1", CNY, vec![Leg::new(PAYER, MERCHANT, d("200.00"))], 0)).await;
    assert_eq!(hold.code, ResultCode::Ok);
    acknowledged.push(103);
    assert_eq!(balance(&c, PAYER).await, (d("100.00"), d("1000.00"), d("200.00"), d("0")));
    let post = submit_one(&c, NewTransfer::post(104, "post-1", 103, vec![d("150.00")])).await;
    assert_eq!(post.code, ResultCode::Ok);
    acknowledged.push(104);
    assert_eq!(balance(&c, PAYER).await, (d("250.00"), d("1000.00"), d("0"), d("0")));
    let held = c.lookup_transfer(103).await.unwrap().unwrap();
    assert_eq!(held.pending_state, PendingState::Posted);

    // The merchant refunds 50.
    let refund = submit_one(&c, NewTransfer::posted(105, "refund-1", CNY, vec![Leg::new(MERCHANT, PAYER, d("50.00"))])).await;
    assert_eq!(refund.code, ResultCode::Ok);
    acknowledged.push(105);
    assert_eq!(balance(&c, PAYER).await, (d("250.00"), d("1050.00"), d("0"), d("0")));
    assert_eq!(balance(&c, MERCHANT).await, (d("50.00"), d("245.00"), d("0"), d("0")));

    // A retry with the same key and content returns the first result and moves nothing.
    let retry = submit_one(&c, order.clone()).await;
    assert_eq!((retry.code, retry.replay, retry.timestamp_ns, retry.id), (ResultCode::Ok, true, first.timestamp_ns, 102));
    assert_eq!(balance(&c, PAYER).await.0, d("250.00"));
    // The same key with other content is a conflict.
    let mut altered = order.clone();
    altered.legs[0].amount = d("96.00");
    assert_eq!(submit_one(&c, altered).await.code, ResultCode::IdempotencyKeyConflict);

    let before = c.state_hash().await.unwrap();
    let balances_before: Vec<_> = futures::future::join_all([TOPUP, PAYER, MERCHANT, FEE, PLATFORM].map(|id| balance(&c, id))).await;

    node.kill9();
    node.restart();
    let c = client(&node).await;

    let after = c.state_hash().await.unwrap();
    assert_eq!(after.state_hash, before.state_hash, "state after kill -9 and restart");
    let balances_after: Vec<_> = futures::future::join_all([TOPUP, PAYER, MERCHANT, FEE, PLATFORM].map(|id| balance(&c, id))).await;
    assert_eq!(balances_after, balances_before);
    let found = c.lookup_transfers(acknowledged.clone()).await.unwrap();
    assert_eq!(found.iter().map(|t| t.transfer.id).collect::<Vec<_>>(), acknowledged, "every acknowledged transfer");
    let retry = submit_one(&c, order).await;
    assert_eq!((retry.code, retry.replay, retry.timestamp_ns), (ResultCode::Ok, true, first.timestamp_ns));
    let by_key = c.get_transfer_by_idempotency_key("refund-1").await.unwrap().expect("key known");
    assert_eq!((by_key.code, by_key.transfer_id), (ResultCode::Ok, 105));
    assert_eq!(c.state_hash().await.unwrap().state_hash, before.state_hash, "replays moved nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_under_load_loses_no_acknowledged_transfer_and_applies_none_twice() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let mut node = DevNode::start(&dir.path().join("node"));
    let c = client(&node).await;
    setup(&c).await;
    ok(&c.create_transfers(vec![NewTransfer::posted(1, "fund", CNY, vec![Leg::new(TOPUP, PAYER, d("100000.00"))])]).await.unwrap());

    // 32 concurrent clients send batches of 4 transfers until told to stop. The node is killed
    // while requests are in flight; the client retries (same idempotency keys) reach the
    // restarted node on the same port.
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for worker in 0..32u128 {
        let (c, stop) = (c.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let (mut acked, mut attempted) = (Vec::new(), Vec::new());
            let mut round = 0u128;
            while !stop.load(Ordering::Relaxed) && round < 10_000 {
                let batch: Vec<NewTransfer> = (0..4u128)
                    .map(|i| {
                        let id = 1_000_000 + worker * 100_000 + round * 10 + i;
                        NewTransfer::posted(id, format!("burst-{id}"), CNY, vec![Leg::new(PAYER, MERCHANT, d("0.01"))])
                    })
                    .collect();
                attempted.extend(batch.iter().map(|t| t.id));
                let ids: Vec<u128> = batch.iter().map(|t| t.id).collect();
                if let Ok(results) = c.create_transfers(batch).await {
                    assert_eq!(results.len(), ids.len());
                    for (id, r) in ids.into_iter().zip(results) {
                        // Requests are coalesced server-side: each caller must get its own results.
                        assert_eq!((r.code, r.id), (ResultCode::Ok, id), "{r:?}");
                        acked.push(id);
                    }
                }
                round += 1;
            }
            (acked, attempted)
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    node.kill9();
    node.restart();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut acknowledged, mut attempted) = (Vec::new(), Vec::new());
    for t in tasks {
        let (a, t) = t.await.unwrap();
        acknowledged.extend(a);
        attempted.extend(t);
    }
    assert!(acknowledged.len() > 100, "the load ran: {} acknowledged", acknowledged.len());

    let c = client(&node).await;
    let mut found = std::collections::BTreeSet::new();
    for chunk in attempted.chunks(1_000) {
        found.extend(c.lookup_transfers(chunk.to_vec()).await.unwrap().into_iter().map(|t| t.transfer.id));
    }
    for id in &acknowledged {
        assert!(found.contains(id), "acknowledged transfer {id} lost after kill -9");
    }
    // Each stored transfer moved 0.01 exactly once: nothing applied twice, nothing created.
    let payer = balance(&c, PAYER).await;
    assert_eq!(payer.0, Amount::new(found.len() as i64, 2));
    assert_eq!(balance(&c, MERCHANT).await.1, payer.0, "money conserved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_its_own_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let c = client(&node).await;
    setup(&c).await;
    ok(&c.create_transfers(vec![NewTransfer::posted(1, "fund", CNY, vec![Leg::new(TOPUP, PAYER, d("10.00"))])]).await.unwrap());
    let balances = |c: LedgerClient| async move {
        futures::future::join_all([TOPUP, PAYER, MERCHANT, USD_WALLET].map(|id| {
            let c = c.clone();
            async move { balance(&c, id).await }
        }))
        .await
    };
    let before = balances(c.clone()).await;

    let cases: Vec<(NewTransfer, ResultCode, Option<u32>)> = vec![
        (NewTransfer::posted(10, "k10", CNY, vec![Leg::new(PAYER, 999, d("1.00"))]), ResultCode::CreditAccountNotFound, Some(0)),
        (NewTransfer::posted(11, "k11", CNY, vec![Leg::new(998, PAYER, d("1.00"))]), ResultCode::DebitAccountNotFound, Some(0)),
        (NewTransfer::posted(12, "k12", CNY, vec![Leg::new(PAYER, USD_WALLET, d("1.00"))]), ResultCode::AssetMismatch, Some(0)),
        (NewTransfer::posted(13, "k13", CNY, vec![Leg::new(PAYER, MERCHANT, d("1.001"))]), ResultCode::AmountScaleExceeded, Some(0)),
        (NewTransfer::posted(14, "k14", CNY, vec![Leg::new(PAYER, MERCHANT, d("10.01"))]), ResultCode::ExceedsCredits, Some(0)),
        (NewTransfer::posted(15, "k15", "EUR", vec![Leg::new(PAYER, MERCHANT, d("1.00"))]), ResultCode::AssetNotFound, None),
        (
            NewTransfer::posted(
                16,
                "k16",
                CNY,
                vec![Leg::new(PAYER, MERCHANT, d("5.00")), Leg::new(PAYER, MERCHANT, d("5.01"))],
            ),
            ResultCode::ExceedsCredits,
            Some(1),
        ),
        (NewTransfer::posted(17, "k17", CNY, vec![Leg::new(PAYER, PAYER, d("1.00"))]), ResultCode::AccountsMustBeDifferent, Some(0)),
        (NewTransfer::posted(18, "k18", CNY, vec![]), ResultCode::LegsEmpty, None),
        (NewTransfer::posted(19, "", CNY, vec![Leg::new(PAYER, MERCHANT, d("1.00"))]), ResultCode::IdempotencyKeyInvalid, None),
        (NewTransfer::posted(0, "k20", CNY, vec![Leg::new(PAYER, MERCHANT, d("1.00"))]), ResultCode::IdMustNotBeZero, None),
        (NewTransfer::post(21, "k21", 777, vec![]), ResultCode::PendingTransferNotFound, None),
    ];
    let expected: Vec<_> = cases.iter().map(|(_, code, leg)| (*code, *leg)).collect();
    let results = c.create_transfers(cases.into_iter().map(|(t, _, _)| t).collect()).await.unwrap();
    let got: Vec<_> = results.iter().map(|r| (r.code, r.leg_index)).collect();
    assert_eq!(got, expected);
    assert_eq!(balances(c.clone()).await, before, "refused transfers moved money");
    assert!(c.lookup_transfers((10..=21).collect()).await.unwrap().is_empty(), "refused transfers were stored");

    // An oversized batch is refused whole.
    let oversized: Vec<NewTransfer> = (0..8_191u128)
        .map(|i| NewTransfer::posted(50_000 + i, format!("big-{i}"), CNY, vec![Leg::new(PAYER, MERCHANT, d("0.01"))]))
        .collect();
    match c.create_transfers(oversized).await {
        Err(ClientError::Rejected { code, message }) => {
            assert_eq!(code, tonic::Code::InvalidArgument);
            assert!(message.contains("8190"), "{message}");
        }
        other => panic!("oversized batch: {other:?}"),
    }
    assert_eq!(balances(c.clone()).await, before);

    // Malformed requests straight on the wire: wrong id length, bad amounts, unknown kind.
    use ledger_proto::api as pb;
    let mut raw = pb::ledger_client::LedgerClient::connect(node.endpoint()).await.unwrap();
    let leg = |amount: &str| pb::Leg {
        debit_account_id: PAYER.to_be_bytes().to_vec(),
        credit_account_id: MERCHANT.to_be_bytes().to_vec(),
        amount: amount.into(),
    };
    let transfer = |id: Vec<u8>, key: &str, legs: Vec<pb::Leg>, kind: i32| pb::Transfer {
        id,
        idempotency_key: key.into(),
        asset: CNY.into(),
        legs,
        kind,
        ..Default::default()
    };
    const POSTED: i32 = pb::TransferKind::Posted as i32;
    let hash_before = c.state_hash().await.unwrap().state_hash;
    let reply = raw
        .create_transfers(pb::CreateTransfersRequest {
            transfers: vec![
                transfer(vec![1, 2, 3], "m1", vec![leg("1.00")], POSTED),
                transfer(30u128.to_be_bytes().to_vec(), "m2", vec![leg("1,00")], POSTED),
                transfer(31u128.to_be_bytes().to_vec(), "m3", vec![leg("-1.00")], POSTED),
                transfer(32u128.to_be_bytes().to_vec(), "m4", vec![leg("1.00")], 99),
                transfer(33u128.to_be_bytes().to_vec(), "m5", vec![leg("0")], POSTED),
                transfer(34u128.to_be_bytes().to_vec(), "m6", vec![leg(&"9".repeat(39))], POSTED),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    let codes: Vec<i32> = reply.results.iter().map(|r| r.code).collect();
    let want = [
        pb::ResultCode::IdInvalid,
        pb::ResultCode::AmountInvalid,
        pb::ResultCode::AmountNegative,
        pb::ResultCode::KindInvalid,
        pb::ResultCode::AmountZero,
        pb::ResultCode::AmountOverflow,
    ]
    .map(|c| c as i32);
    assert_eq!(codes, want);
    assert_eq!(c.state_hash().await.unwrap().state_hash, hash_before, "malformed input changed state");
    let status = raw
        .lookup_accounts(pb::LookupAccountsRequest { ids: vec![vec![7; 5]] })
        .await
        .expect_err("a 5-byte id is not an id");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_expire_on_time_and_frozen_accounts_cannot_pay() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let c = client(&node).await;
    setup(&c).await;
    ok(&c.create_transfers(vec![NewTransfer::posted(1, "fund", CNY, vec![Leg::new(TOPUP, PAYER, d("100.00"))])]).await.unwrap());

    let hold = submit_one(&c, NewTransfer::pending(2, "hold", CNY, vec![Leg::new(PAYER, MERCHANT, d("60.00"))], 300)).await;
    assert_eq!(hold.code, ResultCode::Ok);
    assert_eq!(balance(&c, PAYER).await.2, d("60.00"));
    // The leader's ticker expires the hold without any other write.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let t = c.lookup_transfer(2).await.unwrap().unwrap();
        if t.pending_state == PendingState::Expired {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "hold did not expire: {t:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(balance(&c, PAYER).await, (d("0"), d("100.00"), d("0"), d("0")));
    let late_post = submit_one(&c, NewTransfer::post(3, "late-post", 2, vec![])).await;
    assert_eq!(late_post.code, ResultCode::PendingTransferExpired);

    let frozen = c.set_account_status(vec![(PAYER, AccountStatus::Frozen, "risk review".into())]).await.unwrap();
    ok(&frozen);
    let pay = submit_one(&c, NewTransfer::posted(4, "pay-frozen", CNY, vec![Leg::new(PAYER, MERCHANT, d("1.00"))])).await;
    assert_eq!(pay.code, ResultCode::AccountFrozen);
    let receive = submit_one(&c, NewTransfer::posted(5, "credit-frozen", CNY, vec![Leg::new(TOPUP, PAYER, d("1.00"))])).await;
    assert_eq!(receive.code, ResultCode::Ok, "a frozen account still receives");
    let close = c.set_account_status(vec![(PAYER, AccountStatus::Closed, String::new())]).await.unwrap();
    assert_eq!(close[0].code, ResultCode::BalanceNotZero);

    let entries = c.list_account_entries(PAYER, 0, 100, false).await.unwrap();
    let kinds: Vec<_> = entries.entries.iter().map(|e| e.kind.name()).collect();
    assert_eq!(kinds, ["posted", "pending", "expire_pending", "posted"]);
    let first_ts = entries.entries[0].timestamp_ns;
    let at = c.get_balance_at(PAYER, first_ts).await.unwrap();
    assert_eq!(at.balances.credits_posted, d("100.00"));
    assert_eq!(c.lookup_transfer(2).await.unwrap().unwrap().transfer.kind, TransferKind::Pending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_see_committed_entries_of_their_account_only() {
    use futures::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let c = client(&node).await;
    setup(&c).await;
    let mut watch = c.watch_account(MERCHANT).await.unwrap();
    ok(&c.create_transfers(vec![NewTransfer::posted(1, "fund", CNY, vec![Leg::new(TOPUP, PAYER, d("10.00"))])]).await.unwrap());
    ok(&c.create_transfers(vec![NewTransfer::posted(2, "pay", CNY, vec![Leg::new(PAYER, MERCHANT, d("4.00"))])]).await.unwrap());
    let entry = tokio::time::timeout(std::time::Duration::from_secs(5), watch.next())
        .await
        .expect("an entry within 5 s")
        .expect("stream open")
        .expect("entry");
    // The first transfer never touched the merchant: the first entry it sees is the payment.
    assert_eq!((entry.account_id, entry.transfer_id, entry.is_debit, entry.amount), (MERCHANT, 2, false, d("4.00")));
    assert_eq!(entry.balances_after.credits_posted, d("4.00"));
}
