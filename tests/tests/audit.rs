//! Regulator audit end to end against a real `ledger-node dev`: a mixed workload (multi-leg,
//! two-phase with post, void and expiry, freeze/unfreeze, an offline wallet), the journal head
//! pinned, an export through the `ledger` CLI verified offline, then each kind of tampering
//! caught and named; a range export; statements; the reconciliation report.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ledger_client::audit::verify::{self, Pin};
use ledger_client::{AccountStatus, Amount, LedgerClient, Leg, NewAccount, NewAsset, NewTransfer, ResultCode};
use ledger_e2e::{DevNode, binary};
use ledger_node::api::wallet::DEV_MASTER_KEY;
use ledger_core::wallet::mac;
use ledger_proto::api as pb;
use ledger_proto::api::wallet_client::WalletClient;

const CNY: &str = "CNY";
const BANK: u128 = 1; // custody, code 100
const ALICE: u128 = 2; // customers, code 200
const BOB: u128 = 3;
const SHOP: u128 = 4; // merchant, code 300
const CLEARING: u128 = 5; // offline clearing, code 900
const TOKEN: u128 = 77;

fn d(text: &str) -> Amount {
    Amount::from_str(text).unwrap()
}

fn id(n: u128) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

fn ok(results: Vec<ledger_client::WriteResult>) {
    assert!(results.iter().all(|r| r.code == ResultCode::Ok), "{results:?}");
}

