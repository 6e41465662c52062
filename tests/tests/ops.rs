//! Operator surfaces of a real node: the standard gRPC health service (what `grpc-health-probe`
//! and load balancers ask) and server reflection (what `grpcurl list` asks).

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use ledger_e2e::{ClusterNode, DevNode, eventually, free_port};
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

async fn connect(endpoint: String) -> Channel {
    Channel::from_shared(endpoint).unwrap().connect().await.unwrap()
}

/// The overall status ("" service), with no token.
async fn health(channel: &Channel) -> Result<ServingStatus, tonic::Status> {
    let response = HealthClient::new(channel.clone()).check(HealthCheckRequest { service: String::new() }).await?;
    Ok(ServingStatus::try_from(response.into_inner().status).expect("a known status"))
}

/// Polls until health is `want` (the tracker follows Raft's metrics asynchronously).
async fn wait_health(channel: &Channel, want: ServingStatus, log: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = health(channel).await;
        if got.as_ref().ok() == Some(&want) {
            return;
        }
        assert!(Instant::now() < deadline, "health stayed {got:?}, want {want:?}; log:\n{}", log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `grpcurl list` through reflection v1 and v1alpha: the service names, sorted.
async fn list_services(channel: &Channel) -> (Vec<String>, Vec<String>) {
    use tonic_reflection::pb::{v1, v1alpha};
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(String::new())),
    };
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let mut stream = client.server_reflection_info(tokio_stream_once(request)).await.unwrap().into_inner();
    let response = stream.message().await.unwrap().expect("one response");
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) = response.message_response
    else {
        panic!("not a list_services response: {response:?}");
    };
    let mut names_v1: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names_v1.sort();

    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::ListServices(String::new())),
    };
    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let mut stream = client.server_reflection_info(tokio_stream_once(request)).await.unwrap().into_inner();
    let response = stream.message().await.unwrap().expect("one response");
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        panic!("not a list_services response: {response:?}");
    };
    let mut names_v1alpha: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names_v1alpha.sort();
    (names_v1, names_v1alpha)
}

