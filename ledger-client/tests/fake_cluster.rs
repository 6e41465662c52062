//! The client against fake gRPC nodes (no Raft, no RocksDB): leader redirects, failover,
//! which errors are retried, Unknown vs Unavailable, the batcher over the wire, 32 MiB
//! messages, and the `ledger` binary's output and exit codes.

use ledger_client::*;
use ledger_proto::api;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::{Request, Response, Status};

const MESSAGE_SIZE_MAX_BYTES: usize = 32 * 1024 * 1024;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Leader,
    /// Refuses with UNAVAILABLE + x-ledger-leader.
    Follower,
    /// Answers every write with INVALID_ARGUMENT.
    Invalid,
    /// UNAVAILABLE without a leader (election in progress): refused before Raft.
    NoLeader,
    /// UNAVAILABLE with `x-ledger-outcome: unknown` (leader changed mid-write).
    OutcomeUnknown,
}

#[derive(Default)]
struct Shared {
    calls: AtomicUsize,
    /// Writes to apply and then not answer for 30 s (the client times out first).
    hang_after_apply: AtomicUsize,
    batch_sizes: Mutex<Vec<usize>>,
    /// idempotency key -> (id, timestamp_ns)
    applied: Mutex<HashMap<String, (Vec<u8>, u64)>>,
}

#[derive(Clone)]
struct FakeNode {
    mode: Mode,
    leader_url: String,
    shared: Arc<Shared>,
}

fn unimplemented<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("not in the fake"))
}

impl FakeNode {
    fn gate(&self) -> Result<(), Status> {
        self.shared.calls.fetch_add(1, Ordering::SeqCst);
        match self.mode {
            Mode::Leader => Ok(()),
            Mode::Follower => {
                let mut status = Status::unavailable("not the leader");
                status
                    .metadata_mut()
                    .insert("x-ledger-leader", self.leader_url.parse().unwrap());
                Err(status)
            }
            Mode::Invalid => Err(Status::invalid_argument("request breaks a bound")),
            Mode::NoLeader => Err(Status::unavailable("not the leader; leader: unknown")),
            Mode::OutcomeUnknown => {
                let mut status = Status::unavailable("commit outcome unknown: leader changed");
                status
                    .metadata_mut()
                    .insert("x-ledger-outcome", "unknown".parse().unwrap());
                Err(status)
            }
        }
    }
}

