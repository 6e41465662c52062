//! The API as a client written from the proto alone meets it (issue 15, part 3): raw bytes on
//! the wire against the real `ledger-node` binary, no Rust client in between where the point is
//! what the wire says.

use ledger_e2e::DevNode;
use prost::bytes::{Buf, BufMut};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;

/// Sends a request body as given (already encoded protobuf) and hands back the response bytes.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let mut bytes = vec![0; src.remaining()];
        src.copy_to_slice(&mut bytes);
        Ok(Some(bytes))
    }
}

fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A length-delimited field (strings, bytes, messages): key, length, bytes.
fn field(tag: u64, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 12);
    varint(tag << 3 | 2, &mut out);
    varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

/// Not UTF-8: a lone continuation byte and a byte that never occurs in UTF-8.
const NOT_UTF8: &[u8] = &[0x80, 0xff];

async fn channel(endpoint: &str) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(endpoint.to_string()).unwrap().connect().await.expect("connect")
}

/// A unary call with a raw body.
async fn unary(endpoint: &str, path: &'static str, body: Vec<u8>) -> Result<Vec<u8>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel(endpoint).await);
    grpc.ready().await.unwrap();
    let reply = grpc.unary(tonic::Request::new(body), PathAndQuery::from_static(path), RawCodec).await;
    reply.map(tonic::Response::into_inner)
}

/// A unary call with a raw body; the status it fails with.
async fn unary_status(endpoint: &str, path: &'static str, body: Vec<u8>) -> tonic::Status {
    unary(endpoint, path, body).await.expect_err(path)
}

/// A server-streaming call with a raw body; the status it fails with.
async fn stream_status(endpoint: &str, path: &'static str, body: Vec<u8>) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel(endpoint).await);
    grpc.ready().await.unwrap();
    let reply = grpc.server_streaming(tonic::Request::new(body), PathAndQuery::from_static(path), RawCodec).await;
    reply.err().unwrap_or_else(|| panic!("{path}: answered"))
}

/// Invalid UTF-8 in a string field of every client service's requests is the caller's error:
/// INVALID_ARGUMENT (nothing ran), not INTERNAL (which a client must treat as maybe applied).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_requests_are_invalid_argument_on_every_service() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let url = node.endpoint();
    let cases: Vec<(&'static str, Vec<u8>)> = vec![
        // CreateAssetsRequest.assets[0].code
        ("/ledger.v1.Ledger/CreateAssets", field(1, &field(1, NOT_UTF8))),
        // CreateTransfersRequest.transfers[0].idempotency_key
        ("/ledger.v1.Ledger/CreateTransfers", field(1, &field(2, NOT_UTF8))),
        // GetAccountByExternalRefRequest.external_ref
        ("/ledger.v1.Ledger/GetAccountByExternalRef", field(1, NOT_UTF8)),
        // IssueTokenRequest.device_id
        ("/ledger.v1.Wallet/IssueToken", field(4, NOT_UTF8)),
        // RevokeTokenRequest.reason
        ("/ledger.v1.Wallet/RevokeToken", field(2, NOT_UTF8)),
        // SetBlocklistRequest.changes[0].device_id
        ("/ledger.v1.Risk/SetBlocklist", field(1, &field(2, NOT_UTF8))),
        // SetLimitsRequest.rules[0].max_single_debit
        ("/ledger.v1.Risk/SetLimits", field(1, &field(3, NOT_UTF8))),
        // BackupRequest.dir
        ("/ledger.v1.Cluster/Backup", field(1, NOT_UTF8)),
        // GetJournalHeadRequest has no fields: a truncated varint field 1 does not decode.
        ("/ledger.v1.Audit/GetJournalHead", vec![0x08, 0xff]),
    ];
    for (path, body) in cases {
        let status = unary_status(&url, path, body).await;
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{path}: {status:?}");
        assert!(status.message().contains("decode"), "{path}: the message says why: {status:?}");
    }
    // A server-streaming call decodes its request before the stream starts: the same answer.
    // ExportJournalRequest.from_seq is a uint64 sent as a string: the wrong wire type.
    let status = stream_status(&url, "/ledger.v1.Audit/ExportJournal", field(1, NOT_UTF8)).await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    // WatchAccountRequest.account_id truncated mid-field.
    let status = stream_status(&url, "/ledger.v1.Ledger/WatchAccount", vec![0x0a, 0x10, 1, 2]).await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");

    // Nothing was created by the refused requests, and a well-formed request still works.
    use ledger_proto::api as pb;
    let mut ledger = pb::ledger_client::LedgerClient::new(channel(&url).await);
    let found = ledger.lookup_assets(pb::LookupAssetsRequest { codes: vec!["CNY".into()] }).await.unwrap().into_inner();
    assert!(found.assets.is_empty());
}

