//! Authentication and roles end to end: a real `ledger-node start` with a tokens file, raw gRPC
//! calls of every RPC class with no token, an unknown token, the wrong role and the right role.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use ledger_e2e::{ClusterNode, free_port};
use ledger_proto::api::cluster_client::ClusterClient;
use ledger_proto::api::ledger_client::LedgerClient;
use ledger_proto::api::wallet_client::WalletClient;
use ledger_proto::api::{
    Asset, BackupRequest, ClusterStatusRequest, CreateAssetsRequest, CreateTransfersRequest, GetBalanceAtRequest,
    ListAccountEntriesRequest,
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
    let mut accounts = ledger_proto::api::accounts_client::AccountsClient::new(channel.clone());
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
        "balance-at" => code(
            ledger
                .get_balance_at(request(GetBalanceAtRequest { account_id: vec![9; 16], timestamp_ns: 1 }, token))
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
        "accounts:write" => code(
            accounts
                .update_accounts(request(ledger_proto::api::UpdateAccountsRequest { updates: vec![] }, token))
                .await
                .map(drop),
        ),
        "accounts:history" => code(
            accounts
                .list_account_changes(request(ledger_proto::api::ListAccountChangesRequest { account_id: vec![9; 16], ..Default::default() }, token))
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

const CLUSTER_SECRET: &str = "e2e-cluster-secret-0123456789abcdef0123456789";

/// A cluster secret file (mode 600) in `dir`: TLS off with tokens on needs one.
fn secret_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("cluster-secret");
    std::fs::write(&path, format!("{CLUSTER_SECRET}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// A single-node cluster with the tokens of [`TOKENS`], serving once an admin call passes.
async fn start_with_tokens(dir: &std::path::Path) -> (ClusterNode, Channel) {
    start_with_tokens_on(dir, &format!("127.0.0.1:{}", free_port()), &[]).await
}

/// `start_with_tokens`, serving peers on `peer_listen`, with `extra` flags.
async fn start_with_tokens_on(dir: &std::path::Path, peer_listen: &str, extra: &[&str]) -> (ClusterNode, Channel) {
    let tokens_file = dir.join("tokens.toml");
    let text: String = TOKENS
        .iter()
        .map(|(p, r, t)| format!("[[token]]\nprincipal = \"{p}\"\nrole = \"{r}\"\nsha256 = \"{}\"\n\n", sha256_hex(t)))
        .collect();
    std::fs::write(&tokens_file, text).unwrap();
    std::fs::set_permissions(&tokens_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let secret = secret_file(dir);
    let node = ClusterNode::start(
        1,
        &dir.join("n1"),
        Some(&[]),
        &[
            "--auth-tokens-file",
            tokens_file.to_str().unwrap(),
            "--peer-listen",
            peer_listen,
            "--cluster-secret-file",
            secret.to_str().unwrap(),
        ]
        .iter()
        .chain(extra)
        .copied()
        .collect::<Vec<_>>(),
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
        // Issue 18 item 8: past balances and their times rebuild the statement payments may not read.
        ("balance-at", &["auditor", "admin"]),
        ("operator", &["auditor", "admin"]),
        ("membership", &["admin"]),
        ("backup", &["admin"]),
        ("wallet:write", &["wallet"]),
        ("wallet:read", &["wallet", "auditor", "admin"]),
        // Issue 22: account changes are admin writes; their history (numbers) is for operators.
        ("accounts:write", &["admin"]),
        ("accounts:history", &["auditor", "admin"]),
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
    // An account change records who made it, in the history.
    let update = ledger_client::accounts::AccountUpdate { code: Some(2), reason: "tier".into(), ..ledger_client::accounts::AccountUpdate::new(9) };
    assert!(admin.update_accounts(vec![update]).await.unwrap()[0].is_success());
    assert_eq!(admin.list_account_changes(9, 0, 0).await.unwrap().changes[0].actor, "ops (admin)");
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

    // Issue 18 item 8: only the principal that placed a hold posts or voids it; to another it is
    // not found, exactly as it reads.
    let hold = NewTransfer::pending(30, "hold-30", "CNY", vec![Leg::new(1, 2, "5.00".parse().unwrap())], 0);
    assert!(checkout.create_transfers(vec![hold]).await.unwrap()[0].is_success());
    for other in [NewTransfer::post(31, "post-31", 30, vec![]), NewTransfer::void(32, "void-32", 30)] {
        let refused = refunds.create_transfers(vec![other]).await.unwrap();
        assert_eq!(refused[0].code, ResultCode::PendingTransferNotFound, "{refused:?}");
    }
    let posted = checkout.create_transfers(vec![NewTransfer::post(33, "post-33", 30, vec![])]).await.unwrap();
    assert!(posted[0].is_success(), "the owner posts its hold: {posted:?}");
    let balances = auditor.lookup_accounts(vec![2]).await.unwrap();
    assert_eq!(balances[0].balances.credits_posted, "7.00".parse().unwrap(), "posted once, by its owner");
}

/// Issue 20: the change feed shows a payments principal the movements of the transfers it
/// created, a wallet principal only the wallet's own (none here), auditors and admins everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_shows_each_principal_its_own_events() {
    use ledger_client::{FeedFilter, Leg, NewAccount, NewAsset, NewTransfer};
    let dir = tempfile::tempdir().unwrap();
    let (node, _channel) = start_with_tokens(dir.path()).await;
    let (admin, checkout, refunds) = (client_as(&node, "tok-admin"), client_as(&node, "tok-payments"), client_as(&node, "tok-refunds"));
    assert!(admin.create_assets(vec![NewAsset::new("CNY", 2)]).await.unwrap()[0].is_success());
    let results = admin.create_accounts(vec![NewAccount::new(1, "CNY", 1), NewAccount::new(2, "CNY", 1)]).await.unwrap();
    assert!(results.iter().all(|r| r.is_success()), "{results:?}");
    let pay = |id: u128, key: &str| NewTransfer::posted(id, key, "CNY", vec![Leg::new(1, 2, "1.00".parse().unwrap())]);
    assert!(checkout.create_transfers(vec![pay(10, "order-10")]).await.unwrap()[0].is_success());
    assert!(refunds.create_transfers(vec![pay(20, "refund-20")]).await.unwrap()[0].is_success());
    assert!(checkout.create_transfers(vec![pay(11, "order-11")]).await.unwrap()[0].is_success());

    let feed_of = |token: &'static str| {
        let client = client_as(&node, token);
        async move {
            let mut subscription = client.subscribe(0, &FeedFilter::default(), false).await.unwrap();
            let mut events = Vec::new();
            while let Some(page) = subscription.next().await {
                events.extend(page.unwrap().events);
            }
            events
        }
    };
    let transfers = |events: &[ledger_client::FeedEvent]| -> Vec<String> {
        events.iter().filter(|e| e.kind == "movement").map(|e| {
            let line: serde_json::Value = serde_json::from_str(&e.line).unwrap();
            line["event"]["transfer_id"].as_str().unwrap().to_string()
        }).collect()
    };
    let checkout_sees = feed_of("tok-payments").await;
    assert_eq!((transfers(&checkout_sees), checkout_sees.len()), (vec!["10".to_string(), "11".to_string()], 2), "its own movements only");
    assert_eq!(transfers(&feed_of("tok-refunds").await), vec!["20".to_string()]);
    assert!(feed_of("tok-wallet").await.is_empty(), "no wallet event, no movement of the ledger's own");
    for everyone in ["tok-auditor", "tok-admin"] {
        let all = feed_of(everyone).await;
        assert_eq!(transfers(&all), vec!["10".to_string(), "20".to_string(), "11".to_string()]);
        assert!(all.iter().any(|e| e.kind == "account_created") && all.iter().any(|e| e.kind == "asset_created"));
    }
    let denied = client_as(&node, "tok-unknown").subscribe(0, &FeedFilter::default(), false).await;
    assert!(matches!(denied, Err(ledger_client::ClientError::Rejected { code: Code::Unauthenticated, .. })), "{denied:?}");
}

/// Issue 18 item 7: without TLS, the peer port of a node with client authentication checks the
/// cluster secret on every call (TransferLeader and snapshots included), and a message must name
/// its target's incarnation. Any local process could otherwise install a forged snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plaintext_peer_port_wants_the_cluster_secret_and_the_target_incarnation() {
    use ledger_node::raft::network::message_to;
    use ledger_proto::raft::raft_peer_client::RaftPeerClient;
    use ledger_proto::raft::{NodeInfoRequest, SnapshotChunk};
    let dir = tempfile::tempdir().unwrap();
    let peer_listen = format!("127.0.0.1:{}", free_port());
    let (node, _channel) = start_with_tokens_on(dir.path(), &peer_listen, &[]).await;
    let peer = Channel::from_shared(format!("http://{peer_listen}")).unwrap().connect().await.unwrap();
    let with_secret = |secret: Option<&str>| {
        let secret = secret.map(|s| s.parse::<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>().unwrap());
        RaftPeerClient::with_interceptor(peer.clone(), move |mut r: tonic::Request<()>| {
            if let Some(secret) = &secret {
                r.metadata_mut().insert("x-ledger-cluster-secret", secret.clone());
            }
            Ok::<_, tonic::Status>(r)
        })
    };
    let vote = openraft::raft::VoteRequest::<ledger_node::raft::TypeConfig>::new(ledger_node::raft::Vote::new(1_000, 9), None);
    let vote_to = |incarnation| message_to(ledger_core::codec::encode(&vote), 1, incarnation);

    // No secret, a wrong one: every method refuses before looking at the message.
    for secret in [None, Some("not-the-secret-0123456789abcdef0123456789")] {
        let mut client = with_secret(secret);
        let err = client.node_info(NodeInfoRequest {}).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
        assert_eq!(client.vote(vote_to(1)).await.unwrap_err().code(), Code::Unauthenticated);
        assert_eq!(client.transfer_leader(vote_to(1)).await.unwrap_err().code(), Code::Unauthenticated);
        assert_eq!(client.read_index(vote_to(1)).await.unwrap_err().code(), Code::Unauthenticated);
        let header = message_to(vec![0; 8], 1, 0);
        let chunk = SnapshotChunk { header: Some(header), data: vec![], crc32: 0, last: true, total_crc32: 0 };
        let err = client.install_snapshot(futures::stream::iter(vec![chunk])).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "a forged snapshot is refused: {err:?}");
    }
    // With the secret: a message naming no incarnation (0), or another one, is refused.
    let mut member = with_secret(Some(CLUSTER_SECRET));
    let info = member.node_info(NodeInfoRequest {}).await.expect("the secret opens the peer port").into_inner();
    assert_ne!(info.incarnation, 0);
    for incarnation in [0, info.incarnation ^ 1] {
        let err = member.vote(vote_to(incarnation)).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "incarnation {incarnation:x}: {err:?}");
        let err = member.transfer_leader(vote_to(incarnation)).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "incarnation {incarnation:x}: {err:?}");
    }
    let log = node.log();
    assert!(log.lines().any(|l| l.contains("peer call refused") && l.contains("cluster secret")), "refusals are logged:\n{log}");
}

/// Issue 18 item 7: a node with tokens and no TLS refuses to start without a cluster secret.
#[test]
fn tokens_without_tls_refuse_to_start_without_a_cluster_secret() {
    let dir = tempfile::tempdir().unwrap();
    let tokens_file = dir.path().join("tokens.toml");
    std::fs::write(&tokens_file, "").unwrap();
    std::fs::set_permissions(&tokens_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let peer_listen = format!("127.0.0.1:{}", free_port());
    let out = ledger_e2e::ledger_node(&[
        "start",
        "--node-id",
        "1",
        "--data-dir",
        dir.path().join("data").to_str().unwrap(),
        "--auth-tokens-file",
        tokens_file.to_str().unwrap(),
        "--peer-listen",
        &peer_listen,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("set cluster_secret_file"), "{stderr}");
    assert!(!dir.path().join("data").exists(), "refused before touching the data dir");
}

/// Issue 18 item 7: nodes holding the same cluster secret send it on every peer call, so a
/// plaintext cluster forms and commits (a commit needs a quorum of authenticated appends).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_cluster_with_a_secret_forms_and_commits() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path());
    let cluster = ledger_e2e::Cluster::bootstrap(3, &["--cluster-secret-file", secret.to_str().unwrap()]);
    let client = ledger_client::LedgerClient::connect(cluster.endpoints()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match client.create_assets(vec![ledger_client::NewAsset::new("CNY", 2)]).await {
            Ok(results) if results[0].is_success() => break,
            other => assert!(std::time::Instant::now() < deadline, "no commit: {other:?}\n{}", cluster.logs()),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let logs = cluster.logs();
    assert!(!logs.contains("peer call refused"), "members refused each other:\n{logs}");
}

/// Issue 18 item 6: a flood of anonymous calls from 32 connections is counted one by one in the
/// metrics but journaled aggregated: the journal (replicated to every node) grows by at most
/// `DENIED_RECORDS_PER_MINUTE` lines a minute (a burst of 60, then one a second), and the log by
/// one line per kind and record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_flood_grows_the_journal_at_a_bounded_rate_and_is_counted_in_metrics() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let metrics_listen = format!("127.0.0.1:{}", free_port());
    let peer_listen = format!("127.0.0.1:{}", free_port());
    let (node, _channel) = start_with_tokens_on(dir.path(), &peer_listen, &["--metrics-listen", &metrics_listen]).await;
    let auditor = client_as(&node, "tok-auditor");
    let head_before = auditor.journal_head().await.unwrap().seq;
    let log_before = node.log().lines().filter(|l| l.contains("access denied")).count();
    let started = std::time::Instant::now();
    let flood = Duration::from_secs(10);
    let calls = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for connection in 0..32 {
        let channel = Channel::from_shared(node.endpoint()).unwrap().connect().await.unwrap();
        let calls = calls.clone();
        tasks.push(tokio::spawn(async move {
            let classes = ["write:payments", "read", "operator", "membership", "wallet:read"];
            let mut i = connection;
            while started.elapsed() < flood {
                let token = if i % 2 == 0 { None } else { Some("guessed-token") };
                let code = call(&channel, classes[i % classes.len()], token).await;
                assert_eq!(code, Code::Unauthenticated);
                calls.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let calls = calls.load(Ordering::Relaxed);
    // Let the last records go out and the metrics sampler (every 5 s) catch up.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let elapsed_s = started.elapsed().as_secs() + 1;
    let growth = auditor.journal_head().await.unwrap().seq - head_before;
    let bound = 60 + elapsed_s;
    println!("{calls} refused calls in {flood:?}: journal +{growth} lines (bound {bound})");
    assert!(calls > 1_000, "the flood was a flood: {calls}");
    assert!(growth >= 1, "the refusals were journaled");
    assert!(growth <= bound, "journal grew {growth} lines for {calls} refusals, bound {bound}");
    let logged = node.log().lines().filter(|l| l.contains("access denied")).count() - log_before;
    assert!(logged as u64 <= bound + 256, "{logged} log lines for {calls} refusals");
    let text = scrape(&metrics_listen);
    let counted = text
        .lines()
        .find(|l| l.starts_with("ledger_auth_denials_total{reason=\"unauthenticated\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no denial counter:\n{text}"));
    assert!(counted >= calls as f64, "metrics count every refusal: {counted} < {calls}");
}

/// `GET /metrics` over plain HTTP/1.0.
fn scrape(address: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("metrics port");
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}
