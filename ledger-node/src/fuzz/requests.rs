//! Target `request`: bytes a client sends. The first byte picks the request type, the rest is its
//! protobuf body. Each goes the way the node takes it: prost decoding (the gRPC layer), the
//! request bounds (`api::bounds`: INVALID_ARGUMENT for the whole request), the per-item decoding
//! and checks (`api::convert::prepare_*`, the wallet and risk conversions: a result code per
//! refused item), and then the accepted items are applied, as the command the node would
//! propose, to the fuzz world with every check of the `apply` target. Must not panic.

use ledger_proto::api as pb;
use prost::Message;

use crate::api::{bounds, convert, risk, wallet};
use ledger_core::result::{ItemResult, ResultCode};
use ledger_core::store;
use ledger_core::types::*;
use ledger_core::wallet::token;

use super::world::{self, MASTER_KEY, TOKEN, WORLD_END_NS};

/// The requests whose decoding the node shares with this target, tagged by the first byte.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    CreateAssets(pb::CreateAssetsRequest),
    CreateAccounts(pb::CreateAccountsRequest),
    CreateTransfers(pb::CreateTransfersRequest),
    SetAccountStatus(pb::SetAccountStatusRequest),
    LookupAccounts(pb::LookupAccountsRequest),
    LookupAssets(pb::LookupAssetsRequest),
    SetLimits(pb::SetLimitsRequest),
    SetBlocklist(pb::SetBlocklistRequest),
    IssueToken(pb::IssueTokenRequest),
    SyncOfflineRecords(pb::SyncOfflineRecordsRequest),
    RevokeToken(pb::RevokeTokenRequest),
    /// `Audit.ExportJournal`: the range it resolves to, and its first page of lines.
    ExportJournal(pb::ExportJournalRequest),
    /// The `authorization` header of any call, checked by the auth layer for `path`.
    Authorization { path: String, header: Vec<u8> },
}

pub const KINDS: u8 = 13;
/// The bearer token the fuzz auth table knows (role admin).
pub const FUZZ_TOKEN: &str = "fuzz-token-0123456789abcdef0123456789abcdef";

impl Request {
    /// Tag byte ‖ protobuf body: the corpus format of this target.
    pub fn to_bytes(&self) -> Vec<u8> {
        let (tag, body) = match self {
            Request::CreateAssets(r) => (0, r.encode_to_vec()),
            Request::CreateAccounts(r) => (1, r.encode_to_vec()),
            Request::CreateTransfers(r) => (2, r.encode_to_vec()),
            Request::SetAccountStatus(r) => (3, r.encode_to_vec()),
            Request::LookupAccounts(r) => (4, r.encode_to_vec()),
            Request::LookupAssets(r) => (5, r.encode_to_vec()),
            Request::SetLimits(r) => (6, r.encode_to_vec()),
            Request::SetBlocklist(r) => (7, r.encode_to_vec()),
            Request::IssueToken(r) => (8, r.encode_to_vec()),
            Request::SyncOfflineRecords(r) => (9, r.encode_to_vec()),
            Request::RevokeToken(r) => (10, r.encode_to_vec()),
            Request::ExportJournal(r) => (11, r.encode_to_vec()),
            // Path length (at most 255) ‖ path ‖ header.
            Request::Authorization { path, header } => {
                let path = &path.as_bytes()[..path.len().min(255)];
                (12, [&[path.len() as u8][..], path, header].concat())
            }
        };
        [vec![tag], body].concat()
    }

