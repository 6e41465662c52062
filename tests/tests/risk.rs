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

/// Issue 22 item 2: risk rules by id through the CLI and the client: a daily top-up cap on
/// credits of one business type (transfer code), a balance cap, a count per minute, each refusal
/// typed on the wire; the list; removal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn risk_rules_on_credits_balances_and_windows_through_the_cli_and_client() {
    use ledger_client::risk::{RiskLimit, RiskRule, RiskSide, RiskWindow};
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let endpoint = node.endpoint();
    let c = LedgerClient::connect(vec![endpoint.clone()]).unwrap();
    assert!(c.create_assets(vec![NewAsset::new("CNY", 2)]).await.unwrap()[0].is_success());
    let accounts = vec![NewAccount::new(1, "CNY", 100), NewAccount::new(2, "CNY", 10), NewAccount::new(3, "CNY", 10)];
    assert!(c.create_accounts(accounts).await.unwrap().iter().all(|r| r.is_success()));
    let mut next = 100u128;
    let mut topup = |to: u128, amount: &str, code: u32| {
        next += 1;
        NewTransfer { code, ..NewTransfer::posted(next, format!("topup-{next}"), "CNY", vec![Leg::new(1, to, d(amount))]) }
    };

    // Rule 1 (CLI): top-ups (transfer code 7) into wallets of code 10: 1000.00 a day at UTC+8.
    let out = cli(&endpoint, &["risk-rules", "set", "1", "--asset", "CNY", "--account-code", "10", "--transfer-code", "7", "--kind", "amount", "--side", "credit", "--window", "day", "--max", "1000.00", "--utc-offset-minutes", "480"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(c.create_transfers(vec![topup(2, "1000.00", 7)]).await.unwrap()[0].code, ResultCode::Ok);
    let r = c.create_transfers(vec![topup(2, "0.01", 7)]).await.unwrap();
    assert_eq!((r[0].code, r[0].leg_index), (ResultCode::RiskAmountExceeded, Some(0)));
    assert_eq!(c.create_transfers(vec![topup(2, "5.00", 8)]).await.unwrap()[0].code, ResultCode::Ok, "another business type");
    // Rule 2 (client): account 3's balance at most 50.00; rule 3: one credit a minute into 3.
    let rules = vec![
        RiskRule { rule_id: 2, asset: "CNY".into(), account_id: 3, account_code: 0, transfer_code: None, limit: RiskLimit::Balance { max: d("50.00") }, utc_offset_minutes: 0 },
        RiskRule { rule_id: 3, asset: "CNY".into(), account_id: 3, account_code: 0, transfer_code: None, limit: RiskLimit::Count { side: RiskSide::Credit, max: 1, window: RiskWindow::Minute }, utc_offset_minutes: 0 },
    ];
    assert!(c.set_risk_rules(rules.clone()).await.unwrap().iter().all(|r| r.is_success()));
    assert_eq!(c.create_transfers(vec![topup(3, "50.01", 0)]).await.unwrap()[0].code, ResultCode::RiskBalanceExceeded);
    assert_eq!(c.create_transfers(vec![topup(3, "50.00", 0)]).await.unwrap()[0].code, ResultCode::Ok);
    c.remove_risk_rules(vec![2]).await.unwrap();
    assert_eq!(c.create_transfers(vec![topup(3, "1.00", 0)]).await.unwrap()[0].code, ResultCode::RiskCountExceeded, "rule 3 still holds");
    // A count per transfer makes no sense: refused.
    let bad = RiskRule { limit: RiskLimit::Count { side: RiskSide::Debit, max: 1, window: RiskWindow::Transfer }, ..rules[1].clone() };
    assert_eq!(c.set_risk_rules(vec![bad]).await.unwrap()[0].code, ResultCode::LimitInvalid);

    let listed = c.list_risk_rules().await.unwrap();
    assert_eq!(listed.iter().map(|r| r.rule_id).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(listed[1], rules[1]);
    let out = cli(&endpoint, &["risk-rules", "list"]);
    let rules_json = json(&out);
    assert_eq!(rules_json["rules"][0]["max"], "1000.00", "{rules_json}");
    assert_eq!(rules_json["rules"][0]["transfer_code"], 7);
}
