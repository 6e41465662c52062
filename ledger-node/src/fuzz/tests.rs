//! The fuzz targets on every `cargo test`: proptest generators of hostile input, and the corpus.
//! Defaults keep the whole file at a few seconds on 2 cores; `PROPTEST_CASES=n` runs n cases of
//! each property instead (a long hunt: see docs/operations.md "Fuzzing").

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ledger_proto::api as pb;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use super::requests::{Outcome, Request};
use super::world::*;
use ledger_core::amount::DecimalInput;
use ledger_core::limits::*;
use ledger_core::result::ResultCode;
use ledger_core::risk::{LimitInput, LimitScope};
use ledger_core::types::*;
use ledger_core::wallet::blocklist::{BlockInput, BlockTarget};
use ledger_core::wallet::{IssueTokenInput, OfflineRecordInput, RevokeTokenInput, SyncInput, mac};

fn cases(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(default),
        // Shrinking a failure of a 64-command sequence can take long; the first failure is kept.
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    }
}

// ---- values: mostly the world's, often hostile ----

fn id() -> impl Strategy<Value = u128> {
    prop_oneof![
        6 => prop::sample::select(ACCOUNT_IDS.to_vec()),
        1 => Just(0u128),
        1 => Just(HOLD),
        1 => Just(TOKEN),
        1 => Just(u128::MAX),
        2 => 1u128..40,
        1 => any::<u128>(),
    ]
}

fn digits() -> impl Strategy<Value = u128> {
    prop_oneof![
        6 => 1u128..5_000,
        1 => Just(0u128),
        1 => Just(u128::MAX),
        1 => Just(10u128.pow(38) - 1),
        1 => Just(u128::MAX / 2),
        1 => any::<u128>(),
    ]
}

fn decimal() -> impl Strategy<Value = DecimalInput> {
    let scale = prop_oneof![4 => Just(0u8), 2 => Just(2u8), 1 => Just(18u8), 1 => 0u8..=40, 1 => any::<u8>()];
    (digits(), scale).prop_map(|(digits, scale)| DecimalInput { digits, scale })
}

fn asset_code() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just(String::from("CNY")),
        2 => prop::sample::select(vec!["JPY", "BIG"]).prop_map(String::from),
        1 => Just(String::from("USD")),
        1 => "[A-Z0-9_]{0,20}",
        1 => ".{0,18}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "u[0-9a-z]{10}",
        2 => "k[0-9]",
        1 => Just(String::new()),
        1 => Just("x".repeat(IDEMPOTENCY_KEY_BYTES_MAX + 1)),
        1 => Just("x".repeat(IDEMPOTENCY_KEY_BYTES_MAX)),
        1 => ".{1,12}",
        2 => Just(String::from("world-100")),
    ]
}

fn text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z ]{0,12}",
        1 => Just("r".repeat(max)),
        1 => Just("r".repeat(max + 1)),
        1 => Just(String::new()),
    ]
}

fn timeout_ms() -> impl Strategy<Value = u64> {
    prop_oneof![10 => Just(0u64), 3 => 1u64..20, 1 => Just(TIMEOUT_MS_MAX), 1 => Just(TIMEOUT_MS_MAX + 1), 1 => Just(u64::MAX)]
}

fn sequence() -> impl Strategy<Value = u64> {
    prop_oneof![6 => 1u64..=12, 1 => Just(0u64), 1 => Just(1_000u64), 1 => Just(u64::MAX), 1 => any::<u64>()]
}

// ---- commands (what a leader could propose, and worse) ----

fn leg() -> impl Strategy<Value = LegInput> {
    let account = || prop_oneof![3 => prop::sample::select(vec![BANK, WALLET, SHOP, CAPPED, FROZEN, CLOSED, CLEARING, CAPPED_CLEARING]), 1 => id()];
    (account(), account(), decimal()).prop_map(|(debit_account_id, credit_account_id, amount)| LegInput { debit_account_id, credit_account_id, amount })
}

