//! Account changes end to end against a real `ledger-node dev`, through the client and the
//! `ledger` CLI: a credit-line change that may not go below what is drawn, a tier (code) change,
//! metadata, a phone number moved to another account and a closed account's number released and
//! bound again, every refusal's code on the wire, the change history (who, when, what), and an
//! audit export containing the new journal lines verified offline.

use std::str::FromStr;

use ledger_client::accounts::{AccountUpdate, ChangeKind, Rebind};
use ledger_client::audit::verify;
use ledger_client::{AccountStatus, Amount, LedgerClient, Leg, NewAccount, NewAsset, NewTransfer, ResultCode};
use ledger_e2e::{DevNode, cli};

const BANK: u128 = 1;
const ALICE: u128 = 2;
const BOB: u128 = 3;
const SHOP: u128 = 4;
const PHONE: &str = "+8613800138000";

fn d(text: &str) -> Amount {
    Amount::from_str(text).unwrap()
}

fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {output:?}"))
}

fn code_of(output: &std::process::Output) -> String {
    json(output)["results"][0]["code"].as_str().unwrap().to_string()
}

async fn setup(c: &LedgerClient) {
    assert!(c.create_assets(vec![NewAsset::new("CNY", 2)]).await.unwrap()[0].is_success());
    let accounts = vec![
        NewAccount::new(BANK, "CNY", 100),
        NewAccount { debits_must_not_exceed_credits: true, overdraft_limit: Some(d("100.00")), external_ref: Some(PHONE.into()), ..NewAccount::new(ALICE, "CNY", 1) },
        NewAccount { debits_must_not_exceed_credits: true, ..NewAccount::new(BOB, "CNY", 1) },
        NewAccount::new(SHOP, "CNY", 300),
    ];
    assert!(c.create_accounts(accounts).await.unwrap().iter().all(|r| r.is_success()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_changes_through_the_client_and_cli_with_history_and_a_verified_export() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let endpoint = node.endpoint();
    let c = LedgerClient::connect(vec![endpoint.clone()]).unwrap();
    setup(&c).await;
    // Alice draws 60.00 of her 100.00 credit line.
    let pay = NewTransfer::posted(10, "pay-10", "CNY", vec![Leg::new(ALICE, SHOP, d("60.00"))]);
    assert!(c.create_transfers(vec![pay]).await.unwrap()[0].is_success());

    // The credit line: not below the 60.00 drawn (CLI), then to exactly 60.00 (client).
    let out = cli(&endpoint, &["account", "update", "2", "--overdraft-limit", "59.99", "--reason", "risk review"]);
    assert_eq!(code_of(&out), "overdraft_below_drawn", "{out:?}");
    let lowered = c.update_accounts(vec![AccountUpdate { overdraft_limit: Some(d("60.00")), reason: "risk review".into(), ..AccountUpdate::new(ALICE) }]).await.unwrap();
    assert_eq!(lowered[0].code, ResultCode::Ok);
    let more = NewTransfer::posted(11, "pay-11", "CNY", vec![Leg::new(ALICE, SHOP, d("0.01"))]);
    assert_eq!(c.create_transfers(vec![more]).await.unwrap()[0].code, ResultCode::ExceedsCredits, "the new limit holds");
    // A tier change and the bank account in metadata, through the CLI.
    let out = cli(&endpoint, &["account", "update", "2", "--code", "2", "--meta", "bank=ICBC 6222", "--reason", "real-name verified"]);
    assert!(out.status.success(), "{out:?}");
    let alice = c.lookup_account(ALICE).await.unwrap().unwrap();
    assert_eq!((alice.account.code, alice.account.overdraft_limit, alice.account.metadata.get("bank").map(String::as_str)), (2, Some(d("60.00")), Some("ICBC 6222")));
    assert_eq!(alice.balances.debits_posted, d("60.00"), "an update moves no money");

    // Refusals, each with its code on the wire.
    let refused = c
        .update_accounts(vec![
            AccountUpdate { code: Some(5), ..AccountUpdate::new(99) },
            AccountUpdate { code: Some(0), ..AccountUpdate::new(BOB) },
            AccountUpdate { overdraft_limit: Some(d("1.00")), ..AccountUpdate::new(SHOP) },
            AccountUpdate { reason: "x".repeat(257), code: Some(3), ..AccountUpdate::new(BOB) },
        ])
        .await
        .unwrap();
    let codes: Vec<ResultCode> = refused.iter().map(|r| r.code).collect();
    assert_eq!(codes, [ResultCode::AccountNotFound, ResultCode::AccountCodeMustNotBeZero, ResultCode::OverdraftLimitInvalid, ResultCode::ReasonInvalid]);

    // The number moves from Alice to Bob (CLI), a stale retry of the same move is OK, a move that
    // names the wrong holder is refused.
    let out = cli(&endpoint, &["account", "rebind", PHONE, "--from", "2", "--to", "3", "--reason", "transfer of ownership"]);
    assert_eq!(code_of(&out), "ok", "{out:?}");
    let again = c.rebind_external_refs(vec![Rebind { external_ref: PHONE.into(), from_account_id: ALICE, to_account_id: BOB, reason: String::new() }]).await.unwrap();
    assert_eq!((again[0].code, again[0].timestamp_ns), (ResultCode::Ok, 0));
    let wrong = c.rebind_external_refs(vec![Rebind { external_ref: PHONE.into(), from_account_id: ALICE, to_account_id: SHOP, reason: String::new() }]).await.unwrap();
    assert_eq!(wrong[0].code, ResultCode::ExternalRefAlreadyUsed);
    assert_eq!(c.get_account_by_external_ref(PHONE).await.unwrap().unwrap().account.id, BOB);
    // Bob closes; his number is released and bound to a new account.
    let settle = NewTransfer::posted(12, "settle-12", "CNY", vec![Leg::new(BANK, ALICE, d("60.00"))]);
    assert!(c.create_transfers(vec![settle]).await.unwrap()[0].is_success());
    assert!(c.set_account_status(vec![(BOB, AccountStatus::Closed, "left".into())]).await.unwrap()[0].is_success());
    let more = c
        .rebind_external_refs(vec![
            Rebind { external_ref: PHONE.into(), from_account_id: BOB, to_account_id: 0, reason: "number recycled".into() },
            Rebind { external_ref: "+8613900000000".into(), from_account_id: SHOP, to_account_id: ALICE, reason: String::new() },
            Rebind { external_ref: "+8613900000000".into(), from_account_id: 0, to_account_id: BOB, reason: String::new() },
            Rebind { external_ref: "+8613900000000".into(), from_account_id: 0, to_account_id: ALICE, reason: String::new() },
            Rebind { external_ref: PHONE.into(), from_account_id: 0, to_account_id: ALICE, reason: String::new() },
        ])
        .await
        .unwrap();
    let codes: Vec<ResultCode> = more.iter().map(|r| r.code).collect();
    assert_eq!(codes, [ResultCode::Ok, ResultCode::ExternalRefNotBound, ResultCode::AccountClosed, ResultCode::Ok, ResultCode::AccountHasExternalRef]);
    let newcomer = NewAccount { external_ref: Some(PHONE.into()), ..NewAccount::new(5, "CNY", 1) };
    assert_eq!(c.create_accounts(vec![newcomer]).await.unwrap()[0].code, ResultCode::Ok, "the released number binds again");

    // Alice's history: the credit line, the tier change, the number moved away, a new number.
    let history = c.list_account_changes(ALICE, 0, 0).await.unwrap();
    assert_eq!(history.changes.len(), 4);
    assert!(history.changes.windows(2).all(|w| w[0].timestamp_ns < w[1].timestamp_ns));
    let ChangeKind::Settings { before, after } = &history.changes[0].kind else { panic!("{history:?}") };
    assert_eq!((before.overdraft_limit, after.overdraft_limit, history.changes[0].reason.as_str()), (d("100.00"), d("60.00"), "risk review"));
    assert_eq!(history.changes[2].kind, ChangeKind::ExternalRef { before: Some(PHONE.into()), after: None, other_account_id: BOB });
    let page = c.list_account_changes(ALICE, 0, 1).await.unwrap();
    assert_eq!((page.changes.len(), page.next_after_timestamp_ns), (1, Some(history.changes[0].timestamp_ns)));
    let out = cli(&endpoint, &["account", "changes", "3"]);
    let bob = json(&out);
    let kinds: Vec<&str> = bob["changes"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["external_ref", "external_ref"], "{bob}");
    assert_eq!(bob["changes"][1]["reason"], "number recycled");
    let out = cli(&endpoint, &["account", "changes", "99"]);
    assert!(!out.status.success(), "an unknown account is not found");

    // The export holds the new lines and verifies offline.
    let export = dir.path().join("export");
    let out = cli(&endpoint, &["audit", "export", export.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let journal = std::fs::read_to_string(export.join("journal.jsonl")).unwrap();
    assert_eq!(journal.matches("\"type\":\"account_updated\"").count(), 2);
    assert_eq!(journal.matches("\"type\":\"external_ref_rebound\"").count(), 3);
    let report = verify::verify(&export, None).unwrap();
    assert_eq!(report.manifest.accounts, 5);
}
