//! Queries over the history: an account's balances after each change, in a time range, paged.

use super::fixtures::*;
use crate::query::{BalanceChange, account_history};

fn history(l: &Ledger, account: u128, range: (u64, u64), limit: usize, reverse: bool) -> Vec<BalanceChange> {
    let (mut all, mut cursor) = (Vec::new(), None);
    loop {
        let (page, next) = account_history(&l.store, account, range, cursor, limit, reverse).unwrap();
        assert!(page.len() <= limit);
        all.extend(page);
        match next {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
}

#[test]
fn the_history_has_one_change_per_step_with_the_balances_after_it_in_either_order_and_any_page_size() {
    let mut l = Ledger::world();
    // Two legs on WALLET in one step: one change, with the balances after both.
    l.all_ok(transfer(posted(70, &[(BANK, WALLET, 100), (WALLET, SHOP, 40)])));
    let entries = l.entries(WALLET);
    let mut expected: Vec<BalanceChange> = Vec::new();
    for e in &entries {
        match expected.last_mut() {
            Some(last) if last.timestamp_ns == e.timestamp_ns => last.balances = e.balances_after,
            _ => expected.push(BalanceChange { timestamp_ns: e.timestamp_ns, transfer_id: e.transfer_id, balances: e.balances_after }),
        }
    }
    let last = expected.last().unwrap();
    assert_eq!((last.transfer_id, last.balances), (70, l.balances(WALLET)));
    for limit in [1, 2, 3, 100] {
        assert_eq!(history(&l, WALLET, (0, u64::MAX), limit, false), expected, "limit {limit}");
        let mut newest_first = expected.clone();
        newest_first.reverse();
        assert_eq!(history(&l, WALLET, (0, u64::MAX), limit, true), newest_first, "limit {limit}, reverse");
    }
    // A time range, inclusive at both ends.
    let (from, to) = (expected[1].timestamp_ns, expected[3].timestamp_ns);
    assert_eq!(history(&l, WALLET, (from, to), 2, false), expected[1..=3].to_vec());
    assert_eq!(history(&l, WALLET, (last.timestamp_ns + 1, u64::MAX), 5, false), Vec::new());
    assert!(history(&l, 999, (0, u64::MAX), 5, false).is_empty(), "no such account: no change");
}
