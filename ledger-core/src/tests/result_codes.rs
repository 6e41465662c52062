//! One test per result code `apply` can return: the code, the leg that broke the rule, and that
//! a refused item changed nothing (`Ledger::refuses`). Codes made only by wire decoding
//! (ID_INVALID, KIND_INVALID, ACCOUNT_STATUS_INVALID) belong to the API layer; AMOUNT_INVALID and
//! AMOUNT_NEGATIVE come from `DecimalInput::parse`, tested at the end.
//!
//! Where a limit has a boundary, the value just inside it is shown to pass, so an off-by-one in
//! either direction fails a test.

use std::collections::BTreeMap;

use super::fixtures::*;
use super::wallet as W;
use crate::amount::DecimalInput;
use crate::limits::*;
use crate::result::ResultCode as R;
use crate::store::{self, Table};
use crate::types::*;

// ---- success codes ----

#[test]
fn ok_creates_the_asset_account_transfer_and_status() {
    let mut l = Ledger::world();
    let a = l.ok(assets(vec![asset("EUR", 2)]));
    assert_eq!(store::get_asset(&l.store, "EUR").unwrap().unwrap().timestamp_ns, a.timestamp_ns);
    let c = l.ok(accounts(vec![account(20, "EUR")]));
    assert_eq!((c.id, l.account(20).timestamp_ns), (20, c.timestamp_ns));
    let t = l.ok(transfer(posted(30, &[(BANK, SHOP, 250)])));
    assert_eq!((t.id, l.transfer(30).timestamp_ns), (30, t.timestamp_ns));
    assert_eq!(l.b(SHOP).1, 100 + 250, "SHOP had 1.00 from the posted hold");
    let s = l.ok(statuses(vec![status(SHOP, AccountStatus::Frozen)]));
    assert_eq!((s.id, l.account(SHOP).status), (SHOP, AccountStatus::Frozen));
    assert!(a.timestamp_ns < c.timestamp_ns && c.timestamp_ns < t.timestamp_ns && t.timestamp_ns < s.timestamp_ns);
}

#[test]
fn exists_for_an_asset_or_account_created_before_with_the_same_fields() {
    let mut l = Ledger::world();
    let original = store::get_asset(&l.store, "CNY").unwrap().unwrap().timestamp_ns;
    let r = l.changes_nothing(assets(vec![asset("CNY", 2)]));
    assert_eq!((r.code, r.timestamp_ns), (R::Exists, original));
    let mut referenced = account(REFERENCED, "CNY");
    referenced.external_ref = Some(REF.into());
    let r = l.changes_nothing(accounts(vec![referenced]));
    assert_eq!((r.code, r.timestamp_ns, r.id), (R::Exists, l.account(REFERENCED).timestamp_ns, REFERENCED));
    // Balances and status are not creation fields: the frozen, funded account still "exists".
    let r = l.changes_nothing(accounts(vec![account(FROZEN, "CNY")]));
    assert_eq!(r.code, R::Exists);
    // No overdraft is the same as an explicit zero one (WALLET was created with "0.00").
    let r = l.changes_nothing(accounts(vec![AccountInput { overdraft_limit: None, ..limited(WALLET, "CNY", 0) }]));
    assert_eq!(r.code, R::Exists);
}

#[test]
fn exists_with_different_fields_for_each_differing_creation_field() {
    let mut l = Ledger::world();
    let r = l.changes_nothing(assets(vec![asset("CNY", 3)]));
    assert_eq!((r.code, r.timestamp_ns), (R::ExistsWithDifferentFields, store::get_asset(&l.store, "CNY").unwrap().unwrap().timestamp_ns));
    let base = || account(SHOP, "CNY");
    let variants = [
        AccountInput { asset: "USD".into(), ..base() },
        AccountInput { code: 2, ..base() },
        AccountInput { debits_must_not_exceed_credits: true, ..base() },
        AccountInput { credits_must_not_exceed_debits: true, ..base() },
        AccountInput { metadata: BTreeMap::from([("k".into(), "v".into())]), ..base() },
        AccountInput { external_ref: Some("shop".into()), ..base() },
        limited(WALLET, "CNY", 1),
    ];
    for input in variants {
        let id = input.id;
        let r = l.changes_nothing(accounts(vec![input.clone()]));
        assert_eq!((r.code, r.id, r.timestamp_ns), (R::ExistsWithDifferentFields, id, l.account(id).timestamp_ns), "{input:?}");
    }
}

// ---- ids and keys ----

#[test]
fn id_must_not_be_zero_for_accounts_transfers_legs_and_status_changes() {
    let mut l = Ledger::world();
    l.refuses(accounts(vec![account(0, "CNY")]), R::IdMustNotBeZero, None);
    l.refuses(transfer(TransferInput { idempotency_key: "zero".into(), ..posted(0, &[(BANK, SHOP, 1)]) }), R::IdMustNotBeZero, None);
    let id = l.fresh_id();
    l.refuses(transfer(posted(id, &[(BANK, SHOP, 1), (BANK, 0, 1)])), R::IdMustNotBeZero, Some(1));
    l.refuses(transfer(posted(id, &[(0, SHOP, 1)])), R::IdMustNotBeZero, Some(0));
    l.refuses(statuses(vec![status(0, AccountStatus::Frozen)]), R::IdMustNotBeZero, None);
}

#[test]
fn id_already_used_by_a_transfer_with_another_key() {
    let mut l = Ledger::world();
    let r = l.refuses(transfer(TransferInput { idempotency_key: "another".into(), ..posted(FUNDING, &[(BANK, SHOP, 1)]) }), R::IdAlreadyUsed, None);
    assert_eq!(r.id, FUNDING);
    // The transfer that owns the id is untouched.
    assert_eq!(l.transfer(FUNDING).idempotency_key, format!("key-{FUNDING}"));
}

#[test]
fn idempotency_key_conflict_when_a_key_is_reused_with_other_content() {
    let mut l = Ledger::world();
    let first = l.ok(transfer(posted(30, &[(BANK, SHOP, 100)])));
    // Same key, one cent more: refused, and the id bound to the key is reported.
    let r = l.refuses(transfer(posted(30, &[(BANK, SHOP, 101)])), R::IdempotencyKeyConflict, None);
    assert_eq!(r.id, first.id);
    // Same key with another id is a conflict too (the id is part of the content).
    let r = l.refuses(transfer(TransferInput { id: 31, ..posted(30, &[(BANK, SHOP, 100)]) }), R::IdempotencyKeyConflict, None);
    assert_eq!(r.id, 30);
}

#[test]
fn idempotency_key_invalid_when_empty_or_over_128_bytes() {
    let mut l = Ledger::world();
    let id = l.fresh_id();
    l.refuses(transfer(TransferInput { idempotency_key: String::new(), ..posted(id, &[(BANK, SHOP, 1)]) }), R::IdempotencyKeyInvalid, None);
    let long = "k".repeat(IDEMPOTENCY_KEY_BYTES_MAX + 1);
    l.refuses(transfer(TransferInput { idempotency_key: long, ..posted(id, &[(BANK, SHOP, 1)]) }), R::IdempotencyKeyInvalid, None);
    // 128 bytes (here 64 two-byte characters) is fine.
    let longest = "é".repeat(IDEMPOTENCY_KEY_BYTES_MAX / 2);
    l.ok(transfer(TransferInput { idempotency_key: longest, ..posted(id, &[(BANK, SHOP, 1)]) }));
}

// ---- assets ----

#[test]
fn asset_not_found_for_an_account_or_a_transfer() {
    let mut l = Ledger::world();
    l.refuses(accounts(vec![account(20, "EUR")]), R::AssetNotFound, None);
    let id = l.fresh_id();
    l.refuses(transfer(TransferInput { asset: "EUR".into(), ..posted(id, &[(BANK, SHOP, 1)]) }), R::AssetNotFound, None);
    let id = l.fresh_id();
    l.refuses(transfer(TransferInput { asset: String::new(), ..posted(id, &[(BANK, SHOP, 1)]) }), R::AssetNotFound, None);
}