fn tokio_stream_once<T: Send + 'static>(item: T) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::iter([item])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_node_is_serving_and_lists_its_services_by_reflection() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let channel = connect(node.endpoint()).await;
    wait_health(&channel, ServingStatus::Serving, || node.log()).await;

    let (v1, v1alpha) = list_services(&channel).await;
    for name in ["ledger.v1.Ledger", "ledger.v1.Audit", "ledger.v1.Wallet", "ledger.v1.Risk", "ledger.v1.Cluster", "grpc.health.v1.Health"] {
        assert!(v1.iter().any(|n| n == name), "reflection v1 lists {v1:?}, missing {name}");
        assert!(v1alpha.iter().any(|n| n == name), "reflection v1alpha lists {v1alpha:?}, missing {name}");
    }
    assert_eq!(v1, v1alpha, "both reflection versions advertise the same services");

    // Reflection describes a real method: grpcurl can build a request without the .proto files.
    use tonic_reflection::pb::v1;
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::FileContainingSymbol(
            "ledger.v1.Ledger.CreateTransfers".into(),
        )),
    };
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let mut stream = client.server_reflection_info(tokio_stream_once(request)).await.unwrap().into_inner();
    let response = stream.message().await.unwrap().expect("one response");
    let Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) = response.message_response
    else {
        panic!("not a file descriptor response: {response:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty(), "the file defining ledger.v1.Ledger is returned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_needs_no_token_and_follows_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let tokens_file = dir.path().join("tokens.toml");
    // Any valid token table: health and reflection are public, so none of its tokens is used.
    std::fs::write(
        &tokens_file,
        "[[token]]\nprincipal = \"ops\"\nrole = \"admin\"\nsha256 = \"\
         0000000000000000000000000000000000000000000000000000000000000000\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&tokens_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let tokens = tokens_file.to_str().unwrap();
    // TLS off with tokens on: peers authenticate with a cluster secret.
    let secret_file = dir.path().join("cluster-secret");
    std::fs::write(&secret_file, "ops-test-cluster-secret-0123456789abcdef\n").unwrap();
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let secret = secret_file.to_str().unwrap();

    // A node that belongs to no cluster yet knows no leader: NOT_SERVING.
    let peer_listen = format!("127.0.0.1:{}", free_port());
    let lonely = ClusterNode::start(
        2,
        &dir.path().join("n2"),
        None,
        &["--auth-tokens-file", tokens, "--peer-listen", &peer_listen, "--cluster-secret-file", secret],
    );
    let channel = connect(lonely.endpoint()).await;
    assert_eq!(health(&channel).await.unwrap(), ServingStatus::NotServing, "no leader yet; log:\n{}", lonely.log());
    drop(lonely);

    // A cluster of one elects itself: SERVING, still with no token.
    let peer_listen = format!("127.0.0.1:{}", free_port());
    let node = ClusterNode::start(
        1,
        &dir.path().join("n1"),
        Some(&[]),
        &["--auth-tokens-file", tokens, "--peer-listen", &peer_listen, "--cluster-secret-file", secret],
    );
    let channel = connect(node.endpoint()).await;
    wait_health(&channel, ServingStatus::Serving, || node.log()).await;
    let (v1, _) = list_services(&channel).await;
    assert!(v1.iter().any(|n| n == "ledger.v1.Ledger"), "{v1:?}");
    assert!(
        !v1.iter().any(|n| n == "ledger.raft.v1.RaftPeer"),
        "the peer service has its own port here and is not advertised on the client port: {v1:?}"
    );
    // Other calls still need a token.
    let refused = ledger_proto::api::ledger_client::LedgerClient::new(channel.clone())
        .cluster_status(ledger_proto::api::ClusterStatusRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
}

/// `GET /metrics` over plain HTTP/1.0 (no client crate needed for one request).
fn scrape(address: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("metrics port");
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1."), "{text}");
    text
}

/// The value of the first sample line that starts with `series` (name plus labels, if any).
fn sample(text: &str, series: &str) -> f64 {
    try_sample(text, series).unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

fn try_sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse::<f64>().ok()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_reports_requests_results_raft_and_storage() {
    let dir = tempfile::tempdir().unwrap();
    let metrics_listen = format!("127.0.0.1:{}", free_port());
    let node = ClusterNode::start(1, &dir.path().join("n1"), Some(&[]), &["--metrics-listen", &metrics_listen]);
    let endpoint = node.endpoint();
    let channel = connect(endpoint.clone()).await;
    wait_health(&channel, ServingStatus::Serving, || node.log()).await;

    // A few transfers through the CLI-level client: 5 created, then the same 5 again (EXISTS/replay).
    use ledger_client::{Leg, NewAccount, NewAsset, NewTransfer, ResultCode};
    let client = ledger_client::LedgerClient::connect(vec![endpoint.clone()]).unwrap();
    client.create_assets(vec![NewAsset::new("USD", 2)]).await.unwrap();
    client.create_accounts(vec![NewAccount::new(1, "USD", 1), NewAccount::new(2, "USD", 1)]).await.unwrap();
    for round in 0..2 {
        for id in 1..=5u128 {
            let legs = vec![Leg::new(1, 2, ledger_client::Amount::new(100, 2))];
            let results =
                client.create_transfers(vec![NewTransfer::posted(100 + id, format!("k{id}"), "USD", legs)]).await.unwrap();
            assert_eq!(results[0].code, ResultCode::Ok, "round {round}: {results:?}");
        }
    }
    // A snapshot on disk, for its size gauge (kept log: purge_log false).
    client.trigger_snapshot(&endpoint, false).await.expect("snapshot");
    // Gauges from timers are sampled every 5 s: wait for the first sample that counts the
    // snapshot just taken (all of a sample's gauges are set together).
    let text = eventually("a metrics sample taken after the snapshot", Duration::from_secs(15), Duration::from_millis(200), || async {
        let text = scrape(&metrics_listen);
        match try_sample(&text, "ledger_snapshot_bytes") {
            Some(bytes) if bytes > 0.0 => Ok(text),
            other => Err(format!("ledger_snapshot_bytes {other:?}")),
        }
    })
    .await;

    assert_eq!(sample(&text, "ledger_transfers_applied_total"), 5.0, "five created, five replayed");
    assert!(sample(&text, "ledger_write_results_total{operation=\"create_transfers\",code=\"OK\"}") >= 5.0);
    assert!(
        sample(&text, "ledger_grpc_requests_total{method=\"/ledger.v1.Ledger/CreateTransfers\",code=\"OK\"}") >= 10.0
    );
    assert!(sample(&text, "ledger_commit_latency_seconds_count") >= 10.0, "one per proposal at least");
    assert!(sample(&text, "ledger_commit_latency_seconds_sum") > 0.0);
    assert!(sample(&text, "ledger_apply_latency_seconds_count") >= 1.0);
    assert!(sample(&text, "ledger_apply_entries_sum") >= 10.0, "every proposed entry is applied");
    assert!(sample(&text, "ledger_group_commit_transfers_sum") >= 10.0);
    assert_eq!(sample(&text, "ledger_raft_leader_id"), 1.0);
    assert_eq!(sample(&text, "ledger_raft_is_leader"), 1.0);
    assert!(sample(&text, "ledger_raft_term") >= 1.0);
    assert!(sample(&text, "ledger_raft_leader_changes_total") >= 1.0);
    let (last_log, applied) = (sample(&text, "ledger_raft_last_log_index"), sample(&text, "ledger_raft_applied_index"));
    assert!(applied >= 10.0 && last_log >= applied, "last log {last_log}, applied {applied}");
    assert!(sample(&text, "ledger_raft_committed_index") >= applied);
    assert!(sample(&text, "ledger_rocksdb_memtable_bytes") > 0.0, "the writes sit in memtables");
    sample(&text, "ledger_rocksdb_pending_compaction_bytes");
    sample(&text, "ledger_rocksdb_live_data_bytes");
    assert!(sample(&text, "ledger_raft_log_bytes") > 0.0, "the log holds the entries");
    assert!(sample(&text, "ledger_snapshot_bytes") > 0.0, "the snapshot file is counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let node = ClusterNode::start(1, &dir.path().join("n1"), Some(&[]), &["--log-format", "json"]);
    let channel = connect(node.endpoint()).await;
    wait_health(&channel, ServingStatus::Serving, || node.log()).await;
    // The log file also holds the plain start-up lines printed to stdout and the dev warning.
    let records: Vec<serde_json::Value> = node
        .log()
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let serving = records
        .iter()
        .find(|r| r["fields"]["message"] == "ledger node serving")
        .unwrap_or_else(|| panic!("no 'ledger node serving' record in {records:?}"));
    assert_eq!(serving["level"], "INFO");
    assert_eq!(serving["fields"]["node_id"], 1);
    assert!(serving["timestamp"].is_string() && serving["target"].is_string(), "{serving}");
}

/// SIGTERM: a health watcher hears NOT_SERVING first; the open watch stream is a call in flight,
/// so the node drains for its bound (10 s) and then exits 0, with every step logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_reports_not_serving_drains_within_its_bound_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = DevNode::start(&dir.path().join("n1"));
    let channel = connect(node.endpoint()).await;
    wait_health(&channel, ServingStatus::Serving, || node.log()).await;
    let mut watch =
        HealthClient::new(channel.clone()).watch(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(ServingStatus::try_from(first.status).unwrap(), ServingStatus::Serving);
    let signalled = Instant::now();
    let (status, took) = tokio::task::block_in_place(|| {
        let status = node.terminate();
        (status, signalled.elapsed())
    });
    assert_eq!(status.code(), Some(0), "log:\n{}", node.log());
    let next = watch.message().await.ok().flatten().expect("the watcher heard the change before the stream closed");
    assert_eq!(ServingStatus::try_from(next.status).unwrap(), ServingStatus::NotServing);
    // The watch stream stayed open: the drain waited its full bound, and not much longer.
    assert!(took >= Duration::from_secs(10) && took < Duration::from_secs(20), "shutdown took {took:?}");
    let log = node.log();
    for step in ["shutdown 1/4", "nobody to hand over to", "shutdown 3/4", "calls still open after the drain time", "shutdown 4/4", "database flushed"] {
        assert!(log.contains(step), "the shutdown logs {step:?}:\n{log}");
    }
    println!("SIGTERM of a dev node with an open health watch: exited 0 after {} ms", took.as_millis());
}
