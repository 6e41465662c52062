//! TLS end to end: a 3-node cluster over TLS (clients) and mutual TLS (peers) with certificates
//! from `ledger-node certs`; clients that are refused (plaintext, wrong CA); client-certificate
//! authentication; stranger nodes (a foreign CA, a cluster certificate of a non-member); and the
//! starts a node refuses (plaintext on a public address, a key others may read).

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use ledger_client::{ClientConfig, ClientError, LedgerClient, Leg, NewAccount, NewAsset, NewTransfer, transfer_id_from_key};
use ledger_e2e::{Cluster, ClusterNode, Pki, binary, cli_tls, eventually, free_port};
use ledger_proto::api::ledger_client::LedgerClient as LedgerGrpc;
use ledger_proto::raft::NodeInfoRequest;
use ledger_proto::raft::raft_peer_client::RaftPeerClient;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// One cluster at a time (2 cores).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn client(endpoints: Vec<String>, tls: Option<ledger_client::ClientTls>) -> LedgerClient {
    let config = ClientConfig { request_timeout: Duration::from_secs(3), max_retries: 40, tls, ..ClientConfig::default() };
    LedgerClient::connect_with(endpoints, config).expect("client")
}

/// A raw channel to `url` trusting `ca`, presenting `identity` (certificate, key) if given.
fn channel(url: &str, ca: &std::path::Path, identity: Option<(std::path::PathBuf, std::path::PathBuf)>) -> Channel {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(std::fs::read(ca).unwrap()));
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(std::fs::read(cert).unwrap(), std::fs::read(key).unwrap()));
    }
    Endpoint::from_shared(url.to_string()).unwrap().tls_config(tls).unwrap().connect_timeout(Duration::from_secs(3)).connect_lazy()
}

fn transfer(key: &str) -> NewTransfer {
    NewTransfer::posted(transfer_id_from_key(key), key.to_string(), "CNY", vec![Leg::new(1, 2, "1.00".parse().unwrap())])
}

