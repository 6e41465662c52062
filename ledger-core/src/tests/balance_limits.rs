//! The balance flags: debits_must_not_exceed_credits (plus an overdraft limit) and
//! credits_must_not_exceed_debits, with holds counted against them.

use super::fixtures::*;
use crate::amount::DecimalInput;
use crate::result::ResultCode as R;
use crate::types::*;

/// 1 unlimited, 2 may overdraw by 10.00 and has received 5.00, 3 unlimited.
fn overdrawn() -> Ledger {
    let mut l = Ledger::new();
    l.all_ok(accounts(vec![account(1, "CNY"), limited(2, "CNY", 1_000), account(3, "CNY")]));
    l.ok(transfer(posted(10, &[(1, 2, 500)])));
    l
}

#[test]
fn an_overdraft_lets_debits_exceed_credits_up_to_the_limit() {
    let mut l = overdrawn();
    l.ok(transfer(posted(11, &[(2, 3, 1_500)])));
    assert_eq!(l.b(2), (1_500, 500, 0, 0));
    l.refuses(transfer(posted(12, &[(2, 3, 1)])), R::ExceedsCredits, Some(0));
    // New credits make room again, one for one.
    l.ok(transfer(posted(13, &[(1, 2, 1)])));
    l.ok(transfer(posted(14, &[(2, 3, 1)])));
}

#[test]
fn holds_count_against_the_overdraft_until_released() {
    let mut l = overdrawn();
    l.ok(transfer(pending(11, &[(2, 3, 1_500)], 0)));
    l.refuses(transfer(posted(12, &[(2, 3, 1)])), R::ExceedsCredits, Some(0));
    l.ok(transfer(post(13, 11, &[1_000])));
    l.ok(transfer(posted(14, &[(2, 3, 500)])));
    assert_eq!(l.b(2), (1_500, 500, 0, 0));
}

#[test]
fn an_overdraft_limit_is_kept_in_minor_units_of_the_asset() {
    let mut l = Ledger::new();
    let yuan = AccountInput { overdraft_limit: Some(DecimalInput { digits: 15, scale: 1 }), ..limited(1, "CNY", 0) };
    let yen = AccountInput { overdraft_limit: Some(DecimalInput { digits: 7, scale: 0 }), ..limited(2, "JPY", 0) };
    l.all_ok(accounts(vec![yuan, yen]));
    assert_eq!((l.account(1).overdraft_limit_minor, l.account(2).overdraft_limit_minor), (150, 7));
}

#[test]
fn credits_must_not_exceed_debits_counts_holds() {
    let mut l = Ledger::new();
    l.all_ok(accounts(vec![account(1, "CNY"), capped(2, "CNY")]));
    l.ok(transfer(posted(10, &[(2, 1, 1_000)])));
    l.ok(transfer(pending(11, &[(1, 2, 600)], 0)));
    l.refuses(transfer(posted(12, &[(1, 2, 401)])), R::ExceedsDebits, Some(0));
    l.refuses(transfer(pending(13, &[(1, 2, 401)], 0)), R::ExceedsDebits, Some(0));
    // Posting the hold stays within the cap: it was counted when it was placed.
    l.ok(transfer(post(14, 11, &[])));
    l.ok(transfer(posted(15, &[(1, 2, 400)])));
    assert_eq!(l.b(2), (1_000, 1_000, 0, 0));
}

#[test]
fn a_limit_binds_only_the_side_it_names() {
    // A debit-limited account can always receive; a credit-capped one can always pay.
    let mut l = Ledger::new();
    l.all_ok(accounts(vec![limited(1, "CNY", 0), capped(2, "CNY")]));
    l.ok(transfer(posted(10, &[(2, 1, 700)])));
    assert_eq!((l.b(1), l.b(2)), ((0, 700, 0, 0), (700, 0, 0, 0)));
    l.refuses(transfer(posted(11, &[(1, 2, 701)])), R::ExceedsCredits, Some(0));
    l.ok(transfer(posted(12, &[(1, 2, 700)])));
}

#[test]
fn accounts_without_flags_may_go_either_way() {
    let mut l = Ledger::new();
    l.all_ok(accounts(vec![account(1, "CNY"), account(2, "CNY")]));
    l.ok(transfer(posted(10, &[(1, 2, 1_000_000)])));
    l.ok(transfer(posted(11, &[(2, 1, 3_000_000)])));
    assert_eq!((l.b(1), l.b(2)), ((1_000_000, 3_000_000, 0, 0), (3_000_000, 1_000_000, 0, 0)));
    assert_eq!(l.account(1).status, AccountStatus::Active);
}
