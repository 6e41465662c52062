//! Timestamps come from the command's proposal time, made strictly increasing by the ledger:
//! a new leader whose clock is behind cannot stamp anything before what is already stamped.

use super::fixtures::*;
use crate::result::ResultCode as R;
use crate::types::*;

#[test]
fn a_command_is_stamped_at_its_proposal_time_when_that_is_later() {
    let mut l = Ledger::world();
    let at = l.now + 5 * MS;
    let r = l.apply_at(at, transfer(posted(30, &[(BANK, SHOP, 1)]))).results[0];
    assert_eq!(r.timestamp_ns, at);
    assert_eq!((l.transfer(30).timestamp_ns, l.last_timestamp()), (at, at));
}

#[test]
fn each_item_of_a_command_gets_the_next_nanosecond() {
    let mut l = Ledger::world();
    let at = l.now + MS;
    let results = l.apply_at(at, transfers(vec![posted(30, &[(BANK, SHOP, 1)]), posted(31, &[(BANK, SHOP, 1)]), posted(32, &[(BANK, SHOP, 1)])])).results;
    assert_eq!(results.iter().map(|r| r.timestamp_ns).collect::<Vec<_>>(), [at, at + 1, at + 2]);
}

#[test]
fn timestamps_increase_even_when_the_proposal_time_goes_backwards() {
    let mut l = Ledger::world();
    let first = l.apply_at(T0 + 100 * MS, transfer(posted(30, &[(BANK, SHOP, 1)]))).results[0];
    // A new leader with a slower clock proposes "earlier".
    let second = l.apply_at(T0 + 50 * MS, transfer(posted(31, &[(BANK, SHOP, 1)]))).results[0];
    let third = l.apply_at(T0 + 50 * MS + 1, accounts(vec![account(20, "CNY")])).results[0];
    assert_eq!((second.timestamp_ns, third.timestamp_ns), (first.timestamp_ns + 1, first.timestamp_ns + 2));
    // Once its clock passes the old one, its own time is used again.
    let fourth = l.apply_at(T0 + 200 * MS, statuses(vec![status(20, AccountStatus::Frozen)])).results[0];
    assert_eq!(fourth.timestamp_ns, T0 + 200 * MS);
}

#[test]
fn a_command_that_creates_nothing_leaves_the_clock_alone() {
    let mut l = Ledger::world();
    let last = l.last_timestamp();
    l.apply_at(T0 + 500 * MS, Operation::Tick);
    l.apply_at(T0 + 600 * MS, assets(vec![asset("CNY", 2)]));
    assert_eq!(l.last_timestamp(), last);
    // So a later command proposed before those may still use its own time.
    let r = l.apply_at(T0 + 400 * MS, transfer(posted(30, &[(BANK, SHOP, 1)]))).results[0];
    assert_eq!((r.code, r.timestamp_ns), (R::Ok, T0 + 400 * MS));
}

#[test]
fn the_first_timestamp_is_never_zero() {
    // 0 means "no timestamp" in results, so even a proposal time of 0 stamps 1.
    let mut l = Ledger::empty();
    let r = l.apply_at(0, assets(vec![asset("CNY", 2)])).results[0];
    assert_eq!((r.code, r.timestamp_ns), (R::Ok, 1));
}
