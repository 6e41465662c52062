//! Offline HCE wallets end to end against the real `ledger-node dev` binary: the acceptance flow
//! of issue 6 (top up, token, online refusal, offline records from terminal and phone posted
//! once, re-issue, clone, bad MAC), money conserved across the four accounts.

use std::str::FromStr;

use ledger_client::{Decimal, LedgerClient, Leg, NewAccount, NewAsset, NewTransfer, ResultCode};
use ledger_e2e::DevNode;
use ledger_node::api::wallet::DEV_MASTER_KEY;
use ledger_node::ledger::wallet::mac;
use ledger_proto::api as pb;
use ledger_proto::api::wallet_client::WalletClient;

const CNY: &str = "CNY";
const SOURCE: u128 = 1;
const WALLET: u128 = 2;
const MERCHANT: u128 = 3;
const CLEARING: u128 = 4;
const TOKEN: u128 = 77;
const DEVICE: &str = "phone-1";

fn d(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

fn id(n: u128) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

/// A record as the phone makes it: MAC under the token key (cents = minor units of CNY).
fn record(key: &[u8; 32], sequence: u64, cents: u128, amount: &str) -> pb::OfflineRecord {
    let mac = mac::record_mac(key, TOKEN, sequence, cents, MERCHANT, 1_000 + sequence);
    pb::OfflineRecord { sequence, amount: amount.into(), merchant_account_id: id(MERCHANT), device_time_ms: 1_000 + sequence, mac: mac.to_vec() }
}

fn sync(records: Vec<pb::OfflineRecord>, through: u64) -> pb::SyncOfflineRecordsRequest {
    pb::SyncOfflineRecordsRequest { token_id: id(TOKEN), records, reissue_through_sequence: through }
}

async fn net(c: &LedgerClient, account: u128) -> Decimal {
    let b = c.lookup_account(account).await.unwrap().unwrap().balances;
    b.credits_posted - b.debits_posted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_wallet_acceptance_flow() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let c = LedgerClient::connect(vec![node.endpoint()]).unwrap();
    let mut w = WalletClient::connect(node.endpoint()).await.unwrap();
    assert!(c.create_assets(vec![NewAsset::new(CNY, 2)]).await.unwrap()[0].is_success());
    let accounts = vec![
        NewAccount::new(SOURCE, CNY, 100),
        NewAccount { debits_must_not_exceed_credits: true, ..NewAccount::new(WALLET, CNY, 1) },
        NewAccount::new(MERCHANT, CNY, 2),
        NewAccount::new(CLEARING, CNY, 9),
    ];
    assert!(c.create_accounts(accounts).await.unwrap().iter().all(|r| r.is_success()));

    // 1. Top up 500.00; token of 100.00, count 10: 400.00 left online.
    let topup = c.create_transfers(vec![NewTransfer::posted(10, "topup", CNY, vec![Leg::new(SOURCE, WALLET, d("500.00"))])]).await.unwrap();
    assert_eq!(topup[0].code, ResultCode::Ok);
    let issued = w
        .issue_token(pb::IssueTokenRequest {
            token_id: id(TOKEN),
            account_id: id(WALLET),
            clearing_account_id: id(CLEARING),
            device_id: DEVICE.into(),
            offline_limit: "100.00".into(),
            max_offline_count: 10,
            validity_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let token = issued.token.expect("token");
    assert_eq!((token.hold_placed.as_str(), token.hold_capped), ("100.00", false));
    let key: [u8; 32] = token.mac_key.as_slice().try_into().unwrap();
    assert_eq!(key, mac::token_key(DEV_MASTER_KEY, DEVICE, TOKEN));
    let b = c.lookup_account(WALLET).await.unwrap().unwrap().balances;
    assert_eq!(b.credits_posted - b.debits_posted - b.debits_pending, d("400.00"));

    // 2. 450.00 online is refused, 300.00 passes.
    let r = c.create_transfers(vec![NewTransfer::posted(11, "pay-450", CNY, vec![Leg::new(WALLET, MERCHANT, d("450.00"))])]).await.unwrap();
    assert_eq!(r[0].code, ResultCode::ExceedsCredits);
    let r = c.create_transfers(vec![NewTransfer::posted(12, "pay-300", CNY, vec![Leg::new(WALLET, MERCHANT, d("300.00"))])]).await.unwrap();
    assert_eq!(r[0].code, ResultCode::Ok);

    // 3. Terminal uploads 1, 2; the phone 1, 2, 3 (and re-issues through 3).
    let (r1, r2, r3) = (record(&key, 1, 3_000, "30.00"), record(&key, 2, 2_500, "25.00"), record(&key, 3, 2_500, "25.00"));
    let terminal = w.sync_offline_records(sync(vec![r1.clone(), r2.clone()], 0)).await.unwrap().into_inner();
    assert!(terminal.results.iter().all(|r| r.code == pb::ResultCode::Ok as i32 && !r.replay), "{terminal:?}");
    assert_eq!(net(&c, MERCHANT).await, d("355.00"));
    let phone = w.sync_offline_records(sync(vec![r1, r2.clone(), r3], 3)).await.unwrap().into_inner();
    let codes: Vec<(i32, bool)> = phone.results.iter().map(|r| (r.code, r.replay)).collect();
    let ok = pb::ResultCode::Ok as i32;
    assert_eq!(codes, vec![(ok, true), (ok, true), (ok, false)]);
    assert_eq!(net(&c, MERCHANT).await, d("380.00"), "the merchant has 80.00 from offline records");

    // 4. Re-issued: 20.00 of the old hold released, a new hold of 100.00; posted 120.00,
    //    20.00 spendable online.
    assert_eq!(phone.reissue.as_ref().unwrap().code, ok);
    let t = phone.token.unwrap();
    assert_eq!((t.hold_placed.as_str(), t.hold_remaining.as_str(), t.generation, t.seq_base), ("100.00", "100.00", 1, 3));
    assert!(t.mac_key.is_empty(), "the key is only returned at issue");
    let b = c.lookup_account(WALLET).await.unwrap().unwrap().balances;
    assert_eq!(b.credits_posted - b.debits_posted, d("120.00"));
    assert_eq!(b.credits_posted - b.debits_posted - b.debits_pending, d("20.00"));

    // 5. Sequence 2 again with another amount: an exception, and the token is revoked.
    let clone = w.sync_offline_records(sync(vec![record(&key, 2, 9_900, "99.00")], 0)).await.unwrap().into_inner();
    assert_eq!(clone.results[0].code, pb::ResultCode::SequenceReused as i32);
    assert_eq!(clone.token.unwrap().status, "revoked");

    // 6. A bad MAC: an exception, nothing moves.
    let mut forged = record(&key, 4, 1_000, "10.00");
    forged.mac[0] ^= 1;
    let bad = w.sync_offline_records(sync(vec![forged], 0)).await.unwrap().into_inner();
    assert_eq!(bad.results[0].code, pb::ResultCode::MacInvalid as i32);
    assert_eq!(net(&c, MERCHANT).await, d("380.00"));
    let exceptions = w.list_exceptions(pb::ListExceptionsRequest { token_id: id(TOKEN), limit: 0 }).await.unwrap().into_inner().exceptions;
    let seen: Vec<(u64, i32)> = exceptions.iter().map(|e| (e.sequence, e.reason)).collect();
    assert_eq!(seen, vec![(2, pb::ResultCode::SequenceReused as i32), (4, pb::ResultCode::MacInvalid as i32)]);

    // Money is conserved across wallet, merchant, offline clearing and the top-up source.
    let mut total = Decimal::ZERO;
    for account in [SOURCE, WALLET, MERCHANT, CLEARING] {
        total += net(&c, account).await;
    }
    assert_eq!(total, Decimal::ZERO);
    let held = c.lookup_account(CLEARING).await.unwrap().unwrap().balances.credits_pending;
    assert_eq!(held, d("100.00"), "the clearing account carries exactly the live hold");
}
