//! Payment lifecycle end to end against a real node: linked refunds, references and metadata
//! through the `ledger` CLI (with the audit export of them verified offline), and a linked
//! cross-asset group through the Rust client.

use std::str::FromStr;

use ledger_client::{Amount, LedgerClient, Leg, NewAccount, NewAsset, NewTransfer, ResultCode, transfer_id_from_key};
use ledger_e2e::{DevNode, cli};

fn d(text: &str) -> Amount {
    Amount::from_str(text).unwrap()
}

fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {output:?}"))
}

/// The one result of a one-transfer `transfer submit`.
fn code_of(output: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&output.stdout);
    let value = json(output);
    let result = if value.is_array() { &value[0] } else if value["results"].is_array() { &value["results"][0] } else { &value };
    result["code"].as_str().unwrap_or_else(|| panic!("no code in {text}")).to_string()
}

async fn world(endpoint: &str) -> LedgerClient {
    let c = LedgerClient::connect(vec![endpoint.to_string()]).unwrap();
    let assets = vec![NewAsset::new("CNY", 2), NewAsset::new("USD", 2)];
    assert!(c.create_assets(assets).await.unwrap().iter().all(|r| r.is_success()));
    // 1 bank, 2 customer, 3 merchant (CNY); 4 and 5 the FX desk's USD accounts.
    let accounts = vec![
        NewAccount::new(1, "CNY", 100),
        NewAccount::new(2, "CNY", 1),
        NewAccount::new(3, "CNY", 2),
        NewAccount::new(4, "USD", 100),
        NewAccount::new(5, "USD", 1),
    ];
    assert!(c.create_accounts(accounts).await.unwrap().iter().all(|r| r.is_success()));
    let fund = NewTransfer::posted(10, "fund", "CNY", vec![Leg::new(1, 2, d("500.00"))]);
    assert_eq!(c.create_transfers(vec![fund]).await.unwrap()[0].code, ResultCode::Ok);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_references_and_metadata_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let endpoint = node.endpoint();
    let _client = world(&endpoint).await;
    let submit = |args: &[&str]| cli(&endpoint, &[&["transfer", "submit", "--asset", "CNY"][..], args].concat());

    // The order: 100.00 customer -> merchant, with the merchant's order number and metadata.
    let out = submit(&["--leg", "2:3:100.00", "--idempotency-key", "order-1", "--reference", "ORDER-1", "--meta", "channel=app"]);
    assert_eq!(code_of(&out), "ok", "{out:?}");
    let order = transfer_id_from_key("order-1").to_string();
    let got = json(&cli(&endpoint, &["transfer", "get", &order]));
    assert_eq!((got["reference"].as_str(), got["metadata"]["channel"].as_str()), (Some("ORDER-1"), Some("app")));
    assert_eq!((got["refunded"].as_str(), got["refundable"].as_str()), (Some("0.00"), Some("100.00")));

    // A partial refund, linked to the order; its retry replays the first result.
    let refund = ["--leg", "3:2:30.00", "--idempotency-key", "refund-1", "--refund-of", &order, "--reference", "ORDER-1"];
    assert_eq!(code_of(&submit(&refund)), "ok");
    let again = json(&submit(&refund));
    assert!(again.to_string().contains("\"replay\":true"), "{again}");
    let got = json(&cli(&endpoint, &["transfer", "get", &order]));
    assert_eq!((got["refunded"].as_str(), got["refundable"].as_str()), (Some("30.00"), Some("70.00")));
    let refund_id = transfer_id_from_key("refund-1").to_string();
    let got = json(&cli(&endpoint, &["transfer", "get", &refund_id]));
    assert_eq!(got["refund_of"].as_str(), Some(order.as_str()));

    // Each refusal with its code (exit 1: an item failed), and nothing moves.
    let refused = |args: &[&str], code: &str| {
        let out = submit(args);
        assert_eq!((out.status.code(), code_of(&out)), (Some(1), code.to_string()), "{out:?}");
    };
    refused(&["--leg", "3:2:70.01", "--idempotency-key", "refund-2", "--refund-of", &order], "refund_exceeds_refundable");
    refused(&["--leg", "3:1:1.00", "--idempotency-key", "refund-3", "--refund-of", &order], "refund_accounts_mismatch");
    refused(&["--leg", "3:2:1.00", "--idempotency-key", "refund-4", "--refund-of", "4242"], "refund_original_not_found");
    let hold = ["--leg", "2:3:5.00", "--idempotency-key", "hold-1", "--pending"];
    assert_eq!(code_of(&submit(&hold)), "ok");
    let hold_id = transfer_id_from_key("hold-1").to_string();
    refused(&["--leg", "3:2:1.00", "--idempotency-key", "refund-5", "--refund-of", &hold_id], "refund_original_not_posted");
    let usd = cli(&endpoint, &["transfer", "submit", "--asset", "USD", "--leg", "5:4:1.00", "--idempotency-key", "refund-6", "--refund-of", &order]);
    assert_eq!(code_of(&usd), "refund_asset_mismatch");
    refused(&["--leg", "3:2:1.00", "--idempotency-key", "refund-7", "--refund-of", &order, "--pending"], "refund_kind_invalid");
    refused(&["--leg", "2:3:1.00", "--idempotency-key", "ref-long", "--reference", &"r".repeat(65)], "reference_invalid");
    // The rest of the order is refundable exactly.
    assert_eq!(code_of(&submit(&["--leg", "3:2:70.00", "--idempotency-key", "refund-8", "--refund-of", &order])), "ok");
    let got = json(&cli(&endpoint, &["account", "get", "2"]));
    assert_eq!(got["balances"]["debits_posted"].as_str(), Some("100.00"), "{got}");
    assert_eq!(got["balances"]["credits_posted"].as_str(), Some("600.00"), "{got}");

    // The merchant's statement names the counterparty, the reference and the refund link.
    let out = cli(&endpoint, &["audit", "statement", "3", "--format", "json"]);
    let statement = json(&out);
    let rows = statement["entries"].as_array().unwrap();
    let paid = rows.iter().find(|r| r["transfer_id"] == order.as_str()).unwrap();
    assert_eq!((paid["counterparty"].as_str(), paid["reference"].as_str(), paid["refund_of"].as_str()), (Some("2"), Some("ORDER-1"), Some("")));
    let refunded = rows.iter().find(|r| r["transfer_id"] == refund_id.as_str()).unwrap();
    assert_eq!((refunded["counterparty"].as_str(), refunded["refund_of"].as_str()), (Some("2"), Some(order.as_str())));
    let csv = String::from_utf8(cli(&endpoint, &["audit", "statement", "3", "--format", "csv"]).stdout).unwrap();
    assert!(csv.lines().any(|l| l.contains(&format!(",2,ORDER-1,{order},"))), "{csv}");

    // The journal links each refund to its order; the export verifies offline.
    let export = dir.path().join("export");
    let out = cli(&endpoint, &["audit", "export", export.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let journal = std::fs::read_to_string(export.join("journal.jsonl")).unwrap();
    let refunds = journal.lines().filter(|l| l.contains(&format!("\"refund_of\":\"{order}\""))).count();
    assert_eq!(refunds, 2, "{journal}");
    assert!(journal.contains("\"reference\":\"ORDER-1\"") && journal.contains("\"metadata\":{\"channel\":\"app\"}"));
    let out = cli(&endpoint, &["audit", "verify", export.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_cross_asset_group_commits_all_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let c = world(&node.endpoint()).await;
    // FX: the customer pays 70.00 CNY to the desk's CNY account (3), the desk pays 10.00 USD.
    let cny = |id: u128, amount: &str| NewTransfer::posted(id, format!("fx-{id}"), "CNY", vec![Leg::new(2, 3, d(amount))]);
    let usd = |id: u128, amount: &str| NewTransfer::posted(id, format!("fx-{id}"), "USD", vec![Leg::new(4, 5, d(amount))]);
    let ok = c.create_transfers(vec![cny(20, "70.00").linked(), usd(21, "10.00")]).await.unwrap();
    assert!(ok.iter().all(|r| r.code == ResultCode::Ok), "{ok:?}");
    // The second leg breaks (the customer's CNY account cannot go below zero): neither moves.
    let customer = NewAccount { debits_must_not_exceed_credits: true, ..NewAccount::new(6, "CNY", 1) };
    assert!(c.create_accounts(vec![customer]).await.unwrap()[0].is_success());
    let broken = NewTransfer::posted(23, "fx-23", "CNY", vec![Leg::new(6, 3, d("1.00"))]);
    let r = c.create_transfers(vec![usd(22, "10.00").linked(), broken]).await.unwrap();
    assert_eq!((r[0].code, r[1].code, r[1].leg_index), (ResultCode::LinkedEventFailed, ResultCode::ExceedsCredits, Some(0)));
    assert!(c.lookup_transfer(22).await.unwrap().is_none());
    let desk = c.lookup_accounts(vec![5]).await.unwrap();
    assert_eq!(desk[0].balances.credits_posted, d("10.00"), "only the first group moved USD");
    // A chain left open is refused whole.
    let r = c.create_transfers(vec![usd(24, "1.00").linked()]).await.unwrap();
    assert_eq!(r[0].code, ResultCode::LinkedEventChainOpen);
}