fn transfer_input() -> impl Strategy<Value = TransferInput> {
    let kind = prop::sample::select(vec![TransferKind::Posted, TransferKind::Posted, TransferKind::Pending, TransferKind::PostPending, TransferKind::VoidPending]);
    let legs = prop_oneof![12 => prop::collection::vec(leg(), 1..4), 1 => Just(Vec::new()), 2 => prop::collection::vec(leg(), 64..68)];
    let pending_id = prop_oneof![3 => Just(HOLD), 2 => 1_000u128..1_050, 1 => Just(0u128), 1 => id()];
    let post_amounts = prop_oneof![3 => Just(Vec::new()), 2 => prop::collection::vec(decimal(), 1..3), 1 => prop::collection::vec(decimal(), 63..67)];
    // Mostly fresh transfer ids; sometimes one that may exist (the world's 100, 101, HOLD).
    let transfer_id = prop_oneof![8 => 1_000u128..1_050, 8 => 1_050u128..1_000_000, 1 => id().prop_map(|id| if id < 40 { id + 90 } else { id })];
    // One in eight keeps every field as drawn (mostly malformed); the rest fit their kind.
    let chaos = prop::bool::weighted(0.125);
    // Owners: none (authentication off) and two principals, so keys collide across owners.
    let owner = prop::sample::select(vec!["", "checkout", "refunds"]).prop_map(String::from);
    (transfer_id, key(), asset_code(), kind, legs, pending_id, timeout_ms(), post_amounts, any::<u32>(), chaos, owner).prop_map(
        |(id, idempotency_key, asset, kind, legs, pending_id, timeout_ms, post_amounts, code, chaos, owner)| {
            let resolves = matches!(kind, TransferKind::PostPending | TransferKind::VoidPending);
            let keep = |fits: bool| chaos || fits;
            TransferInput {
                id,
                idempotency_key,
                asset,
                kind,
                legs: if keep(!resolves) { legs } else { Vec::new() },
                pending_id: if keep(resolves) { pending_id } else { 0 },
                timeout_ms: if keep(kind == TransferKind::Pending) { timeout_ms } else { 0 },
                post_amounts: if keep(kind == TransferKind::PostPending) { post_amounts } else { Vec::new() },
                code,
                owner,
            }
        },
    )
}

fn account_input() -> impl Strategy<Value = AccountInput> {
    let metadata = prop_oneof![
        4 => Just(BTreeMap::new()),
        1 => prop::collection::btree_map(text(METADATA_KEY_BYTES_MAX), text(METADATA_VALUE_BYTES_MAX), 1..3),
        1 => prop::collection::btree_map("[a-z]{1,8}", Just(String::new()), 15..19),
    ];
    let external_ref = prop_oneof![3 => Just(None), 1 => text(EXTERNAL_REF_BYTES_MAX).prop_map(Some), 1 => Just(Some("+8613800000000".into()))];
    (id(), asset_code(), 0u32..3, any::<bool>(), any::<bool>(), prop::option::of(decimal()), metadata, external_ref).prop_map(
        |(id, asset, code, debits_must_not_exceed_credits, credits_must_not_exceed_debits, overdraft_limit, metadata, external_ref)| AccountInput {
            id,
            asset,
            code,
            debits_must_not_exceed_credits,
            credits_must_not_exceed_debits,
            overdraft_limit,
            metadata,
            external_ref,
        },
    )
}

fn issue_input() -> impl Strategy<Value = IssueTokenInput> {
    let device = prop_oneof![4 => Just(DEVICE.to_string()), 1 => Just(BLOCKED_DEVICE.to_string()), 1 => text(WALLET_DEVICE_ID_BYTES_MAX)];
    let count = prop_oneof![4 => 1u32..12, 1 => Just(0u32), 1 => Just(WALLET_OFFLINE_COUNT_MAX), 1 => Just(WALLET_OFFLINE_COUNT_MAX + 1), 1 => Just(u32::MAX)];
    let validity = prop_oneof![3 => Just(0u64), 2 => 1u64..10, 1 => Just(WALLET_VALIDITY_MS_MAX), 1 => Just(WALLET_VALIDITY_MS_MAX + 1), 1 => Just(u64::MAX)];
    let token = prop_oneof![2 => Just(TOKEN), 3 => 901u128..905, 1 => id()];
    (token, id(), id(), device, decimal(), count, validity).prop_map(
        |(token_id, account_id, clearing_account_id, device_id, offline_limit, max_offline_count, validity_ms)| IssueTokenInput {
            token_id,
            account_id,
            clearing_account_id,
            device_id,
            offline_limit,
            max_offline_count,
            validity_ms,
        },
    )
}