async fn wait_leader(cluster: &Cluster, tls: &ledger_client::ClientTls) -> (u64, u64) {
    let c = client(cluster.endpoints(), Some(tls.clone()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        for endpoint in cluster.endpoints() {
            if let Ok(status) = c.cluster_status_at(&endpoint).await
                && status.role == "leader"
                && status.error.is_none()
            {
                return (status.node_id, status.term);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no leader over TLS within 60 s\n{}", cluster.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_replicates_refuses_bad_clients_and_stranger_nodes() {
    let _serial = serial();
    let cluster = Cluster::bootstrap_tls(3, &[]);
    let pki = cluster.pki.as_ref().unwrap();
    let tls = pki.client_tls(None);
    let (leader, term) = wait_leader(&cluster, &tls).await;
    for node in &cluster.nodes {
        assert!(node.endpoint().starts_with("https://"));
        assert!(!node.log().contains("TLS is off"), "node {} warned about plaintext", node.id);
    }

    // (1) Writes through the client over TLS, replicated to every node (peers over mutual TLS).
    let c = client(cluster.endpoints(), Some(tls.clone()));
    assert!(c.create_assets(vec![NewAsset::new("CNY", 2)]).await.unwrap()[0].is_success());
    let accounts: Vec<NewAccount> = (1..=2).map(|id| NewAccount::new(id, "CNY", 1)).collect();
    assert!(c.create_accounts(accounts).await.unwrap().iter().all(|r| r.is_success()));
    let transfers: Vec<NewTransfer> = (1..=20u128).map(|i| transfer(&format!("tls-{i}"))).collect();
    let results = c.create_transfers(transfers).await.unwrap();
    assert!(results.iter().all(|r| r.is_success()), "{results:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut hashes = Vec::new();
        for endpoint in cluster.endpoints() {
            if let Ok(h) = c.state_hash_of(&endpoint).await {
                hashes.push((h.applied_index, h.state_hash));
            }
        }
        hashes.dedup();
        if hashes.len() == 1 && cluster.endpoints().len() == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "replicas did not converge over mTLS: {hashes:?}\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The CLI over TLS, and its leader redirect to an https address.
    let follower = cluster.nodes.iter().find(|n| n.id != leader).unwrap();
    let out = cli_tls(&follower.endpoint(), pki, None, &["cluster", "status"]);
    assert!(out.status.success(), "ledger cluster status over TLS: {}", String::from_utf8_lossy(&out.stderr));
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(status.contains("https://127.0.0.1"), "advertised addresses are https: {status}");

    // (2) A plaintext client, and a client that trusts another CA, get nothing.
    let plain_url = follower.endpoint().replace("https://", "http://");
    let plain = LedgerClient::connect_with(
        vec![plain_url],
        ClientConfig { request_timeout: Duration::from_secs(2), max_retries: 1, ..ClientConfig::default() },
    )
    .unwrap();
    assert!(matches!(plain.cluster_status().await, Err(ClientError::Unavailable { .. })), "plaintext to a TLS port");
    let other = Pki::new(&cluster.dir.path().join("other-pki"));
    let wrong_ca = LedgerClient::connect_with(
        vec![follower.endpoint()],
        ClientConfig {
            request_timeout: Duration::from_secs(2),
            max_retries: 1,
            tls: Some(other.client_tls(None)),
            ..ClientConfig::default()
        },
    )
    .unwrap();
    match wrong_ca.cluster_status().await {
        Err(ClientError::Unavailable { last_error, .. }) => {
            assert!(last_error.to_lowercase().contains("certificate") || last_error.contains("UnknownIssuer") || last_error.contains("transport"), "{last_error}")
        }
        other => panic!("a client with the wrong CA must fail the handshake: {other:?}"),
    }
    let out = cli_tls(&follower.endpoint(), &other, None, &["--max-retries", "0", "cluster", "status"]);
    assert!(!out.status.success(), "the CLI with the wrong CA must fail");

    // (4a) A node whose certificate comes from another CA cannot talk to the cluster: its
    // handshake to a member's peer port is refused.
    let member_peer = cluster.nodes[0].peer_endpoint();
    let foreign = RaftPeerClient::new(channel(&member_peer, &pki.ca(), Some(other.node(4))));
    let refused = foreign.clone().node_info(NodeInfoRequest {}).await.expect_err("a foreign node certificate is refused");
    // TLS 1.3 checks a client certificate after the client's half of the handshake: the refusal
    // arrives as the server's fatal alert on the first request, as a transport error. On a loaded
    // machine the server's close can overtake the alert: the client then reads a closed
    // connection instead (seen 3 runs in 4 under load); both are the handshake's refusal, never
    // an answer from the service.
    let refusal = format!("{refused:?}").to_lowercase();
    assert!(
        matches!(refused.code(), Code::Unavailable | Code::Unknown | Code::Cancelled)
            && (refusal.contains("alert") || refusal.contains("connection closed") || refusal.contains("connection reset") || refusal.contains("broken pipe")),
        "refused in the handshake: {refused:?}"
    );
    // Even trusting the cluster CA, the peer port wants a client certificate.
    let anonymous = RaftPeerClient::new(channel(&member_peer, &pki.ca(), None));
    assert!(anonymous.clone().node_info(NodeInfoRequest {}).await.is_err(), "no client certificate, no peer call");

    // (4b) A node with a valid cluster certificate but an id not in the membership: its Raft
    // messages are refused and logged, and its vote for a far higher term changes nothing.
    let stranger = RaftPeerClient::new(channel(&member_peer, &pki.ca(), Some(pki.node(9))));
    let err = stranger.clone().node_info(NodeInfoRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("node 9 is not a member"), "{}", err.message());
    let vote = openraft::raft::VoteRequest::<ledger_node::raft::TypeConfig>::new(ledger_node::raft::Vote::new(term + 1000, 9), None);
    let message = ledger_node::raft::network::message_to(ledger_core::codec::encode(&vote), cluster.nodes[0].id, 0);
    let err = stranger.clone().vote(message.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    // TransferLeader gets the same sender check as every other peer call (issue 18 item 7).
    let err = stranger.clone().transfer_leader(message).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let (_, term_after) = wait_leader(&cluster, &tls).await;
    assert!(term_after < term + 1000, "the stranger's vote disturbed the term: {term} -> {term_after}");
    assert!(
        cluster.nodes[0].log().lines().any(|l| l.contains("peer call refused") && l.contains("node 9 is not a member")),
        "the refusal is logged:\n{}",
        cluster.nodes[0].log()
    );
    // A stranger process that bootstraps with a member as its peer never forms anything with it.
    let refusals = || cluster.nodes[0].log().lines().filter(|l| l.contains("peer call refused") && l.contains("node 9 is not a member")).count();
    let refused_before = refusals();
    let mut stranger_node = ClusterNode::start_with(
        9,
        &cluster.dir.path().join("node9"),
        Some(&[(cluster.nodes[0].id, member_peer.clone())]),
        &[],
        &[],
        Some(pki),
    );
    // Its bootstrap has called the member, and been refused.
    eventually("the member refusing the stranger process's bootstrap", Duration::from_secs(30), Duration::from_millis(50), || async {
        let now = refusals();
        if now > refused_before { Ok(()) } else { Err(format!("{now} refusals of node 9 logged, {refused_before} before it started")) }
    })
    .await;
    let status = c.cluster_status().await.unwrap();
    assert!(status.nodes.iter().all(|m| m.node_id != 9), "node 9 became a member: {status:?}");
    assert_eq!(status.nodes.len(), 3);
    stranger_node.kill9();
    // Still serving.
    assert!(c.create_transfers(vec![transfer("after-strangers")]).await.unwrap()[0].is_success());
}

/// A tokens file with one certificate mapping: `checkout` pays; an `ops` token administers.
fn tokens_file(dir: &std::path::Path) -> std::path::PathBuf {
    let hash = Command::new(binary("ledger-node"))
        .arg("hash-token")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"tok-admin\n")?;
            child.wait_with_output()
        })
        .unwrap();
    let digest = String::from_utf8(hash.stdout).unwrap().trim().to_string();
    let path = dir.join("tokens.toml");
    std::fs::write(
        &path,
        format!(
            "[[token]]\nprincipal = \"ops\"\nrole = \"admin\"\nsha256 = \"{digest}\"\n\n\
             [[certificate]]\nprincipal = \"checkout-service\"\nrole = \"payments\"\nsubject = \"checkout\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapped_client_certificate_authenticates_with_its_role() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"));
    let tokens = tokens_file(dir.path());
    let ca = pki.ca();
    let args = ["--auth-tokens-file", tokens.to_str().unwrap(), "--tls-client-ca", ca.to_str().unwrap()];
    let _node = ClusterNode::start_with(1, &dir.path().join("node1"), Some(&[]), &args, &[], Some(&pki));
    let node = &_node;
    let deadline = Instant::now() + Duration::from_secs(30);
    let call = |name: Option<&'static str>| {
        let identity = name.map(|n| pki.client(n));
        LedgerGrpc::new(channel(&node.endpoint(), &pki.ca(), identity))
    };
    // Wait for the node to lead (its port opens before it has formed its cluster).
    loop {
        let mut admin = call(None);
        let mut request = tonic::Request::new(ledger_proto::api::CreateAssetsRequest {
            assets: vec![ledger_proto::api::Asset { code: "CNY".into(), scale: 2 }],
        });
        request.metadata_mut().insert("authorization", "Bearer tok-admin".parse().unwrap());
        match admin.create_assets(request).await {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("the admin token over TLS: {e:?}\n{}", node.log()),
        }
    }
    let transfers = || ledger_proto::api::CreateTransfersRequest { transfers: vec![] };
    let assets = || ledger_proto::api::CreateAssetsRequest { assets: vec![] };
    // The mapped certificate may call its role's RPCs...
    let got = call(Some("checkout")).create_transfers(transfers()).await;
    assert!(got.is_ok() || !matches!(got.as_ref().unwrap_err().code(), Code::Unauthenticated | Code::PermissionDenied), "{got:?}");
    // ...and not another role's.
    let err = call(Some("checkout")).create_assets(assets()).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    // A certificate of the client CA that no entry maps, and no certificate at all.
    let err = call(Some("stranger")).create_transfers(transfers()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(err.message().contains("not mapped"), "{}", err.message());
    let err = call(None).create_transfers(transfers()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    // The CLI with the certificate.
    let out = cli_tls(&node.endpoint(), &pki, Some("checkout"), &["--max-retries", "0", "asset", "create", "USD", "--scale", "2"]);
    assert!(!out.status.success(), "payments may not create assets");
    let log = node.log();
    assert!(log.lines().any(|l| l.contains("access denied") && l.contains("checkout-service")), "denials name the principal:\n{log}");
    assert!(!log.contains("PRIVATE KEY"), "no key material in the log");
}

#[test]
fn refused_starts_plaintext_on_a_public_address_and_a_readable_key() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let start = |args: &[&str]| {
        Command::new(binary("ledger-node"))
            .args(["start", "--node-id", "1", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(args)
            .output()
            .expect("run ledger-node")
    };
    let listen = format!("0.0.0.0:{}", free_port());
    let out = start(&["--listen", &listen, "--advertise", "http://10.0.0.1:7070"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("not a loopback address and TLS is off"), "{stderr}");

    // TLS on a public address without client authentication: anyone completing the handshake
    // would be admin, so the node refuses to start (issue 18 item 7).
    let pki = Pki::new(&dir.path().join("pki-public"));
    let mut args = pki.node_args(1);
    args.extend(["--listen".into(), listen.clone(), "--advertise".into(), "https://10.0.0.1:7070".into()]);
    args.extend(["--peer-listen".into(), format!("127.0.0.1:{}", free_port())]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = start(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("would be admin") && stderr.contains("auth_tokens_file"), "{stderr}");

    let pki = Pki::new(&dir.path().join("pki"));
    let mut args = pki.node_args(1);
    let (_, key) = pki.node(1);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    args.extend(["--listen".into(), format!("127.0.0.1:{}", free_port()), "--peer-listen".into(), format!("127.0.0.1:{}", free_port())]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = start(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("tls_key") && stderr.contains("mode 644") && stderr.contains("chmod 600"), "{stderr}");
    assert!(!dir.path().join("data").exists(), "refused before touching the data dir");
}

/// Issue 18 item 12: renewed certificates (here a whole new CA, the hardest case) are served
/// without a restart: after SIGHUP every new handshake, on the client port and between peers,
/// uses the files on disk; a bad set is refused and the one in force stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewed_certificates_are_served_after_sighup_without_a_restart() {
    let _serial = serial();
    let cluster = Cluster::bootstrap_tls(2, &[]);
    let old = cluster.pki.as_ref().unwrap();
    wait_leader(&cluster, &old.client_tls(None)).await;
    let renewed = Pki::new(&cluster.dir.path().join("pki-renewed"));
    let fails_with = |tls: ledger_client::ClientTls, endpoint: String| async move {
        let config = ClientConfig { request_timeout: Duration::from_secs(2), max_retries: 0, tls: Some(tls), ..ClientConfig::default() };
        LedgerClient::connect_with(vec![endpoint], config).unwrap().cluster_status().await.is_err()
    };
    for node in &cluster.nodes {
        assert!(fails_with(renewed.client_tls(None), node.endpoint()).await, "the new CA is not served yet");
    }

    std::fs::copy(old.ca(), cluster.dir.path().join("ca-before-renewal.pem")).unwrap();
    // Renew: the same paths get the new CA and node certificates (what an operator's cert
    // tooling does), then SIGHUP.
    for id in [1, 2] {
        let ((new_cert, new_key), (cert, key)) = (renewed.node(id), old.node(id));
        std::fs::copy(new_cert, cert).unwrap();
        std::fs::copy(new_key, &key).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    std::fs::copy(renewed.ca(), old.ca()).unwrap();
    for node in &cluster.nodes {
        node.sighup();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for node in &cluster.nodes {
        while fails_with(renewed.client_tls(None), node.endpoint()).await {
            assert!(Instant::now() < deadline, "node {} does not serve the renewed certificate\n{}", node.id, cluster.logs());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(node.log().contains("reloaded on SIGHUP"), "{}", node.log());
    }
    // Peers reconnect with the new certificates: a write commits (a quorum of two needs both).
    let writer = client(cluster.endpoints(), Some(renewed.client_tls(None)));
    let created = writer.create_assets(vec![NewAsset::new("CNY", 2)]).await.expect("a write commits over the renewed peer TLS");
    assert!(created[0].is_success(), "{created:?}");
    // No restart: the processes kept running, and the old CA is no longer served.
    assert!(cluster.nodes.iter().all(|n| n.is_running()));
    assert!(fails_with(old_ca_only(&cluster), cluster.nodes[0].endpoint()).await, "the old certificate is gone");

    // A bad set is refused; what is in force stays.
    std::fs::write(old.node(1).0, "not a certificate").unwrap();
    cluster.nodes[0].sighup();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cluster.nodes[0].log().contains("reload refused") {
        assert!(Instant::now() < deadline, "{}", cluster.nodes[0].log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!fails_with(renewed.client_tls(None), cluster.nodes[0].endpoint()).await, "still serving the renewed certificate");
}

/// Client TLS trusting the CA the cluster started with (kept aside before the renewal).
fn old_ca_only(cluster: &Cluster) -> ledger_client::ClientTls {
    let kept = cluster.dir.path().join("ca-before-renewal.pem");
    ledger_client::ClientTls::from_files(&kept, None, None).expect("the kept CA")
}
