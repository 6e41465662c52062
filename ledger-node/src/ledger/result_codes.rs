//! One case per result code the state machine returns: the code, the leg that broke the rule,
//! and that a refused item moved nothing. (Wire-only codes: api/convert.rs and amount.rs.)

use std::collections::BTreeMap;

use super::amount::DecimalInput;
use super::result::{ItemResult, ResultCode as R};
use super::store::{self, MemStore, Table};
use super::types::*;
use super::apply;

const T0: u64 = 1_000_000_000;

fn amount(digits: u128) -> DecimalInput {
    DecimalInput { digits, scale: 2 }
}

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

fn posted(id: u128, legs: &[(u128, u128, u128)]) -> TransferInput {
    TransferInput {
        id,
        idempotency_key: format!("k{id}"),
        asset: "CNY".into(),
        kind: TransferKind::Posted,
        legs: legs.iter().map(|&(d, c, a)| LegInput { debit_account_id: d, credit_account_id: c, amount: amount(a) }).collect(),
        pending_id: 0,
        timeout_ms: 0,
        post_amounts: Vec::new(),
        code: 0,
    }
}

fn pending(id: u128, legs: &[(u128, u128, u128)], timeout_ms: u64) -> TransferInput {
    TransferInput { kind: TransferKind::Pending, timeout_ms, ..posted(id, legs) }
}

fn resolve(id: u128, kind: TransferKind, pending_id: u128, post: &[u128]) -> TransferInput {
    TransferInput {
        kind,
        legs: Vec::new(),
        asset: String::new(),
        pending_id,
        post_amounts: post.iter().map(|&a| amount(a)).collect(),
        ..posted(id, &[])
    }
}

struct Ledger {
    store: MemStore,
    now: u64,
    fresh_id: u128,
}

impl Ledger {
    /// CNY (scale 2) and USD; accounts: 1 source, 2 wallet (debits <= credits) with 100.00,
    /// 3 merchant, 4 (credits <= debits), 5 USD, 6 frozen, 7 closed; pending 50 of 30.00 (2 -> 3),
    /// pending 51 with a 1 ms timeout, 52 posted, 53 voided.
    fn new() -> Ledger {
        let mut l = Ledger { store: MemStore::default(), now: T0, fresh_id: 1_000 };
        l.op(Operation::CreateAssets(vec![AssetInput { code: "CNY".into(), scale: 2 }, AssetInput { code: "USD".into(), scale: 2 }]));
        let mut wallet = account(2, "CNY");
        wallet.debits_must_not_exceed_credits = true;
        let mut four = account(4, "CNY");
        four.credits_must_not_exceed_debits = true;
        let mut with_ref = account(8, "CNY");
        with_ref.external_ref = Some("+8613800000000".into());
        let accounts = vec![account(1, "CNY"), wallet, account(3, "CNY"), four, account(5, "USD"), account(6, "CNY"), account(7, "CNY"), with_ref];
        l.op(Operation::CreateAccounts(accounts));
        l.op(Operation::CreateTransfers(vec![
            posted(10, &[(1, 2, 10_000), (1, 6, 100)]),
            pending(50, &[(2, 3, 3_000)], 0),
            pending(51, &[(2, 3, 100)], 1),
            pending(52, &[(2, 3, 100)], 0),
            pending(53, &[(2, 3, 100)], 0),
        ]));
        l.op(Operation::CreateTransfers(vec![resolve(60, TransferKind::PostPending, 52, &[]), resolve(61, TransferKind::VoidPending, 53, &[])]));
        let status = |id, status| StatusChangeInput { account_id: id, status, reason: String::new() };
        l.op(Operation::SetAccountStatus(vec![status(6, AccountStatus::Frozen), status(7, AccountStatus::Closed)]));
        l
    }

    fn op(&mut self, operation: Operation) -> Vec<ItemResult> {
        self.now += 1_000_000;
        apply(&mut self.store, &Command { proposed_at_ns: self.now, operation }).unwrap().results
    }

    fn balances(&self) -> Vec<(u128, Balances)> {
        self.store.tables[&Table::Accounts].values().map(|v| store::decode::<Account>(Table::Accounts, v).unwrap()).map(|a| (a.id, a.balances)).collect()
    }