#[test]
fn asset_code_invalid_unless_1_to_16_of_uppercase_digits_underscore() {
    let mut l = Ledger::world();
    for bad in ["", "cny", "CN-Y", "C Y", "ÄBC", "ABCDEFGHIJKLMNOPQ"] {
        l.refuses(assets(vec![asset(bad, 2)]), R::AssetCodeInvalid, None);
    }
    l.ok(assets(vec![asset("ABCDEFGHIJKLMNOP", 2)]));
    l.ok(assets(vec![asset("X_1", 2)]));
}

#[test]
fn asset_scale_out_of_range_above_18() {
    let mut l = Ledger::world();
    l.refuses(assets(vec![asset("EUR", 19)]), R::AssetScaleOutOfRange, None);
    l.refuses(assets(vec![asset("EUR", 256)]), R::AssetScaleOutOfRange, None);
    l.ok(assets(vec![asset("EUR", 18)]));
    l.ok(assets(vec![asset("VND", 0)]));
}

// ---- accounts ----

#[test]
fn account_not_found_for_a_status_change() {
    let mut l = Ledger::world();
    l.refuses(statuses(vec![status(99, AccountStatus::Frozen)]), R::AccountNotFound, None);
}

#[test]
fn account_code_must_not_be_zero() {
    let mut l = Ledger::world();
    l.refuses(accounts(vec![AccountInput { code: 0, ..account(20, "CNY") }]), R::AccountCodeMustNotBeZero, None);
}

#[test]
fn flags_are_mutually_exclusive() {
    let mut l = Ledger::world();
    let both = AccountInput { credits_must_not_exceed_debits: true, ..limited(20, "CNY", 0) };
    l.refuses(accounts(vec![both]), R::FlagsAreMutuallyExclusive, None);
}

#[test]
fn overdraft_limit_invalid_without_the_debit_flag_or_finer_than_the_asset() {
    let mut l = Ledger::world();
    let unflagged = AccountInput { overdraft_limit: Some(cents(500)), ..account(20, "CNY") };
    l.refuses(accounts(vec![unflagged]), R::OverdraftLimitInvalid, None);
    let too_fine = AccountInput { overdraft_limit: Some(DecimalInput { digits: 5, scale: 3 }), ..limited(20, "CNY", 0) };
    l.refuses(accounts(vec![too_fine]), R::OverdraftLimitInvalid, None);
    let too_big = AccountInput { overdraft_limit: Some(DecimalInput { digits: u128::MAX, scale: 0 }), ..limited(20, "CNY", 0) };
    l.refuses(accounts(vec![too_big]), R::OverdraftLimitInvalid, None);
    // A zero overdraft needs no flag.
    l.ok(accounts(vec![AccountInput { overdraft_limit: Some(cents(0)), ..account(20, "CNY") }]));
}

#[test]
fn metadata_invalid_over_16_entries_or_bad_key_or_value_sizes() {
    let mut l = Ledger::world();
    let with = |m: BTreeMap<String, String>| accounts(vec![AccountInput { metadata: m, ..account(20, "CNY") }]);
    let many = |n: usize| (0..n).map(|i| (format!("k{i}"), "v".to_string())).collect::<BTreeMap<_, _>>();
    l.refuses(with(many(METADATA_ENTRIES_MAX + 1)), R::MetadataInvalid, None);
    l.refuses(with(BTreeMap::from([(String::new(), "v".into())])), R::MetadataInvalid, None);
    l.refuses(with(BTreeMap::from([("k".repeat(65), "v".into())])), R::MetadataInvalid, None);
    l.refuses(with(BTreeMap::from([("k".into(), "v".repeat(257))])), R::MetadataInvalid, None);
    let mut largest = many(METADATA_ENTRIES_MAX - 1);
    largest.insert("k".repeat(METADATA_KEY_BYTES_MAX), "v".repeat(METADATA_VALUE_BYTES_MAX));
    l.ok(with(largest));
}

#[test]
fn external_ref_invalid_when_empty_or_over_128_bytes() {
    let mut l = Ledger::world();
    let with = |r: String| accounts(vec![AccountInput { external_ref: Some(r), ..account(20, "CNY") }]);
    l.refuses(with(String::new()), R::ExternalRefInvalid, None);
    l.refuses(with("r".repeat(EXTERNAL_REF_BYTES_MAX + 1)), R::ExternalRefInvalid, None);
    l.ok(with("r".repeat(EXTERNAL_REF_BYTES_MAX)));
}

#[test]
fn external_ref_already_used_by_another_account() {
    let mut l = Ledger::world();
    l.refuses(accounts(vec![AccountInput { external_ref: Some(REF.into()), ..account(20, "CNY") }]), R::ExternalRefAlreadyUsed, None);
    assert_eq!(store::account_id_by_external_ref(&l.store, REF).unwrap(), Some(REFERENCED));
}

// ---- status changes ----

#[test]
fn balance_not_zero_when_closing_with_posted_or_held_money() {
    let mut l = Ledger::world();
    l.refuses(statuses(vec![status(WALLET, AccountStatus::Closed)]), R::BalanceNotZero, None);
    // Only a hold: posted balances are zero but 1.00 is pending, on both sides.
    l.all_ok(accounts(vec![account(20, "CNY"), account(21, "CNY")]));
    l.ok(transfer(pending(30, &[(20, 21, 100)], 0)));
    l.refuses(statuses(vec![status(20, AccountStatus::Closed)]), R::BalanceNotZero, None);
    l.refuses(statuses(vec![status(21, AccountStatus::Closed)]), R::BalanceNotZero, None);
    l.ok(transfer(void(31, 30)));
    l.all_ok(statuses(vec![status(20, AccountStatus::Closed), status(21, AccountStatus::Closed)]));
}

#[test]
fn reason_invalid_over_256_bytes() {
    let mut l = Ledger::world();
    let with = |reason: String| statuses(vec![StatusChangeInput { account_id: SHOP, status: AccountStatus::Frozen, reason, actor: String::new() }]);
    l.refuses(with("r".repeat(REASON_BYTES_MAX + 1)), R::ReasonInvalid, None);
    l.ok(with("r".repeat(REASON_BYTES_MAX)));
    assert_eq!(l.account(SHOP).status_reason.len(), REASON_BYTES_MAX);
}

#[test]
fn account_closed_for_debits_credits_and_status_changes() {
    let mut l = Ledger::world();
    let id = l.fresh_id();
    l.refuses(transfer(posted(id, &[(CLOSED, SHOP, 1)])), R::AccountClosed, Some(0));
    let id = l.fresh_id();
    l.refuses(transfer(posted(id, &[(BANK, SHOP, 1), (BANK, CLOSED, 1)])), R::AccountClosed, Some(1));
    let id = l.fresh_id();
    l.refuses(transfer(pending(id, &[(BANK, CLOSED, 1)], 0)), R::AccountClosed, Some(0));
    l.refuses(statuses(vec![status(CLOSED, AccountStatus::Active)]), R::AccountClosed, None);
    l.refuses(statuses(vec![status(CLOSED, AccountStatus::Frozen)]), R::AccountClosed, None);
}

#[test]
fn account_frozen_for_debits_and_for_posting_a_hold_it_pays() {
    let mut l = Ledger::world();
    let id = l.fresh_id();
    l.refuses(transfer(posted(id, &[(BANK, SHOP, 1), (FROZEN, SHOP, 1)])), R::AccountFrozen, Some(1));
    let id = l.fresh_id();
    l.refuses(transfer(pending(id, &[(FROZEN, SHOP, 1)], 0)), R::AccountFrozen, Some(0));
    // A hold placed before the freeze cannot be posted (that would spend), only voided.
    l.ok(statuses(vec![status(WALLET, AccountStatus::Frozen)]));
    let id = l.fresh_id();
    l.refuses(transfer(post(id, HOLD, &[])), R::AccountFrozen, Some(0));
}

