//! A transfer's legs apply in order and all together, or not at all.

use super::fixtures::*;
use crate::result::ResultCode as R;
use crate::store::Table;

#[test]
fn a_failing_last_leg_moves_no_balance() {
    let mut l = Ledger::world();
    let before = l.all_balances();
    // Legs 0 and 1 pass on their own; leg 2 takes WALLET past its 69.00 available.
    let legs = [(BANK, SHOP, 100), (WALLET, SHOP, 6_000), (WALLET, REFERENCED, 1_000)];
    l.refuses(transfer(posted(30, &legs)), R::ExceedsCredits, Some(2));
    assert_eq!(l.all_balances(), before);
    assert!(l.find_transfer(30).is_none());
    assert!(l.entries(BANK).iter().chain(&l.entries(SHOP)).all(|e| e.transfer_id != 30));
}

#[test]
fn a_failing_last_leg_of_a_hold_holds_nothing() {
    let mut l = Ledger::world();
    let legs = [(BANK, SHOP, 100), (WALLET, SHOP, 6_000), (BANK, 99, 1)];
    l.refuses(transfer(pending(30, &legs, 1_000)), R::CreditAccountNotFound, Some(2));
    assert_eq!((l.b(BANK).2, l.b(WALLET).2, l.b(SHOP).3), (0, 3_000, 3_000), "only HOLD's 30.00 is held");
    // Nothing was scheduled to expire either.
    assert!(l.store.tables.get(&Table::PendingExpiry).is_none_or(|t| t.is_empty()));
}

#[test]
fn an_account_repeated_across_legs_is_rolled_back_as_a_whole() {
    let mut l = Ledger::world();
    // WALLET is credited, then debited twice; the third leg fails on a missing account.
    let legs = [(BANK, WALLET, 500), (WALLET, SHOP, 7_000), (WALLET, 99, 100)];
    l.refuses(transfer(posted(30, &legs)), R::CreditAccountNotFound, Some(2));
    assert_eq!(l.b(WALLET), (100, 10_000, 3_000, 0));
}

#[test]
fn legs_apply_in_order_so_a_later_leg_may_spend_an_earlier_credit() {
    let mut l = Ledger::new();
    l.all_ok(accounts(vec![account(1, "CNY"), limited(2, "CNY", 0), account(3, "CNY")]));
    l.ok(transfer(posted(10, &[(1, 2, 500), (2, 3, 500)])));
    assert_eq!(l.b(2), (500, 500, 0, 0));
    // The other way round the spend comes first, and is refused.
    l.refuses(transfer(posted(11, &[(2, 3, 500), (1, 2, 500)])), R::ExceedsCredits, Some(0));
}

#[test]
fn a_pending_leg_may_not_spend_an_earlier_pending_credit() {
    // A hold's credit is not spendable (only posted credits count), even within one transfer.
    let mut l = Ledger::new();
    l.all_ok(accounts(vec![account(1, "CNY"), limited(2, "CNY", 0), account(3, "CNY")]));
    l.refuses(transfer(pending(10, &[(1, 2, 500), (2, 3, 500)], 0)), R::ExceedsCredits, Some(1));
}