    /// Applies one item; asserts its code and leg, and that balances and transfers did not change.
    /// Transfer id 20 with key "k20" stands for a fresh id and key: refusals are recorded under
    /// their key, so each case needs its own.
    fn refuses(&mut self, mut operation: Operation, code: R, leg: Option<u8>) {
        if let Operation::CreateTransfers(items) = &mut operation {
            for t in items.iter_mut().filter(|t| t.id == 20 && t.idempotency_key == "k20") {
                self.fresh_id += 1;
                t.id = self.fresh_id;
                t.idempotency_key = format!("k{}", self.fresh_id);
            }
        }
        let (balances, transfers) = (self.balances(), self.store.tables.get(&Table::Transfers).cloned());
        let results = self.op(operation);
        assert_eq!((results[0].code, results[0].leg_index), (code, leg), "{results:?}");
        assert_eq!(self.balances(), balances, "{code:?} moved money");
        assert_eq!(self.store.tables.get(&Table::Transfers).cloned(), transfers, "{code:?} stored a transfer");
    }
}

fn transfers(t: TransferInput) -> Operation {
    Operation::CreateTransfers(vec![t])
}

#[test]
fn setup_succeeds() {
    let l = Ledger::new();
    let wallet = store::get_account(&l.store, 2).unwrap().unwrap().balances;
    // 52 posted 1.00; 53 voided; 51 (1 ms timeout) expired at the next command; 50 holds 30.00.
    assert_eq!((wallet.credits_posted, wallet.debits_posted, wallet.debits_pending), (10_000, 100, 3_000));
    assert_eq!(store::get_transfer(&l.store, 51).unwrap().unwrap().pending_state, PendingState::Expired);
}

#[test]
fn asset_codes() {
    let mut l = Ledger::new();
    let asset = |code: &str, scale| Operation::CreateAssets(vec![AssetInput { code: code.into(), scale }]);
    assert_eq!(l.op(asset("CNY", 2))[0].code, R::Exists);
    assert_eq!(l.op(asset("CNY", 3))[0].code, R::ExistsWithDifferentFields);
    l.refuses(asset("cny", 2), R::AssetCodeInvalid, None);
    l.refuses(asset("", 2), R::AssetCodeInvalid, None);
    l.refuses(asset("ABCDEFGHIJKLMNOPQ", 2), R::AssetCodeInvalid, None);
    l.refuses(asset("EUR", 19), R::AssetScaleOutOfRange, None);
    assert_eq!(l.op(asset("EUR", 18))[0].code, R::Ok);
}

#[test]
fn account_codes() {
    let mut l = Ledger::new();
    let create = |a: AccountInput| Operation::CreateAccounts(vec![a]);
    assert_eq!(l.op(create(account(1, "CNY")))[0].code, R::Exists);
    assert_eq!(l.op(create(account(1, "USD")))[0].code, R::ExistsWithDifferentFields);
    l.refuses(create(account(0, "CNY")), R::IdMustNotBeZero, None);
    l.refuses(create(account(20, "EUR")), R::AssetNotFound, None);
    l.refuses(create(AccountInput { code: 0, ..account(20, "CNY") }), R::AccountCodeMustNotBeZero, None);
    let both = AccountInput { debits_must_not_exceed_credits: true, credits_must_not_exceed_debits: true, ..account(20, "CNY") };
    l.refuses(create(both), R::FlagsAreMutuallyExclusive, None);
    l.refuses(create(AccountInput { overdraft_limit: Some(amount(5)), ..account(20, "CNY") }), R::OverdraftLimitInvalid, None);
    let fine_overdraft = AccountInput { debits_must_not_exceed_credits: true, overdraft_limit: Some(DecimalInput { digits: 5, scale: 3 }), ..account(20, "CNY") };
    l.refuses(create(fine_overdraft), R::OverdraftLimitInvalid, None);
    let many: BTreeMap<String, String> = (0..17).map(|i| (format!("k{i}"), "v".into())).collect();
    l.refuses(create(AccountInput { metadata: many, ..account(20, "CNY") }), R::MetadataInvalid, None);
    let long_value = BTreeMap::from([("k".to_string(), "v".repeat(257))]);
    l.refuses(create(AccountInput { metadata: long_value, ..account(20, "CNY") }), R::MetadataInvalid, None);
    l.refuses(create(AccountInput { external_ref: Some("r".repeat(129)), ..account(20, "CNY") }), R::ExternalRefInvalid, None);
    l.refuses(create(AccountInput { external_ref: Some("+8613800000000".into()), ..account(20, "CNY") }), R::ExternalRefAlreadyUsed, None);
    assert_eq!(store::account_id_by_external_ref(&l.store, "+8613800000000").unwrap(), Some(8));
}