    /// What prost makes of the bytes (`None`: the gRPC layer answers INVALID_ARGUMENT).
    pub fn decode(bytes: &[u8]) -> Option<Request> {
        let (tag, body) = bytes.split_first()?;
        Some(match tag % KINDS {
            0 => Request::CreateAssets(Message::decode(body).ok()?),
            1 => Request::CreateAccounts(Message::decode(body).ok()?),
            2 => Request::CreateTransfers(Message::decode(body).ok()?),
            3 => Request::SetAccountStatus(Message::decode(body).ok()?),
            4 => Request::LookupAccounts(Message::decode(body).ok()?),
            5 => Request::LookupAssets(Message::decode(body).ok()?),
            6 => Request::SetLimits(Message::decode(body).ok()?),
            7 => Request::SetBlocklist(Message::decode(body).ok()?),
            8 => Request::IssueToken(Message::decode(body).ok()?),
            9 => Request::SyncOfflineRecords(Message::decode(body).ok()?),
            10 => Request::RevokeToken(Message::decode(body).ok()?),
            11 => Request::ExportJournal(Message::decode(body).ok()?),
            _ => {
                let (len, rest) = body.split_first()?;
                let path = std::str::from_utf8(rest.get(..usize::from(*len))?).ok()?.to_string();
                Request::Authorization { path, header: rest[usize::from(*len)..].to_vec() }
            }
        })
    }
}

/// How the node answered a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not a message of its type.
    Undecodable,
    /// INVALID_ARGUMENT (or FAILED_PRECONDITION) for the whole request.
    Refused(tonic::Code),
    /// Items answered: refused by the API, and applied (with their codes).
    Answered { refused: Vec<ResultCode>, applied: Vec<ResultCode> },
}

pub fn run(bytes: &[u8]) {
    if let Some(request) = Request::decode(bytes) {
        check(&request);
    }
}

/// Runs one request through the node's decoding and checks, then applies what it would propose.
pub fn check(request: &Request) -> Outcome {
    match answer(request) {
        Err(status) => {
            assert!(
                matches!(status.code(), tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition),
                "a request refused with {status:?}"
            );
            Outcome::Refused(status.code())
        }
        Ok((refused, operation)) => {
            for r in &refused {
                assert!(r.code != ResultCode::Ok && !r.replay && r.timestamp_ns == 0, "the API refused with {r:?}");
                assert!(r.leg_index.is_none_or(|l| usize::from(l) < ledger_core::limits::TRANSFER_LEGS_MAX), "{r:?}");
            }
            let applied = match operation {
                Some(operation) => {
                    let mut store = world::world();
                    let command = Command { proposed_at_ns: WORLD_END_NS, operation };
                    let applied = super::apply::check_command(&mut store, &command);
                    applied.results.iter().map(|r| r.code).collect()
                }
                None => Vec::new(),
            };
            Outcome::Answered { refused: refused.iter().map(|r| r.code).collect(), applied }
        }
    }
}

/// The refusals and the operation of the accepted items (None when no item was accepted).
fn batch<I>((refused, accepted): (Vec<ItemResult>, Vec<I>), operation: fn(Vec<I>) -> Operation) -> Answer {
    let op = (!accepted.is_empty()).then(|| operation(accepted));
    Ok((refused, op))
}

/// Splits items into the refused (with their results) and the accepted.
fn prepare<P, I>(items: &[P], prepare: impl Fn(&P) -> Result<I, ItemResult>) -> (Vec<ItemResult>, Vec<I>) {
    let mut refused = Vec::new();
    let mut accepted = Vec::new();
    for item in items {
        match prepare(item) {
            Ok(input) => accepted.push(input),
            Err(r) => refused.push(r),
        }
    }
    (refused, accepted)
}

type Answer = Result<(Vec<ItemResult>, Option<Operation>), tonic::Status>;

