//! Holds with a timeout expire when a command's timestamps reach their deadline: never from a
//! clock read during apply, so every replica expires the same holds at the same point of the log.

use super::fixtures::*;
use crate::limits::EXPIRIES_PER_COMMAND_MAX;
use crate::result::ResultCode as R;
use crate::types::*;

/// WALLET holds 10.00 for SHOP as transfer 30, expiring `timeout_ms` after it was created.
/// Returns the ledger and the deadline.
fn timed_hold(timeout_ms: u64) -> (Ledger, u64) {
    let mut l = Ledger::world();
    let created = l.ok(transfer(pending(30, &[(WALLET, SHOP, 1_000)], timeout_ms)));
    let deadline = created.timestamp_ns + timeout_ms * MS;
    assert_eq!(l.transfer(30).expires_at_ns, deadline);
    assert_eq!(l.b(WALLET), (100, 10_000, 4_000, 0));
    (l, deadline)
}

fn expiry_entries(applied: &crate::Applied) -> Vec<(u128, u128, bool, u64)> {
    applied
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::ExpirePending)
        .map(|e| (e.transfer_id, e.account_id, e.is_debit, e.amount_minor as u64))
        .collect()
}

#[test]
fn a_hold_expires_when_any_later_command_reaches_its_deadline() {
    let (mut l, deadline) = timed_hold(5);
    let early = l.apply_at(deadline - 1, accounts(vec![account(20, "CNY")]));
    assert!(early.entries.is_empty());
    assert_eq!(l.transfer(30).pending_state, PendingState::Pending);
    // Creating an account is enough to drive expiry: it happens before the command's items.
    let at = l.apply_at(deadline, accounts(vec![account(21, "CNY")]));
    assert_eq!(expiry_entries(&at), [(30, WALLET, true, 1_000), (30, SHOP, false, 1_000)]);
    assert!(at.entries.iter().all(|e| e.timestamp_ns == deadline));
    assert!(at.results[0].timestamp_ns > deadline);
    assert_eq!(l.transfer(30).pending_state, PendingState::Expired);
    assert_eq!((l.b(WALLET), l.b(SHOP).3), ((100, 10_000, 3_000, 0), 3_000));
}

#[test]
fn a_tick_expires_a_due_hold_when_nothing_else_is_written() {
    let (mut l, deadline) = timed_hold(1);
    let tick = l.apply_at(deadline + 7, Operation::Tick);
    assert!(tick.results.is_empty());
    assert_eq!(expiry_entries(&tick).len(), 2);
    assert_eq!(l.transfer(30).pending_state, PendingState::Expired);
    assert_eq!(l.last_timestamp(), deadline + 7);
}

#[test]
fn a_post_after_the_deadline_is_refused_as_expired() {
    let (mut l, deadline) = timed_hold(1);
    let applied = l.apply_at(deadline + MS, transfer(post(31, 30, &[])));
    // The hold expires first, then the post finds it expired.
    assert_eq!(expiry_entries(&applied).len(), 2);
    assert_eq!((applied.results[0].code, applied.results[0].leg_index), (R::PendingTransferExpired, None));
    assert!(applied.entries.iter().all(|e| e.timestamp_ns < applied.results[0].timestamp_ns));
    assert_eq!((l.b(WALLET), l.b(SHOP).1), ((100, 10_000, 3_000, 0), 100));
    assert!(l.find_transfer(31).is_none());
}

#[test]
fn expiry_releases_funds_exactly_once() {
    let (mut l, deadline) = timed_hold(1);
    l.apply_at(deadline, Operation::Tick);
    let after_expiry = l.all_balances();
    assert_eq!(l.b(WALLET), (100, 10_000, 3_000, 0));
    // Nothing that comes later touches the expired hold again.
    assert!(l.apply(Operation::Tick).entries.is_empty());
    l.refuses(transfer(void(31, 30)), R::PendingTransferExpired, None);
    l.refuses(transfer(post(32, 30, &[])), R::PendingTransferExpired, None);
    assert!(l.apply_at(deadline + 10 * MS, Operation::Tick).entries.is_empty());
    assert_eq!(l.all_balances(), after_expiry);
    let released = l.entries(WALLET).into_iter().filter(|e| e.kind == EntryKind::ExpirePending && e.transfer_id == 30).count();
    assert_eq!(released, 1);
}

