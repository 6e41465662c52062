//! Account entries (`store::account_entries`): one per leg side, in time order, each carrying
//! the account's balances after it.

use super::fixtures::*;
use crate::store;
use crate::types::*;

fn summary(entries: &[AccountEntry]) -> Vec<(u128, u8, bool, EntryKind, u128, u128, u128)> {
    entries
        .iter()
        .map(|e| (e.transfer_id, e.leg_index, e.is_debit, e.kind, e.amount_minor, e.balances_after.debits_posted, e.balances_after.credits_posted))
        .collect()
}

#[test]
fn entries_give_balances_after_each_leg_in_time_order() {
    let mut l = Ledger::new();
    l.all_ok(accounts(vec![account(1, "CNY"), limited(2, "CNY", 0), account(3, "CNY")]));
    let t10 = l.ok(transfer(posted(10, &[(1, 2, 500), (2, 3, 200), (1, 2, 50)]))).timestamp_ns;
    let t11 = l.ok(transfer(posted(11, &[(2, 1, 100)]))).timestamp_ns;
    let entries = l.entries(2);
    assert_eq!(
        summary(&entries),
        [
            (10, 0, false, EntryKind::Posted, 500, 0, 500),
            (10, 1, true, EntryKind::Posted, 200, 200, 500),
            (10, 2, false, EntryKind::Posted, 50, 200, 550),
            (11, 0, true, EntryKind::Posted, 100, 300, 550),
        ]
    );
    assert_eq!(entries.iter().map(|e| e.timestamp_ns).collect::<Vec<_>>(), [t10, t10, t10, t11]);
    assert_eq!(entries.last().unwrap().balances_after, l.balances(2));
}

#[test]
fn entries_record_the_life_of_holds() {
    let mut l = Ledger::world();
    l.ok(transfer(pending(30, &[(BANK, SHOP, 1_000)], 0)));
    l.ok(transfer(post(31, 30, &[400])));
    l.ok(transfer(pending(32, &[(BANK, SHOP, 700)], 5)));
    l.ok(transfer(void(33, HOLD)));
    l.apply_at(l.now + 10 * MS, Operation::Tick);
    let shop = l.entries(SHOP);
    let tail: Vec<_> = shop[shop.len() - 5..].iter().map(|e| (e.transfer_id, e.kind, e.amount_minor, e.balances_after.credits_posted, e.balances_after.credits_pending)).collect();
    assert_eq!(
        tail,
        [
            (30, EntryKind::Pending, 1_000, 100, 3_000 + 1_000),
            (31, EntryKind::PostPending, 400, 500, 3_000),
            (32, EntryKind::Pending, 700, 500, 3_000 + 700),
            (33, EntryKind::VoidPending, 3_000, 500, 700),
            (32, EntryKind::ExpirePending, 700, 500, 0),
        ]
    );
    assert_eq!(shop.last().unwrap().balances_after, l.balances(SHOP));
}

#[test]
fn entry_pages_by_time_window_limit_and_direction() {
    let mut l = Ledger::new();
    l.all_ok(accounts(vec![account(1, "CNY"), account(2, "CNY"), account(3, "CNY")]));
    // The neighbouring accounts 1 and 3 have entries too: none may leak into 2's pages.
    l.ok(transfer(posted(40, &[(1, 3, 1)])));
    let stamps: Vec<u64> = (30..35).map(|id| l.ok(transfer(posted(id, &[(1, 2, 1)]))).timestamp_ns).collect();
    let page = |after, before, limit, reverse| {
        store::account_entries(&l.store, 2, after, before, limit, reverse).unwrap().iter().map(|e| e.transfer_id).collect::<Vec<_>>()
    };
    assert_eq!(page(None, None, 100, false), [30, 31, 32, 33, 34]);
    assert_eq!(page(Some(stamps[1]), None, 100, false), [32, 33, 34], "after is exclusive");
    assert_eq!(page(None, Some(stamps[3]), 100, false), [30, 31, 32], "before is exclusive");
    assert_eq!(page(Some(stamps[0]), Some(stamps[4]), 2, false), [31, 32]);
    assert_eq!(page(None, None, 2, true), [34, 33]);
    assert_eq!(page(Some(u64::MAX), None, 100, false), Vec::<u128>::new());
    assert_eq!(l.entries(3).len(), 1);
}

#[test]
fn the_largest_account_id_has_its_entries_and_its_neighbour_none_of_them() {
    // The page's end key for u128::MAX cannot be "the next account": it is built otherwise.
    let mut l = Ledger::new();
    l.all_ok(accounts(vec![account(u128::MAX, "CNY"), account(u128::MAX - 1, "CNY")]));
    l.ok(transfer(posted(10, &[(u128::MAX, u128::MAX - 1, 100)])));
    l.ok(transfer(posted(11, &[(u128::MAX, u128::MAX - 1, 200)])));
    let ids = |id| l.entries(id).iter().map(|e| (e.account_id, e.transfer_id)).collect::<Vec<_>>();
    assert_eq!(ids(u128::MAX), [(u128::MAX, 10), (u128::MAX, 11)]);
    assert_eq!(ids(u128::MAX - 1), [(u128::MAX - 1, 10), (u128::MAX - 1, 11)]);
}