// ---- transfer shape ----

#[test]
fn legs_empty() {
    let mut l = Ledger::world();
    let id = l.fresh_id();
    l.refuses(transfer(posted(id, &[])), R::LegsEmpty, None);
    l.refuses(transfer(pending(id, &[], 0)), R::LegsEmpty, None);
}

#[test]
fn legs_too_many_above_64() {
    let mut l = Ledger::world();
    let id = l.fresh_id();
    let legs = vec![(BANK, SHOP, 1); TRANSFER_LEGS_MAX + 1];
    l.refuses(transfer(posted(id, &legs)), R::LegsTooMany, None);
    l.ok(transfer(posted(id, &legs[1..])));
    assert_eq!(l.b(SHOP).1, 100 + 64);
}

#[test]
fn legs_not_allowed_on_post_or_void() {
    let mut l = Ledger::world();
    let id = l.fresh_id();
    let with_legs = |t: TransferInput| TransferInput { legs: vec![leg(WALLET, SHOP, 1)], ..t };
    l.refuses(transfer(with_legs(post(id, HOLD, &[]))), R::LegsNotAllowed, None);
    l.refuses(transfer(with_legs(void(id, HOLD))), R::LegsNotAllowed, None);
}

#[test]
fn accounts_must_be_different_within_a_leg() {
    let mut l = Ledger::world();
    let id = l.fresh_id();
    l.refuses(transfer(posted(id, &[(BANK, SHOP, 1), (SHOP, SHOP, 1)])), R::AccountsMustBeDifferent, Some(1));
}

#[test]
fn asset_mismatch_for_a_leg_or_for_a_post_naming_another_asset() {
    let mut l = Ledger::world();
    let id = l.fresh_id();
    l.refuses(transfer(posted(id, &[(BANK, SHOP, 1), (BANK, DOLLARS, 1)])), R::AssetMismatch, Some(1));
    let id = l.fresh_id();
    l.refuses(transfer(posted(id, &[(DOLLARS, SHOP, 1)])), R::AssetMismatch, Some(0));
    let id = l.fresh_id();
    l.refuses(transfer(TransferInput { asset: "USD".into(), ..void(id, HOLD) }), R::AssetMismatch, None);
    // Naming the right asset on a void is fine.
    let id = l.fresh_id();
    l.ok(transfer(TransferInput { asset: "CNY".into(), ..void(id, HOLD) }));
}

#[test]
fn debit_account_not_found() {
    let mut l = Ledger::world();
    let id = l.fresh_id();
    l.refuses(transfer(posted(id, &[(BANK, SHOP, 1), (99, SHOP, 1)])), R::DebitAccountNotFound, Some(1));
}

#[test]
fn credit_account_not_found() {
    let mut l = Ledger::world();
    let id = l.fresh_id();
    l.refuses(transfer(posted(id, &[(BANK, 99, 1)])), R::CreditAccountNotFound, Some(0));
}

// ---- amounts ----

#[test]
fn amount_zero() {
    let mut l = Ledger::world();
    let id = l.fresh_id();
    l.refuses(transfer(posted(id, &[(BANK, SHOP, 1), (BANK, SHOP, 0)])), R::AmountZero, Some(1));
    // Zero written with a scale is still zero.
    let zero = LegInput { amount: DecimalInput { digits: 0, scale: 2 }, ..leg(BANK, SHOP, 1) };
    l.refuses(transfer(TransferInput { legs: vec![zero], ..posted(id, &[]) }), R::AmountZero, Some(0));
}

#[test]
fn amount_scale_exceeded_for_a_leg_or_a_post_amount() {
    let mut l = Ledger::world();
    let id = l.fresh_id();
    let fine = LegInput { amount: DecimalInput { digits: 1, scale: 3 }, ..leg(BANK, SHOP, 1) };
    let legs = vec![leg(BANK, SHOP, 1), fine];
    l.refuses(transfer(TransferInput { legs, ..posted(id, &[]) }), R::AmountScaleExceeded, Some(1));
    let id = l.fresh_id();
    let too_fine = TransferInput { post_amounts: vec![DecimalInput { digits: 1, scale: 3 }], ..post(id, HOLD, &[]) };
    l.refuses(transfer(too_fine), R::AmountScaleExceeded, Some(0));
    // JPY has scale 0: "1.5" is too fine, "1" is fine.
    l.all_ok(accounts(vec![account(20, "JPY"), account(21, "JPY")]));
    let yen = |id, amount| TransferInput { asset: "JPY".into(), legs: vec![LegInput { amount, ..leg(20, 21, 0) }], ..posted(id, &[]) };
    let id = l.fresh_id();
    l.refuses(transfer(yen(id, DecimalInput { digits: 15, scale: 1 })), R::AmountScaleExceeded, Some(0));
    let id = l.fresh_id();
    l.ok(transfer(yen(id, DecimalInput { digits: 1, scale: 0 })));
}

#[test]
fn amount_overflow_when_minor_units_exceed_128_bits() {
    let mut l = Ledger::world();
    let id = l.fresh_id();
    // u128::MAX / 10 whole yuan is more than u128::MAX fen.
    let huge = LegInput { amount: DecimalInput { digits: u128::MAX / 10, scale: 0 }, ..leg(BANK, SHOP, 1) };
    l.refuses(transfer(TransferInput { legs: vec![leg(BANK, SHOP, 1), huge], ..posted(id, &[]) }), R::AmountOverflow, Some(1));
    let id = l.fresh_id();
    let huge_post = TransferInput { post_amounts: vec![DecimalInput { digits: u128::MAX, scale: 0 }], ..post(id, HOLD, &[]) };
    l.refuses(transfer(huge_post), R::AmountOverflow, Some(0));
}

// ---- balance rules ----

#[test]
fn exceeds_credits_counts_posted_debits_and_holds() {
    let mut l = Ledger::world();
    // WALLET: 100.00 in, 1.00 out, 30.00 held: 69.00 available.
    let id = l.fresh_id();
    l.refuses(transfer(posted(id, &[(BANK, SHOP, 1), (WALLET, SHOP, 6_901)])), R::ExceedsCredits, Some(1));
    let id = l.fresh_id();
    l.refuses(transfer(pending(id, &[(WALLET, SHOP, 6_901)], 0)), R::ExceedsCredits, Some(0));
    let id = l.fresh_id();
    l.ok(transfer(posted(id, &[(WALLET, SHOP, 6_900)])));
    let id = l.fresh_id();
    l.refuses(transfer(posted(id, &[(WALLET, SHOP, 1)])), R::ExceedsCredits, Some(0));
}

#[test]
fn exceeds_debits_counts_posted_credits_and_holds() {
    let mut l = Ledger::world();
    let id = l.fresh_id();
    l.refuses(transfer(posted(id, &[(BANK, CAPPED, 1)])), R::ExceedsDebits, Some(0));
    // After 5.00 of debits, 5.00 of credits fit, pending ones included.
    l.ok(transfer(posted(30, &[(CAPPED, BANK, 500)])));
    l.ok(transfer(pending(31, &[(BANK, CAPPED, 300)], 0)));
    let id = l.fresh_id();
    l.refuses(transfer(posted(id, &[(BANK, CAPPED, 201)])), R::ExceedsDebits, Some(0));
    l.ok(transfer(posted(32, &[(BANK, CAPPED, 200)])));
}