/// A request over the 32 MiB message limit: RESOURCE_EXHAUSTED, as the gRPC spec and
/// docs/operations.md say (tonic alone answers OUT_OF_RANGE).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_request_is_resource_exhausted() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    // CreateAssetsRequest with one 33 MiB unknown field (15): the length alone is over the limit.
    let body = field(15, &vec![0u8; 33 << 20]);
    let status = unary_status(&node.endpoint(), "/ledger.v1.Ledger/CreateAssets", body).await;
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    // Just under the limit is decoded (and refused by the request bounds, not by size).
    let body = field(15, &vec![0u8; (32 << 20) - 16]);
    let reply = unary(&node.endpoint(), "/ledger.v1.Ledger/CreateAssets", body).await;
    assert!(reply.is_ok(), "an empty CreateAssets with an unknown field is fine: {reply:?}");
}

mod wire {
    pub use ledger_proto::api as pb;
    pub use ledger_proto::api::ledger_client::LedgerClient;

    pub const CNY: &str = "CNY";
    pub const PAYER: u128 = 1;
    pub const MERCHANT: u128 = 2;

    pub fn id(n: u128) -> Vec<u8> {
        n.to_be_bytes().to_vec()
    }

    pub fn leg(debit: u128, credit: u128, amount: &str) -> pb::Leg {
        pb::Leg { debit_account_id: id(debit), credit_account_id: id(credit), amount: amount.into() }
    }

    pub fn posted(n: u128, legs: Vec<pb::Leg>) -> pb::Transfer {
        pb::Transfer {
            id: id(n),
            idempotency_key: format!("key-{n}"),
            asset: CNY.into(),
            legs,
            kind: pb::TransferKind::Posted as i32,
            ..Default::default()
        }
    }

    /// CNY (scale 2), PAYER (may overdraw) and MERCHANT, straight on the wire.
    pub async fn setup(url: &str) -> LedgerClient<tonic::transport::Channel> {
        let mut c = LedgerClient::new(super::channel(url).await);
        let asset = pb::Asset { code: CNY.into(), scale: 2 };
        let r = c.create_assets(pb::CreateAssetsRequest { assets: vec![asset] }).await.unwrap().into_inner();
        assert_eq!(r.results[0].code, pb::ResultCode::Ok as i32);
        let account = |n| pb::Account { id: id(n), asset: CNY.into(), code: 1, ..Default::default() };
        let r = c.create_accounts(pb::CreateAccountsRequest { accounts: vec![account(PAYER), account(MERCHANT)] }).await.unwrap();
        assert!(r.into_inner().results.iter().all(|r| r.code == pb::ResultCode::Ok as i32));
        c
    }

    pub fn codes(results: &[pb::WriteResult]) -> Vec<pb::ResultCode> {
        results.iter().map(|r| pb::ResultCode::try_from(r.code).expect("a known code")).collect()
    }

    pub fn ids(results: &[pb::WriteResult]) -> Vec<Vec<u8>> {
        results.iter().map(|r| r.id.clone()).collect()
    }
}