fn sync_input() -> impl Strategy<Value = SyncInput> {
    let record = (sequence(), decimal(), id(), any::<u64>(), prop::bool::weighted(0.8)).prop_map(|(sequence, amount, merchant_account_id, device_time_ms, mac_valid)| {
        OfflineRecordInput { sequence, amount, merchant_account_id, device_time_ms, mac: [7; 32], mac_valid }
    });
    let token = prop_oneof![5 => Just(TOKEN), 2 => 901u128..905, 1 => id()];
    let through = prop_oneof![3 => Just(0u64), 3 => sequence()];
    (token, prop::collection::vec(record, 0..6), through).prop_map(|(token_id, records, reissue_through_sequence)| SyncInput { token_id, records, reissue_through_sequence })
}

fn limit_input() -> impl Strategy<Value = LimitInput> {
    let scope = prop_oneof![3 => id().prop_map(LimitScope::Account), 1 => (asset_code(), 0u32..3).prop_map(|(asset, code)| LimitScope::Code { asset, code })];
    let offset = prop_oneof![4 => Just(0i32), 1 => Just(840i32), 1 => Just(841i32), 1 => Just(-840i32), 1 => Just(i32::MIN), 1 => Just(i32::MAX)];
    (scope, prop::option::of(decimal()), prop::option::of(decimal()), prop::option::of(prop_oneof![0u32..3, Just(u32::MAX)]), offset).prop_map(
        |(scope, max_single_debit, daily_debit_amount, daily_debit_count, utc_offset_minutes)| LimitInput {
            scope,
            max_single_debit,
            daily_debit_amount,
            daily_debit_count,
            utc_offset_minutes,
        },
    )
}

fn block_input() -> impl Strategy<Value = BlockInput> {
    let target = prop_oneof![
        2 => prop_oneof![Just(TOKEN), id()].prop_map(BlockTarget::Token),
        1 => prop_oneof![Just(DEVICE.to_string()), Just(BLOCKED_DEVICE.to_string()), text(WALLET_DEVICE_ID_BYTES_MAX)].prop_map(BlockTarget::Device),
    ];
    (target, any::<bool>(), text(REASON_BYTES_MAX)).prop_map(|(target, blocked, reason)| BlockInput { target, blocked, reason })
}

/// Account changes (issue 22): settings updates and rebinds of a shared number.
fn account_change() -> impl Strategy<Value = Operation> {
    use ledger_core::account::{rebind::RebindInput, update::AccountUpdateInput};
    let metadata = prop::option::of(prop::collection::btree_map(text(METADATA_KEY_BYTES_MAX), text(METADATA_VALUE_BYTES_MAX), 0..3));
    let overdraft = prop::option::of(decimal());
    let update = (id(), metadata, overdraft, prop::option::of(0u32..4), text(REASON_BYTES_MAX))
        .prop_map(|(account_id, metadata, overdraft_limit, code, reason)| AccountUpdateInput { account_id, metadata, overdraft_limit, code, reason, actor: "fuzz".into() });
    let external_ref = prop_oneof![3 => Just("+8613800000000".to_string()), 1 => text(EXTERNAL_REF_BYTES_MAX)];
    let rebind = (external_ref, prop_oneof![Just(0u128), id()], prop_oneof![Just(0u128), id()], text(REASON_BYTES_MAX))
        .prop_map(|(external_ref, from_account_id, to_account_id, reason)| RebindInput { external_ref, from_account_id, to_account_id, reason, actor: "fuzz".into() });
    prop_oneof![
        prop::collection::vec(update, 1..3).prop_map(Operation::UpdateAccounts),
        prop::collection::vec(rebind, 1..3).prop_map(Operation::RebindExternalRefs),
    ]
}

fn operation() -> impl Strategy<Value = Operation> {
    let statuses = prop::sample::select(vec![AccountStatus::Active, AccountStatus::Frozen, AccountStatus::Closed]);
    let status_change = (id(), statuses, text(REASON_BYTES_MAX)).prop_map(|(account_id, status, reason)| StatusChangeInput { account_id, status, reason, actor: "fuzz".into() });
    let asset = (asset_code(), prop_oneof![2 => Just(2u32), 1 => 0u32..=20, 1 => any::<u32>()]).prop_map(|(code, scale)| AssetInput { code, scale });
    let revoke = (prop_oneof![Just(TOKEN), id()], text(REASON_BYTES_MAX)).prop_map(|(token_id, reason)| RevokeTokenInput { token_id, reason });
    let denied = (text(300), text(300), text(300), text(300)).prop_map(|(principal, role, method, reason)| AccessDeniedInput { principal, role, method, reason });
    prop_oneof![
        10 => prop::collection::vec(transfer_input(), 1..4).prop_map(Operation::CreateTransfers),
        2 => prop::collection::vec(account_input(), 1..3).prop_map(Operation::CreateAccounts),
        1 => prop::collection::vec(asset, 1..3).prop_map(Operation::CreateAssets),
        2 => prop::collection::vec(status_change, 1..3).prop_map(Operation::SetAccountStatus),
        1 => Just(Operation::Tick),
        2 => prop::collection::vec(issue_input(), 1..3).prop_map(Operation::IssueTokens),
        3 => prop::collection::vec(sync_input(), 1..3).prop_map(Operation::SyncOfflineRecords),
        1 => prop::collection::vec(revoke, 1..3).prop_map(Operation::RevokeTokens),
        1 => prop::collection::vec(denied, 1..3).prop_map(Operation::RecordAccessDenied),
        2 => prop::collection::vec(limit_input(), 1..3).prop_map(Operation::SetLimits),
        1 => prop::collection::vec(block_input(), 1..3).prop_map(Operation::SetBlocklist),
        2 => account_change(),
    ]
}