#[test]
fn overflows_balance_when_a_balance_would_pass_128_bits() {
    let mut l = Ledger::world();
    let half = LegInput { amount: DecimalInput { digits: u128::MAX / 2 + 1, scale: 2 }, ..leg(BANK, SHOP, 1) };
    let id = l.fresh_id();
    l.ok(transfer(TransferInput { legs: vec![half.clone()], ..posted(id, &[]) }));
    // BANK's debits_posted (the debit side, checked first) would overflow.
    let id = l.fresh_id();
    l.refuses(transfer(TransferInput { legs: vec![leg(BANK, SHOP, 1), half], ..posted(id, &[]) }), R::OverflowsBalance, Some(1));
}

#[test]
fn overflows_balance_when_posted_plus_pending_debits_pass_128_bits() {
    // Each balance fits, but the limit check adds debits_posted and debits_pending.
    let mut l = Ledger::new();
    let big = |digits| DecimalInput { digits, scale: 0 };
    let unlimited = AccountInput { overdraft_limit: Some(big(u128::MAX / 100)), ..limited(1, "CNY", 0) };
    l.all_ok(accounts(vec![unlimited, account(2, "CNY")]));
    let half = u128::MAX / 200 + 1;
    let with = |t: TransferInput, digits| TransferInput { legs: vec![LegInput { amount: big(digits), ..leg(1, 2, 0) }], ..t };
    l.ok(transfer(with(pending(10, &[], 0), half)));
    l.ok(transfer(with(posted(11, &[]), half / 2)));
    l.refuses(transfer(with(posted(12, &[]), half)), R::OverflowsBalance, Some(0));
}

#[test]
fn overflows_balance_when_posting_a_hold_onto_a_full_balance() {
    let mut l = Ledger::new();
    l.all_ok(accounts(vec![account(1, "CNY"), account(2, "CNY"), account(3, "CNY")]));
    l.ok(transfer(pending(10, &[(1, 3, 100)], 0)));
    // Raw minor units: scale 2 on a scale-2 asset.
    let fill = LegInput { amount: DecimalInput { digits: u128::MAX - 50, scale: 2 }, ..leg(2, 3, 0) };
    l.ok(transfer(TransferInput { legs: vec![fill], ..posted(11, &[]) }));
    l.refuses(transfer(post(12, 10, &[])), R::OverflowsBalance, Some(0));
    // Posting less fits exactly.
    l.ok(transfer(post(13, 10, &[50])));
    assert_eq!(l.b(3), (0, u128::MAX, 0, 0));
}

// ---- two-phase ----

#[test]
fn pending_transfer_not_found() {
    let mut l = Ledger::world();
    let id = l.fresh_id();
    l.refuses(transfer(post(id, 99, &[])), R::PendingTransferNotFound, None);
}

#[test]
fn pending_transfer_not_pending_for_a_posted_transfer_or_a_post() {
    let mut l = Ledger::world();
    let id = l.fresh_id();
    l.refuses(transfer(post(id, FUNDING, &[])), R::PendingTransferNotPending, None);
    let id = l.fresh_id();
    l.refuses(transfer(void(id, 60)), R::PendingTransferNotPending, None);
}

#[test]
fn pending_transfer_already_posted() {
    let mut l = Ledger::world();
    let id = l.fresh_id();
    l.refuses(transfer(post(id, POSTED_HOLD, &[])), R::PendingTransferAlreadyPosted, None);
    let id = l.fresh_id();
    l.refuses(transfer(void(id, POSTED_HOLD)), R::PendingTransferAlreadyPosted, None);
}

#[test]
fn pending_transfer_already_voided() {
    let mut l = Ledger::world();
    let id = l.fresh_id();
    l.refuses(transfer(post(id, VOIDED_HOLD, &[])), R::PendingTransferAlreadyVoided, None);
    let id = l.fresh_id();
    l.refuses(transfer(void(id, VOIDED_HOLD)), R::PendingTransferAlreadyVoided, None);
}

#[test]
fn pending_transfer_expired_once_expired() {
    let mut l = Ledger::world();
    let id = l.fresh_id();
    l.refuses(transfer(post(id, EXPIRED_HOLD, &[])), R::PendingTransferExpired, None);
    let id = l.fresh_id();
    l.refuses(transfer(void(id, EXPIRED_HOLD)), R::PendingTransferExpired, None);
}

#[test]
fn post_amount_exceeds_pending() {
    let mut l = Ledger::world();
    l.ok(transfer(pending(30, &[(BANK, SHOP, 100), (BANK, REFERENCED, 200)], 0)));
    l.refuses(transfer(post(31, 30, &[100, 201])), R::PostAmountExceedsPending, Some(1));
    l.ok(transfer(post(32, 30, &[100, 200])));
}

#[test]
fn post_amounts_mismatch_unless_one_per_leg_on_a_post() {
    let mut l = Ledger::world();
    let id = l.fresh_id();
    l.refuses(transfer(post(id, HOLD, &[1, 1])), R::PostAmountsMismatch, None);
    let id = l.fresh_id();
    l.refuses(transfer(TransferInput { post_amounts: vec![cents(1)], ..void(id, HOLD) }), R::PostAmountsMismatch, None);
    let id = l.fresh_id();
    l.refuses(transfer(TransferInput { post_amounts: vec![cents(1)], ..posted(id, &[(BANK, SHOP, 1)]) }), R::PostAmountsMismatch, None);
    let id = l.fresh_id();
    l.refuses(transfer(post(id, HOLD, &[1; TRANSFER_LEGS_MAX + 1])), R::PostAmountsMismatch, None);
}

#[test]
fn timeout_reserved_for_pending() {
    let mut l = Ledger::world();
    let id = l.fresh_id();
    l.refuses(transfer(TransferInput { timeout_ms: 5, ..posted(id, &[(BANK, SHOP, 1)]) }), R::TimeoutReservedForPending, None);
    l.refuses(transfer(TransferInput { timeout_ms: 5, ..post(id, HOLD, &[]) }), R::TimeoutReservedForPending, None);
}

#[test]
fn timeout_too_large_above_2_pow_31_ms() {
    let mut l = Ledger::world();
    let id = l.fresh_id();
    l.refuses(transfer(pending(id, &[(BANK, SHOP, 1)], TIMEOUT_MS_MAX + 1)), R::TimeoutTooLarge, None);
    let r = l.ok(transfer(pending(id, &[(BANK, SHOP, 1)], TIMEOUT_MS_MAX)));
    assert_eq!(l.transfer(id).expires_at_ns, r.timestamp_ns + TIMEOUT_MS_MAX * MS);
}

#[test]
fn pending_id_invalid_on_a_new_transfer_or_missing_on_a_post() {
    let mut l = Ledger::world();
    let id = l.fresh_id();
    l.refuses(transfer(TransferInput { pending_id: HOLD, ..posted(id, &[(BANK, SHOP, 1)]) }), R::PendingIdInvalid, None);
    l.refuses(transfer(TransferInput { pending_id: HOLD, ..pending(id, &[(BANK, SHOP, 1)], 0) }), R::PendingIdInvalid, None);
    l.refuses(transfer(post(id, 0, &[])), R::PendingIdInvalid, None);
    l.refuses(transfer(void(id, 0)), R::PendingIdInvalid, None);
}

// ---- wire-level amount codes ----

#[test]
fn amount_invalid_negative_and_overflow_from_parsing() {
    for bad in ["", "-", "1.", ".5", "1e3", "+1", "1,5", " 1", "1.2.3", "--1", "١"] {
        assert_eq!(DecimalInput::parse(bad), Err(R::AmountInvalid), "{bad:?}");
    }
    assert_eq!(DecimalInput::parse("-0.01"), Err(R::AmountNegative));
    assert_eq!(DecimalInput::parse(&"9".repeat(AMOUNT_DIGITS_MAX + 1)), Err(R::AmountOverflow));
    // Trailing fractional zeros are not significant digits; leading zeros are refused (issue
    // 15: one spelling per number).
    let padded = format!("{}.000", "9".repeat(AMOUNT_DIGITS_MAX));
    assert_eq!(DecimalInput::parse(&padded).map(|d| d.scale), Ok(0));
    let leading = format!("000{}", "9".repeat(AMOUNT_DIGITS_MAX));
    assert_eq!(DecimalInput::parse(&leading), Err(R::AmountInvalid));
}