/// API revision 2: 0 means "unset" in every enum. An unset transfer kind is refused (it used to
/// post), OK is not 0 on the wire, and records never carry 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_enum_values_mean_unset_and_are_refused_or_never_sent() {
    use wire::*;
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let mut c = setup(&node.endpoint()).await;
    let unset_kind = pb::Transfer { kind: 0, ..posted(10, vec![leg(PAYER, MERCHANT, "1.00")]) };
    let ok = posted(11, vec![leg(PAYER, MERCHANT, "2.00")]);
    let r = c.create_transfers(pb::CreateTransfersRequest { transfers: vec![unset_kind, ok] }).await.unwrap().into_inner();
    assert_eq!(codes(&r.results), [pb::ResultCode::KindInvalid, pb::ResultCode::Ok]);
    assert_eq!(r.results[1].code, 62, "OK travels as 62");
    assert!(r.results.iter().all(|r| r.code != 0));

    let found = c.lookup_transfers(pb::LookupTransfersRequest { ids: vec![id(10), id(11)] }).await.unwrap().into_inner();
    assert_eq!(found.transfers.len(), 1, "the unset-kind transfer moved nothing");
    let record = &found.transfers[0];
    assert_eq!(record.transfer.as_ref().unwrap().kind, pb::TransferKind::Posted as i32);
    assert_eq!(record.transfer.as_ref().unwrap().kind, 4);
    assert_eq!(record.pending_state, pb::PendingState::None as i32);
    assert_eq!(record.pending_state, 5);
    let by_key = c
        .get_transfer_by_idempotency_key(pb::GetTransferByIdempotencyKeyRequest { idempotency_key: "key-11".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_key.code, pb::ResultCode::Ok as i32);
    let entries = c
        .list_account_entries(pb::ListAccountEntriesRequest { account_id: id(PAYER), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].kind, pb::EntryKind::Posted as i32);
    assert_eq!(entries[0].kind, 5);
    let accounts = c.lookup_accounts(pb::LookupAccountsRequest { ids: vec![id(PAYER)] }).await.unwrap().into_inner().accounts;
    assert_eq!(accounts[0].status, pb::AccountStatus::Active as i32);

    // An unset target status is refused too.
    let change = pb::AccountStatusChange { account_id: id(PAYER), status: 0, reason: String::new() };
    let r = c.set_account_status(pb::SetAccountStatusRequest { changes: vec![change] }).await.unwrap().into_inner();
    assert_eq!(codes(&r.results), [pb::ResultCode::AccountStatusInvalid]);
}

/// Every refused item names its id when the id decodes, whichever check refused it (the API's
/// decoding, the stateless checks, the state machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_items_name_their_id() {
    use wire::*;
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let mut c = setup(&node.endpoint()).await;
    let pending = |n, timeout_ms| pb::Transfer {
        kind: pb::TransferKind::Pending as i32,
        timeout_ms,
        ..posted(n, vec![leg(PAYER, MERCHANT, "1.00")])
    };
    let transfers = vec![
        posted(20, vec![leg(PAYER, MERCHANT, "0")]),                                    // AMOUNT_ZERO
        posted(21, vec![]),                                                              // LEGS_EMPTY
        pb::Transfer { timeout_ms: 5, ..posted(22, vec![leg(PAYER, MERCHANT, "1.00")]) }, // TIMEOUT_RESERVED_FOR_PENDING
        pending(23, (1 << 31) + 1),                                                      // TIMEOUT_TOO_LARGE
        posted(24, vec![leg(PAYER, MERCHANT, "-1.00")]),                                 // AMOUNT_NEGATIVE
        posted(25, vec![leg(99, MERCHANT, "1.00")]),                                     // DEBIT_ACCOUNT_NOT_FOUND
        pb::Transfer { kind: 0, ..posted(26, vec![leg(PAYER, MERCHANT, "1.00")]) },      // KIND_INVALID
        pb::Transfer { id: vec![1, 2, 3], ..posted(27, vec![leg(PAYER, MERCHANT, "1.00")]) }, // ID_INVALID
        posted(28, vec![leg(PAYER, MERCHANT, "1.00")]),                                  // OK
    ];
    let r = c.create_transfers(pb::CreateTransfersRequest { transfers }).await.unwrap().into_inner();
    use pb::ResultCode as R;
    assert_eq!(
        codes(&r.results),
        [
            R::AmountZero,
            R::LegsEmpty,
            R::TimeoutReservedForPending,
            R::TimeoutTooLarge,
            R::AmountNegative,
            R::DebitAccountNotFound,
            R::KindInvalid,
            R::IdInvalid,
            R::Ok
        ]
    );
    let mut want: Vec<Vec<u8>> = (20..=28).map(id).collect();
    want[7] = Vec::new(); // a 3-byte id does not decode: nothing to name
    assert_eq!(ids(&r.results), want);

    let accounts = vec![
        pb::Account { id: id(30), asset: "XXX".into(), code: 1, ..Default::default() }, // ASSET_NOT_FOUND
        pb::Account { id: id(31), asset: CNY.into(), code: 0, ..Default::default() },    // ACCOUNT_CODE_MUST_NOT_BE_ZERO
    ];
    let r = c.create_accounts(pb::CreateAccountsRequest { accounts }).await.unwrap().into_inner();
    assert_eq!(codes(&r.results), [R::AssetNotFound, R::AccountCodeMustNotBeZero]);
    assert_eq!(ids(&r.results), [id(30), id(31)]);

    let change = |n, status: pb::AccountStatus| pb::AccountStatusChange { account_id: id(n), status: status as i32, reason: String::new() };
    let changes = vec![change(98, pb::AccountStatus::Frozen), change(PAYER, pb::AccountStatus::Unspecified)];
    let r = c.set_account_status(pb::SetAccountStatusRequest { changes }).await.unwrap().into_inner();
    assert_eq!(codes(&r.results), [R::AccountNotFound, R::AccountStatusInvalid]);
    assert_eq!(ids(&r.results), [id(98), id(PAYER)]);
}