#[tonic::async_trait]
impl api::ledger_server::Ledger for FakeNode {
    async fn create_assets(
        &self,
        request: Request<api::CreateAssetsRequest>,
    ) -> Result<Response<api::CreateAssetsResponse>, Status> {
        self.gate()?;
        let results = (0..request.into_inner().assets.len())
            .map(|i| api::WriteResult {
                index: i as u32,
                code: api::ResultCode::Exists as i32,
                timestamp_ns: 5,
                ..Default::default()
            })
            .collect();
        Ok(Response::new(api::CreateAssetsResponse { results }))
    }
    async fn create_accounts(
        &self,
        _: Request<api::CreateAccountsRequest>,
    ) -> Result<Response<api::CreateAccountsResponse>, Status> {
        unimplemented()
    }
    async fn create_transfers(
        &self,
        request: Request<api::CreateTransfersRequest>,
    ) -> Result<Response<api::CreateTransfersResponse>, Status> {
        self.gate()?;
        let transfers = request.into_inner().transfers;
        self.shared
            .batch_sizes
            .lock()
            .unwrap()
            .push(transfers.len());
        let mut results = Vec::new();
        {
            let mut applied = self.shared.applied.lock().unwrap();
            for (index, transfer) in transfers.iter().enumerate() {
                let next_timestamp = 1_000 + applied.len() as u64;
                let replay = applied.contains_key(&transfer.idempotency_key);
                let (id, timestamp_ns) = applied
                    .entry(transfer.idempotency_key.clone())
                    .or_insert((transfer.id.clone(), next_timestamp))
                    .clone();
                let fails = transfer.legs.first().is_some_and(|leg| leg.amount == "13");
                results.push(api::WriteResult {
                    index: index as u32,
                    code: if fails {
                        api::ResultCode::ExceedsCredits as i32
                    } else {
                        api::ResultCode::Ok as i32
                    },
                    timestamp_ns,
                    leg_index: fails.then_some(0),
                    replay,
                    id,
                });
            }
        }
        let hang = self
            .shared
            .hang_after_apply
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if hang {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        Ok(Response::new(api::CreateTransfersResponse { results }))
    }
    async fn set_account_status(
        &self,
        _: Request<api::SetAccountStatusRequest>,
    ) -> Result<Response<api::SetAccountStatusResponse>, Status> {
        unimplemented()
    }
    async fn lookup_assets(
        &self,
        _: Request<api::LookupAssetsRequest>,
    ) -> Result<Response<api::LookupAssetsResponse>, Status> {
        unimplemented()
    }
    async fn lookup_accounts(
        &self,
        request: Request<api::LookupAccountsRequest>,
    ) -> Result<Response<api::LookupAccountsResponse>, Status> {
        self.gate()?;
        let accounts = request
            .into_inner()
            .ids
            .into_iter()
            .filter(|id| decode_id(id).ok() == Some(7))
            .map(|id| api::AccountRecord {
                account: Some(api::Account {
                    id,
                    asset: "CNY".into(),
                    code: 1,
                    debits_must_not_exceed_credits: true,
                    overdraft_limit: "5.00".into(),
                    metadata: [("phone".to_string(), "138".to_string())].into(),
                    ..Default::default()
                }),
                status: api::AccountStatus::Active as i32,
                balances: Some(api::Balances {
                    debits_posted: "1.50".into(),
                    credits_posted: "10.00".into(),
                    debits_pending: "0".into(),
                    credits_pending: "0".into(),
                }),
                timestamp_ns: 1_700_000_000_000_000_000,
            })
            .collect();
        Ok(Response::new(api::LookupAccountsResponse { accounts }))
    }
    async fn lookup_transfers(
        &self,
        _: Request<api::LookupTransfersRequest>,
    ) -> Result<Response<api::LookupTransfersResponse>, Status> {
        unimplemented()
    }
    async fn get_transfer_by_idempotency_key(
        &self,
        _: Request<api::GetTransferByIdempotencyKeyRequest>,
    ) -> Result<Response<api::GetTransferByIdempotencyKeyResponse>, Status> {
        unimplemented()
    }
    async fn get_account_by_external_ref(
        &self,
        _: Request<api::GetAccountByExternalRefRequest>,
    ) -> Result<Response<api::GetAccountByExternalRefResponse>, Status> {
        unimplemented()
    }
    async fn list_account_entries(
        &self,
        _: Request<api::ListAccountEntriesRequest>,
    ) -> Result<Response<api::ListAccountEntriesResponse>, Status> {
        unimplemented()
    }
    async fn get_balance_at(
        &self,
        _: Request<api::GetBalanceAtRequest>,
    ) -> Result<Response<api::GetBalanceAtResponse>, Status> {
        unimplemented()
    }
    type WatchAccountStream =
        futures::stream::BoxStream<'static, Result<api::AccountEntry, Status>>;
    async fn watch_account(
        &self,
        request: Request<api::WatchAccountRequest>,
    ) -> Result<Response<Self::WatchAccountStream>, Status> {
        self.gate()?;
        let account_id = request.into_inner().account_id;
        let entries: Vec<Result<api::AccountEntry, Status>> = (1..=3u64)
            .map(|n| {
                Ok(api::AccountEntry {
                    account_id: account_id.clone(),
                    timestamp_ns: n,
                    transfer_id: encode_id(100 + n as u128),
                    amount: format!("{n}.00"),
                    is_debit: n % 2 == 0,
                    // API revision 2: 0 is ENTRY_KIND_UNSPECIFIED, which a node never sends.
                    kind: api::EntryKind::Posted as i32,
                    balances_after: Some(api::Balances::default()),
                    ..Default::default()
                })
            })
            .chain([Err(Status::unavailable("node shutting down"))])
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter(entries))))
    }
    async fn cluster_status(
        &self,
        _: Request<api::ClusterStatusRequest>,
    ) -> Result<Response<api::ClusterStatusResponse>, Status> {
        unimplemented()
    }
    async fn get_state_hash(
        &self,
        _: Request<api::GetStateHashRequest>,
    ) -> Result<Response<api::GetStateHashResponse>, Status> {
        self.shared.calls.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(api::GetStateHashResponse {
            applied_index: 9,
            state_hash: "ab".into(),
        }))
    }
}

async fn listener() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

fn serve(listener: tokio::net::TcpListener, node: FakeNode) {
    let incoming = futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| stream);
        Some((accepted, listener))
    });
    let service = api::ledger_server::LedgerServer::new(node)
        .max_decoding_message_size(MESSAGE_SIZE_MAX_BYTES)
        .max_encoding_message_size(MESSAGE_SIZE_MAX_BYTES);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming),
    );
}