// ---- batches ----

#[test]
fn results_in_a_batch_are_independent() {
    let mut l = Ledger::world();
    let batch = vec![
        posted(30, &[(BANK, SHOP, 100)]),
        posted(31, &[(WALLET, SHOP, 1_000_000)]),
        posted(32, &[(BANK, SHOP, 200)]),
        posted(33, &[(SHOP, SHOP, 1)]),
        posted(34, &[(BANK, 99, 1)]),
        posted(35, &[(SHOP, BANK, 50)]),
    ];
    let results = l.apply(transfers(batch)).results;
    let codes: Vec<_> = results.iter().map(|r| (r.code, r.leg_index)).collect();
    assert_eq!(
        codes,
        [
            (R::Ok, None),
            (R::ExceedsCredits, Some(0)),
            (R::Ok, None),
            (R::AccountsMustBeDifferent, Some(0)),
            (R::CreditAccountNotFound, Some(0)),
            (R::Ok, None),
        ]
    );
    // Exactly the three good ones moved: 1.00 + 2.00 in, 0.50 out.
    assert_eq!(l.b(SHOP), (50, 100 + 300, 0, 3_000));
    assert_eq!(l.b(WALLET), (100, 10_000, 3_000, 0));
    let stored: Vec<u128> = [30, 31, 32, 33, 34, 35].into_iter().filter(|&id| l.find_transfer(id).is_some()).collect();
    assert_eq!(stored, [30, 32, 35]);
}

// ---- account changes (more in tests/account_changes.rs) ----

#[test]
fn overdraft_below_drawn_when_a_limit_would_not_cover_what_is_drawn() {
    use super::account_changes::{update, updates};
    let mut l = Ledger::new();
    l.all_ok(accounts(vec![limited(WALLET, "CNY", 500), account(SHOP, "CNY")]));
    l.ok(transfer(posted(30, &[(WALLET, SHOP, 300)])));
    let to = |c| updates(vec![crate::account::update::AccountUpdateInput { overdraft_limit: Some(cents(c)), ..update(WALLET) }]);
    l.refuses(to(299), R::OverdraftBelowDrawn, None);
    l.ok(to(300));
}

#[test]
fn external_ref_not_bound_when_a_rebind_names_a_holder_of_a_free_number() {
    use super::account_changes::rebind;
    let mut l = Ledger::world();
    l.refuses(rebind("+8610000000000", REFERENCED, SHOP), R::ExternalRefNotBound, None);
    l.ok(rebind("+8610000000000", 0, SHOP));
}

#[test]
fn account_has_external_ref_when_binding_to_an_account_with_a_number() {
    use super::account_changes::rebind;
    let mut l = Ledger::world();
    l.ok(rebind("+8610000000000", 0, SHOP));
    l.refuses(rebind(REF, REFERENCED, SHOP), R::AccountHasExternalRef, None);
    l.ok(rebind("+8610000000000", SHOP, 0));
    l.ok(rebind(REF, REFERENCED, SHOP));
}

// ---- risk rules (more in tests/risk_rules.rs) ----

#[test]
fn risk_amount_exceeded_past_a_credit_cap_of_the_day() {
    use super::risk_rules::{credit_cap, rule};
    use crate::risk::rules::Window;
    let mut l = Ledger::world();
    l.ok(rule(1, credit_cap(SHOP, Window::Day, 1_000)));
    l.ok(transfer(posted(30, &[(BANK, SHOP, 1_000)])));
    l.refuses(transfer(posted(31, &[(BANK, SHOP, 1)])), R::RiskAmountExceeded, Some(0));
}

#[test]
fn risk_count_exceeded_past_the_transfers_of_a_minute() {
    use super::risk_rules::{count_cap, rule};
    use crate::risk::rules::{Side, Window};
    let mut l = Ledger::world();
    l.ok(rule(1, count_cap(WALLET, Side::Debit, Window::Minute, 2)));
    l.ok(transfer(posted(30, &[(WALLET, SHOP, 1)])));
    l.ok(transfer(posted(31, &[(WALLET, SHOP, 1)])));
    l.refuses(transfer(posted(32, &[(BANK, SHOP, 1), (WALLET, SHOP, 1)])), R::RiskCountExceeded, Some(1));
}

#[test]
fn risk_balance_exceeded_when_a_credit_would_pass_the_balance_cap() {
    use super::risk_rules::{balance_cap, rule};
    let mut l = Ledger::world();
    // WALLET: 100.00 in, 1.00 out posted: 99.00; the cap is 101.00.
    l.ok(rule(1, balance_cap(WALLET, 10_100)));
    l.ok(transfer(posted(30, &[(BANK, WALLET, 200)])));
    l.refuses(transfer(posted(31, &[(BANK, WALLET, 1)])), R::RiskBalanceExceeded, Some(0));
}

// ---- coverage ----