/// Not found is said one way per kind of read: a single get answers NOT_FOUND, a batch lookup
/// leaves the missing out (ledger.proto "Not found").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_gets_answer_not_found_and_batch_lookups_leave_the_missing_out() {
    use wire::*;
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let url = node.endpoint();
    let mut c = setup(&url).await;
    let r = c.create_transfers(pb::CreateTransfersRequest { transfers: vec![posted(40, vec![leg(PAYER, MERCHANT, "1.00")])] });
    assert_eq!(codes(&r.await.unwrap().into_inner().results), [pb::ResultCode::Ok]);

    let not_found = |r: Result<_, tonic::Status>, what: &str| {
        let status = r.err().unwrap_or_else(|| panic!("{what}: answered"));
        assert_eq!(status.code(), tonic::Code::NotFound, "{what}: {status:?}");
    };
    let key = |k: &str| pb::GetTransferByIdempotencyKeyRequest { idempotency_key: k.into() };
    not_found(c.get_transfer_by_idempotency_key(key("never-used")).await.map(|_| ()), "GetTransferByIdempotencyKey");
    let known = c.get_transfer_by_idempotency_key(key("key-40")).await.unwrap().into_inner();
    assert!(known.found);
    assert_eq!(known.transfer_id, id(40));
    let by_ref = pb::GetAccountByExternalRefRequest { external_ref: "+86 000".into() };
    not_found(c.get_account_by_external_ref(by_ref).await.map(|_| ()), "GetAccountByExternalRef");
    let entries = pb::ListAccountEntriesRequest { account_id: id(77), ..Default::default() };
    not_found(c.list_account_entries(entries).await.map(|_| ()), "ListAccountEntries");
    let at = pb::GetBalanceAtRequest { account_id: id(77), timestamp_ns: 1 };
    not_found(c.get_balance_at(at).await.map(|_| ()), "GetBalanceAt");
    let mut wallet = pb::wallet_client::WalletClient::new(channel(&url).await);
    not_found(wallet.get_token(pb::GetTokenRequest { token_id: id(55) }).await.map(|_| ()), "GetToken");
    let mut risk = pb::risk_client::RiskClient::new(channel(&url).await);
    not_found(risk.get_limits(pb::GetLimitsRequest { account_id: id(77) }).await.map(|_| ()), "GetLimits");

    // Batch lookups: OK, the found ones in request order, the missing left out.
    let accounts = c.lookup_accounts(pb::LookupAccountsRequest { ids: vec![id(77), id(MERCHANT), id(PAYER)] }).await.unwrap();
    let found: Vec<Vec<u8>> = accounts.into_inner().accounts.iter().map(|a| a.account.as_ref().unwrap().id.clone()).collect();
    assert_eq!(found, [id(MERCHANT), id(PAYER)]);
    let transfers = c.lookup_transfers(pb::LookupTransfersRequest { ids: vec![id(41), id(40)] }).await.unwrap();
    assert_eq!(transfers.into_inner().transfers.len(), 1);
    let assets = c.lookup_assets(pb::LookupAssetsRequest { codes: vec!["USD".into(), CNY.into()] }).await.unwrap();
    assert_eq!(assets.into_inner().assets.len(), 1);

    // The Rust client reads NOT_FOUND of a single get as None.
    let client = ledger_client::LedgerClient::connect(vec![url.clone()]).unwrap();
    assert!(client.get_transfer_by_idempotency_key("never-used").await.unwrap().is_none());
    assert!(client.get_transfer_by_idempotency_key("key-40").await.unwrap().is_some());
    assert!(client.get_account_by_external_ref("+86 000").await.unwrap().is_none());
}

