//! The ledger every fuzz case starts from: a little of everything a hostile command can meet
//! (accounts of every flag and status, a hold, an issued wallet token, a limit rule, a blocked
//! device), built once through `apply` and cloned per case.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use ledger_core::amount::DecimalInput;
use ledger_core::apply::apply;
use ledger_core::result::ResultCode;
use ledger_core::risk::{LimitInput, LimitScope};
use ledger_core::store::MemStore;
use ledger_core::types::*;
use ledger_core::wallet::IssueTokenInput;
use ledger_core::wallet::blocklist::{BlockInput, BlockTarget};

/// Proposal time of the first command of the world; fuzz commands follow `WORLD_END_NS`.
pub const T0_NS: u64 = 1_700_000_000_000_000_000;
pub const WORLD_END_NS: u64 = T0_NS + 100 * MS;
const MS: u64 = 1_000_000;

/// Assets: CNY (scale 2), JPY (0), BIG (18: the largest scale).
pub const ASSETS: [(&str, u32); 3] = [("CNY", 2), ("JPY", 0), ("BIG", 18)];

pub const BANK: u128 = 1;
/// debits_must_not_exceed_credits, 100.00 overdraft; funded 1,000.00; the wallet of `TOKEN`.
pub const WALLET: u128 = 2;
pub const SHOP: u128 = 3;
/// credits_must_not_exceed_debits.
pub const CAPPED: u128 = 4;
pub const FROZEN: u128 = 5;
pub const CLOSED: u128 = 6;
/// JPY.
pub const YEN: u128 = 7;
/// BIG, funded with u128::MAX / 2 minor units.
pub const BIG_BANK: u128 = 8;
pub const BIG_WALLET: u128 = 9;
/// The clearing account of `TOKEN`.
pub const CLEARING: u128 = 10;
/// credits_must_not_exceed_debits, CNY: a clearing account no hold can credit.
pub const CAPPED_CLEARING: u128 = 11;
/// Every account id of the world, and the largest id.
pub const ACCOUNT_IDS: [u128; 12] = [BANK, WALLET, SHOP, CAPPED, FROZEN, CLOSED, YEN, BIG_BANK, BIG_WALLET, CLEARING, CAPPED_CLEARING, u128::MAX];

/// A pending 50.00 WALLET -> SHOP, no timeout.
pub const HOLD: u128 = 500;
/// An issued token of WALLET (device `DEVICE`, 10 offline payments, 200.00).
pub const TOKEN: u128 = 900;
pub const DEVICE: &str = "device-1";
pub const BLOCKED_DEVICE: &str = "stolen-phone";
/// The master key of the world's token (the documented dev key).
pub const MASTER_KEY: &[u8] = crate::api::wallet::DEV_MASTER_KEY;

fn account(id: u128, asset: &str) -> AccountInput {
    AccountInput {
        id,
        asset: asset.into(),
        code: 1,
        debits_must_not_exceed_credits: false,
        credits_must_not_exceed_debits: false,
        overdraft_limit: None,
        metadata: BTreeMap::new(),
        external_ref: None,
    }
}

fn posted(id: u128, asset: &str, kind: TransferKind, legs: &[(u128, u128, u128)]) -> TransferInput {
    TransferInput {
        id,
        idempotency_key: format!("world-{id}"),
        asset: asset.into(),
        kind,
        legs: legs
            .iter()
            .map(|&(debit, credit, digits)| LegInput { debit_account_id: debit, credit_account_id: credit, amount: DecimalInput { digits, scale: 0 } })
            .collect(),
        pending_id: 0,
        timeout_ms: 0,
        post_amounts: Vec::new(),
        code: 0,
        owner: String::new(),
    }
}

/// The world's commands, in order (the world is what applying them to an empty store gives).
pub fn commands() -> Vec<Command> {
    let capped = |id, asset| AccountInput { credits_must_not_exceed_debits: true, ..account(id, asset) };
    let operations = vec![
        Operation::CreateAssets(ASSETS.iter().map(|(code, scale)| AssetInput { code: code.to_string(), scale: *scale }).collect()),
        Operation::CreateAccounts(vec![
            account(BANK, "CNY"),
            AccountInput {
                debits_must_not_exceed_credits: true,
                overdraft_limit: Some(DecimalInput { digits: 100, scale: 0 }),
                external_ref: Some("+8613800000000".into()),
                metadata: BTreeMap::from([("tier".into(), "2".into())]),
                ..account(WALLET, "CNY")
            },
            account(SHOP, "CNY"),
            capped(CAPPED, "CNY"),
            account(FROZEN, "CNY"),
            account(CLOSED, "CNY"),
            account(YEN, "JPY"),
            account(BIG_BANK, "BIG"),
            AccountInput { debits_must_not_exceed_credits: true, ..account(BIG_WALLET, "BIG") },
            account(CLEARING, "CNY"),
            capped(CAPPED_CLEARING, "CNY"),
            account(u128::MAX, "CNY"),
        ]),
        Operation::CreateTransfers(vec![
            posted(100, "CNY", TransferKind::Posted, &[(BANK, WALLET, 1_000), (BANK, FROZEN, 1), (CAPPED, SHOP, 1)]),
            posted(101, "BIG", TransferKind::Posted, &[(BIG_BANK, BIG_WALLET, u128::MAX / 2 / 10u128.pow(18))]),
            posted(HOLD, "CNY", TransferKind::Pending, &[(WALLET, SHOP, 50)]),
        ]),
        Operation::SetAccountStatus(vec![
            StatusChangeInput { account_id: FROZEN, status: AccountStatus::Frozen, reason: "world".into(), actor: String::new() },
            StatusChangeInput { account_id: CLOSED, status: AccountStatus::Closed, reason: "world".into(), actor: String::new() },
        ]),
        Operation::IssueTokens(vec![IssueTokenInput {
            token_id: TOKEN,
            account_id: WALLET,
            clearing_account_id: CLEARING,
            device_id: DEVICE.into(),
            offline_limit: DecimalInput { digits: 200, scale: 0 },
            max_offline_count: 10,
            validity_ms: 0,
        }]),
        Operation::SetLimits(vec![LimitInput {
            scope: LimitScope::Account(SHOP),
            max_single_debit: Some(DecimalInput { digits: 300, scale: 0 }),
            daily_debit_amount: None,
            daily_debit_count: Some(1_000),
            utc_offset_minutes: 480,
        }]),
        Operation::SetBlocklist(vec![BlockInput { target: BlockTarget::Device(BLOCKED_DEVICE.into()), blocked: true, reason: "world".into() }]),
    ];
    operations.into_iter().enumerate().map(|(i, operation)| Command { proposed_at_ns: T0_NS + i as u64 * MS, operation }).collect()
}

/// A fresh copy of the world.
pub fn world() -> MemStore {
    static WORLD: OnceLock<MemStore> = OnceLock::new();
    WORLD
        .get_or_init(|| {
            let mut store = MemStore::default();
            for command in commands() {
                let applied = apply(&mut store, &command).expect("the world applies");
                assert!(applied.results.iter().all(|r| r.code == ResultCode::Ok), "world command {command}: {:?}", applied.results);
            }
            store
        })
        .clone()
}