/// Commands with the milliseconds before each: mostly 1 ms, sometimes past every timeout.
fn commands() -> impl Strategy<Value = Vec<(u64, Operation)>> {
    let jump = prop_oneof![6 => Just(1u64), 2 => 0u64..30, 1 => Just(WALLET_VALIDITY_MS_MAX + WALLET_RELEASE_GRACE_MS), 1 => Just(u64::MAX)];
    prop::collection::vec((jump, operation()), 1..24)
}

// ---- requests (what a client could send) ----

fn wire_id() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![8 => id().prop_map(|id| id.to_be_bytes().to_vec()), 1 => Just(Vec::new()), 1 => prop::collection::vec(any::<u8>(), 0..20)]
}

fn wire_amount() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[0-9]{1,4}(\\.[0-9]{1,2})?",
        1 => "-[0-9]{1,3}",
        1 => "[0-9]{37,41}",
        1 => Just(String::from("340282366920938463463374607431768211455")),
        1 => Just(String::from("0.000000000000000000001")),
        1 => ".{0,8}",
    ]
}

fn wire_transfer() -> impl Strategy<Value = pb::Transfer> {
    let leg = || (wire_id(), wire_id(), wire_amount()).prop_map(|(debit_account_id, credit_account_id, amount)| pb::Leg { debit_account_id, credit_account_id, amount });
    let legs = prop_oneof![12 => prop::collection::vec(leg(), 0..4), 1 => prop::collection::vec(leg(), 63..67)];
    (wire_id(), key(), asset_code(), legs, prop_oneof![0i32..5, any::<i32>()], wire_id(), timeout_ms(), prop::collection::vec(wire_amount(), 0..3), any::<u32>()).prop_map(
        |(id, idempotency_key, asset, legs, kind, pending_id, timeout_ms, post_amounts, code)| pb::Transfer {
            id,
            idempotency_key,
            asset,
            legs,
            kind,
            pending_id,
            timeout_ms,
            post_amounts,
            code,
            ..Default::default()
        },
    )
}

fn wire_account() -> impl Strategy<Value = pb::Account> {
    let metadata = prop_oneof![4 => Just(BTreeMap::new()), 1 => prop::collection::btree_map(text(METADATA_KEY_BYTES_MAX), text(METADATA_VALUE_BYTES_MAX), 1..3)];
    (wire_id(), asset_code(), 0u32..3, any::<bool>(), any::<bool>(), prop_oneof![Just(String::new()), wire_amount()], metadata, text(EXTERNAL_REF_BYTES_MAX)).prop_map(
        |(id, asset, code, debits_must_not_exceed_credits, credits_must_not_exceed_debits, overdraft_limit, metadata, external_ref)| pb::Account {
            id,
            asset,
            code,
            debits_must_not_exceed_credits,
            credits_must_not_exceed_debits,
            overdraft_limit,
            metadata: metadata.into_iter().collect(),
            external_ref,
        },
    )
}

/// Offline records, a third of them with the MAC the world's token key gives.
fn wire_records() -> impl Strategy<Value = Vec<pb::OfflineRecord>> {
    let record = (sequence(), wire_amount(), wire_id(), any::<u64>(), prop::bool::weighted(0.66), prop::collection::vec(any::<u8>(), 0..40)).prop_map(
        |(sequence, amount, merchant_account_id, device_time_ms, sign, junk)| {
            let merchant = crate::api::convert::id(&merchant_account_id).unwrap_or(0);
            let minor = DecimalInput::parse(&amount).ok().and_then(|a| a.to_minor(2).ok());
            let mac = match minor {
                Some(minor) if sign => {
                    let key = mac::token_key(MASTER_KEY, DEVICE, TOKEN);
                    mac::record_mac(&key, TOKEN, sequence, minor, merchant, device_time_ms).to_vec()
                }
                _ => junk,
            };
            pb::OfflineRecord { sequence, amount, merchant_account_id, device_time_ms, mac }
        },
    );
    prop::collection::vec(record, 0..6)
}

