//! A data dir written by the previous data format opens in place and serves what it held.
//!
//! `tests/fixtures/format3/data.tar.gz` is a `ledger-node dev` data dir written by the format-3
//! release (main at 1dba2cc, 2026-12-05): one asset, five accounts (one with an external ref and
//! metadata, one with an overdraft, one frozen, one closed), posted, pending, posted-pending and
//! voided transfers, a refused transfer, an account limit, a snapshot at index 18 and one
//! transfer after it (so the start replays a log entry past the snapshot). Beside it, what that
//! release answered for each account and transfer (`ledger ... --output json`), its journal head
//! and its state hash. This release must answer the same, byte for byte.

use std::path::Path;
use std::process::{Command, Output};

use ledger_e2e::{DevNode, binary};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/format3");

fn ledger(endpoint: &str, args: &[&str]) -> Output {
    Command::new(binary("ledger")).args(["--endpoint", endpoint]).args(args).output().expect("run ledger")
}

fn stdout_of(endpoint: &str, args: &[&str]) -> String {
    let out = ledger(endpoint, args);
    String::from_utf8(out.stdout).unwrap()
}

fn unpack(into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    let status = Command::new("tar")
        .args(["-xzf", &format!("{FIXTURE}/data.tar.gz"), "-C"])
        .arg(into)
        .status()
        .expect("run tar");
    assert!(status.success(), "unpacking the fixture");
}

fn fixture_lines(name: &str) -> Vec<String> {
    std::fs::read_to_string(format!("{FIXTURE}/{name}")).unwrap().lines().map(str::to_string).collect()
}

#[test]
fn a_format_3_data_dir_opens_in_place_and_answers_as_before() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    unpack(&data_dir);
    assert!(std::fs::read_to_string(data_dir.join("identity.toml")).unwrap().contains("format_version = 3"));

    let node = DevNode::start(&data_dir);
    let e = node.endpoint();

    let accounts: Vec<String> = ["1", "2", "3", "4", "9"]
        .iter()
        .map(|id| stdout_of(&e, &["account", "get", id, "--output", "json"]).trim_end().to_string())
        .collect();
    assert_eq!(accounts, fixture_lines("accounts.jsonl"), "accounts as format 3 answered them");

    let keys = ["topup-1", "order-77", "hold-1", "hold-2", "hold-3", "post-1", "void-1", "too-much", "after-snap"];
    let transfers: Vec<String> = keys
        .iter()
        .map(|key| stdout_of(&e, &["transfer", "by-key", key, "--output", "json"]).trim_end().to_string())
        .collect();
    // Every field format 3 answered, with the same value; the only fields added since are the
    // refund totals of issue 21 (`refunded`, `refundable`: a transfer before refunds has refunded
    // nothing and can refund all it moved).
    for (now, then) in transfers.iter().zip(fixture_lines("transfers.jsonl")) {
        let mut now: serde_json::Value = serde_json::from_str(now).unwrap();
        let then: serde_json::Value = serde_json::from_str(&then).unwrap();
        if let Some(transfer) = now.get_mut("transfer").and_then(|t| t.as_object_mut()) {
            for added in ["refunded", "refundable"] {
                transfer.remove(added);
            }
        }
        assert_eq!(now, then, "transfers and idempotency records as before");
    }
    let topup: serde_json::Value = serde_json::from_str(&transfers[0]).unwrap();
    assert_eq!(topup["transfer"]["refunded"], "0.00", "{topup}");
    assert_eq!(topup["transfer"]["refundable"], "500.00", "{topup}");

    // The journal is unchanged: same head, and an export pinned to it verifies offline.
    let head = std::fs::read_to_string(format!("{FIXTURE}/head.txt")).unwrap().trim().to_string();
    assert_eq!(stdout_of(&e, &["audit", "head"]).trim(), head);
    let export = tmp.path().join("export");
    let out = ledger(&e, &["audit", "export", export.to_str().unwrap()]);
    assert!(out.status.success(), "export: {}", String::from_utf8_lossy(&out.stderr));
    let out = ledger(&e, &["audit", "verify", export.to_str().unwrap(), "--pin", &head]);
    assert!(out.status.success(), "verify: {}", String::from_utf8_lossy(&out.stderr));

    // The replicated state hashes the same (the start appends no ledger change).
    let hash: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(format!("{FIXTURE}/hash.json")).unwrap()).unwrap();
    let now: serde_json::Value = serde_json::from_str(&stdout_of(&e, &["cluster", "state-hash", "--output", "json"])).unwrap();
    assert_eq!(now["state_hash"], hash["state_hash"], "{now} vs {hash}");

    // It keeps working: the held 5.00 posts, a retried key replays, a new transfer commits.
    let hold_3: serde_json::Value = serde_json::from_str(&transfers[4]).unwrap();
    let pending_id = hold_3["transfer_id"].as_str().unwrap();
    let out = ledger(&e, &["transfer", "post", pending_id, "--idempotency-key", "post-3"]);
    assert!(out.status.success(), "post: {}", String::from_utf8_lossy(&out.stderr));
    let out = ledger(&e, &["transfer", "submit", "--asset", "CNY", "--leg", "1:2:500.00", "--idempotency-key", "topup-1", "--output", "json"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"replay\":true"), "{}", String::from_utf8_lossy(&out.stdout));
    let out = ledger(&e, &["transfer", "submit", "--asset", "CNY", "--leg", "1:2:1.00", "--idempotency-key", "after-upgrade"]);
    assert!(out.status.success(), "submit: {}", String::from_utf8_lossy(&out.stderr));
    let account_2: serde_json::Value = serde_json::from_str(&stdout_of(&e, &["account", "get", "2", "--output", "json"])).unwrap();
    assert_eq!(account_2["balances"]["debits_posted"], "155.00", "120 + 30 posted before, 5 now: {account_2}");
    assert_eq!(account_2["balances"]["credits_posted"], "501.00");
    assert_eq!(account_2["balances"]["debits_pending"], "0.00");

    // Marked with the current format: the older release refuses it from now on.
    let identity = std::fs::read_to_string(data_dir.join("identity.toml")).unwrap();
    assert!(identity.contains(&format!("format_version = {}", ledger_core::codec::FORMAT_VERSION)), "{identity}");
}
