//! Offline HCE wallets end to end against the real `ledger-node dev` binary: the acceptance flow
//! of issue 6 (top up, token, online refusal, offline records from terminal and phone posted
//! once, re-issue, clone, bad MAC), money conserved across the four accounts.

use std::str::FromStr;

use ledger_client::wallet::{NewToken, OfflineRecord, TokenKey, TokenStatus};
use ledger_client::{Amount, LedgerClient, Leg, NewAccount, NewAsset, NewTransfer, ResultCode};
use ledger_e2e::DevNode;
use ledger_node::api::wallet::DEV_MASTER_KEY;
use ledger_core::wallet::mac;
use ledger_proto::api as pb;
use ledger_proto::api::wallet_client::WalletClient;

const CNY: &str = "CNY";
const CNY_SCALE: u32 = 2;
const SOURCE: u128 = 1;
const WALLET: u128 = 2;
const MERCHANT: u128 = 3;
const CLEARING: u128 = 4;
const TOKEN: u128 = 77;
const DEVICE: &str = "phone-1";

fn d(text: &str) -> Amount {
    Amount::from_str(text).unwrap()
}

/// A record as the phone makes it, signed by the client's MAC helper; the node's own
/// `record_mac` (cents = minor units of CNY) must give the same bytes.
fn record(key: &TokenKey, sequence: u64, cents: u128, amount: &str) -> OfflineRecord {
    let record = OfflineRecord::signed(key, TOKEN, sequence, d(amount), CNY_SCALE, MERCHANT, 1_000 + sequence).unwrap();
    assert_eq!(record.mac, mac::record_mac(key.as_bytes(), TOKEN, sequence, cents, MERCHANT, 1_000 + sequence));
    record
}