/// The transfer id is part of the idempotency fingerprint: a retry with a fresh id conflicts; a
/// transfer sent without an id gets one derived from its key, so its retries replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_without_an_id_gets_one_derived_from_its_key() {
    use wire::*;
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let mut c = setup(&node.endpoint()).await;
    let mut send = async |t: pb::Transfer| {
        let r = c.create_transfers(pb::CreateTransfersRequest { transfers: vec![t] }).await.unwrap().into_inner();
        r.results.into_iter().next().unwrap()
    };
    let no_id = pb::Transfer { id: Vec::new(), ..posted(0, vec![leg(PAYER, MERCHANT, "3.00")]) };
    let no_id = pb::Transfer { idempotency_key: "order-7".into(), ..no_id };
    let first = send(no_id.clone()).await;
    let derived = ledger_client::transfer_id_from_key("order-7");
    assert_eq!((first.code, first.replay, first.id.clone()), (pb::ResultCode::Ok as i32, false, id(derived)));
    let retry = send(no_id.clone()).await;
    assert_eq!((retry.code, retry.replay, retry.id), (pb::ResultCode::Ok as i32, true, id(derived)), "a retry replays");
    let explicit = send(pb::Transfer { id: id(derived), ..no_id.clone() }).await;
    assert_eq!((explicit.code, explicit.replay), (pb::ResultCode::Ok as i32, true), "the derived id sent explicitly is the same transfer");
    // The trap the proto warns about: the same key with a freshly generated id.
    let fresh = send(pb::Transfer { id: id(12345), ..no_id }).await;
    assert_eq!(fresh.code, pb::ResultCode::IdempotencyKeyConflict as i32);
    assert_eq!(fresh.id, id(derived), "the conflict names the transfer the key is bound to");
}