/// The test of each code. The match is exhaustive, so a new ResultCode does not compile until
/// it is given a test here (or declared wire-only).
fn test_of(code: R) -> Option<&'static str> {
    Some(match code {
        R::Ok => "ok_creates_the_asset_account_transfer_and_status",
        R::Exists => "exists_for_an_asset_or_account_created_before_with_the_same_fields",
        R::ExistsWithDifferentFields => "exists_with_different_fields_for_each_differing_creation_field",
        R::IdMustNotBeZero => "id_must_not_be_zero_for_accounts_transfers_legs_and_status_changes",
        R::IdAlreadyUsed => "id_already_used_by_a_transfer_with_another_key",
        R::IdempotencyKeyConflict => "idempotency_key_conflict_when_a_key_is_reused_with_other_content",
        R::IdempotencyKeyInvalid => "idempotency_key_invalid_when_empty_or_over_128_bytes",
        R::AssetNotFound => "asset_not_found_for_an_account_or_a_transfer",
        R::AssetCodeInvalid => "asset_code_invalid_unless_1_to_16_of_uppercase_digits_underscore",
        R::AssetScaleOutOfRange => "asset_scale_out_of_range_above_18",
        R::AccountNotFound => "account_not_found_for_a_status_change",
        R::DebitAccountNotFound => "debit_account_not_found",
        R::CreditAccountNotFound => "credit_account_not_found",
        R::AssetMismatch => "asset_mismatch_for_a_leg_or_for_a_post_naming_another_asset",
        R::AccountsMustBeDifferent => "accounts_must_be_different_within_a_leg",
        R::LegsEmpty => "legs_empty",
        R::LegsTooMany => "legs_too_many_above_64",
        R::AmountInvalid | R::AmountNegative => "amount_invalid_negative_and_overflow_from_parsing",
        R::AmountZero => "amount_zero",
        R::AmountScaleExceeded => "amount_scale_exceeded_for_a_leg_or_a_post_amount",
        R::AmountOverflow => "amount_overflow_when_minor_units_exceed_128_bits",
        R::AccountFrozen => "account_frozen_for_debits_and_for_posting_a_hold_it_pays",
        R::AccountClosed => "account_closed_for_debits_credits_and_status_changes",
        R::ExceedsCredits => "exceeds_credits_counts_posted_debits_and_holds",
        R::ExceedsDebits => "exceeds_debits_counts_posted_credits_and_holds",
        R::OverflowsBalance => "overflows_balance_when_a_balance_would_pass_128_bits",
        R::PendingTransferNotFound => "pending_transfer_not_found",
        R::PendingTransferNotPending => "pending_transfer_not_pending_for_a_posted_transfer_or_a_post",
        R::PendingTransferAlreadyPosted => "pending_transfer_already_posted",
        R::PendingTransferAlreadyVoided => "pending_transfer_already_voided",
        R::PendingTransferExpired => "pending_transfer_expired_once_expired",
        R::PostAmountExceedsPending => "post_amount_exceeds_pending",
        R::PostAmountsMismatch => "post_amounts_mismatch_unless_one_per_leg_on_a_post",
        R::TimeoutReservedForPending => "timeout_reserved_for_pending",
        R::FlagsAreMutuallyExclusive => "flags_are_mutually_exclusive",
        R::MetadataInvalid => "metadata_invalid_over_16_entries_or_bad_key_or_value_sizes",
        R::ExternalRefInvalid => "external_ref_invalid_when_empty_or_over_128_bytes",
        R::ExternalRefAlreadyUsed => "external_ref_already_used_by_another_account",
        R::BalanceNotZero => "balance_not_zero_when_closing_with_posted_or_held_money",
        R::AccountCodeMustNotBeZero => "account_code_must_not_be_zero",
        R::OverdraftLimitInvalid => "overdraft_limit_invalid_without_the_debit_flag_or_finer_than_the_asset",
        R::LegsNotAllowed => "legs_not_allowed_on_post_or_void",
        R::PendingIdInvalid => "pending_id_invalid_on_a_new_transfer_or_missing_on_a_post",
        R::TimeoutTooLarge => "timeout_too_large_above_2_pow_31_ms",
        R::ReasonInvalid => "reason_invalid_over_256_bytes",
        R::TokenNotFound => "token_not_found_for_a_record_or_a_revocation",
        R::MacInvalid => "mac_invalid_record_is_an_exception_and_moves_nothing",
        R::SequenceReused => "sequence_reused_with_other_content_revokes_the_token",
        R::OfflineLimitExceeded => "offline_limit_exceeded_past_the_rest_of_the_hold",
        R::OfflineCountExceeded => "offline_count_exceeded_past_the_window_or_for_a_bad_count",
        R::TokenNotActive => "token_not_active_for_reissue_when_revoked",
        R::SyncIncomplete => "sync_incomplete_when_a_sequence_is_missing",
        R::DeviceIdInvalid => "device_id_invalid_when_empty_or_over_128_bytes",
        R::DebitLimitExceeded => "debit_limit_exceeded_above_the_largest_single_debit",
        R::DailyDebitAmountExceeded => "daily_debit_amount_exceeded_within_the_day_at_the_rules_offset",
        R::DailyDebitCountExceeded => "daily_debit_count_exceeded_after_the_days_debits",
        R::LimitInvalid => "limit_invalid_for_an_offset_beyond_14_hours",
        R::Blocked => "blocked_device_gets_no_token_and_blocked_tokens_post_nothing",
        R::OverdraftBelowDrawn => "overdraft_below_drawn_when_a_limit_would_not_cover_what_is_drawn",
        R::ExternalRefNotBound => "external_ref_not_bound_when_a_rebind_names_a_holder_of_a_free_number",
        R::AccountHasExternalRef => "account_has_external_ref_when_binding_to_an_account_with_a_number",
        R::RiskAmountExceeded => "risk_amount_exceeded_past_a_credit_cap_of_the_day",
        R::RiskCountExceeded => "risk_count_exceeded_past_the_transfers_of_a_minute",
        R::RiskBalanceExceeded => "risk_balance_exceeded_when_a_credit_would_pass_the_balance_cap",
        R::RefundOriginalNotFound => "refund_original_not_found_when_missing_or_another_principals",
        R::RefundOriginalNotPosted => "refund_original_not_posted_for_a_hold_or_a_void",
        R::RefundAssetMismatch => "refund_asset_mismatch_for_another_asset",
        R::RefundAccountsMismatch => "refund_accounts_mismatch_unless_the_legs_reverse_the_original",
        R::RefundExceedsRefundable => "refund_exceeds_refundable_counting_earlier_partial_refunds",
        R::RefundKindInvalid => "refund_kind_invalid_unless_the_refund_is_posted",
        R::ReferenceInvalid => "reference_invalid_over_64_bytes_and_transfer_metadata_bounded",
        R::LinkedEventFailed => "linked_event_failed_for_the_rest_of_a_broken_chain",
        R::LinkedEventChainOpen => "linked_event_chain_open_when_the_last_item_is_linked",
        // Made only when decoding the wire format: tested in the API layer.
        R::IdInvalid | R::AccountStatusInvalid | R::KindInvalid => return None,
        // Never produced by the rules: read from the wire only (ledger-proto `convert` tests).
        R::Unspecified | R::Unrecognized(_) => return None,
    })
}

// ---- offline wallets (fixtures in tests/wallet.rs) ----

fn wallet_exception_count(l: &Ledger) -> usize {
    crate::wallet::sync::exceptions(&l.store, W::TOKEN, 100).unwrap().len()
}

#[test]
fn token_not_found_for_a_record_or_a_revocation() {
    let mut l = W::wallet_world();
    let op = Operation::SyncOfflineRecords(vec![crate::wallet::SyncInput { token_id: 77, records: vec![W::record(1, 100, W::MERCHANT)], reissue_through_sequence: 0 }]);
    assert_eq!(l.apply(op).results[0].code, R::TokenNotFound);
    let revoke = Operation::RevokeTokens(vec![crate::wallet::RevokeTokenInput { token_id: 77, reason: String::new() }]);
    assert_eq!(l.one(revoke).code, R::TokenNotFound);
}

#[test]
fn mac_invalid_record_is_an_exception_and_moves_nothing() {
    let mut l = W::wallet_world();
    let before = l.all_balances();
    let mut r = W::record(1, 100, W::MERCHANT);
    r.mac_valid = false;
    assert_eq!(l.apply(W::upload(vec![r], 0)).results[0].code, R::MacInvalid);
    assert_eq!((l.all_balances(), wallet_exception_count(&l)), (before, 1));
}

#[test]
fn sequence_reused_with_other_content_revokes_the_token() {
    let mut l = W::wallet_world();
    assert_eq!(l.apply(W::upload(vec![W::record(1, 100, W::MERCHANT)], 0)).results[0].code, R::Ok);
    assert_eq!(l.apply(W::upload(vec![W::record(1, 101, W::MERCHANT)], 0)).results[0].code, R::SequenceReused);
    let token = crate::wallet::token::get_token(&l.store, W::TOKEN).unwrap().unwrap();
    assert_eq!(token.status, crate::wallet::TokenStatus::Revoked);
}

#[test]
fn offline_limit_exceeded_past_the_rest_of_the_hold() {
    let mut l = W::wallet_world();
    // Exactly the limit passes; one cent more after it does not.
    assert_eq!(l.apply(W::upload(vec![W::record(1, 10_000, W::MERCHANT)], 0)).results[0].code, R::Ok);
    assert_eq!(l.apply(W::upload(vec![W::record(2, 1, W::MERCHANT)], 0)).results[0].code, R::OfflineLimitExceeded);
}

#[test]
fn offline_count_exceeded_past_the_window_or_for_a_bad_count() {
    let mut l = W::wallet_world();
    let r = l.apply(W::upload(vec![W::record(10, 1, W::MERCHANT), W::record(11, 1, W::MERCHANT)], 0)).results;
    assert_eq!((r[0].code, r[1].code), (R::Ok, R::OfflineCountExceeded));
    assert_eq!(l.one(Operation::IssueTokens(vec![W::issue(901, 100, 0)])).code, R::OfflineCountExceeded);
    assert_eq!(l.one(Operation::IssueTokens(vec![W::issue(902, 100, WALLET_OFFLINE_COUNT_MAX + 1)])).code, R::OfflineCountExceeded);
}