async fn net(c: &LedgerClient, account: u128) -> Amount {
    let b = c.lookup_account(account).await.unwrap().unwrap().balances;
    b.credits_posted - b.debits_posted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_wallet_acceptance_flow() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let c = LedgerClient::connect(vec![node.endpoint()]).unwrap();
    assert!(c.create_assets(vec![NewAsset::new(CNY, 2)]).await.unwrap()[0].is_success());
    let accounts = vec![
        NewAccount::new(SOURCE, CNY, 100),
        NewAccount { debits_must_not_exceed_credits: true, ..NewAccount::new(WALLET, CNY, 1) },
        NewAccount::new(MERCHANT, CNY, 2),
        NewAccount::new(CLEARING, CNY, 9),
    ];
    assert!(c.create_accounts(accounts).await.unwrap().iter().all(|r| r.is_success()));

    // 1. Top up 500.00; token of 100.00, count 10: 400.00 left online.
    let topup = c
        .create_transfers(vec![NewTransfer::posted(10, "topup", CNY, vec![Leg::new(SOURCE, WALLET, d("500.00"))])])
        .await
        .unwrap();
    assert_eq!(topup[0].code, ResultCode::Ok);
    let issued = c
        .issue_token(NewToken {
            token_id: TOKEN,
            account_id: WALLET,
            clearing_account_id: CLEARING,
            device_id: DEVICE.into(),
            offline_limit: d("100.00"),
            max_offline_count: 10,
            validity_ms: 0,
        })
        .await
        .unwrap();
    assert_eq!(issued.result.code, ResultCode::Ok);
    let token = issued.token.expect("token");
    assert_eq!((token.hold_placed, token.hold_capped), (d("100.00"), false));
    let key = issued.key.expect("the key comes with the issued token");
    assert_eq!(key.as_bytes(), &mac::token_key(DEV_MASTER_KEY, DEVICE, TOKEN));
    let b = c.lookup_account(WALLET).await.unwrap().unwrap().balances;
    assert_eq!(b.credits_posted - b.debits_posted - b.debits_pending, d("400.00"));

    // 2. 450.00 online is refused, 300.00 passes.
    let r = c
        .create_transfers(vec![NewTransfer::posted(11, "pay-450", CNY, vec![Leg::new(WALLET, MERCHANT, d("450.00"))])])
        .await
        .unwrap();
    assert_eq!(r[0].code, ResultCode::ExceedsCredits);
    let r = c
        .create_transfers(vec![NewTransfer::posted(12, "pay-300", CNY, vec![Leg::new(WALLET, MERCHANT, d("300.00"))])])
        .await
        .unwrap();
    assert_eq!(r[0].code, ResultCode::Ok);

    // 3. Terminal uploads 1, 2; the phone 1, 2, 3 (and re-issues through 3).
    let (r1, r2, r3) =
        (record(&key, 1, 3_000, "30.00"), record(&key, 2, 2_500, "25.00"), record(&key, 3, 2_500, "25.00"));
    let terminal = c.sync_offline_records(TOKEN, &[r1.clone(), r2.clone()], 0).await.unwrap();
    assert!(terminal.results.iter().all(|r| r.code == ResultCode::Ok && !r.replay), "{terminal:?}");
    assert_eq!(net(&c, MERCHANT).await, d("355.00"));
    let phone = c.sync_offline_records(TOKEN, &[r1, r2.clone(), r3], 3).await.unwrap();
    let codes: Vec<(ResultCode, bool)> = phone.results.iter().map(|r| (r.code, r.replay)).collect();
    let ok = ResultCode::Ok;
    assert_eq!(codes, vec![(ok, true), (ok, true), (ok, false)]);
    assert_eq!(net(&c, MERCHANT).await, d("380.00"), "the merchant has 80.00 from offline records");

    // 4. Re-issued: 20.00 of the old hold released, a new hold of 100.00; posted 120.00,
    //    20.00 spendable online.
    assert_eq!(phone.reissue.code, ok);
    let t = phone.token.unwrap();
    assert_eq!((t.hold_placed, t.hold_remaining, t.generation, t.seq_base), (d("100.00"), d("100.00"), 1, 3));
    let account = phone.account.expect("the wallet's account comes with the sync");
    assert_eq!(account.balances.credits_posted - account.balances.debits_posted, d("120.00"));
    let read = c.get_token(TOKEN).await.unwrap().expect("token");
    assert_eq!(read, t, "a read sees the token as the sync left it");
    // The typed client has no key field outside `issue_token`; check the wire itself.
    let mut raw = WalletClient::connect(node.endpoint()).await.unwrap();
    let wire =
        raw.get_token(pb::GetTokenRequest { token_id: TOKEN.to_be_bytes().to_vec() }).await.unwrap().into_inner();
    assert!(wire.token.unwrap().mac_key.is_empty(), "the key is only returned at issue");
    let b = c.lookup_account(WALLET).await.unwrap().unwrap().balances;
    assert_eq!(b.credits_posted - b.debits_posted, d("120.00"));
    assert_eq!(b.credits_posted - b.debits_posted - b.debits_pending, d("20.00"));

    // 5. Sequence 2 again with another amount: an exception, and the token is revoked.
    let clone = c.sync_offline_records(TOKEN, &[record(&key, 2, 9_900, "99.00")], 0).await.unwrap();
    assert_eq!(clone.results[0].code, ResultCode::SequenceReused);
    assert_eq!(clone.token.unwrap().status, TokenStatus::Revoked);

    // 6. A bad MAC: an exception, nothing moves.
    let mut forged = record(&key, 4, 1_000, "10.00");
    forged.mac[0] ^= 1;
    let bad = c.sync_offline_records(TOKEN, &[forged], 0).await.unwrap();
    assert_eq!(bad.results[0].code, ResultCode::MacInvalid);
    assert_eq!(net(&c, MERCHANT).await, d("380.00"));
    let exceptions = c.list_exceptions(TOKEN, 0).await.unwrap();
    let seen: Vec<(u64, ResultCode)> = exceptions.iter().map(|e| (e.sequence, e.reason)).collect();
    assert_eq!(seen, vec![(2, ResultCode::SequenceReused), (4, ResultCode::MacInvalid)]);
    assert_eq!((exceptions[0].amount, exceptions[0].merchant_account_id), (d("99.00"), MERCHANT));

    // Money is conserved across wallet, merchant, offline clearing and the top-up source.
    let mut total = Amount::ZERO;
    for account in [SOURCE, WALLET, MERCHANT, CLEARING] {
        total += net(&c, account).await;
    }
    assert_eq!(total, Amount::ZERO);
    let held = c.lookup_account(CLEARING).await.unwrap().unwrap().balances.credits_pending;
    assert_eq!(held, d("100.00"), "the clearing account carries exactly the live hold");
}