async fn node(mode: Mode, leader_url: &str) -> (String, Arc<Shared>) {
    let (listener, url) = listener().await;
    let shared = Arc::new(Shared::default());
    serve(
        listener,
        FakeNode {
            mode,
            leader_url: leader_url.to_string(),
            shared: shared.clone(),
        },
    );
    (url, shared)
}

/// An address nothing listens on: bind, then close.
async fn dead_url() -> String {
    let (listener, url) = listener().await;
    let _: SocketAddr = listener.local_addr().unwrap();
    drop(listener);
    url
}

fn fast_config() -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_millis(300),
        max_retries: 3,
        backoff: Backoff {
            initial: Duration::from_millis(5),
            max: Duration::from_millis(20),
        },
        ..ClientConfig::default()
    }
}

fn transfer(n: u128, amount: &str) -> NewTransfer {
    NewTransfer::posted(
        n,
        format!("key-{n}"),
        "CNY",
        vec![Leg::new(1, 2, parse_amount(amount).unwrap())],
    )
}

#[tokio::test]
async fn follows_leader_redirect_and_learns_the_endpoint() {
    let (leader, leader_state) = node(Mode::Leader, "").await;
    let (follower, follower_state) = node(Mode::Follower, &leader).await;
    let client = LedgerClient::connect_with(vec![follower.clone()], fast_config()).unwrap();
    let results = client
        .create_transfers(vec![transfer(1, "1.00")])
        .await
        .unwrap();
    assert_eq!(results[0].code, ResultCode::Ok);
    assert_eq!(results[0].id, 1);
    assert_eq!(follower_state.calls.load(Ordering::SeqCst), 1);
    assert_eq!(leader_state.calls.load(Ordering::SeqCst), 1);
    assert_eq!(client.endpoints(), vec![follower, leader]);
    // The leader is now preferred: no second trip through the follower.
    client
        .create_transfers(vec![transfer(2, "1.00")])
        .await
        .unwrap();
    assert_eq!(follower_state.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn fails_over_from_a_dead_node() {
    let (leader, _) = node(Mode::Leader, "").await;
    let client = LedgerClient::connect_with(vec![dead_url().await, leader], fast_config()).unwrap();
    let results = client
        .create_assets(vec![NewAsset::new("CNY", 2)])
        .await
        .unwrap();
    assert_eq!(results[0].code, ResultCode::Exists);
    assert!(results[0].is_success());
}

#[tokio::test]
async fn invalid_argument_is_not_retried() {
    let (url, state) = node(Mode::Invalid, "").await;
    let client = LedgerClient::connect_with(vec![url], fast_config()).unwrap();
    let error = client
        .create_transfers(vec![transfer(1, "1")])
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Rejected {
                code: tonic::Code::InvalidArgument,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(state.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn nothing_reachable_is_unavailable() {
    let client =
        LedgerClient::connect_with(vec![dead_url().await, dead_url().await], fast_config())
            .unwrap();
    let error = client
        .create_transfers(vec![transfer(1, "1")])
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::Unavailable { attempts: 4, .. }),
        "{error:?}"
    );
    assert!(error.is_definitely_not_applied());
}

#[tokio::test]
async fn refusals_before_raft_are_unavailable_and_server_unknowns_are_unknown() {
    let (url, state) = node(Mode::NoLeader, "").await;
    let client = LedgerClient::connect_with(vec![url], fast_config()).unwrap();
    let error = client
        .create_transfers(vec![transfer(1, "1")])
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::Unavailable { attempts: 4, .. }),
        "{error:?}"
    );
    assert_eq!(state.calls.load(Ordering::SeqCst), 4);

    let (url, _) = node(Mode::OutcomeUnknown, "").await;
    let client = LedgerClient::connect_with(vec![url], fast_config()).unwrap();
    let error = client
        .create_transfers(vec![transfer(1, "1")])
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::Unknown { attempts: 4, .. }),
        "{error:?}"
    );
    // A read has no commit outcome to be unsure about.
    let error = client.lookup_accounts(vec![7]).await.unwrap_err();
    assert!(
        matches!(error, ClientError::Unavailable { attempts: 4, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn timeouts_after_sending_are_unknown() {
    let (url, state) = node(Mode::Leader, "").await;
    state.hang_after_apply.store(100, Ordering::SeqCst);
    let client = LedgerClient::connect_with(vec![url], fast_config()).unwrap();
    let error = client
        .create_transfers(vec![transfer(1, "1")])
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::Unknown { attempts: 4, .. }),
        "{error:?}"
    );
    assert!(!error.is_definitely_not_applied());
    assert_eq!(state.calls.load(Ordering::SeqCst), 4);
}

/// Issue 18 item 11: the first attempt is applied and its reply lost (timeout); the retry, on
/// another node, is refused outright. "Rejected" would read as "not applied" and invite a retry
/// under a new key (paying twice): the outcome is still unknown, and says so.
#[tokio::test]
async fn a_refusal_after_a_timed_out_attempt_is_unknown_not_rejected() {
    let (first, first_state) = node(Mode::Leader, "").await;
    first_state.hang_after_apply.store(1, Ordering::SeqCst);
    let (second, second_state) = node(Mode::Invalid, "").await;
    let client = LedgerClient::connect_with(vec![first, second], fast_config()).unwrap();
    let error = client
        .create_transfers(vec![transfer(5, "1")])
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::Unknown { attempts: 2, .. }),
        "{error:?}"
    );
    assert!(!error.is_definitely_not_applied());
    assert!(error.to_string().contains("InvalidArgument"), "the refusal is named: {error}");
    assert_eq!(first_state.applied.lock().unwrap().len(), 1, "the first attempt was applied");
    assert_eq!(second_state.calls.load(Ordering::SeqCst), 1, "a refusal is not retried");

    // Without an earlier unknown attempt the same refusal is a plain rejection.
    let (url, _) = node(Mode::Invalid, "").await;
    let client = LedgerClient::connect_with(vec![url], fast_config()).unwrap();
    let error = client
        .create_transfers(vec![transfer(6, "1")])
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::Rejected { .. }), "{error:?}");
}