/// The rules the docs state, as the node applies them: closing needs a zero net balance and
/// nothing pending; closing again is OK with timestamp 0; amounts have no leading zeros,
/// trailing fractional zeros carry no value, and 39 digits are too many even when they fit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_and_amount_rules_are_as_documented() {
    use pb::ResultCode as R;
    use wire::*;
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let mut c = setup(&node.endpoint()).await;
    let mut transfer = async |t: pb::Transfer| {
        let r = c.create_transfers(pb::CreateTransfersRequest { transfers: vec![t] }).await.unwrap().into_inner();
        pb::ResultCode::try_from(r.results[0].code).unwrap()
    };
    // Amount grammar and scale (CNY has scale 2).
    assert_eq!(transfer(posted(50, vec![leg(PAYER, MERCHANT, "007.5")])).await, R::AmountInvalid);
    assert_eq!(transfer(posted(51, vec![leg(PAYER, MERCHANT, "00")])).await, R::AmountInvalid);
    assert_eq!(transfer(posted(52, vec![leg(PAYER, MERCHANT, "2.505")])).await, R::AmountScaleExceeded);
    assert_eq!(transfer(posted(53, vec![leg(PAYER, MERCHANT, "2.500")])).await, R::Ok, "2.500 is 2.5");
    let thirty_nine = format!("1{}", "0".repeat(38)); // 10^38 < u128::MAX, but 39 digits
    assert_eq!(transfer(posted(54, vec![leg(PAYER, MERCHANT, &thirty_nine)])).await, R::AmountOverflow);

    // Closing: MERCHANT got 2.50 (net credit): refused; sending it back makes the net zero:
    // allowed although both posted totals are 2.50, not zero.
    let close = |n| pb::AccountStatusChange { account_id: id(n), status: pb::AccountStatus::Closed as i32, reason: String::new() };
    let status = async |change: pb::AccountStatusChange| {
        let mut ledger = LedgerClient::new(channel(&node.endpoint()).await);
        let r = ledger.set_account_status(pb::SetAccountStatusRequest { changes: vec![change] }).await.unwrap().into_inner();
        (pb::ResultCode::try_from(r.results[0].code).unwrap(), r.results[0].timestamp_ns)
    };
    assert_eq!(status(close(MERCHANT)).await.0, R::BalanceNotZero);
    // A hold on the way back: net zero would be reached, but something is pending.
    let hold = pb::Transfer { kind: pb::TransferKind::Pending as i32, ..posted(55, vec![leg(MERCHANT, PAYER, "2.50")]) };
    assert_eq!(transfer(hold).await, R::Ok);
    assert_eq!(status(close(MERCHANT)).await.0, R::BalanceNotZero, "a pending debit blocks closing");
    let void = pb::Transfer {
        kind: pb::TransferKind::VoidPending as i32,
        pending_id: id(55),
        asset: String::new(),
        ..posted(56, vec![])
    };
    assert_eq!(transfer(void).await, R::Ok);
    assert_eq!(transfer(posted(57, vec![leg(MERCHANT, PAYER, "2.50")])).await, R::Ok);
    let (code, first_ts) = status(close(MERCHANT)).await;
    assert_eq!(code, R::Ok, "posted debits equal credits, nothing pending");
    assert!(first_ts > 0);
    let (code, again_ts) = status(close(MERCHANT)).await;
    assert_eq!((code, again_ts), (R::Ok, 0), "closing a closed account is OK and changes nothing");
    let freeze = pb::AccountStatusChange { status: pb::AccountStatus::Frozen as i32, ..close(MERCHANT) };
    assert_eq!(status(freeze).await.0, R::AccountClosed);
}

mod forwarding {
    use std::time::{Duration, Instant};

    use ledger_e2e::{Cluster, ClusterNode, free_port};
    use ledger_proto::api as pb;
    use pb::ledger_client::LedgerClient;

    use super::wire::{CNY, MERCHANT, PAYER, id, leg, posted};