#[test]
fn status_codes() {
    let mut l = Ledger::new();
    let status = |id, status, reason: &str| Operation::SetAccountStatus(vec![StatusChangeInput { account_id: id, status, reason: reason.into() }]);
    l.refuses(status(99, AccountStatus::Frozen, ""), R::AccountNotFound, None);
    l.refuses(status(3, AccountStatus::Frozen, &"r".repeat(257)), R::ReasonInvalid, None);
    l.refuses(status(2, AccountStatus::Closed, ""), R::BalanceNotZero, None);
    l.refuses(status(7, AccountStatus::Active, ""), R::AccountClosed, None);
    // Asking for the status an account has is OK and changes nothing.
    let again = l.op(status(7, AccountStatus::Closed, ""));
    assert_eq!((again[0].code, again[0].timestamp_ns), (R::Ok, 0));
}

#[test]
fn transfer_shape_codes() {
    let mut l = Ledger::new();
    l.refuses(transfers(posted(0, &[(1, 3, 100)])), R::IdMustNotBeZero, None);
    l.refuses(transfers(TransferInput { idempotency_key: String::new(), ..posted(20, &[(1, 3, 100)]) }), R::IdempotencyKeyInvalid, None);
    l.refuses(transfers(TransferInput { idempotency_key: "k".repeat(129), ..posted(20, &[(1, 3, 100)]) }), R::IdempotencyKeyInvalid, None);
    l.refuses(transfers(posted(20, &[])), R::LegsEmpty, None);
    let too_many: Vec<(u128, u128, u128)> = (0..65).map(|_| (1, 3, 1)).collect();
    l.refuses(transfers(posted(20, &too_many)), R::LegsTooMany, None);
    l.refuses(transfers(posted(20, &[(1, 3, 100), (3, 3, 100)])), R::AccountsMustBeDifferent, Some(1));
    l.refuses(transfers(posted(20, &[(1, 3, 100), (1, 3, 0)])), R::AmountZero, Some(1));
    l.refuses(transfers(TransferInput { timeout_ms: 5, ..posted(20, &[(1, 3, 100)]) }), R::TimeoutReservedForPending, None);
    l.refuses(transfers(pending(20, &[(1, 3, 100)], (1 << 31) + 1)), R::TimeoutTooLarge, None);
    l.refuses(transfers(TransferInput { pending_id: 50, ..posted(20, &[(1, 3, 100)]) }), R::PendingIdInvalid, None);
    l.refuses(transfers(resolve(20, TransferKind::PostPending, 0, &[])), R::PendingIdInvalid, None);
    l.refuses(transfers(TransferInput { legs: posted(0, &[(1, 3, 1)]).legs, ..resolve(20, TransferKind::VoidPending, 50, &[]) }), R::LegsNotAllowed, None);
    l.refuses(transfers(resolve(20, TransferKind::VoidPending, 50, &[100])), R::PostAmountsMismatch, None);
}

