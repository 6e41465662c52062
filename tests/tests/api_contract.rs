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