    /// The running node that reports itself leader, and the followers' endpoints.
    pub async fn leader_and_followers(endpoints: &[(u64, String)], token: Option<&str>) -> (String, Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let mut leader = None;
            let mut followers = Vec::new();
            for (_, url) in endpoints {
                let Ok(channel) = tonic::transport::Endpoint::from_shared(url.clone()).unwrap().connect().await else { continue };
                let mut c = LedgerClient::new(channel);
                let Ok(status) = c.cluster_status(with_token(pb::ClusterStatusRequest {}, token)).await else { continue };
                match status.into_inner().role.as_str() {
                    "leader" => leader = Some(url.clone()),
                    "follower" => followers.push(url.clone()),
                    _ => {}
                }
            }
            if let Some(leader) = leader
                && followers.len() == endpoints.len() - 1
            {
                return (leader, followers);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no leader with every other node following within 30 s");
    }

    pub fn with_token<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = token {
            request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        request
    }

    /// Asset, two accounts and one transfer, each sent to `url` (a follower) as `admin` /
    /// `payer` (tokens, or none when authentication is off); every one must succeed there.
    pub async fn writes_through(url: &str, admin: Option<&str>, payer: Option<&str>) {
        let mut c = LedgerClient::new(super::channel(url).await);
        let ok = |results: Vec<pb::WriteResult>, what: &str| {
            assert!(results.iter().all(|r| r.code == pb::ResultCode::Ok as i32), "{what}: {results:?}");
        };
        let assets = pb::CreateAssetsRequest { assets: vec![pb::Asset { code: CNY.into(), scale: 2 }] };
        let reply = c.create_assets(with_token(assets, admin)).await.expect("a follower takes the write");
        assert!(reply.metadata().get("x-ledger-leader").is_none());
        ok(reply.into_inner().results, "assets");
        let account = |n| pb::Account { id: id(n), asset: CNY.into(), code: 1, ..Default::default() };
        let accounts = pb::CreateAccountsRequest { accounts: vec![account(PAYER), account(MERCHANT)] };
        ok(c.create_accounts(with_token(accounts, admin)).await.unwrap().into_inner().results, "accounts");
        let transfers = pb::CreateTransfersRequest { transfers: vec![posted(60, vec![leg(PAYER, MERCHANT, "6.00")])] };
        ok(c.create_transfers(with_token(transfers, payer)).await.unwrap().into_inner().results, "transfer");
    }

    /// A 3-node cluster without authentication: writes sent to a follower are applied (forwarded
    /// to the leader), and a call already forwarded once is not forwarded again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_sent_to_a_follower_are_forwarded_to_the_leader() {
        let cluster = Cluster::bootstrap(3, &[]);
        let endpoints: Vec<(u64, String)> = cluster.nodes.iter().map(|n| (n.id, n.endpoint())).collect();
        let (leader, followers) = leader_and_followers(&endpoints, None).await;
        writes_through(&followers[0], None, None).await;
        // Read back through the other follower (linearizable): the write is committed.
        let mut reader = LedgerClient::new(super::channel(&followers[1]).await);
        let found = reader.lookup_transfers(pb::LookupTransfersRequest { ids: vec![id(60)] }).await.unwrap().into_inner();
        assert_eq!(found.transfers.len(), 1, "{}", cluster.logs());

        // One hop: a call marked as forwarded is answered by the follower with the trailer.
        let mut c = LedgerClient::new(super::channel(&followers[0]).await);
        let mut request = tonic::Request::new(pb::CreateTransfersRequest { transfers: vec![posted(61, vec![leg(PAYER, MERCHANT, "1.00")])] });
        request.metadata_mut().insert("x-ledger-forwarded", "9".parse().unwrap());
        let status = c.create_transfers(request).await.expect_err("not forwarded twice");
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(status.metadata().get("x-ledger-leader").and_then(|v| v.to_str().ok()), Some(leader.as_str()));
        // Reads are served by the follower itself, never forwarded.
        let found = c.lookup_transfers(pb::LookupTransfersRequest { ids: vec![id(61)] }).await.unwrap().into_inner();
        assert!(found.transfers.is_empty(), "the refused call moved nothing");
    }