fn request() -> impl Strategy<Value = Request> {
    let status_change = (wire_id(), prop_oneof![0i32..5, any::<i32>()], text(REASON_BYTES_MAX)).prop_map(|(account_id, status, reason)| pb::AccountStatusChange { account_id, status, reason });
    let limit = (prop::option::of(prop_oneof![wire_id().prop_map(pb::limit_rule::Scope::AccountId), (asset_code(), 0u32..3).prop_map(|(asset, code)| pb::limit_rule::Scope::Code(pb::CodeScope { asset, code }))]), prop::option::of(wire_amount()), prop::option::of(wire_amount()), prop::option::of(any::<u32>()), any::<i32>())
        .prop_map(|(scope, max_single_debit, daily_debit_amount, daily_debit_count, utc_offset_minutes)| pb::LimitRule { scope, max_single_debit, daily_debit_amount, daily_debit_count, utc_offset_minutes });
    let block = (prop::option::of(prop_oneof![wire_id().prop_map(pb::blocklist_change::Target::TokenId), text(WALLET_DEVICE_ID_BYTES_MAX).prop_map(pb::blocklist_change::Target::DeviceId)]), any::<bool>(), text(REASON_BYTES_MAX))
        .prop_map(|(target, blocked, reason)| pb::BlocklistChange { target, blocked, reason });
    let token = || prop_oneof![3 => Just(TOKEN.to_be_bytes().to_vec()), 1 => wire_id()];
    let issue = (token(), wire_id(), wire_id(), prop_oneof![Just(DEVICE.to_string()), text(WALLET_DEVICE_ID_BYTES_MAX)], wire_amount(), prop_oneof![1u32..12, any::<u32>()], prop_oneof![Just(0u64), any::<u64>()])
        .prop_map(|(token_id, account_id, clearing_account_id, device_id, offline_limit, max_offline_count, validity_ms)| pb::IssueTokenRequest { token_id, account_id, clearing_account_id, device_id, offline_limit, max_offline_count, validity_ms });
    prop_oneof![
        1 => prop::collection::vec((asset_code(), prop_oneof![0u32..=20, any::<u32>()]).prop_map(|(code, scale)| pb::Asset { code, scale }), 0..3).prop_map(|assets| Request::CreateAssets(pb::CreateAssetsRequest { assets })),
        2 => prop::collection::vec(wire_account(), 0..3).prop_map(|accounts| Request::CreateAccounts(pb::CreateAccountsRequest { accounts })),
        6 => prop::collection::vec(wire_transfer(), 0..4).prop_map(|transfers| Request::CreateTransfers(pb::CreateTransfersRequest { transfers })),
        1 => prop::collection::vec(status_change, 0..3).prop_map(|changes| Request::SetAccountStatus(pb::SetAccountStatusRequest { changes })),
        1 => prop::collection::vec(wire_id(), 0..4).prop_map(|ids| Request::LookupAccounts(pb::LookupAccountsRequest { ids })),
        1 => prop::collection::vec(asset_code(), 0..4).prop_map(|codes| Request::LookupAssets(pb::LookupAssetsRequest { codes })),
        2 => prop::collection::vec(limit, 0..3).prop_map(|rules| Request::SetLimits(pb::SetLimitsRequest { rules })),
        1 => prop::collection::vec(block, 0..3).prop_map(|changes| Request::SetBlocklist(pb::SetBlocklistRequest { changes })),
        2 => issue.prop_map(Request::IssueToken),
        4 => (token(), wire_records(), prop_oneof![Just(0u64), sequence()]).prop_map(|(token_id, records, reissue_through_sequence)| Request::SyncOfflineRecords(pb::SyncOfflineRecordsRequest { token_id, records, reissue_through_sequence })),
        1 => (token(), text(REASON_BYTES_MAX)).prop_map(|(token_id, reason)| Request::RevokeToken(pb::RevokeTokenRequest { token_id, reason })),
        1 => (sequence(), sequence(), prop_oneof![Just(0u64), Just(T0_NS + 3 * 1_000_000), any::<u64>()], prop_oneof![Just(0u64), Just(T0_NS + 5 * 1_000_000), any::<u64>()])
            .prop_map(|(from_seq, to_seq, from_timestamp_ns, to_timestamp_ns)| Request::ExportJournal(pb::ExportJournalRequest { from_seq, to_seq, from_timestamp_ns, to_timestamp_ns })),
        1 => (prop_oneof![Just(String::from("/ledger.v1.Ledger/CreateTransfers")), Just(String::from("/ledger.raft.v1.RaftPeer/Vote")), ".{0,40}"], prop_oneof![
            Just(format!("Bearer {}", super::requests::FUZZ_TOKEN).into_bytes()),
            Just(b"Bearer ".to_vec()),
            prop::collection::vec(any::<u8>(), 0..80),
        ]).prop_map(|(path, header)| Request::Authorization { path, header }),
    ]
}

