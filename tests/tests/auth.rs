//! Authentication and roles end to end: a real `ledger-node start` with a tokens file, raw gRPC
//! calls of every RPC class with no token, an unknown token, the wrong role and the right role.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use ledger_e2e::{ClusterNode, free_port};
use ledger_proto::api::cluster_client::ClusterClient;
use ledger_proto::api::ledger_client::LedgerClient;
use ledger_proto::api::wallet_client::WalletClient;
use ledger_proto::api::{
    Asset, BackupRequest, ClusterStatusRequest, CreateAssetsRequest, CreateTransfersRequest, ListAccountEntriesRequest,
    LookupTransfersRequest,
    GetTokenRequest, IssueTokenRequest, TriggerSnapshotRequest,
};
use tonic::Code;
use tonic::transport::Channel;

const TOKENS: &[(&str, &str, &str)] = &[
    ("checkout", "payments", "tok-payments"),
    ("refunds", "payments", "tok-refunds"),
    ("wallets", "wallet", "tok-wallet"),
    ("regulator", "auditor", "tok-auditor"),
    ("ops", "admin", "tok-admin"),
];

fn sha256_hex(token: &str) -> String {
    let out = std::process::Command::new(ledger_e2e::binary("ledger-node"))
        .arg("hash-token")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(format!("{token}\n").as_bytes())?;
            child.wait_with_output()
        })
        .expect("ledger-node hash-token");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn request<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

/// One call of each RPC class, as `token`; the status code, or `Ok` for any answer that is not a
/// refusal by the auth layer.
async fn call(channel: &Channel, class: &str, token: Option<&str>) -> Code {
    let mut ledger = LedgerClient::new(channel.clone());
    let mut cluster = ClusterClient::new(channel.clone());
    let mut wallet = WalletClient::new(channel.clone());
    let code = |r: Result<(), tonic::Status>| r.err().map(|s| s.code()).unwrap_or(Code::Ok);
    match class {
        "write:payments" => {
            code(ledger.create_transfers(request(CreateTransfersRequest { transfers: vec![] }, token)).await.map(drop))
        }
        "write:admin" => code(
            ledger
                .create_assets(request(
                    CreateAssetsRequest { assets: vec![Asset { code: "CNY".into(), scale: 2 }] },
                    token,
                ))
                .await
                .map(drop),
        ),
        "read" => code(ledger.lookup_transfers(request(LookupTransfersRequest { ids: vec![] }, token)).await.map(drop)),
        "statement" => code(
            ledger
                .list_account_entries(request(ListAccountEntriesRequest { account_id: vec![9; 16], ..Default::default() }, token))
                .await
                .map(drop),
        ),
        "operator" => code(ledger.cluster_status(request(ClusterStatusRequest {}, token)).await.map(drop)),
        "membership" => {
            code(cluster.trigger_snapshot(request(TriggerSnapshotRequest { purge_log: false }, token)).await.map(drop))
        }
        // A relative dir: an admin passes the auth layer and is refused by the service
        // (INVALID_ARGUMENT), so the test writes no backup.
        "backup" => code(cluster.backup(request(BackupRequest { dir: "not-absolute".into() }, token)).await.map(drop)),
        "wallet:write" => code(
            wallet
                .issue_token(request(IssueTokenRequest { token_id: vec![7; 16], ..IssueTokenRequest::default() }, token))
                .await
                .map(drop),
        ),
        "wallet:read" => {
            code(wallet.get_token(request(GetTokenRequest { token_id: vec![7; 16] }, token)).await.map(drop))
        }
        _ => unreachable!(),
    }
}

fn is_refusal(code: Code) -> bool {
    matches!(code, Code::Unauthenticated | Code::PermissionDenied)
}