/// The typed calls' other answers: issue retried (exists, same key), refused issue (no token, no
/// key), unknown token reads and syncs, revoke.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_client_issue_retry_revoke_and_unknown_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let c = LedgerClient::connect(vec![node.endpoint()]).unwrap();
    assert!(c.create_assets(vec![NewAsset::new(CNY, 2)]).await.unwrap()[0].is_success());
    let accounts =
        vec![NewAccount::new(SOURCE, CNY, 100), NewAccount::new(WALLET, CNY, 1), NewAccount::new(CLEARING, CNY, 9)];
    assert!(c.create_accounts(accounts).await.unwrap().iter().all(|r| r.is_success()));
    let new_token = NewToken {
        token_id: TOKEN,
        account_id: WALLET,
        clearing_account_id: CLEARING,
        device_id: DEVICE.into(),
        offline_limit: d("50"),
        max_offline_count: 3,
        validity_ms: 60_000,
    };

    assert_eq!(c.get_token(TOKEN).await.unwrap(), None);
    let first = c.issue_token(new_token.clone()).await.unwrap();
    assert_eq!(first.result.code, ResultCode::Ok);
    let token = first.token.clone().unwrap();
    assert_eq!((token.offline_limit, token.max_offline_count, token.status), (d("50.00"), 3, TokenStatus::Active));
    assert_eq!(token.expires_at_ns - token.issued_at_ns, 60_000 * 1_000_000);
    assert_eq!(token.window(), 1..=3);
    let again = c.issue_token(new_token.clone()).await.unwrap();
    assert_eq!(again.result.code, ResultCode::Exists, "a retried issue is idempotent");
    assert_eq!(again.key, first.key, "and hands back the same key");

    let refused = c.issue_token(NewToken { token_id: TOKEN + 1, device_id: String::new(), ..new_token }).await.unwrap();
    assert_eq!(refused.result.code, ResultCode::DeviceIdInvalid);
    assert_eq!((refused.token, refused.key), (None, None));

    let unknown = c
        .sync_offline_records(
            TOKEN + 1,
            &[OfflineRecord {
                sequence: 1,
                amount: d("1.00"),
                merchant_account_id: MERCHANT,
                device_time_ms: 1,
                mac: [0; 32],
            }],
            1,
        )
        .await
        .unwrap();
    assert_eq!(unknown.results[0].code, ResultCode::TokenNotFound);
    assert_eq!(unknown.reissue.code, ResultCode::TokenNotFound);
    assert_eq!((unknown.token, unknown.account), (None, None));
    assert_eq!(c.list_exceptions(TOKEN + 1, 0).await.unwrap()[0].reason, ResultCode::TokenNotFound);

    let revoked = c.revoke_token(TOKEN, "phone lost").await.unwrap();
    assert_eq!(revoked.code, ResultCode::Ok);
    let token = c.get_token(TOKEN).await.unwrap().unwrap();
    assert_eq!((token.status, token.revoke_reason.as_str()), (TokenStatus::Revoked, "phone lost"));
    assert_eq!(c.revoke_token(TOKEN + 1, "").await.unwrap().code, ResultCode::TokenNotFound);
}

fn run_cli(endpoint: &str, args: &[&str]) -> (i32, serde_json::Value, String) {
    let output = ledger_e2e::cli(endpoint, args);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let json = if output.stdout.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stderr}"))
    };
    (output.status.code().unwrap_or(-1), json, stderr)
}

/// Runs the CLI and requires exit status `want`; returns its JSON.
fn cli_expect(endpoint: &str, want: i32, args: &[&str]) -> serde_json::Value {
    let (code, json, stderr) = run_cli(endpoint, args);
    assert_eq!(code, want, "ledger {args:?}: {json}\n{stderr}");
    json
}

fn cli_net(endpoint: &str, account: u128) -> Amount {
    let json = cli_expect(endpoint, 0, &["account", "get", &account.to_string()]);
    d(json["balances"]["credits_posted"].as_str().unwrap()) - d(json["balances"]["debits_posted"].as_str().unwrap())
}