// ---- the properties ----

proptest! {
    #![proptest_config(cases(512))]

    /// Noise into every target: nothing panics.
    #[test]
    fn arbitrary_bytes_never_panic_any_target(target in 0..super::TARGETS.len(), bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        (super::TARGETS[target].1)(&bytes);
    }

    /// Hostile requests (and the same bytes with a few flipped) either convert item by item or
    /// get a typed refusal; what converts applies with every ledger check (`requests::check`).
    #[test]
    fn hostile_requests_convert_or_are_refused_with_a_type(request in request(), flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..3)) {
        let bytes = request.to_bytes();
        let decoded = Request::decode(&bytes);
        prop_assert_eq!(decoded.as_ref(), Some(&request), "prost round trip");
        super::requests::check(&request);
        let mut flipped = bytes.clone();
        for (at, mask) in flips {
            let i = at.index(flipped.len());
            flipped[i] ^= mask;
        }
        super::requests::run(&flipped);
    }

    /// The CRC catches every corrupted byte of a framed value (here: a log entry's command).
    #[test]
    fn a_corrupted_framed_value_is_always_detected(operation in operation(), at in any::<prop::sample::Index>(), mask in 1u8..=255) {
        let command = Command { proposed_at_ns: WORLD_END_NS, operation };
        let mut bytes = ledger_core::codec::encode(&command);
        let i = at.index(bytes.len());
        bytes[i] ^= mask;
        let err = ledger_core::codec::decode::<Command>(&"command", &bytes).unwrap_err();
        prop_assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    }
}

proptest! {
    #![proptest_config(cases(96))]

    /// Random hostile command sequences keep the ledger whole (`apply::check_sequence`).
    #[test]
    fn hostile_command_sequences_keep_every_invariant(commands in commands()) {
        super::apply::check_sequence(&commands);
        // The same sequence as bytes, the corpus format of the `apply` target.
        super::apply::run(&postcard::to_allocvec(&commands).unwrap());
    }
}

/// The generators reach the rules (else the properties above would prove little).
#[test]
fn the_generators_reach_successes_and_refusals_of_every_kind() {
    let mut runner = TestRunner::deterministic();
    let mut codes = BTreeSet::new();
    for _ in 0..96 {
        let commands = commands().new_tree(&mut runner).unwrap().current();
        for applied in super::apply::check_sequence(&commands) {
            codes.extend(applied.results.iter().map(|r| r.code));
        }
    }
    let mut outcomes = BTreeSet::new();
    for _ in 0..600 {
        match super::requests::check(&request().new_tree(&mut runner).unwrap().current()) {
            Outcome::Answered { refused, applied } => {
                codes.extend(refused.iter().copied());
                codes.extend(applied.iter().copied());
                outcomes.insert("answered");
            }
            Outcome::Refused(_) => {
                outcomes.insert("refused");
            }
            Outcome::Undecodable => unreachable!("a generated request decodes"),
        }
    }
    use ResultCode as R;
    for code in [
        R::Ok, R::Exists, R::ExistsWithDifferentFields, R::IdMustNotBeZero, R::IdInvalid, R::IdAlreadyUsed, R::IdempotencyKeyConflict,
        R::IdempotencyKeyInvalid, R::AssetNotFound, R::AssetCodeInvalid, R::AssetScaleOutOfRange, R::DebitAccountNotFound,
        R::AssetMismatch, R::AccountsMustBeDifferent, R::LegsEmpty, R::LegsTooMany, R::AmountInvalid, R::AmountZero,
        R::AmountScaleExceeded, R::AmountOverflow, R::AccountFrozen, R::AccountClosed, R::ExceedsCredits,
        R::PendingTransferNotFound, R::TimeoutTooLarge, R::MetadataInvalid, R::ReasonInvalid, R::KindInvalid, R::TokenNotFound,
        R::MacInvalid, R::OfflineCountExceeded, R::DeviceIdInvalid, R::LimitInvalid, R::Blocked,
    ] {
        assert!(codes.contains(&code), "never reached {code:?}; reached {codes:?}");
    }
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
}