async fn workload(c: &LedgerClient, endpoint: &str) {
    ok(c.create_assets(vec![NewAsset::new(CNY, 2), NewAsset::new("JPY", 0)]).await.unwrap());
    ok(c.create_accounts(vec![
        NewAccount::new(BANK, CNY, 100),
        NewAccount { debits_must_not_exceed_credits: true, ..NewAccount::new(ALICE, CNY, 200) },
        NewAccount { debits_must_not_exceed_credits: true, ..NewAccount::new(BOB, CNY, 200) },
        NewAccount::new(SHOP, CNY, 300),
        NewAccount::new(CLEARING, CNY, 900),
        NewAccount::new(10, "JPY", 100),
        NewAccount::new(11, "JPY", 200),
    ])
    .await
    .unwrap());
    // Deposits: customers' money arrives at the bank (custody debited, customers credited).
    ok(c.create_transfers(vec![
        NewTransfer::posted(100, "deposit-a", CNY, vec![Leg::new(BANK, ALICE, d("1000.00")), Leg::new(BANK, BOB, d("250.50"))]),
        NewTransfer::posted(101, "deposit-jpy", "JPY", vec![Leg::new(10, 11, d("5000"))]),
    ])
    .await
    .unwrap());
    // A multi-leg purchase with a fee-like second leg, and a key with a comma and a quote.
    ok(c.create_transfers(vec![NewTransfer::posted(102, "order,\"7\"", CNY, vec![Leg::new(ALICE, SHOP, d("99.99")), Leg::new(BOB, SHOP, d("0.01"))])]).await.unwrap());
    // Two-phase: posted in part, voided, and one left to expire.
    ok(c.create_transfers(vec![
        NewTransfer::pending(200, "hold-1", CNY, vec![Leg::new(ALICE, SHOP, d("50.00"))], 0),
        NewTransfer::pending(201, "hold-2", CNY, vec![Leg::new(BOB, SHOP, d("20.00"))], 0),
        NewTransfer::pending(202, "hold-3", CNY, vec![Leg::new(ALICE, SHOP, d("5.00"))], 1),
    ])
    .await
    .unwrap());
    ok(c.create_transfers(vec![NewTransfer::post(203, "post-1", 200, vec![d("30.00")]), NewTransfer::void(204, "void-2", 201)]).await.unwrap());
    // Freeze and unfreeze.
    ok(c.set_account_status(vec![(BOB, AccountStatus::Frozen, "kyc review".into())]).await.unwrap());
    ok(c.set_account_status(vec![(BOB, AccountStatus::Active, "kyc done".into())]).await.unwrap());
    // An offline wallet: token, two records, a re-issue, a clone exception.
    let mut w = WalletClient::connect(endpoint.to_string()).await.unwrap();
    let token = w
        .issue_token(pb::IssueTokenRequest {
            token_id: id(TOKEN),
            account_id: id(ALICE),
            clearing_account_id: id(CLEARING),
            device_id: "phone".into(),
            offline_limit: "100.00".into(),
            max_offline_count: 5,
            validity_ms: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .token
        .unwrap();
    let key: [u8; 32] = token.mac_key.as_slice().try_into().unwrap();
    assert_eq!(key, mac::token_key(DEV_MASTER_KEY, "phone", TOKEN));
    let record = |sequence: u64, cents: u128, amount: &str| {
        let m = mac::record_mac(&key, TOKEN, sequence, cents, SHOP, 9_000 + sequence);
        pb::OfflineRecord { sequence, amount: amount.into(), merchant_account_id: id(SHOP), device_time_ms: 9_000 + sequence, mac: m.to_vec() }
    };
    let sync = |records, through| pb::SyncOfflineRecordsRequest { token_id: id(TOKEN), records, reissue_through_sequence: through };
    w.sync_offline_records(sync(vec![record(1, 1_500, "15.00"), record(2, 500, "5.00")], 2)).await.unwrap();
    w.sync_offline_records(sync(vec![record(2, 900, "9.00")], 0)).await.unwrap();
    // A refused transfer and a replay: no journal line, but the command still runs the expiry.
    let refused = c.create_transfers(vec![NewTransfer::posted(300, "too-much", CNY, vec![Leg::new(BOB, SHOP, d("999999.00"))])]).await.unwrap();
    assert_eq!(refused[0].code, ResultCode::ExceedsCredits);
}

fn ledger_cli(endpoint: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(binary("ledger")).args(["--endpoint", endpoint]).args(args).output().expect("run ledger")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Applies `edit` to `file` in a copy of `export` and returns the verifier's complaint.
fn tampered(export: &Path, work: &Path, name: &str, file: &str, edit: impl Fn(String) -> String) -> String {
    let copy = work.join(name);
    copy_dir(export, &copy);
    let path = copy.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = edit(text.clone());
    assert_ne!(edited, text, "{name}: the edit changed nothing");
    std::fs::write(&path, edited).unwrap();
    verify::verify(&copy, None).expect_err(name).to_string()
}

fn lines_of(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

fn join(lines: Vec<String>) -> String {
    lines.join("\n") + "\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_verify_tamper_statements_and_reconciliation() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let endpoint = node.endpoint();
    let c = LedgerClient::connect(vec![endpoint.clone()]).unwrap();
    workload(&c, &endpoint).await;
    tokio::time::sleep(Duration::from_millis(5)).await;

    // Pin the head, export everything through the CLI, verify offline against the pin.
    let head = ledger_cli(&endpoint, &["audit", "head"]);
    assert!(head.status.success(), "{head:?}");
    let pin = String::from_utf8(head.stdout).unwrap().trim().to_string();
    let pinned = Pin::parse(&pin).unwrap();
    let export: PathBuf = dir.path().join("export");
    let out = ledger_cli(&endpoint, &["audit", "export", export.to_str().unwrap(), "--to-seq", &pinned.seq.to_string(), "--utc-offset", "+08:00"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = ledger_cli(&endpoint, &["audit", "verify", export.to_str().unwrap(), "--pin", &pin]);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success() && said.contains("passes through the pinned head"), "{said}");
    let report = verify::verify(&export, Some(pinned)).unwrap();
    assert_eq!((report.manifest.from_seq, report.manifest.to_seq), (1, pinned.seq));
    assert_eq!(report.assets, 2);

    // Every event kind the workload made is in the journal.
    let journal = std::fs::read_to_string(export.join("journal.jsonl")).unwrap();
    for kind in ["asset_created", "account_created", "account_status_changed", "movement", "wallet_token", "wallet_exception"] {
        assert!(journal.contains(&format!("\"type\":\"{kind}\"")), "no {kind} line");
    }
    for leg in ["posted", "pending", "post_pending", "void_pending", "expire_pending"] {
        assert!(journal.contains(&format!("\"kind\":\"{leg}\"")), "no {leg} leg");
    }
    assert!(!journal.contains("too-much"), "a refused transfer is not a journal line");
    // journal.csv: local times in +08:00, the awkward key quoted.
    let csv = std::fs::read_to_string(export.join("journal.csv")).unwrap();
    assert!(csv.lines().nth(1).unwrap().contains("+08:00"));
    assert!(csv.contains("\"order,\"\"7\"\"\""), "RFC 4180 quoting");

    // Closing balances equal the ledger's balances (no write since the pin).
    let balances = std::fs::read_to_string(export.join("balances.csv")).unwrap();
    for account in c.lookup_accounts(vec![BANK, ALICE, BOB, SHOP, CLEARING]).await.unwrap() {
        let b = account.balances;
        let row = balances.lines().find(|l| l.starts_with(&format!("{},", account.account.id))).unwrap();
        let closing: Vec<&str> = row.split(',').skip(7).collect();
        let ledger: Vec<String> = [b.debits_posted, b.credits_posted, b.debits_pending, b.credits_pending].iter().map(|v| format!("{v:.2}")).collect();
        assert_eq!(closing, ledger, "account {}", account.account.id);
    }
    let trial = std::fs::read_to_string(export.join("trial_balance.csv")).unwrap();
    assert!(trial.lines().any(|l| l.starts_with("CNY,5,") && l.ends_with(",0.00,0.00")), "{trial}");

    // Tampering, each named.
    let work = dir.path().join("tampered");
    let why = tampered(&export, &work, "digit", "journal.jsonl", |t| t.replacen("\"1000.00\"", "\"1001.00\"", 1));
    assert!(why.starts_with("journal.jsonl line ") && why.contains("does not hash"), "{why}");
    let why = tampered(&export, &work, "deleted", "journal.jsonl", |t| {
        let mut l = lines_of(&t);
        l.remove(10);
        join(l)
    });
    assert!(why.starts_with("journal.jsonl line 11") && why.contains("seq 12 where seq 11"), "{why}");
    let why = tampered(&export, &work, "reordered", "journal.jsonl", |t| {
        let mut l = lines_of(&t);
        l.swap(12, 13);
        join(l)
    });
    assert!(why.starts_with("journal.jsonl line 13"), "{why}");
    let why = tampered(&export, &work, "csv-row", "journal.csv", |t| {
        let mut l = lines_of(&t);
        l.remove(3);
        join(l)
    });
    assert!(why.starts_with("journal.csv line 4"), "{why}");
    let why = tampered(&export, &work, "closing", "balances.csv", |t| t.replacen(",1000.00,", ",1000.01,", 1));
    assert!(why.starts_with("balances.csv line ") && why.contains("closes at"), "{why}");
    let why = tampered(&export, &work, "manifest-hash", "manifest.json", |t| {
        let end = report.manifest.hash_end.clone();
        t.replace(&end, &"0".repeat(64))
    });
    assert!(why.starts_with("manifest.json") && why.contains("hash_end"), "{why}");
    let why = tampered(&export, &work, "manifest-count", "manifest.json", |t| t.replacen("\"legs\": ", "\"legs\": 1", 1));
    assert!(why.starts_with("manifest.json"), "{why}");
    let why = tampered(&export, &work, "trial", "trial_balance.csv", |t| t.replacen("CNY,5,", "CNY,4,", 1));
    assert!(why.starts_with("trial_balance.csv line 2"), "{why}");
    // A whole rewrite (lines, hashes and manifest recomputed) still fails against the pin.
    let copy = work.join("rewritten");
    copy_dir(&export, &copy);
    let wrong_pin = Pin { seq: pinned.seq, hash: [7; 32] };
    let why = verify::verify(&copy, Some(wrong_pin)).unwrap_err().to_string();
    assert!(why.contains("pinned head"), "{why}");

    // A range in the middle: opening balances are not zero, and it verifies.
    let middle = dir.path().join("middle");
    c.export_journal(
        ledger_client::audit::export::ExportRange { from_seq: 12, to_seq: pinned.seq - 3, ..Default::default() },
        ledger_client::timestamp::UtcOffset::default(),
        &middle,
        |_, _| {},
    )
    .await
    .unwrap();
    let report = verify::verify(&middle, Some(pinned)).unwrap();
    assert_eq!(report.pin, verify::PinCheck::OutsideRange);
    let opening = std::fs::read_to_string(middle.join("balances.csv")).unwrap();
    assert!(opening.lines().any(|l| l.starts_with("2,CNY,200,0.00,1000.00,")), "{opening}");
    // An export never overwrites.
    let again = c.export_journal(Default::default(), Default::default(), &middle, |_, _| {}).await;
    assert!(matches!(again, Err(ledger_client::audit::export::ExportError::NotEmpty(_))));

    // Statement of Alice: opening 0, one row per entry, closing = her balances now.
    let out = ledger_cli(&endpoint, &["audit", "statement", "2", "--format", "csv"]);
    assert!(out.status.success());
    let statement = String::from_utf8(out.stdout).unwrap();
    let alice = c.lookup_account(ALICE).await.unwrap().unwrap().balances;
    let last = statement.lines().last().unwrap();
    assert!(last.starts_with("closing,") && last.ends_with(&format!(",{:.2}", alice.credits_posted - alice.debits_posted)), "{statement}");
    let entries = c.list_account_entries(ALICE, 0, 1000, false).await.unwrap().entries.len();
    assert_eq!(statement.lines().count(), entries + 3, "header, opening, entries, closing");
    let out = ledger_cli(&endpoint, &["audit", "statement", "2", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["entries"].as_array().unwrap().len(), entries);

    // Reconciliation: custody (code 100) against customers and merchants (200, 300). The
    // difference is what sits in the offline clearing account (code 900) as a hold: none posted.
    let out = ledger_cli(&endpoint, &["audit", "reconcile", export.to_str().unwrap(), "--custody-code", "100", "--liability-code", "200,300"]);
    assert!(out.status.success());
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(report.lines().any(|l| l == "CNY,1,1250.50,3,1250.50,0.00"), "{report}");
}