/// What the node's service code does with the request up to proposing: the refusals, and the
/// operation it would propose (None: nothing to propose).
fn answer(request: &Request) -> Answer {
    match request {
        Request::CreateAssets(r) => {
            bounds::create_assets(r)?;
            batch(prepare(&r.assets, convert::prepare_asset), Operation::CreateAssets)
        }
        Request::CreateAccounts(r) => {
            bounds::create_accounts(r)?;
            batch(prepare(&r.accounts, convert::prepare_account), Operation::CreateAccounts)
        }
        Request::CreateTransfers(r) => {
            bounds::create_transfers(r)?;
            batch(prepare(&r.transfers, convert::prepare_transfer), Operation::CreateTransfers)
        }
        Request::SetAccountStatus(r) => {
            bounds::set_account_status(r)?;
            batch(prepare(&r.changes, |c| convert::prepare_status_change(c, "fuzz (admin)")), Operation::SetAccountStatus)
        }
        Request::LookupAccounts(r) => {
            bounds::lookup(r.ids.len(), "ids")?;
            for id in &r.ids {
                convert::id(id).map_err(|code| tonic::Status::invalid_argument(format!("{code:?}")))?;
            }
            Ok((Vec::new(), None))
        }
        Request::LookupAssets(r) => {
            bounds::lookup(r.codes.len(), "codes")?;
            r.codes.iter().try_for_each(|c| bounds::named_asset(c))?;
            Ok((Vec::new(), None))
        }
        Request::SetLimits(r) => {
            bounds::set_limits(r)?;
            batch(prepare(&r.rules, risk::limit_input), Operation::SetLimits)
        }
        Request::SetBlocklist(r) => {
            bounds::set_blocklist(r)?;
            batch(prepare(&r.changes, risk::block_input), Operation::SetBlocklist)
        }
        Request::IssueToken(r) => match wallet::issue_input(r)? {
            Ok(input) => Ok((Vec::new(), Some(Operation::IssueTokens(vec![input])))),
            Err(refused) => Ok((vec![refused], None)),
        },
        Request::SyncOfflineRecords(r) => {
            bounds::sync_offline_records(r)?;
            let token_id = wallet::id(&r.token_id, "token id")?;
            let world = world::world();
            let known = token::get_token(&world, token_id).expect("world token").map(|t| {
                let scale = store::get_asset(&world, &t.asset).expect("world asset").expect("token asset").scale;
                (t, scale)
            });
            assert!(token_id != TOKEN || known.is_some(), "the world's token");
            let records = wallet::offline_records(MASTER_KEY, known.as_ref(), &r.records)?;
            let input = ledger_core::wallet::SyncInput { token_id, records, reissue_through_sequence: r.reissue_through_sequence };
            Ok((Vec::new(), Some(Operation::SyncOfflineRecords(vec![input]))))
        }
        Request::ExportJournal(r) => {
            let world = world::world();
            let head = ledger_core::journal::head(&world).expect("world journal").seq;
            let request = ledger_core::audit::RangeRequest {
                from_seq: r.from_seq,
                to_seq: r.to_seq,
                from_timestamp_ns: r.from_timestamp_ns,
                to_timestamp_ns: r.to_timestamp_ns,
            };
            let range = ledger_core::audit::resolve(&world, request).expect("a range resolves");
            assert!(range.from_seq >= 1 && range.to_seq <= head, "{range:?} outside 1..={head}");
            let page = ledger_core::audit::lines(&world, range.from_seq, range.to_seq, crate::api::audit::EXPORT_LINES_PER_MESSAGE)
                .expect("lines read");
            let expected = if range.from_seq > range.to_seq { 0 } else { (range.to_seq - range.from_seq + 1).min(crate::api::audit::EXPORT_LINES_PER_MESSAGE as u64) };
            assert_eq!(page.len() as u64, expected, "{range:?}");
            Ok((Vec::new(), None))
        }
        Request::Authorization { path, header } => {
            use crate::api::auth::{Auth, Role, TokenTable};
            let auth = Auth::with_tokens(TokenTable::from_tokens(&[("fuzz", Role::Admin, FUZZ_TOKEN)]));
            match auth.check(path, Some(header)) {
                Ok(_) => {}
                Err(status) => assert!(
                    matches!(status.code(), tonic::Code::Unauthenticated | tonic::Code::PermissionDenied),
                    "auth answered {status:?}"
                ),
            }
            assert!(Auth::disabled().check(path, Some(header)).is_ok(), "authentication off lets every call through");
            Ok((Vec::new(), None))
        }
        Request::RevokeToken(r) => match wallet::revoke_input(r)? {
            Ok(input) => Ok((Vec::new(), Some(Operation::RevokeTokens(vec![input])))),
            Err(refused) => Ok((vec![refused], None)),
        },
    }
}
