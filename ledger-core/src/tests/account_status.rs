//! Account status: frozen accounts receive but do not send; closing needs zero balances and is
//! final; asking for the status an account already has is a no-op success.

use super::fixtures::*;
use crate::result::ResultCode as R;
use crate::types::*;

#[test]
fn a_frozen_account_receives_credits_but_cannot_send() {
    let mut l = Ledger::world();
    l.ok(transfer(posted(30, &[(BANK, FROZEN, 250)])));
    l.ok(transfer(pending(31, &[(BANK, FROZEN, 50)], 0)));
    assert_eq!(l.b(FROZEN), (0, 350, 0, 50));
    l.refuses(transfer(posted(32, &[(FROZEN, SHOP, 1)])), R::AccountFrozen, Some(0));
    l.refuses(transfer(pending(33, &[(FROZEN, SHOP, 1)], 0)), R::AccountFrozen, Some(0));
}

#[test]
fn unfreezing_allows_debits_again() {
    let mut l = Ledger::world();
    let r = l.ok(statuses(vec![StatusChangeInput { account_id: FROZEN, status: AccountStatus::Active, reason: "cleared".into(), actor: String::new() }]));
    let account = l.account(FROZEN);
    assert_eq!((account.status, account.status_reason.as_str()), (AccountStatus::Active, "cleared"));
    assert!(r.timestamp_ns > 0);
    l.ok(transfer(posted(30, &[(FROZEN, SHOP, 100)])));
}

#[test]
fn a_frozen_payer_may_void_a_hold_or_post_nothing_of_it_but_not_spend_it() {
    let mut l = Ledger::world();
    l.ok(statuses(vec![status(WALLET, AccountStatus::Frozen)]));
    l.refuses(transfer(post(30, HOLD, &[1])), R::AccountFrozen, Some(0));
    // Posting zero spends nothing: it only releases the hold.
    l.ok(transfer(post(31, HOLD, &[0])));
    assert_eq!(l.b(WALLET), (100, 10_000, 0, 0));
}

#[test]
fn a_frozen_payers_hold_can_be_voided() {
    let mut l = Ledger::world();
    l.ok(statuses(vec![status(WALLET, AccountStatus::Frozen)]));
    l.ok(transfer(void(30, HOLD)));
    assert_eq!(l.b(WALLET), (100, 10_000, 0, 0));
}

#[test]
fn closing_needs_zero_balances_and_is_final() {
    let mut l = Ledger::world();
    l.ok(accounts(vec![account(20, "CNY")]));
    l.ok(transfer(posted(30, &[(BANK, 20, 500)])));
    l.refuses(statuses(vec![status(20, AccountStatus::Closed)]), R::BalanceNotZero, None);
    // Equal debits and credits are a zero balance, even though neither is zero.
    l.ok(transfer(posted(31, &[(20, SHOP, 500)])));
    l.ok(statuses(vec![status(20, AccountStatus::Closed)]));
    assert_eq!(l.b(20), (500, 500, 0, 0));
    l.refuses(transfer(posted(32, &[(BANK, 20, 1)])), R::AccountClosed, Some(0));
    l.refuses(transfer(posted(33, &[(20, BANK, 1)])), R::AccountClosed, Some(0));
    l.refuses(statuses(vec![status(20, AccountStatus::Active)]), R::AccountClosed, None);
}

#[test]
fn a_frozen_account_with_zero_balance_can_be_closed() {
    let mut l = Ledger::world();
    l.ok(accounts(vec![account(20, "CNY")]));
    l.ok(statuses(vec![status(20, AccountStatus::Frozen)]));
    l.ok(statuses(vec![status(20, AccountStatus::Closed)]));
    assert_eq!(l.account(20).status, AccountStatus::Closed);
}

#[test]
fn setting_the_status_an_account_has_succeeds_and_changes_nothing() {
    // So a retried freeze or close does not look like a failure.
    let mut l = Ledger::world();
    for (id, s) in [(FROZEN, AccountStatus::Frozen), (CLOSED, AccountStatus::Closed), (SHOP, AccountStatus::Active)] {
        let r = l.changes_nothing(statuses(vec![StatusChangeInput { account_id: id, status: s, reason: "again".into(), actor: String::new() }]));
        assert_eq!((r.code, r.timestamp_ns, r.id), (R::Ok, 0, id));
        assert_eq!(l.account(id).status_reason, if id == SHOP { "" } else { "test" });
    }
}
