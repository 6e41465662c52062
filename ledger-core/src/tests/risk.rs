//! Account risk limits: which rule applies (the account's own over its code's), the day at the
//! rule's offset from Raft time, what counts (client posted and pending debits; not posts of
//! counted holds, not refused transfers, not the ledger's own wallet holds), removal, and the
//! journal lines of limits, blocklist changes and the actor of a freeze.

use super::fixtures::*;
use crate::result::ResultCode as R;
use crate::risk::{self, LimitInput, LimitScope};
use crate::types::*;

const HOUR_NS: u64 = 3_600 * 1_000_000_000;

pub fn limit(scope: LimitScope, single: Option<u128>, daily: Option<u128>, count: Option<u32>, offset: i32) -> Operation {
    Operation::SetLimits(vec![LimitInput {
        scope,
        max_single_debit: single.map(cents),
        daily_debit_amount: daily.map(cents),
        daily_debit_count: count,
        utc_offset_minutes: offset,
    }])
}

pub fn limit_account(id: u128, single: Option<u128>, daily: Option<u128>, count: Option<u32>, offset: i32) -> Operation {
    limit(LimitScope::Account(id), single, daily, count, offset)
}

fn pay(l: &mut Ledger, from: u128, cents: u128) -> ItemResultCode {
    let id = l.fresh_id();
    l.one(transfer(posted(id, &[(from, SHOP, cents)]))).code
}

type ItemResultCode = R;

#[test]
fn an_accounts_own_rule_wins_over_its_codes_and_removing_it_falls_back() {
    let mut l = Ledger::world();
    l.ok(limit(LimitScope::Code { asset: "CNY".into(), code: 1 }, Some(100), None, None, 0));
    assert_eq!(pay(&mut l, WALLET, 101), R::DebitLimitExceeded, "the code's rule applies");
    assert_eq!(pay(&mut l, BANK, 101), R::DebitLimitExceeded, "to every account of the code");
    l.ok(limit_account(WALLET, Some(500), None, None, 0));
    assert_eq!(pay(&mut l, WALLET, 500), R::Ok, "the account's own rule wins");
    l.ok(limit_account(WALLET, None, None, None, 0));
    assert_eq!(pay(&mut l, WALLET, 101), R::DebitLimitExceeded, "removed: back to the code's");
    l.ok(limit(LimitScope::Code { asset: "CNY".into(), code: 1 }, None, None, None, 0));
    assert_eq!(pay(&mut l, WALLET, 1_000), R::Ok, "no rule at all");
    // Another asset's code is another rule.
    l.refuses(limit(LimitScope::Code { asset: "EUR".into(), code: 1 }, Some(1), None, None, 0), R::AssetNotFound, None);
    l.refuses(limit_account(999, Some(1), None, None, 0), R::AccountNotFound, None);
}

#[test]
fn the_day_turns_at_midnight_of_the_rules_offset() {
    let mut l = Ledger::world();
    // UTC+8: put the clock at 15:30 UTC = 23:30 in Beijing.
    let day_ns = 24 * HOUR_NS;
    let base = (l.now / day_ns + 1) * day_ns;
    l.apply_at(base + 15 * HOUR_NS + HOUR_NS / 2, limit_account(WALLET, None, Some(1_000), None, 480));
    l.apply_at(base + 15 * HOUR_NS + HOUR_NS / 2 + 1_000, transfer(posted(900, &[(WALLET, SHOP, 1_000)])));
    let r = l.apply_at(base + 15 * HOUR_NS + HOUR_NS / 2 + 2_000, transfer(posted(901, &[(WALLET, SHOP, 1)]))).results[0];
    assert_eq!(r.code, R::DailyDebitAmountExceeded, "still the same Beijing day");
    // 16:00 UTC is midnight in Beijing: a new day (though still the same UTC day).
    let r = l.apply_at(base + 16 * HOUR_NS, transfer(posted(902, &[(WALLET, SHOP, 1_000)]))).results[0];
    assert_eq!(r.code, R::Ok);
    assert_eq!(risk::day_of(base + 16 * HOUR_NS, 480), risk::day_of(base + 15 * HOUR_NS, 480) + 1);
    assert_eq!(risk::day_of(base + 16 * HOUR_NS, 0), risk::day_of(base + 15 * HOUR_NS, 0));
}