#[test]
fn a_post_timestamped_past_the_deadline_within_a_command_is_refused_and_the_hold_expires_next() {
    let (mut l, deadline) = timed_hold(1);
    // The command starts 1 ns before the deadline; its second item is stamped at the deadline.
    let applied = l.apply_at(deadline - 1, transfers(vec![posted(31, &[(BANK, SHOP, 1)]), post(32, 30, &[])]));
    let r = &applied.results;
    assert_eq!((r[0].code, r[0].timestamp_ns), (R::Ok, deadline - 1));
    assert_eq!((r[1].code, r[1].timestamp_ns), (R::PendingTransferExpired, deadline));
    // Still held until the next command expires it, then released once.
    assert_eq!(l.b(WALLET).2, 4_000);
    let next = l.apply_at(deadline - MS, Operation::Tick);
    assert_eq!(expiry_entries(&next).len(), 2);
    assert_eq!((l.b(WALLET).2, l.transfer(30).pending_state), (3_000, PendingState::Expired));
}

#[test]
fn holds_expire_in_deadline_order_each_with_its_own_timestamp() {
    let mut l = Ledger::world();
    let holds = vec![
        pending(30, &[(BANK, SHOP, 1)], 3),
        pending(31, &[(BANK, SHOP, 1)], 1),
        pending(32, &[(BANK, SHOP, 1)], 2),
    ];
    l.all_ok(transfers(holds));
    let tick = l.apply_at(l.now + 10 * MS, Operation::Tick);
    let order: Vec<(u128, u64)> = tick.entries.iter().filter(|e| e.is_debit).map(|e| (e.transfer_id, e.timestamp_ns)).collect();
    assert_eq!(order.iter().map(|o| o.0).collect::<Vec<_>>(), [31, 32, 30]);
    assert!(order.windows(2).all(|w| w[0].1 < w[1].1));
    assert_eq!(l.b(BANK).2, 0);
}

#[test]
fn ledger_time_not_the_proposers_clock_decides_expiry() {
    // A lagging proposer cannot expire a hold early, nor keep it alive past a later command.
    let (mut l, deadline) = timed_hold(1);
    for _ in 0..3 {
        assert!(l.apply_at(T0, Operation::Tick).entries.is_empty());
        let id = l.fresh_id();
        l.ok(transfer(posted(id, &[(BANK, SHOP, 1)])));
    }
    assert_eq!(l.transfer(30).pending_state, PendingState::Pending);
    assert!(l.last_timestamp() < deadline);
    l.apply_at(deadline, Operation::Tick);
    assert_eq!(l.transfer(30).pending_state, PendingState::Expired);
}

#[test]
fn expiry_is_bounded_per_command_and_the_rest_wait_for_the_next() {
    let mut l = Ledger::new();
    l.all_ok(accounts(vec![account(1, "CNY"), account(2, "CNY")]));
    let count = EXPIRIES_PER_COMMAND_MAX as u128 + 1;
    l.all_ok(transfers((1..=count).map(|id| pending(id, &[(1, 2, 1)], 1)).collect()));
    // The last hold has the latest deadline: it is the one left over.
    let applied = l.apply_at(l.now + 2 * MS, transfer(post(count + 1, count, &[])));
    assert_eq!(expiry_entries(&applied).len(), 2 * EXPIRIES_PER_COMMAND_MAX);
    assert_eq!(applied.results[0].code, R::PendingTransferExpired, "its deadline has passed all the same");
    assert_eq!((l.transfer(count).pending_state, l.b(1).2), (PendingState::Pending, 1));
    let next = l.apply(Operation::Tick);
    assert_eq!(expiry_entries(&next), [(count, 1, true, 1), (count, 2, false, 1)]);
    assert_eq!(l.b(1), (0, 0, 0, 0));
}