#[tokio::test]
async fn a_retry_after_a_lost_reply_gets_the_replayed_result() {
    let (url, state) = node(Mode::Leader, "").await;
    state.hang_after_apply.store(1, Ordering::SeqCst);
    let client = LedgerClient::connect_with(vec![url], fast_config()).unwrap();
    let results = client
        .create_transfers(vec![transfer(9, "1")])
        .await
        .unwrap();
    assert_eq!(results[0].code, ResultCode::Ok);
    assert!(
        results[0].replay,
        "the second attempt must see the first one's result"
    );
    assert_eq!(state.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn batcher_coalesces_over_the_wire() {
    let (url, state) = node(Mode::Leader, "").await;
    let client = LedgerClient::connect(vec![url]).unwrap();
    let batcher = client.batcher(BatcherConfig {
        linger: Duration::from_millis(20),
        ..BatcherConfig::default()
    });
    let submits =
        (1..=2000u128).map(|n| batcher.submit(transfer(n, if n == 77 { "13" } else { "1" })));
    let results = futures::future::join_all(submits).await;
    for (n, result) in (1..=2000u128).zip(results) {
        let result = result.unwrap();
        assert_eq!(result.id, n);
        assert_eq!(result.index, 0);
        let expected = if n == 77 {
            ResultCode::ExceedsCredits
        } else {
            ResultCode::Ok
        };
        assert_eq!(result.code, expected);
    }
    let sizes = state.batch_sizes.lock().unwrap().clone();
    assert_eq!(sizes.iter().sum::<usize>(), 2000);
    assert!(
        sizes.len() < 20,
        "expected few large batches, got {sizes:?}"
    );
}

#[tokio::test]
async fn a_full_request_fits_the_message_limit() {
    let (url, _) = node(Mode::Leader, "").await;
    let client = LedgerClient::connect(vec![url]).unwrap();
    let legs: Vec<Leg> = (0..16)
        .map(|i| Leg::new(u128::MAX - i, i + 1, parse_amount("12345.67").unwrap()))
        .collect();
    let transfers: Vec<NewTransfer> = (1..=8190u128)
        .map(|n| NewTransfer::posted(n, format!("big-{n}"), "CNY", legs.clone()))
        .collect();
    let results = client.create_transfers(transfers).await.unwrap();
    assert_eq!(results.len(), 8190);
    assert!(
        results
            .iter()
            .enumerate()
            .all(|(i, r)| r.index as usize == i && r.is_success())
    );
}

#[tokio::test]
async fn watch_streams_entries_then_reports_the_break() {
    use futures::StreamExt;
    let (url, _) = node(Mode::Leader, "").await;
    let client = LedgerClient::connect(vec![url]).unwrap();
    let mut watch = client.watch_account(7).await.unwrap();
    for n in 1..=3u64 {
        let entry = watch.next().await.unwrap().unwrap();
        assert_eq!(
            (entry.account_id, entry.timestamp_ns, entry.transfer_id),
            (7, n, 100 + n as u128)
        );
    }
    assert!(matches!(
        watch.next().await,
        Some(Err(ClientError::Unavailable { .. }))
    ));
}

// ---- the `ledger` binary ----

fn ledger(args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(args)
        .env_remove("LEDGER_ENDPOINT")
        .env("RUST_LOG", std::env::var("CLI_LOG").unwrap_or_default())
        .output()
        .unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (
        output.status.code().unwrap(),
        text(output.stdout),
        text(output.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_exit_codes_and_json() {
    let (leader, _) = node(Mode::Leader, "").await;
    let (follower, _) = node(Mode::Follower, &leader).await;
    let endpoint = follower.clone();
    let run = move |args: Vec<String>| {
        let endpoint = endpoint.clone();
        tokio::task::spawn_blocking(move || {
            let mut argv: Vec<&str> = vec!["--endpoint", &endpoint, "--output", "json"];
            argv.extend(args.iter().map(String::as_str));
            ledger(&argv)
        })
    };
    let args = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();

    let (code, stdout, stderr) = run(args(
        "transfer submit --asset CNY --leg 1:2:10.00 --idempotency-key order-1",
    ))
    .await
    .unwrap();
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let result = &json["results"][0];
    assert_eq!(result["code"], "ok");
    assert_eq!(result["replay"], false);
    assert_eq!(result["leg_index"], serde_json::Value::Null);
    assert_eq!(result["id"], transfer_id_from_key("order-1").to_string());
    assert!(result["timestamp_time"].as_str().unwrap().ends_with('Z'));

    // Same command again: same derived id, replayed result, still success.
    let (code, stdout, _) = run(args(
        "transfer submit --asset CNY --leg 1:2:10.00 --idempotency-key order-1",
    ))
    .await
    .unwrap();
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()["results"][0]["replay"],
        true
    );

    let (code, stdout, _) = run(args(
        "transfer submit --asset CNY --leg 1:2:13 --idempotency-key order-2",
    ))
    .await
    .unwrap();
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["results"][0]["code"], "exceeds_credits");
    assert_eq!(json["results"][0]["leg_index"], 0);

    let (code, stdout, _) = run(args("account get 0x7")).await.unwrap();
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["id"], "7");
    assert_eq!(json["status"], "active");
    assert_eq!(json["overdraft_limit"], "5.00");
    assert_eq!(json["metadata"]["phone"], "138");
    assert_eq!(json["balances"]["credits_posted"], "10.00");
    assert_eq!(json["timestamp_time"], "2023-11-14T22:13:20.000000000Z");

    let (code, stdout, stderr) = run(args("account get 8")).await.unwrap();
    assert_eq!((code, stdout.as_str()), (1, ""));
    assert!(stderr.contains("account 8 not found"), "{stderr}");

    let (code, _, stderr) = run(args(
        "transfer submit --asset CNY --leg 1:2 --idempotency-key k",
    ))
    .await
    .unwrap();
    assert_eq!(code, 2);
    assert!(stderr.contains("DEBIT_ID:CREDIT_ID:AMOUNT"), "{stderr}");

    let (code, stdout, _) = run(args("watch 7")).await.unwrap();
    assert_eq!(code, 2, "the fake ends the stream with an error");
    assert_eq!(stdout.lines().count(), 3);
    let first: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["transfer_id"], "101");
    assert_eq!(first["amount"], "1.00");

    let dead = dead_url().await;
    let (code, _, stderr) = tokio::task::spawn_blocking(move || {
        ledger(&[
            "--endpoint",
            &dead,
            "--max-retries",
            "1",
            "cluster",
            "state-hash",
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, 2);
    assert!(stderr.contains("unavailable"), "{stderr}");

    // Every endpoint, table output.
    let endpoint = leader.clone();
    let (code, stdout, _) = tokio::task::spawn_blocking(move || {
        ledger(&["--endpoint", &endpoint, "cluster", "state-hash", "--all"])
    })
    .await
    .unwrap();
    assert_eq!(code, 0);
    assert!(
        stdout.contains("state_hash") && stdout.contains("ab"),
        "{stdout}"
    );

    if std::env::var_os("SHOW_TABLES").is_some() {
        for a in [
            "account get 7",
            "transfer submit --asset CNY --leg 1:2:13 --idempotency-key order-3",
            "watch 7",
        ] {
            let endpoint = leader.clone();
            let a = a.to_string();
            let (code, stdout, stderr) = tokio::task::spawn_blocking(move || {
                let mut argv = vec!["--endpoint", endpoint.as_str()];
                argv.extend(a.split(' '));
                ledger(&argv)
            })
            .await
            .unwrap();
            eprintln!("--- exit {code}\n{stdout}{stderr}");
        }
    }
}