#[test]
fn holds_count_once_and_refusals_not_at_all() {
    let mut l = Ledger::world();
    l.ok(limit_account(WALLET, None, Some(1_000), Some(3), 0));
    // A transfer refused after the limit check (to a closed account) is not counted.
    let id = l.fresh_id();
    assert_eq!(l.one(transfer(posted(id, &[(WALLET, CLOSED, 900)]))).code, R::AccountClosed);
    // A hold counts when placed; posting it does not count again.
    let hold = l.fresh_id();
    l.ok(transfer(pending(hold, &[(WALLET, SHOP, 600)], 0)));
    let post_id = l.fresh_id();
    l.ok(transfer(post(post_id, hold, &[])));
    assert_eq!(pay(&mut l, WALLET, 401), R::DailyDebitAmountExceeded, "600 counted once");
    assert_eq!(pay(&mut l, WALLET, 400), R::Ok);
    assert_eq!(pay(&mut l, WALLET, 1), R::DailyDebitAmountExceeded);
}

#[test]
fn rules_blocklist_and_the_actor_of_a_freeze_are_journal_lines() {
    use crate::journal::Event;
    use crate::wallet::blocklist::{BlockInput, BlockTarget};
    let mut l = Ledger::world();
    l.ok(limit_account(WALLET, Some(1_000), None, Some(5), 480));
    l.ok(Operation::SetBlocklist(vec![BlockInput { target: BlockTarget::Device("phone-9".into()), blocked: true, reason: "lost".into() }]));
    let lines = super::journal::verified_lines(&l.store).unwrap();
    let events: Vec<&Event> = lines.iter().map(|l| &l.event).collect();
    assert!(events.contains(&&Event::LimitChanged {
        scope: format!("account:{WALLET}"),
        max_single_debit: Some("10.00".into()),
        daily_debit_amount: None,
        daily_debit_count: Some(5),
        utc_offset_minutes: 480
    }));
    assert!(events.contains(&&Event::BlocklistChanged { target: "device:phone-9".into(), blocked: true, reason: "lost".into() }));
    assert!(events.iter().any(|e| matches!(e, Event::AccountStatusChanged { actor, status, .. } if actor == "ops (admin)" && status == "frozen")));
}

#[test]
fn wallet_holds_and_offline_spends_are_not_client_debits() {
    use super::wallet as W;
    let mut l = W::wallet_world();
    l.ok(limit_account(W::PHONE_WALLET, None, Some(101), Some(1), 0));
    // A second token's hold (50.00) is the ledger's reservation, not a customer debit.
    l.ok(Operation::IssueTokens(vec![W::issue(903, 5_000, 5)]));
    // An offline spend was authorized by the hold: it posts whatever the daily limit says.
    let r = l.apply(W::upload(vec![W::record(1, 3_000, W::MERCHANT)], 0)).results;
    assert_eq!(r[0].code, R::Ok);
    // Online, the rule applies: one debit, 1.01 in all, today.
    let id = l.fresh_id();
    assert_eq!(l.one(transfer(posted(id, &[(W::PHONE_WALLET, W::MERCHANT, 102)]))).code, R::DailyDebitAmountExceeded);
    let id = l.fresh_id();
    assert_eq!(l.one(transfer(posted(id, &[(W::PHONE_WALLET, W::MERCHANT, 100)]))).code, R::Ok);
    let id = l.fresh_id();
    assert_eq!(l.one(transfer(posted(id, &[(W::PHONE_WALLET, W::MERCHANT, 1)]))).code, R::DailyDebitCountExceeded);
}