#[test]
fn transfer_state_codes() {
    let mut l = Ledger::new();
    l.refuses(transfers(posted(20, &[(99, 3, 100)])), R::DebitAccountNotFound, Some(0));
    l.refuses(transfers(posted(20, &[(1, 3, 100), (1, 99, 100)])), R::CreditAccountNotFound, Some(1));
    l.refuses(transfers(TransferInput { asset: "EUR".into(), ..posted(20, &[(1, 3, 100)]) }), R::AssetNotFound, None);
    l.refuses(transfers(posted(20, &[(1, 5, 100)])), R::AssetMismatch, Some(0));
    l.refuses(transfers(TransferInput { legs: vec![LegInput { debit_account_id: 1, credit_account_id: 3, amount: DecimalInput { digits: 1, scale: 3 } }], ..posted(20, &[]) }), R::AmountScaleExceeded, Some(0));
    let huge = LegInput { debit_account_id: 1, credit_account_id: 3, amount: DecimalInput { digits: u128::MAX / 10, scale: 0 } };
    l.refuses(transfers(TransferInput { legs: vec![huge], ..posted(20, &[]) }), R::AmountOverflow, Some(0));
    l.refuses(transfers(posted(20, &[(6, 3, 100)])), R::AccountFrozen, Some(0));
    l.refuses(transfers(posted(20, &[(1, 7, 100)])), R::AccountClosed, Some(0));
    // The wallet has 100.00 - 1.00 posted - 30.00 held = 69.00 available.
    l.refuses(transfers(posted(20, &[(2, 3, 6_901)])), R::ExceedsCredits, Some(0));
    assert_eq!(l.op(transfers(posted(24, &[(2, 3, 6_900)])))[0].code, R::Ok);
    l.refuses(transfers(posted(20, &[(1, 4, 100)])), R::ExceedsDebits, Some(0));
    let near_max = LegInput { debit_account_id: 1, credit_account_id: 3, amount: DecimalInput { digits: u128::MAX / 2 + 1, scale: 2 } };
    assert_eq!(l.op(transfers(TransferInput { legs: vec![near_max.clone()], ..posted(21, &[]) }))[0].code, R::Ok);
    l.refuses(transfers(TransferInput { legs: vec![near_max], ..posted(22, &[]) }), R::OverflowsBalance, Some(0));
    // A frozen account still receives.
    assert_eq!(l.op(transfers(posted(23, &[(1, 6, 100)])))[0].code, R::Ok);
}

#[test]
fn idempotency_codes() {
    let mut l = Ledger::new();
    let first = l.op(transfers(posted(40, &[(1, 3, 100)])))[0];
    assert_eq!(first.code, R::Ok);
    let again = l.op(transfers(posted(40, &[(1, 3, 100)])))[0];
    assert_eq!((again.code, again.replay, again.timestamp_ns), (R::Ok, true, first.timestamp_ns));
    l.refuses(transfers(posted(40, &[(1, 3, 101)])), R::IdempotencyKeyConflict, None);
    l.refuses(transfers(TransferInput { idempotency_key: "other".into(), ..posted(40, &[(1, 3, 100)]) }), R::IdAlreadyUsed, None);
    // A failure is recorded too: the retry returns it, even after the cause is gone.
    let failed = l.op(transfers(posted(30, &[(2, 3, 1_000_000)])))[0];
    assert_eq!(failed.code, R::ExceedsCredits);
    l.op(transfers(posted(31, &[(1, 2, 2_000_000)])));
    let retry = l.op(transfers(posted(30, &[(2, 3, 1_000_000)])))[0];
    assert_eq!((retry.code, retry.replay, retry.timestamp_ns), (R::ExceedsCredits, true, failed.timestamp_ns));
}

#[test]
fn two_phase_codes() {
    let mut l = Ledger::new();
    l.refuses(transfers(resolve(20, TransferKind::PostPending, 99, &[])), R::PendingTransferNotFound, None);
    l.refuses(transfers(resolve(20, TransferKind::PostPending, 10, &[])), R::PendingTransferNotPending, None);
    l.refuses(transfers(resolve(20, TransferKind::PostPending, 52, &[])), R::PendingTransferAlreadyPosted, None);
    l.refuses(transfers(resolve(20, TransferKind::VoidPending, 53, &[])), R::PendingTransferAlreadyVoided, None);
    l.refuses(transfers(resolve(20, TransferKind::PostPending, 51, &[])), R::PendingTransferExpired, None);
    l.refuses(transfers(resolve(20, TransferKind::PostPending, 50, &[3_001])), R::PostAmountExceedsPending, Some(0));
    l.refuses(transfers(resolve(20, TransferKind::PostPending, 50, &[1, 2])), R::PostAmountsMismatch, None);
    l.refuses(transfers(TransferInput { asset: "USD".into(), ..resolve(20, TransferKind::VoidPending, 50, &[]) }), R::AssetMismatch, None);
    // Part of the hold posts; the rest is released.
    assert_eq!(l.op(transfers(resolve(20, TransferKind::PostPending, 50, &[1_000])))[0].code, R::Ok);
    let merchant = store::get_account(&l.store, 3).unwrap().unwrap().balances;
    assert_eq!((merchant.credits_posted, merchant.credits_pending), (1_100, 0));
    assert_eq!(store::get_transfer(&l.store, 50).unwrap().unwrap().pending_state, PendingState::Posted);
}