    fn sha256_hex(token: &str) -> String {
        use std::io::Write;
        let mut child = std::process::Command::new(ledger_e2e::binary("ledger-node"))
            .arg("hash-token")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("ledger-node hash-token");
        child.stdin.take().unwrap().write_all(format!("{token}\n").as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// With bearer tokens: the forwarded write is authorized and owned as the original caller
    /// (the leader authenticates the caller's token, not the follower), and a caller the
    /// follower refuses is refused there.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_forwarded_write_keeps_the_callers_principal() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens.toml");
        let entries = [("ops", "admin", "tok-admin"), ("checkout", "payments", "tok-pay"), ("regulator", "auditor", "tok-audit")];
        let text: String = entries
            .iter()
            .map(|(p, r, t)| format!("[[token]]\nprincipal = \"{p}\"\nrole = \"{r}\"\nsha256 = \"{}\"\n\n", sha256_hex(t)))
            .collect();
        std::fs::write(&tokens, text).unwrap();
        std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).unwrap();
        // TLS is off and tokens are on: the peer port wants the cluster secret (issue 18 item 7).
        let secret = dir.path().join("cluster-secret");
        std::fs::write(&secret, "forwarding-cluster-secret-0123456789abcdef\n").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let peer_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let args = |i: usize| {
            vec![
                "--auth-tokens-file".to_string(),
                tokens.display().to_string(),
                "--cluster-secret-file".into(),
                secret.display().to_string(),
                "--peer-listen".into(),
                format!("127.0.0.1:{}", peer_ports[i]),
            ]
        };
        let peer_url = |i: usize| format!("http://127.0.0.1:{}", peer_ports[i]);
        let start = |i: usize, bootstrap: Option<&[(u64, String)]>| {
            let a = args(i);
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            ClusterNode::start(i as u64 + 1, &dir.path().join(format!("n{}", i + 1)), bootstrap, &a)
        };
        let n2 = start(1, None);
        let n3 = start(2, None);
        let n1 = start(0, Some(&[(2, peer_url(1)), (3, peer_url(2))]));
        let endpoints: Vec<(u64, String)> = [&n1, &n2, &n3].iter().map(|n| (n.id, n.endpoint())).collect();
        let (_leader, followers) = leader_and_followers(&endpoints, Some("tok-admin")).await;

        writes_through(&followers[0], Some("tok-admin"), Some("tok-pay")).await;
        let mut c = LedgerClient::new(super::channel(&followers[1]).await);
        let found = c
            .lookup_transfers(with_token(pb::LookupTransfersRequest { ids: vec![id(60)] }, Some("tok-admin")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(found.transfers[0].owner, "checkout", "owned by the caller, not by the follower");

        // The follower authorizes first: a role that may not write is refused there.
        let transfers = pb::CreateTransfersRequest { transfers: vec![posted(62, vec![leg(PAYER, MERCHANT, "1.00")])] };
        let status = c.create_transfers(with_token(transfers, Some("tok-audit"))).await.expect_err("auditors do not pay");
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        // An admin may not create transfers either, forwarded or not: the leader checks the
        // caller's role again, so nothing is gained by going through a follower.
        let transfers = pb::CreateTransfersRequest { transfers: vec![posted(63, vec![leg(PAYER, MERCHANT, "1.00")])] };
        let status = c.create_transfers(with_token(transfers, Some("tok-admin"))).await.expect_err("admins do not pay");
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        drop((n1, n2, n3));
    }
}

/// Over TLS (auth off): a follower forwards a write to the leader's https address, verifying it
/// against the cluster CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_forwarded_over_tls() {
    use ledger_proto::api as pb;
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
    let cluster = ledger_e2e::Cluster::bootstrap_tls(3, &[]);
    let ca = std::fs::read(cluster.pki.as_ref().unwrap().ca()).unwrap();
    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca));
    let connect = async |url: &str| {
        let endpoint = Endpoint::from_shared(url.to_string()).unwrap().tls_config(tls.clone()).unwrap();
        pb::ledger_client::LedgerClient::new(endpoint.connect().await.expect("TLS connect"))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let follower = loop {
        let mut roles = Vec::new();
        for node in &cluster.nodes {
            let role = match connect(&node.endpoint()).await.cluster_status(pb::ClusterStatusRequest {}).await {
                Ok(s) => s.into_inner().role,
                Err(_) => String::new(),
            };
            roles.push((node.endpoint(), role));
        }
        if roles.iter().any(|(_, r)| r == "leader") && roles.iter().filter(|(_, r)| r == "follower").count() == 2 {
            break roles.into_iter().find(|(_, r)| r == "follower").unwrap().0;
        }
        assert!(std::time::Instant::now() < deadline, "no leader over TLS\n{}", cluster.logs());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let mut c = connect(&follower).await;
    let assets = pb::CreateAssetsRequest { assets: vec![pb::Asset { code: "CNY".into(), scale: 2 }] };
    let reply = c.create_assets(assets).await.unwrap_or_else(|s| panic!("{s:?}\n{}", cluster.logs()));
    assert_eq!(reply.into_inner().results[0].code, pb::ResultCode::Ok as i32);
}