/// A single-node cluster with the tokens of [`TOKENS`], serving once an admin call passes.
async fn start_with_tokens(dir: &std::path::Path) -> (ClusterNode, Channel) {
    let tokens_file = dir.join("tokens.toml");
    let text: String = TOKENS
        .iter()
        .map(|(p, r, t)| format!("[[token]]\nprincipal = \"{p}\"\nrole = \"{r}\"\nsha256 = \"{}\"\n\n", sha256_hex(t)))
        .collect();
    std::fs::write(&tokens_file, text).unwrap();
    std::fs::set_permissions(&tokens_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let peer_listen = format!("127.0.0.1:{}", free_port());
    let node = ClusterNode::start(
        1,
        &dir.join("n1"),
        Some(&[]),
        &["--auth-tokens-file", tokens_file.to_str().unwrap(), "--peer-listen", &peer_listen],
    );
    let channel = Channel::from_shared(node.endpoint()).unwrap().connect().await.unwrap();
    // Wait until the single-node cluster leads (the operator call answers Ok once it serves).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while call(&channel, "write:admin", Some("tok-admin")).await != Code::Ok {
        assert!(std::time::Instant::now() < deadline, "node never served; log:\n{}", node.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (node, channel)
}

fn client_as(node: &ClusterNode, token: &str) -> ledger_client::LedgerClient {
    let config = ledger_client::ClientConfig {
        token: Some(ledger_client::BearerToken::new(token).unwrap()),
        ..ledger_client::ClientConfig::default()
    };
    ledger_client::LedgerClient::connect_with(vec![node.endpoint()], config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_class_refuses_no_token_unknown_token_and_wrong_role() {
    let dir = tempfile::tempdir().unwrap();
    let (node, channel) = start_with_tokens(dir.path()).await;

    // class → the roles allowed (from api/auth.rs AUTHORIZATION).
    let classes: &[(&str, &[&str])] = &[
        ("write:payments", &["payments"]),
        ("write:admin", &["admin"]),
        ("read", &["payments", "auditor", "admin"]),
        ("statement", &["auditor", "admin"]),
        ("operator", &["auditor", "admin"]),
        ("membership", &["admin"]),
        ("backup", &["admin"]),
        ("wallet:write", &["wallet"]),
        ("wallet:read", &["wallet", "auditor", "admin"]),
    ];
    for (class, allowed) in classes {
        assert_eq!(call(&channel, class, None).await, Code::Unauthenticated, "{class} with no token");
        assert_eq!(
            call(&channel, class, Some("stolen-guess")).await,
            Code::Unauthenticated,
            "{class} with an unknown token"
        );
        for (_, role, token) in TOKENS {
            let got = call(&channel, class, Some(token)).await;
            if allowed.contains(role) {
                assert!(!is_refusal(got), "{class} as {role} must pass the auth layer, got {got:?}");
            } else {
                assert_eq!(got, Code::PermissionDenied, "{class} as {role}");
            }
        }
    }
    // The client crate and the CLI carry the token.
    let config = ledger_client::ClientConfig {
        token: Some(ledger_client::BearerToken::new("tok-auditor").unwrap()),
        ..ledger_client::ClientConfig::default()
    };
    assert!(!format!("{config:?}").contains("tok-auditor"), "the token is redacted in Debug");
    let client = ledger_client::LedgerClient::connect_with(vec![node.endpoint()], config).unwrap();
    client.cluster_status().await.expect("an auditor reads the cluster status");
    let cli = |token: Option<&str>| {
        let mut command = std::process::Command::new(ledger_e2e::binary("ledger"));
        command.args(["--endpoint", &node.endpoint(), "--max-retries", "0", "cluster", "status"]).env_remove("LEDGER_TOKEN");
        if let Some(token) = token {
            command.env("LEDGER_TOKEN", token);
        }
        command.output().unwrap()
    };
    assert!(cli(Some("tok-admin")).status.success());
    let refused = cli(None);
    assert!(!refused.status.success());
    assert!(cli(Some("tok-wallet")).status.code() != Some(0));
    let log = node.log();
    assert!(
        log.lines().any(|l| l.contains("access denied") && l.contains("regulator") && l.contains("CreateTransfers")),
        "denials are logged with who tried:\n{log}"
    );
    for (_, _, token) in TOKENS {
        assert!(!log.contains(token), "a token appears in the log");
    }
    // A freeze records who did it.
    let admin = ledger_client::LedgerClient::connect_with(
        vec![node.endpoint()],
        ledger_client::ClientConfig { token: Some(ledger_client::BearerToken::new("tok-admin").unwrap()), ..Default::default() },
    )
    .unwrap();
    assert!(admin.create_accounts(vec![ledger_client::NewAccount::new(9, "CNY", 1)]).await.unwrap()[0].is_success());
    let frozen = admin.set_account_status(vec![(9, ledger_client::AccountStatus::Frozen, "court order".into())]).await.unwrap();
    assert!(frozen[0].is_success(), "{frozen:?}");
    // Refusals reach the audit journal (within a second or two) with who tried.
    let dir_export = dir.path().join("export");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let _ = std::fs::remove_dir_all(&dir_export);
        client.export_journal(Default::default(), Default::default(), &dir_export, |_, _| {}).await.expect("an auditor exports");
        let journal = std::fs::read_to_string(dir_export.join("journal.jsonl")).unwrap();
        let journaled = journal.lines().any(|l| {
            l.contains("\"type\":\"access_denied\"") && l.contains("\"principal\":\"regulator\"") && l.contains("CreateTransfers")
        });
        if journaled {
            assert!(journal.lines().any(|l| l.contains("\"type\":\"access_denied\"") && l.contains("\"principal\":\"\"")), "no-token refusals too");
            assert!(
                journal.lines().any(|l| l.contains("\"type\":\"account_status_changed\"") && l.contains("\"actor\":\"ops (admin)\"") && l.contains("court order")),
                "the freeze names its actor:\n{journal}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "refusals not journaled:\n{journal}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    ledger_client::audit::verify::verify(&dir_export, None).expect("the export verifies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_reads_only_the_transfers_it_created() {
    use ledger_client::{Leg, NewAccount, NewAsset, NewTransfer, ResultCode};
    let dir = tempfile::tempdir().unwrap();
    let (node, _channel) = start_with_tokens(dir.path()).await;
    let (admin, checkout, refunds, auditor) =
        (client_as(&node, "tok-admin"), client_as(&node, "tok-payments"), client_as(&node, "tok-refunds"), client_as(&node, "tok-auditor"));
    assert!(admin.create_assets(vec![NewAsset::new("CNY", 2)]).await.unwrap()[0].is_success());
    let results = admin.create_accounts(vec![NewAccount::new(1, "CNY", 1), NewAccount::new(2, "CNY", 1)]).await.unwrap();
    assert!(results.iter().all(|r| r.is_success()), "{results:?}");
    let pay = |id: u128, key: &str| NewTransfer::posted(id, key, "CNY", vec![Leg::new(1, 2, "1.00".parse().unwrap())]);
    assert!(checkout.create_transfers(vec![pay(10, "order-10")]).await.unwrap()[0].is_success());
    assert!(refunds.create_transfers(vec![pay(20, "refund-20")]).await.unwrap()[0].is_success());

    // Each payments principal sees its own transfers, by id and by key, and nothing of the other's.
    let seen = |records: Vec<ledger_client::TransferRecord>| records.iter().map(|r| (r.transfer.id, r.owner.clone())).collect::<Vec<_>>();
    assert_eq!(seen(checkout.lookup_transfers(vec![10, 20]).await.unwrap()), vec![(10, "checkout".to_string())]);
    assert_eq!(seen(refunds.lookup_transfers(vec![10, 20]).await.unwrap()), vec![(20, "refunds".to_string())]);
    assert!(checkout.get_transfer_by_idempotency_key("order-10").await.unwrap().is_some());
    assert!(refunds.get_transfer_by_idempotency_key("order-10").await.unwrap().is_none(), "another's key reads as unused");
    // Reusing another principal's key, even with the same content, is a conflict that names
    // nothing of the first transfer, and moves nothing.
    let reused = refunds.create_transfers(vec![pay(10, "order-10")]).await.unwrap();
    assert_eq!((reused[0].code, reused[0].replay), (ResultCode::IdempotencyKeyConflict, false), "{reused:?}");
    let again = checkout.create_transfers(vec![pay(10, "order-10")]).await.unwrap();
    assert!(again[0].replay && again[0].is_success(), "the owner's retry is a replay: {again:?}");
    // Auditors and admins read everything, with its owner.
    assert_eq!(
        seen(auditor.lookup_transfers(vec![10, 20]).await.unwrap()),
        vec![(10, "checkout".to_string()), (20, "refunds".to_string())]
    );
    let balances = auditor.lookup_accounts(vec![2]).await.unwrap();
    assert_eq!(balances[0].balances.credits_posted, "2.00".parse().unwrap(), "one move each, none twice");
}