/// Acceptance steps 3-6 through the `ledger` binary only: the operator's and wallet developer's
/// path (token issue, `wallet mac` to sign, `wallet sync` from a JSON Lines file and from
/// --record args, token get, exceptions), with its exit statuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_wallet_flow_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let e = node.endpoint();
    let e = e.as_str();
    cli_expect(e, 0, &["asset", "create", CNY, "--scale", "2"]);
    for (account, code, extra) in [
        (SOURCE, "100", None),
        (WALLET, "1", Some("--debits-must-not-exceed-credits")),
        (MERCHANT, "2", None),
        (CLEARING, "9", None),
    ] {
        let (id, code) = (account.to_string(), code.to_string());
        let mut args = vec!["account", "create", "--id", &id, "--asset", CNY, "--code", &code];
        args.extend(extra);
        cli_expect(e, 0, &args);
    }
    let leg = format!("{SOURCE}:{WALLET}:500.00");
    cli_expect(e, 0, &["transfer", "submit", "--asset", CNY, "--leg", &leg, "--idempotency-key", "topup"]);
    let (token, wallet, clearing) = (TOKEN.to_string(), WALLET.to_string(), CLEARING.to_string());
    let issue = [
        "wallet",
        "token",
        "issue",
        "--id",
        &token,
        "--account",
        &wallet,
        "--clearing",
        &clearing,
        "--device",
        DEVICE,
        "--limit",
        "100.00",
        "--count",
        "10",
    ];
    let issued = cli_expect(e, 0, &issue);
    assert_eq!(
        (issued["result"]["code"].as_str(), issued["token"]["hold_placed"].as_str()),
        (Some("ok"), Some("100.00"))
    );
    let key = issued["mac_key"].as_str().unwrap().to_string();
    assert_eq!(key, ledger_client::wallet::mac::to_hex(&mac::token_key(DEV_MASTER_KEY, DEVICE, TOKEN)));
    assert_eq!(cli_expect(e, 0, &issue)["result"]["code"], "exists", "a re-run is idempotent");
    cli_expect(
        e,
        0,
        &[
            "transfer",
            "submit",
            "--asset",
            CNY,
            "--leg",
            &format!("{WALLET}:{MERCHANT}:300.00"),
            "--idempotency-key",
            "pay-300",
        ],
    );

    // The device's records, signed offline by `wallet mac` (one JSON line each).
    let sign = |sequence: u64, amount: &str| -> serde_json::Value {
        let (seq, time) = (sequence.to_string(), (1_000 + sequence).to_string());
        let merchant = MERCHANT.to_string();
        let args = [
            "wallet",
            "mac",
            "--key",
            &key,
            "--token",
            &token,
            "--sequence",
            &seq,
            "--amount",
            amount,
            "--scale",
            "2",
            "--merchant",
            &merchant,
            "--device-time-ms",
            &time,
        ];
        let line = cli_expect("http://127.0.0.1:1", 0, &args);
        let record = OfflineRecord::signed(
            &TokenKey::from_hex(&key).unwrap(),
            TOKEN,
            sequence,
            d(amount),
            CNY_SCALE,
            MERCHANT,
            1_000 + sequence,
        )
        .unwrap();
        assert_eq!(line["mac"].as_str().unwrap(), ledger_client::wallet::mac::to_hex(&record.mac));
        line
    };
    let (r1, r2, r3) = (sign(1, "30.00"), sign(2, "25.00"), sign(3, "25.00"));
    let write = |name: &str, lines: &[&serde_json::Value]| {
        let path = dir.path().join(name);
        std::fs::write(&path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
        path.to_str().unwrap().to_string()
    };

    // 3. The terminal uploads 1 and 2, the phone 1, 2, 3: each posts once; the merchant has 80.00.
    let terminal =
        cli_expect(e, 0, &["wallet", "sync", "--token", &token, "--file", &write("terminal.jsonl", &[&r1, &r2])]);
    let codes = |json: &serde_json::Value| -> Vec<(String, bool)> {
        json["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["code"].as_str().unwrap().to_string(), r["replay"].as_bool().unwrap()))
            .collect()
    };
    assert_eq!(codes(&terminal), vec![("ok".into(), false), ("ok".into(), false)]);
    assert_eq!(cli_net(e, MERCHANT), d("355.00"));
    // 4. The phone's sync re-issues: 80.00 posted, 20.00 released, a new hold of 100.00.
    let phone = cli_expect(
        e,
        0,
        &[
            "wallet",
            "sync",
            "--token",
            &token,
            "--file",
            &write("phone.jsonl", &[&r1, &r2, &r3]),
            "--reissue-through",
            "3",
        ],
    );
    assert_eq!(codes(&phone), vec![("ok".into(), true), ("ok".into(), true), ("ok".into(), false)]);
    assert_eq!(phone["reissue"]["code"], "ok");
    assert_eq!(cli_net(e, MERCHANT), d("380.00"), "the merchant has 80.00 from offline records");
    let got = cli_expect(e, 0, &["wallet", "token", "get", &token]);
    assert_eq!(
        (
            got["hold_placed"].as_str(),
            got["hold_remaining"].as_str(),
            got["generation"].as_u64(),
            got["seq_base"].as_u64()
        ),
        (Some("100.00"), Some("100.00"), Some(1), Some(3))
    );
    assert_eq!(got["mac_key"], serde_json::Value::Null, "reads never show the key");
    let account = &phone["account"]["balances"];
    let posted = d(account["credits_posted"].as_str().unwrap()) - d(account["debits_posted"].as_str().unwrap());
    assert_eq!(posted, d("120.00"));
    assert_eq!(posted - d(account["debits_pending"].as_str().unwrap()), d("20.00"), "20.00 stays spendable online");

    // 5. Sequence 2 with another amount (a --record arg): an exception, exit 1, token revoked.
    let clone = sign(2, "99.00");
    let clone_arg = format!("2:99.00:{MERCHANT}:1002:{}", clone["mac"].as_str().unwrap());
    let (code, json, stderr) = run_cli(e, &["wallet", "sync", "--token", &token, "--record", &clone_arg]);
    assert_eq!(code, 1, "{json}\n{stderr}");
    assert!(stderr.contains("1 of 1 record(s) not posted"), "{stderr}");
    assert_eq!(codes(&json), vec![("sequence_reused".into(), false)]);
    assert_eq!(json["token"]["status"], "revoked");

    // 6. A bad MAC: an exception, nothing moves.
    let mut forged = sign(4, "10.00")["mac"].as_str().unwrap().to_string();
    forged.replace_range(0..1, if forged.starts_with('0') { "1" } else { "0" });
    let forged_arg = format!("4:10.00:{MERCHANT}:1004:{forged}");
    let bad = cli_expect(e, 1, &["wallet", "sync", "--token", &token, "--record", &forged_arg]);
    assert_eq!(codes(&bad), vec![("mac_invalid".into(), false)]);
    assert_eq!(cli_net(e, MERCHANT), d("380.00"));
    let exceptions = cli_expect(e, 0, &["wallet", "exceptions", &token]);
    let seen: Vec<(u64, &str)> = exceptions["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["sequence"].as_u64().unwrap(), x["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(seen, vec![(2, "sequence_reused"), (4, "mac_invalid")]);

    // Money is conserved; the clearing account carries exactly the live hold.
    let total: Amount = [SOURCE, WALLET, MERCHANT, CLEARING].iter().map(|a| cli_net(e, *a)).sum();
    assert_eq!(total, Amount::ZERO);
    let clearing_json = cli_expect(e, 0, &["account", "get", &clearing]);
    assert_eq!(d(clearing_json["balances"]["credits_pending"].as_str().unwrap()), d("100.00"));
    // Unknown token: exit 1 with a message, no document.
    let (code, _, stderr) = run_cli(e, &["wallet", "token", "get", "999"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("token 999 not found"), "{stderr}");
}

/// Reconcile: a device's (balance, last sequence) against the ledger, before and after the
/// missing record arrives; through the typed client and the CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_reports_difference_and_missing_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let c = LedgerClient::connect(vec![node.endpoint()]).unwrap();
    assert!(c.create_assets(vec![NewAsset::new(CNY, 2)]).await.unwrap()[0].is_success());
    let accounts = vec![
        NewAccount::new(SOURCE, CNY, 100),
        NewAccount { debits_must_not_exceed_credits: true, ..NewAccount::new(WALLET, CNY, 1) },
        NewAccount::new(MERCHANT, CNY, 2),
        NewAccount::new(CLEARING, CNY, 9),
    ];
    assert!(c.create_accounts(accounts).await.unwrap().iter().all(|r| r.is_success()));
    let topup = NewTransfer::posted(10, "topup", CNY, vec![Leg::new(SOURCE, WALLET, d("500.00"))]);
    assert_eq!(c.create_transfers(vec![topup]).await.unwrap()[0].code, ResultCode::Ok);
    let issued = c
        .issue_token(NewToken {
            token_id: TOKEN,
            account_id: WALLET,
            clearing_account_id: CLEARING,
            device_id: DEVICE.into(),
            offline_limit: d("100.00"),
            max_offline_count: 5,
            validity_ms: 0,
        })
        .await
        .unwrap();
    let key = issued.key.unwrap();
    assert_eq!(c.reconcile(TOKEN + 1, d("1"), 0).await.unwrap(), None, "unknown token");

    // Nothing spent yet: the device agrees with the ledger.
    let fresh = c.reconcile(TOKEN, d("500.00"), 0).await.unwrap().unwrap();
    assert_eq!((fresh.ledger_balance, fresh.difference, fresh.ledger_last_sequence), (d("500.00"), d("0"), 0));
    assert!(fresh.missing_sequences.is_empty() && !fresh.device_sequence_out_of_window);

    // The device spent 30 + 25 + 10 (seq 1..3) and shows 435.00; the terminal uploaded 1 and 3.
    let (r1, r2, r3) =
        (record(&key, 1, 3_000, "30.00"), record(&key, 2, 2_500, "25.00"), record(&key, 3, 1_000, "10.00"));
    let uploaded = c.sync_offline_records(TOKEN, &[r1.clone(), r3.clone()], 0).await.unwrap();
    assert!(uploaded.results.iter().all(|r| r.code == ResultCode::Ok));
    let gap = c.reconcile(TOKEN, d("435.00"), 3).await.unwrap().unwrap();
    assert_eq!((gap.ledger_balance, gap.difference, gap.ledger_last_sequence), (d("460.00"), d("-25.00"), 3));
    assert_eq!(gap.missing_sequences, vec![2], "sequence 2 (25.00) is what the ledger has not seen");
    assert!(!gap.device_sequence_out_of_window);
    assert_eq!(gap.account.account.id, WALLET);
    assert_eq!(gap.token.hold_remaining, d("60.00"));
    // A device claiming sequence 7 of a 5-record window is out of its window.
    let beyond = c.reconcile(TOKEN, d("435.00"), 7).await.unwrap().unwrap();
    assert_eq!(beyond.missing_sequences, vec![2, 4, 5]);
    assert!(beyond.device_sequence_out_of_window);
    // Bad input is refused, not answered.
    let negative = c.reconcile(TOKEN, d("-1.00"), 3).await.unwrap_err();
    assert!(
        matches!(negative, ledger_client::ClientError::Rejected { code: tonic::Code::InvalidArgument, .. }),
        "{negative:?}"
    );
    let too_fine = c.reconcile(TOKEN, d("1.001"), 3).await.unwrap_err();
    assert!(
        matches!(too_fine, ledger_client::ClientError::Rejected { code: tonic::Code::InvalidArgument, .. }),
        "{too_fine:?}"
    );

    // Through the CLI, the same answer.
    let token = TOKEN.to_string();
    let json = cli_expect(
        &node.endpoint(),
        0,
        &["wallet", "reconcile", &token, "--balance", "435.00", "--last-sequence", "3"],
    );
    assert_eq!((json["difference"].as_str(), json["ledger_balance"].as_str()), (Some("-25.00"), Some("460.00")));
    assert_eq!(json["missing_sequences"], serde_json::json!([2]));
    let (code, _, stderr) = run_cli(&node.endpoint(), &["wallet", "reconcile", "999", "--balance", "0"]);
    assert_eq!(code, 1, "{stderr}");

    // The phone uploads everything and re-issues: the device and the ledger agree.
    let phone = c.sync_offline_records(TOKEN, &[r1, r2, r3], 3).await.unwrap();
    assert_eq!(phone.reissue.code, ResultCode::Ok);
    let settled = c.reconcile(TOKEN, d("435.00"), 3).await.unwrap().unwrap();
    assert_eq!((settled.difference, settled.missing_sequences.len(), settled.token.seq_base), (d("0"), 0, 3));
    assert!(!settled.device_sequence_out_of_window);
    // A device whose last sequence is below what the ledger posted: another device used the key.
    assert!(c.reconcile(TOKEN, d("435.00"), 2).await.unwrap().unwrap().device_sequence_out_of_window);
}

/// The typed wallet calls on a 3-node cluster: sent to a follower first they follow the leader;
/// after the leader is killed, the same uploads replay on the new leader (posted once) and the
/// phone's re-issue goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_calls_follow_the_leader_and_survive_its_loss() {
    let mut cluster = ledger_e2e::Cluster::bootstrap_with_env(3, &[], &[("LEDGER_WALLET_DEV_KEY", "1")]);
    let config = ledger_client::ClientConfig { max_retries: 40, ..ledger_client::ClientConfig::default() };
    let probe = LedgerClient::connect(cluster.endpoints()).unwrap();
    let leader_of = |probe: LedgerClient, endpoints: Vec<String>| async move {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            for endpoint in &endpoints {
                if let Ok(status) = probe.cluster_status_at(endpoint).await
                    && status.role == "leader"
                {
                    return status.node_id;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no leader within 30 s");
    };
    let leader = leader_of(probe.clone(), cluster.endpoints()).await;
    // Followers first: every first attempt lands on a follower and must be redirected.
    let mut endpoints: Vec<String> =
        cluster.nodes.iter().filter(|n| n.id != leader).map(ledger_e2e::ClusterNode::endpoint).collect();
    endpoints.push(cluster.node(leader).endpoint());
    let c = LedgerClient::connect_with(endpoints, config).unwrap();

    assert!(c.create_assets(vec![NewAsset::new(CNY, 2)]).await.unwrap()[0].is_success());
    let accounts = vec![
        NewAccount::new(SOURCE, CNY, 100),
        NewAccount { debits_must_not_exceed_credits: true, ..NewAccount::new(WALLET, CNY, 1) },
        NewAccount::new(MERCHANT, CNY, 2),
        NewAccount::new(CLEARING, CNY, 9),
    ];
    assert!(c.create_accounts(accounts).await.unwrap().iter().all(|r| r.is_success()));
    let topup = NewTransfer::posted(10, "topup", CNY, vec![Leg::new(SOURCE, WALLET, d("500.00"))]);
    assert_eq!(c.create_transfers(vec![topup]).await.unwrap()[0].code, ResultCode::Ok);
    let issued = c
        .issue_token(NewToken {
            token_id: TOKEN,
            account_id: WALLET,
            clearing_account_id: CLEARING,
            device_id: DEVICE.into(),
            offline_limit: d("100.00"),
            max_offline_count: 10,
            validity_ms: 0,
        })
        .await
        .unwrap();
    assert_eq!(issued.result.code, ResultCode::Ok);
    let key = issued.key.unwrap();
    assert_eq!(key.as_bytes(), &mac::token_key(DEV_MASTER_KEY, DEVICE, TOKEN), "every node derives the same key");
    let records = [record(&key, 1, 3_000, "30.00"), record(&key, 2, 2_500, "25.00")];
    let terminal = c.sync_offline_records(TOKEN, &records, 0).await.unwrap();
    assert!(terminal.results.iter().all(|r| r.code == ResultCode::Ok && !r.replay), "{terminal:?}");

    // The leader dies; the phone uploads the same records and re-issues through the new leader.
    cluster.node(leader).kill9();
    let phone = c.sync_offline_records(TOKEN, &records, 2).await.unwrap();
    let codes: Vec<(ResultCode, bool)> = phone.results.iter().map(|r| (r.code, r.replay)).collect();
    assert_eq!(codes, vec![(ResultCode::Ok, true), (ResultCode::Ok, true)], "posted once, across the failover");
    assert_eq!(phone.reissue.code, ResultCode::Ok);
    assert_eq!(net(&c, MERCHANT).await, d("55.00"));
    let settled = c.reconcile(TOKEN, d("445.00"), 2).await.unwrap().unwrap();
    assert_eq!((settled.difference, settled.token.generation), (d("0"), 1));
    assert!(c.list_exceptions(TOKEN, 0).await.unwrap().is_empty());
}

/// System-initiated sync: a subscribed wallet hears of a web payment and a top-up made through
/// other channels, with its new balance and allowance, without polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_wallet_pushes_balance_changes_from_other_channels() {
    use futures::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let c = LedgerClient::connect(vec![node.endpoint()]).unwrap();
    assert!(c.create_assets(vec![NewAsset::new("CNY", 2)]).await.unwrap()[0].is_success());
    let accounts = vec![
        NewAccount::new(1, "CNY", 100),
        NewAccount { debits_must_not_exceed_credits: true, ..NewAccount::new(2, "CNY", 1) },
        NewAccount::new(3, "CNY", 2),
        NewAccount::new(4, "CNY", 9),
    ];
    assert!(c.create_accounts(accounts).await.unwrap().iter().all(|r| r.is_success()));
    let topup = |id: u128, amount: &str| NewTransfer::posted(id, format!("t{id}"), "CNY", vec![Leg::new(1, 2, Amount::from_str(amount).unwrap())]);
    assert_eq!(c.create_transfers(vec![topup(10, "200.00")]).await.unwrap()[0].code, ResultCode::Ok);
    let issued = c
        .issue_token(NewToken {
            token_id: 88,
            account_id: 2,
            clearing_account_id: 4,
            device_id: "phone-w".into(),
            offline_limit: Amount::from_str("50.00").unwrap(),
            max_offline_count: 5,
            validity_ms: 0,
        })
        .await
        .unwrap();
    assert_eq!(issued.result.code, ResultCode::Ok);
    let mut updates = c.watch_wallet(88).await.unwrap();
    let first = updates.next().await.unwrap().unwrap();
    assert_eq!((first.available_online, first.offline_allowance, first.timestamp_ns), (Amount::from_str("150.00").unwrap(), Amount::from_str("50.00").unwrap(), 0));
    // A web payment of 30.00 and a top-up of 5.00, each pushed.
    let web = NewTransfer::posted(11, "web-pay", "CNY", vec![Leg::new(2, 3, Amount::from_str("30.00").unwrap())]);
    let paid = c.create_transfers(vec![web]).await.unwrap()[0].clone();
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), updates.next()).await.unwrap().unwrap().unwrap();
    assert_eq!((next.available_online, next.timestamp_ns), (Amount::from_str("120.00").unwrap(), paid.timestamp_ns));
    assert_eq!(c.create_transfers(vec![topup(12, "5.00")]).await.unwrap()[0].code, ResultCode::Ok);
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), updates.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(next.available_online, Amount::from_str("125.00").unwrap());
    assert_eq!(next.offline_allowance, Amount::from_str("50.00").unwrap(), "the offline allowance is untouched");
    // An unknown token is NOT_FOUND.
    assert!(matches!(c.watch_wallet(99).await, Err(ledger_client::ClientError::Rejected { code: tonic::Code::NotFound, .. })));
}

