//! Two-phase transfers: a hold, then a post (in full or in part) or a void.

use super::fixtures::*;
use crate::result::ResultCode as R;
use crate::types::*;

/// BANK-like 1, spender 2 (debits within credits) funded with 100.00, payees 3 and 4.
fn two_payees() -> Ledger {
    let mut l = Ledger::new();
    l.all_ok(accounts(vec![account(1, "CNY"), limited(2, "CNY", 0), account(3, "CNY"), account(4, "CNY")]));
    l.ok(transfer(posted(10, &[(1, 2, 10_000)])));
    l.ok(transfer(pending(20, &[(2, 3, 3_000), (2, 4, 1_000)], 0)));
    assert_eq!((l.b(2), l.b(3), l.b(4)), ((0, 10_000, 4_000, 0), (0, 0, 0, 3_000), (0, 0, 0, 1_000)));
    l
}

#[test]
fn a_hold_reserves_funds_without_posting_them() {
    let mut l = two_payees();
    // 60.00 of the 100.00 is free; the held 40.00 is not.
    l.refuses(transfer(posted(30, &[(2, 3, 6_001)])), R::ExceedsCredits, Some(0));
    l.ok(transfer(posted(31, &[(2, 3, 6_000)])));
}

#[test]
fn a_partial_post_posts_part_and_releases_the_rest() {
    let mut l = two_payees();
    l.ok(transfer(post(21, 20, &[1_000, 0])));
    assert_eq!((l.b(2), l.b(3), l.b(4)), ((1_000, 10_000, 0, 0), (0, 1_000, 0, 0), (0, 0, 0, 0)));
    assert_eq!(l.transfer(20).pending_state, PendingState::Posted);
    let p = l.transfer(21);
    assert_eq!((p.kind, p.pending_id, p.asset.as_str()), (TransferKind::PostPending, 20, "CNY"));
    assert_eq!(p.legs.iter().map(|leg| leg.amount_minor).collect::<Vec<_>>(), [1_000, 0]);
    // The released 30.00 is spendable again: 90.00 free.
    l.ok(transfer(posted(30, &[(2, 3, 9_000)])));
}

#[test]
fn a_post_without_amounts_posts_every_leg_in_full() {
    let mut l = two_payees();
    l.ok(transfer(post(21, 20, &[])));
    assert_eq!((l.b(2), l.b(3), l.b(4)), ((4_000, 10_000, 0, 0), (0, 3_000, 0, 0), (0, 1_000, 0, 0)));
}

#[test]
fn a_void_releases_the_hold() {
    let mut l = two_payees();
    l.ok(transfer(void(21, 20)));
    assert_eq!((l.b(2), l.b(3), l.b(4)), ((0, 10_000, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0)));
    assert_eq!(l.transfer(20).pending_state, PendingState::Voided);
    let v = l.transfer(21);
    assert_eq!((v.kind, v.pending_id), (TransferKind::VoidPending, 20));
    l.ok(transfer(posted(30, &[(2, 3, 10_000)])));
}

#[test]
fn a_hold_resolves_once() {
    let mut l = two_payees();
    l.ok(transfer(post(21, 20, &[5, 5])));
    l.refuses(transfer(post(22, 20, &[5, 5])), R::PendingTransferAlreadyPosted, None);
    l.refuses(transfer(void(23, 20)), R::PendingTransferAlreadyPosted, None);
    assert_eq!(l.b(2), (10, 10_000, 0, 0));
}

#[test]
fn a_resolved_hold_with_a_timeout_never_expires() {
    let mut l = Ledger::world();
    let created = l.ok(transfer(pending(30, &[(BANK, SHOP, 100)], 2)));
    let hold = l.transfer(30);
    assert_eq!(hold.expires_at_ns, created.timestamp_ns + 2 * MS);
    assert!(l.has_expiry_key(&hold));
    l.ok(transfer(void(31, 30)));
    assert!(!l.has_expiry_key(&hold), "the expiry is dropped with the hold");
    let balances = l.all_balances();
    let tick = l.apply_at(hold.expires_at_ns + MS, Operation::Tick);
    assert!(tick.entries.is_empty());
    assert_eq!((l.all_balances(), l.transfer(30).pending_state), (balances, PendingState::Voided));
}

#[test]
fn a_hold_may_be_posted_in_the_command_that_places_it() {
    let mut l = two_payees();
    let results = l.all_ok(transfers(vec![pending(30, &[(2, 3, 500)], 1), post(31, 30, &[200])]));
    assert!(results[0].timestamp_ns < results[1].timestamp_ns);
    assert_eq!(l.b(3), (0, 200, 0, 3_000));
    assert!(!l.has_expiry_key(&l.transfer(30)));
}