#[test]
fn token_not_active_for_reissue_when_revoked() {
    let mut l = W::wallet_world();
    l.ok(Operation::RevokeTokens(vec![crate::wallet::RevokeTokenInput { token_id: W::TOKEN, reason: "stolen".into() }]));
    let r = l.apply(W::upload(vec![W::record(1, 100, W::MERCHANT)], 1)).results;
    assert_eq!((r[0].code, r[1].code), (R::Ok, R::TokenNotActive));
}

#[test]
fn sync_incomplete_when_a_sequence_is_missing() {
    let mut l = W::wallet_world();
    let r = l.apply(W::upload(vec![W::record(2, 100, W::MERCHANT)], 2)).results;
    assert_eq!((r[0].code, r[1].code), (R::Ok, R::SyncIncomplete));
}

#[test]
fn device_id_invalid_when_empty_or_over_128_bytes() {
    let mut l = W::wallet_world();
    let mut input = W::issue(903, 100, 5);
    input.device_id = String::new();
    assert_eq!(l.one(Operation::IssueTokens(vec![input.clone()])).code, R::DeviceIdInvalid);
    input.device_id = "d".repeat(WALLET_DEVICE_ID_BYTES_MAX + 1);
    assert_eq!(l.one(Operation::IssueTokens(vec![input.clone()])).code, R::DeviceIdInvalid);
    input.device_id = "d".repeat(WALLET_DEVICE_ID_BYTES_MAX);
    assert_eq!(l.one(Operation::IssueTokens(vec![input])).code, R::Ok);
}

// ---- risk limits and the blocklist (more in tests/risk.rs) ----

#[test]
fn debit_limit_exceeded_above_the_largest_single_debit() {
    let mut l = Ledger::world();
    l.ok(super::risk::limit_account(WALLET, Some(1_000), None, None, 0));
    // Two legs from WALLET add up: 6.00 + 5.00 > 10.00, reported at the first leg debiting it.
    let id = l.fresh_id();
    l.refuses(transfer(posted(id, &[(WALLET, SHOP, 600), (WALLET, SHOP, 500)])), R::DebitLimitExceeded, Some(0));
    let id = l.fresh_id();
    l.ok(transfer(posted(id, &[(WALLET, SHOP, 1_000)])));
}

#[test]
fn daily_debit_amount_exceeded_within_the_day_at_the_rules_offset() {
    let mut l = Ledger::world();
    l.ok(super::risk::limit_account(WALLET, None, Some(1_500), None, 480));
    let id = l.fresh_id();
    l.ok(transfer(posted(id, &[(WALLET, SHOP, 1_000)])));
    let id = l.fresh_id();
    l.refuses(transfer(posted(id, &[(WALLET, SHOP, 501)])), R::DailyDebitAmountExceeded, Some(0));
    let id = l.fresh_id();
    l.ok(transfer(posted(id, &[(WALLET, SHOP, 500)])));
}

#[test]
fn daily_debit_count_exceeded_after_the_days_debits() {
    let mut l = Ledger::world();
    l.ok(super::risk::limit_account(WALLET, None, None, Some(2), 0));
    for _ in 0..2 {
        let id = l.fresh_id();
        l.ok(transfer(posted(id, &[(WALLET, SHOP, 1)])));
    }
    let id = l.fresh_id();
    l.refuses(transfer(posted(id, &[(WALLET, SHOP, 1)])), R::DailyDebitCountExceeded, Some(0));
    // Credits to the account are not debits.
    let id = l.fresh_id();
    l.ok(transfer(posted(id, &[(BANK, WALLET, 1)])));
}

#[test]
fn limit_invalid_for_an_offset_beyond_14_hours() {
    let mut l = Ledger::world();
    l.refuses(super::risk::limit_account(WALLET, Some(1), None, None, 14 * 60 + 1), R::LimitInvalid, None);
    l.refuses(super::risk::limit_account(WALLET, Some(1), None, None, -14 * 60 - 1), R::LimitInvalid, None);
    // The extremes of i32 (i32::MIN has no i32 absolute value: it once panicked apply).
    l.refuses(super::risk::limit_account(WALLET, Some(1), None, None, i32::MIN), R::LimitInvalid, None);
    l.refuses(super::risk::limit_account(WALLET, Some(1), None, None, i32::MAX), R::LimitInvalid, None);
    l.ok(super::risk::limit_account(WALLET, Some(1), None, None, -14 * 60));
}

#[test]
fn blocked_device_gets_no_token_and_blocked_tokens_post_nothing() {
    use crate::wallet::blocklist::{BlockInput, BlockTarget};
    let mut l = W::wallet_world();
    let block = |target, blocked| Operation::SetBlocklist(vec![BlockInput { target, blocked, reason: "stolen".into() }]);
    l.ok(block(BlockTarget::Device(W::DEVICE.into()), true));
    assert_eq!(l.one(Operation::IssueTokens(vec![W::issue(904, 100, 5)])).code, R::Blocked);
    let before = l.all_balances();
    let r = l.apply(W::upload(vec![W::record(1, 100, W::MERCHANT)], 0)).results;
    assert_eq!(r[0].code, R::Blocked);
    assert_eq!(l.all_balances(), before, "nothing moves");
    assert_eq!(wallet_exception_count(&l), 1, "the record is an exception");
    l.ok(block(BlockTarget::Device(W::DEVICE.into()), false));
    let r = l.apply(W::upload(vec![W::record(1, 100, W::MERCHANT)], 0)).results;
    assert_eq!(r[0].code, R::Ok, "unblocked");
    l.ok(block(BlockTarget::Token(W::TOKEN), true));
    let r = l.apply(W::upload(vec![W::record(2, 100, W::MERCHANT)], 0)).results;
    assert_eq!(r[0].code, R::Blocked);
    assert_eq!(crate::wallet::token::get_token(&l.store, W::TOKEN).unwrap().unwrap().status, crate::wallet::TokenStatus::Revoked);
    // A posted record sent again is still a replay, not an exception.
    let r = l.apply(W::upload(vec![W::record(1, 100, W::MERCHANT)], 0)).results;
    assert_eq!((r[0].code, r[0].replay), (R::Ok, true));
}

#[test]
fn every_result_code_has_a_test_in_this_file() {
    // Every rule's variant, by its serialized index (one byte each below 128); the wire-only
    // `Unspecified` and `Unrecognized` come after them.
    let codes: Vec<R> = (0u8..128)
        .map_while(|i| postcard::from_bytes::<R>(&[i]).ok())
        .take_while(|c| !matches!(c, R::Unspecified))
        .collect();
    assert_eq!(codes.len(), 77);
    // 62 is skipped: the wire's OK.
    assert!(codes.iter().enumerate().all(|(i, c)| c.as_u32() == if i < 62 { i as u32 } else { i as u32 + 1 }), "wire numbers follow the variants");
    let source = include_str!("result_codes.rs");
    for code in codes {
        if let Some(test) = test_of(code) {
            assert!(source.contains(&format!("#[test]\nfn {test}()")), "{code:?}: no test named {test}");
        }
    }
}

// ---- refunds, references, linked chains (more in tests/lifecycle.rs) ----

/// SHOP received 5.00 from WALLET (order 900): the original of the refund tests.
fn paid_order(l: &mut Ledger) -> u128 {
    l.ok(transfer(posted(900, &[(WALLET, SHOP, 500)])));
    900
}

fn refund(id: u128, original: u128, legs: &[(u128, u128, u128)]) -> Operation {
    with(vec![(posted(id, legs), refund_of(original))])
}

#[test]
fn refund_original_not_found_when_missing_or_another_principals() {
    let mut l = Ledger::world();
    l.refuses(refund(901, 4_242, &[(SHOP, WALLET, 100)]), R::RefundOriginalNotFound, None);
    let order = paid_order(&mut l);
    // The order was created without an owner; a principal's refund of it reads it as absent.
    let mut other = posted(902, &[(SHOP, WALLET, 100)]);
    other.owner = "checkout-b".into();
    l.refuses(with(vec![(other, refund_of(order))]), R::RefundOriginalNotFound, None);
}