/// A master key file its group or others may read stops the node at start-up (and says why); the
/// same key with mode 600 starts it. The key bytes never reach the log.
#[test]
fn a_master_key_file_others_may_read_stops_the_node() {
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("master.key");
    let secret = "e2e-master-key-0123456789abcdef-0123456789abcdef";
    std::fs::write(&key_path, secret).unwrap();
    let run = |mode: u32, data: &str| {
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(mode)).unwrap();
        let port = ledger_e2e::free_port();
        let log_path = dir.path().join(format!("{data}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut child = std::process::Command::new(ledger_e2e::binary("ledger-node"))
            .args(["start", "--node-id", "1", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(dir.path().join(data))
            .env("LEDGER_WALLET_MASTER_KEY_FILE", &key_path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let exited = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() || Instant::now() > deadline {
                child.kill().unwrap();
                child.wait().unwrap();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (exited, std::fs::read_to_string(&log_path).unwrap())
    };
    let (exited, log) = run(0o644, "open");
    assert!(exited.is_some_and(|s| !s.success()), "the node served with a world-readable key: {log}");
    assert!(log.contains("readable by its owner only") && log.contains("LEDGER_WALLET_MASTER_KEY_FILE"), "{log}");
    assert!(!log.contains(secret), "the key reached the log");
    let (exited, log) = run(0o600, "private");
    assert!(exited.is_none(), "the node did not serve with a mode-600 key: {log}");
    assert!(!log.contains(secret), "the key reached the log");
}
