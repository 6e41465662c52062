//! Risk controls end to end through the `ledger` CLI and the client against a real node: a
//! per-account rule (largest single debit, daily count at UTC+8), a per-code rule, `limits get`,
//! and the blocklist (a blocked device gets no token; a blocked token is revoked).

use std::str::FromStr;

use ledger_client::risk::{LimitScope, Limits};
use ledger_client::{Amount, LedgerClient, Leg, NewAccount, NewAsset, NewTransfer, ResultCode};
use ledger_e2e::{DevNode, cli};
use ledger_proto::api as pb;
use ledger_proto::api::wallet_client::WalletClient;

fn d(text: &str) -> Amount {
    Amount::from_str(text).unwrap()
}

fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {output:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_blocklist_through_the_cli_and_client() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let endpoint = node.endpoint();
    let c = LedgerClient::connect(vec![endpoint.clone()]).unwrap();
    assert!(c.create_assets(vec![NewAsset::new("CNY", 2)]).await.unwrap()[0].is_success());
    let accounts = vec![NewAccount::new(1, "CNY", 100), NewAccount::new(2, "CNY", 10), NewAccount::new(3, "CNY", 10), NewAccount::new(4, "CNY", 300)];
    assert!(c.create_accounts(accounts).await.unwrap().iter().all(|r| r.is_success()));
    let mut next = 100u128;
    let mut pay = |from: u128, amount: &str| {
        next += 1;
        NewTransfer::posted(next, format!("pay-{next}"), "CNY", vec![Leg::new(from, 4, d(amount))])
    };

    // Account 2: at most 10.00 at once and 2 debits a day (Beijing time), set through the CLI.
    let out = cli(&endpoint, &["limits", "set", "2", "--max-single-debit", "10.00", "--daily-count", "2", "--utc-offset-minutes", "480"]);
    assert!(out.status.success(), "{out:?}");
    let r = c.create_transfers(vec![pay(2, "10.01")]).await.unwrap();
    assert_eq!(r[0].code, ResultCode::DebitLimitExceeded);
    for _ in 0..2 {
        assert_eq!(c.create_transfers(vec![pay(2, "10.00")]).await.unwrap()[0].code, ResultCode::Ok);
    }
    assert_eq!(c.create_transfers(vec![pay(2, "0.01")]).await.unwrap()[0].code, ResultCode::DailyDebitCountExceeded);
    let got = json(&cli(&endpoint, &["limits", "get", "2"]));
    assert_eq!(got["rule"]["scope"], "account:2");
    assert_eq!((got["debited_today"].as_str(), got["debits_today"].as_u64()), (Some("20.00"), Some(2)));

    // Code 10 (a wallet tier): 5.00 a day; account 3 has no rule of its own.
    let rule = Limits { scope: LimitScope::Code { asset: "CNY".into(), code: 10 }, max_single_debit: None, daily_debit_amount: Some(d("5.00")), daily_debit_count: None, utc_offset_minutes: 0 };
    assert_eq!(c.set_limits(vec![rule]).await.unwrap()[0].code, ResultCode::Ok);
    assert_eq!(c.create_transfers(vec![pay(3, "5.00")]).await.unwrap()[0].code, ResultCode::Ok);
    assert_eq!(c.create_transfers(vec![pay(3, "0.01")]).await.unwrap()[0].code, ResultCode::DailyDebitAmountExceeded);
    let limits = c.get_limits(3).await.unwrap();
    assert_eq!(limits.rule.unwrap().scope, LimitScope::Code { asset: "CNY".into(), code: 10 });
    // Account 1 (code 100): no rule.
    assert!(c.get_limits(1).await.unwrap().rule.is_none());
    assert_eq!(c.create_transfers(vec![pay(1, "1000.00")]).await.unwrap()[0].code, ResultCode::Ok);
    // A bad offset is refused with its code (exit 1: an item failed).
    let out = cli(&endpoint, &["limits", "set", "2", "--daily-count", "1", "--utc-offset-minutes", "900"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("limit_invalid"));

    // Blocklist: a blocked device gets no token.
    let out = cli(&endpoint, &["blocklist", "block", "--device", "stolen-phone", "--reason", "reported stolen"]);
    assert!(out.status.success(), "{out:?}");
    let mut w = WalletClient::connect(endpoint.clone()).await.unwrap();
    let issue = |token: u128, device: &str| pb::IssueTokenRequest {
        token_id: token.to_be_bytes().to_vec(),
        account_id: 1u128.to_be_bytes().to_vec(),
        clearing_account_id: 3u128.to_be_bytes().to_vec(),
        device_id: device.into(),
        offline_limit: "1.00".into(),
        max_offline_count: 3,
        validity_ms: 0,
    };
    let refused = w.issue_token(issue(70, "stolen-phone")).await.unwrap().into_inner();
    assert_eq!(refused.result.unwrap().code, pb::ResultCode::Blocked as i32);
    // Blocking an issued token revokes it.
    let issued = w.issue_token(issue(71, "good-phone")).await.unwrap().into_inner();
    assert_eq!(issued.result.unwrap().code, pb::ResultCode::Ok as i32);
    let out = cli(&endpoint, &["blocklist", "block", "--token-id", "71", "--reason", "fraud"]);
    assert!(out.status.success(), "{out:?}");
    let token = w.get_token(pb::GetTokenRequest { token_id: 71u128.to_be_bytes().to_vec() }).await.unwrap().into_inner().token.unwrap();
    assert_eq!(token.status, "revoked");
    assert!(token.revoke_reason.contains("fraud"), "{token:?}");
}