#[test]
fn refund_original_not_posted_for_a_hold_or_a_void() {
    let mut l = Ledger::world();
    l.refuses(refund(903, HOLD, &[(SHOP, WALLET, 100)]), R::RefundOriginalNotPosted, None);
    l.refuses(refund(904, 61, &[(SHOP, WALLET, 100)]), R::RefundOriginalNotPosted, None);
    // The post of a hold is posted money: refundable (transfer 60 posted 1.00 WALLET -> SHOP).
    l.ok(refund(905, 60, &[(SHOP, WALLET, 100)]));
}

#[test]
fn refund_asset_mismatch_for_another_asset() {
    let mut l = Ledger::world();
    let order = paid_order(&mut l);
    l.ok(accounts(vec![account(4_243, "USD")]));
    let mut dollars = posted(906, &[(DOLLARS, 4_243, 100)]);
    dollars.asset = "USD".into();
    l.refuses(with(vec![(dollars, refund_of(order))]), R::RefundAssetMismatch, None);
}

#[test]
fn refund_accounts_mismatch_unless_the_legs_reverse_the_original() {
    let mut l = Ledger::world();
    let order = paid_order(&mut l);
    // Same direction as the order, and a third account: neither reverses it.
    l.refuses(refund(907, order, &[(WALLET, SHOP, 100)]), R::RefundAccountsMismatch, Some(0));
    l.refuses(refund(908, order, &[(SHOP, WALLET, 100), (SHOP, BANK, 100)]), R::RefundAccountsMismatch, Some(1));
}

#[test]
fn refund_exceeds_refundable_counting_earlier_partial_refunds() {
    let mut l = Ledger::world();
    let order = paid_order(&mut l);
    l.refuses(refund(909, order, &[(SHOP, WALLET, 501)]), R::RefundExceedsRefundable, Some(0));
    l.ok(refund(910, order, &[(SHOP, WALLET, 300)]));
    l.refuses(refund(911, order, &[(SHOP, WALLET, 201)]), R::RefundExceedsRefundable, Some(0));
    // Exactly the rest passes, and then nothing is left.
    l.ok(refund(912, order, &[(SHOP, WALLET, 200)]));
    let refunded = store::get_refunded(&l.store, order).unwrap().unwrap();
    assert_eq!((refunded.legs_minor, refunded.count), (vec![500], 2));
    assert_eq!(crate::transfer::refund::refundable(&l.transfer(order), Some(&store::get_refunded(&l.store, order).unwrap().unwrap())), Some(0));
    l.refuses(refund(913, order, &[(SHOP, WALLET, 1)]), R::RefundExceedsRefundable, Some(0));
}

#[test]
fn refund_kind_invalid_unless_the_refund_is_posted() {
    let mut l = Ledger::world();
    let order = paid_order(&mut l);
    l.refuses(with(vec![(pending(914, &[(SHOP, WALLET, 100)], 0), refund_of(order))]), R::RefundKindInvalid, None);
    l.refuses(with(vec![(void(915, HOLD), refund_of(order))]), R::RefundKindInvalid, None);
}

#[test]
fn reference_invalid_over_64_bytes_and_transfer_metadata_bounded() {
    let mut l = Ledger::world();
    let extras = |reference: String, metadata: BTreeMap<String, String>| TransferExtras {
        details: TransferDetails { reference, metadata, ..TransferDetails::default() },
        linked: false,
    };
    let id = l.fresh_id();
    let long = "r".repeat(TRANSFER_REFERENCE_BYTES_MAX + 1);
    l.refuses(with(vec![(posted(id, &[(BANK, SHOP, 1)]), extras(long, BTreeMap::new()))]), R::ReferenceInvalid, None);
    let too_many: BTreeMap<String, String> = (0..=METADATA_ENTRIES_MAX).map(|i| (format!("k{i}"), "v".into())).collect();
    l.refuses(with(vec![(posted(id, &[(BANK, SHOP, 1)]), extras(String::new(), too_many))]), R::MetadataInvalid, None);
    let empty_key = BTreeMap::from([(String::new(), "v".to_string())]);
    l.refuses(with(vec![(posted(id, &[(BANK, SHOP, 1)]), extras(String::new(), empty_key))]), R::MetadataInvalid, None);
    let long_value = BTreeMap::from([("k".to_string(), "v".repeat(METADATA_VALUE_BYTES_MAX + 1))]);
    l.refuses(with(vec![(posted(id, &[(BANK, SHOP, 1)]), extras(String::new(), long_value))]), R::MetadataInvalid, None);
    // At the bounds: passes, and is stored.
    let full: BTreeMap<String, String> = (0..METADATA_ENTRIES_MAX).map(|i| (format!("k{i}"), "v".repeat(METADATA_VALUE_BYTES_MAX))).collect();
    let at_bounds = extras("r".repeat(TRANSFER_REFERENCE_BYTES_MAX), full);
    l.ok(with(vec![(posted(id, &[(BANK, SHOP, 1)]), at_bounds.clone())]));
    assert_eq!(store::get_transfer_details(&l.store, id).unwrap(), Some(at_bounds.details));
}

#[test]
fn linked_event_failed_for_the_rest_of_a_broken_chain() {
    let mut l = Ledger::world();
    l.ok(accounts(vec![account(4_244, "USD")]));
    let before = l.store.clone();
    // Leg 1 of the second transfer breaks WALLET's balance rule: the first (in USD) and the
    // third are not applied either, and nothing of the chain is written.
    let mut dollars = posted(920, &[(DOLLARS, 4_244, 100)]);
    dollars.asset = "USD".into();
    let op = with(vec![
        (dollars, linked()),
        (posted(921, &[(BANK, SHOP, 100), (WALLET, SHOP, 1_000_000)]), linked()),
        (posted(922, &[(BANK, SHOP, 100)]), TransferExtras::default()),
    ]);
    let applied = l.apply(op);
    let codes: Vec<_> = applied.results.iter().map(|r| (r.code, r.leg_index, r.id)).collect();
    assert_eq!(codes, [(R::LinkedEventFailed, None, 920), (R::ExceedsCredits, Some(1), 921), (R::LinkedEventFailed, None, 922)]);
    assert!(applied.entries.is_empty());
    let mut after = l.store.clone();
    after.tables.remove(&Table::Meta);
    let mut before_rows = before.clone();
    before_rows.tables.remove(&Table::Meta);
    assert!(same_rows(&before_rows, &after), "a broken chain writes nothing");
}

#[test]
fn linked_event_chain_open_when_the_last_item_is_linked() {
    let mut l = Ledger::world();
    let before = l.all_balances();
    let op = with(vec![(posted(923, &[(BANK, SHOP, 100)]), linked()), (posted(924, &[(BANK, SHOP, 100)]), linked())]);
    let codes: Vec<_> = l.apply(op).results.iter().map(|r| r.code).collect();
    assert_eq!(codes, [R::LinkedEventChainOpen, R::LinkedEventChainOpen]);
    assert_eq!(l.all_balances(), before);
    assert!(l.find_transfer(923).is_none() && l.find_transfer(924).is_none());
    // After a complete chain, a lone linked item is an open chain too.
    let op = with(vec![(posted(925, &[(BANK, SHOP, 100)]), TransferExtras::default()), (posted(926, &[(BANK, SHOP, 100)]), linked())]);
    let codes: Vec<_> = l.apply(op).results.iter().map(|r| r.code).collect();
    assert_eq!(codes, [R::Ok, R::LinkedEventChainOpen]);
    assert!(l.find_transfer(926).is_none());
}