// ---- the corpus ----

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("corpus")
}

/// Every checked-in input of every target runs on every test run: seeds, and every input that
/// once broke a target (named `crash-*`), so a fixed bug stays fixed.
#[test]
fn the_corpus_replays_without_a_failure() {
    for (target, run) in super::TARGETS {
        let dir = corpus_dir().join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).map(|f| f.unwrap().path()).collect();
        files.sort();
        assert!(files.len() >= 8, "{}: {} inputs; the corpus must not vanish", dir.display(), files.len());
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&bytes));
            assert!(outcome.is_ok(), "{} fails target {target}", file.display());
        }
    }
}

/// Writes seed inputs for every target (deterministic): `cargo test --release -p ledger-node
/// fuzz::tests::write_seed_corpus -- --ignored`. The corpus is checked in; re-run after the
/// formats change.
#[test]
#[ignore]
fn write_seed_corpus() {
    let mut runner = TestRunner::deterministic();
    let write = |target: &str, name: String, bytes: &[u8]| {
        let dir = corpus_dir().join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    for i in 0..32 {
        let request = request().new_tree(&mut runner).unwrap().current();
        write("request", format!("seed-{i:02}"), &request.to_bytes());
        let commands = commands().new_tree(&mut runner).unwrap().current();
        write("apply", format!("seed-{i:02}"), &postcard::to_allocvec(&commands).unwrap());
    }
    // Peer seeds: a valid framed value for each codec decoder, and the envelopes.
    let command = Command { proposed_at_ns: WORLD_END_NS, operation: operation().new_tree(&mut runner).unwrap().current() };
    let world = world();
    let account = ledger_core::store::get_account(&world, WALLET).unwrap().unwrap();
    let token = ledger_core::wallet::token::get_token(&world, TOKEN).unwrap().unwrap();
    let vote = crate::raft::Vote::new_committed(3, 1);
    let seeds: Vec<(u8, Vec<u8>)> = vec![
        (5, ledger_core::codec::encode(&vote)),
        (6, ledger_core::codec::encode(&Some(openraft::LogId::new(openraft::impls::leader_id_adv::LeaderId { term: 3, node_id: 1 }, 17)))),
        (9, ledger_core::codec::encode(&crate::raft::CommandResponse::default())),
        (10, ledger_core::codec::encode(&command)),
        (11, ledger_core::codec::encode(&account)),
        (15, ledger_core::codec::encode(&token)),
        (16, prost::Message::encode_to_vec(&crate::raft::network::message_to(ledger_core::codec::encode(&vote), 1, 7))),
        (17, prost::Message::encode_to_vec(&ledger_proto::raft::SnapshotChunk { header: None, data: vec![1, 2, 3], crc32: crc32fast::hash(&[1, 2, 3]), last: true, total_crc32: 0 })),
        (18, b"LGSNAP01\x00\x00\x00\x00\xff".to_vec()),
    ];
    for (tag, body) in seeds {
        write("peer", format!("seed-{tag:02}"), &[vec![tag], body].concat());
    }
    for (target, name, bytes) in crashes() {
        write(target, format!("crash-{name}"), &bytes);
    }
}

/// The inputs that broke a target, minimized by hand from what the generators found. Each is in
/// the corpus (`crash-*`); the ledger tests named in `ledger/tests` pin the fixed behaviour.
fn crashes() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let apply = |commands: Vec<(u64, Operation)>| postcard::to_allocvec(&commands).unwrap();
    let offset_rule = |utc_offset_minutes| LimitInput {
        scope: LimitScope::Account(SHOP),
        max_single_debit: Some(DecimalInput { digits: 1, scale: 0 }),
        daily_debit_amount: None,
        daily_debit_count: None,
        utc_offset_minutes,
    };
    let issue = |token_id, clearing_account_id| IssueTokenInput {
        token_id,
        account_id: WALLET,
        clearing_account_id,
        device_id: DEVICE.into(),
        offline_limit: DecimalInput { digits: 10, scale: 0 },
        max_offline_count: 5,
        validity_ms: 0,
    };
    let spend = OfflineRecordInput { sequence: 1, amount: DecimalInput { digits: 150, scale: 0 }, merchant_account_id: CAPPED, device_time_ms: 1, mac: [0; 32], mac_valid: true };
    vec![
        // `abs()` of i32::MIN overflowed in `risk::set`: apply panicked on every replica.
        ("apply", "limit-offset-i32-min", apply(vec![(1, Operation::SetLimits(vec![offset_rule(i32::MIN)]))])),
        (
            "request",
            "limit-offset-i32-min",
            Request::SetLimits(pb::SetLimitsRequest {
                rules: vec![pb::LimitRule {
                    scope: Some(pb::limit_rule::Scope::AccountId(SHOP.to_be_bytes().to_vec())),
                    max_single_debit: Some("1".into()),
                    utc_offset_minutes: i32::MIN,
                    ..Default::default()
                }],
            })
            .to_bytes(),
        ),
        // A refused hold refused the issue but left its idempotency record and a timestamp.
        ("apply", "issue-closed-clearing", apply(vec![(1, Operation::IssueTokens(vec![issue(950, CLOSED)])), (1, Operation::IssueTokens(vec![issue(951, CAPPED_CLEARING)]))])),
        // An offline payment over-credited a merchant whose credits must not exceed its debits.
        ("apply", "offline-spend-overcredits", apply(vec![(1, Operation::SyncOfflineRecords(vec![SyncInput { token_id: TOKEN, records: vec![spend], reissue_through_sequence: 0 }]))])),
    ]
}

/// The crash inputs replay with the fixed behaviour (not only without a panic).
#[test]
fn the_crash_inputs_now_get_their_refusals() {
    for (target, name, bytes) in crashes() {
        assert!(corpus_dir().join(target).join(format!("crash-{name}")).exists(), "crash-{name} is not in the {target} corpus");
        if target == "apply" {
            let commands: Vec<(u64, Operation)> = postcard::from_bytes(&bytes).unwrap();
            let codes: Vec<ResultCode> = super::apply::check_sequence(&commands).iter().flat_map(|a| a.results.iter().map(|r| r.code)).collect();
            let expected = match name {
                "limit-offset-i32-min" => vec![ResultCode::LimitInvalid],
                "issue-closed-clearing" => vec![ResultCode::AccountClosed, ResultCode::ExceedsDebits],
                _ => vec![ResultCode::ExceedsDebits, ResultCode::Ok],
            };
            assert_eq!(codes, expected, "{name}");
        } else {
            let outcome = super::requests::check(&Request::decode(&bytes).unwrap());
            assert_eq!(outcome, Outcome::Answered { refused: Vec::new(), applied: vec![ResultCode::LimitInvalid] }, "{name}");
        }
    }
}

/// The world is what `world.rs` says it is (the generators rely on it).
#[test]
fn the_world_is_as_documented() {
    let transfer = |id: u128, debit: u128, credit: u128, digits: u128| TransferInput {
        id,
        idempotency_key: format!("doc-{id}"),
        asset: "CNY".into(),
        kind: TransferKind::Posted,
        legs: vec![LegInput { debit_account_id: debit, credit_account_id: credit, amount: DecimalInput { digits, scale: 0 } }],
        pending_id: 0,
        timeout_ms: 0,
        post_amounts: Vec::new(),
        code: 0,
        owner: String::new(),
    };
    let answers = super::apply::check_sequence(&[
        (1, Operation::CreateTransfers(vec![transfer(7_001, FROZEN, SHOP, 1)])),
        (1, Operation::CreateTransfers(vec![transfer(7_002, CLOSED, SHOP, 1)])),
        (1, Operation::CreateTransfers(vec![transfer(7_003, WALLET, SHOP, 901)])),
        (1, Operation::CreateTransfers(vec![transfer(7_004, SHOP, CAPPED, 2)])),
        (1, Operation::CreateTransfers(vec![transfer(7_005, WALLET, SHOP, 850)])),
    ]);
    let codes: Vec<ResultCode> = answers.iter().map(|a| a.results[0].code).collect();
    use ResultCode as R;
    // WALLET: 1,000.00 + 100.00 overdraft - 50.00 held by HOLD - 200.00 held by TOKEN = 850.00.
    assert_eq!(codes, [R::AccountFrozen, R::AccountClosed, R::ExceedsCredits, R::ExceedsDebits, R::Ok]);
}
