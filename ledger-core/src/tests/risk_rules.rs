//! Risk rules of `risk::rules`: credit and balance caps, transfer-code scopes, calendar windows
//! (minute, hour, day, month at a UTC offset) from Raft time, removal, and a property: under any
//! interleaving of rule changes and transfers, no account ever passes a rule in force.

use super::fixtures::*;
use crate::amount::DecimalInput;
use crate::result::ResultCode as R;
use crate::risk::rules::{self, Limit, RuleInput, RuleScope, Side, Window};
use crate::types::*;

const MINUTE_NS: u64 = 60_000_000_000;
const DAY_NS: u64 = 86_400_000_000_000;

pub fn scope(account_id: u128) -> RuleScope {
    RuleScope { asset: "CNY".into(), account_id, account_code: 0, transfer_code: None }
}

pub fn rule(rule_id: u64, rule: (RuleScope, Limit<DecimalInput>)) -> Operation {
    Operation::SetRiskRules(vec![RuleInput { rule_id, rule: Some(rule), utc_offset_minutes: 0 }])
}

pub fn credit_cap(account_id: u128, window: Window, max_cents: u128) -> (RuleScope, Limit<DecimalInput>) {
    (scope(account_id), Limit::Amount { side: Side::Credit, max: cents(max_cents), window })
}

pub fn count_cap(account_id: u128, side: Side, window: Window, max: u32) -> (RuleScope, Limit<DecimalInput>) {
    (scope(account_id), Limit::Count { side, max, window })
}

pub fn balance_cap(account_id: u128, max_cents: u128) -> (RuleScope, Limit<DecimalInput>) {
    (scope(account_id), Limit::Balance { max: cents(max_cents) })
}

fn pay(l: &mut Ledger, legs: &[(u128, u128, u128)], code: u32) -> R {
    let id = l.fresh_id();
    l.one(transfer(TransferInput { code, ..posted(id, legs) })).code
}

#[test]
fn a_rule_scoped_by_transfer_code_leaves_other_business_types_alone() {
    let mut l = Ledger::world();
    // Top-ups (transfer code 7) into SHOP: 10.00 a day; other credits are free.
    let (mut s, limit) = credit_cap(SHOP, Window::Day, 1_000);
    s.transfer_code = Some(7);
    l.ok(rule(1, (s, limit)));
    assert_eq!(pay(&mut l, &[(BANK, SHOP, 1_000)], 7), R::Ok);
    assert_eq!(pay(&mut l, &[(BANK, SHOP, 1)], 7), R::RiskAmountExceeded);
    assert_eq!(pay(&mut l, &[(BANK, SHOP, 5_000)], 8), R::Ok, "another transfer code");
}

#[test]
fn an_account_code_scope_applies_to_every_account_of_the_code() {
    let mut l = Ledger::world();
    l.ok(rule(1, (RuleScope { asset: "CNY".into(), account_id: 0, account_code: 1, transfer_code: None }, Limit::Amount { side: Side::Debit, max: cents(100), window: Window::Transfer })));
    assert_eq!(pay(&mut l, &[(BANK, SHOP, 101)], 0), R::RiskAmountExceeded);
    assert_eq!(pay(&mut l, &[(BANK, SHOP, 100)], 0), R::Ok);
    // A rule of another asset does not apply.
    l.ok(rule(2, (RuleScope { asset: "USD".into(), ..scope(0) }, Limit::Amount { side: Side::Debit, max: cents(1), window: Window::Transfer })));
    assert_eq!(pay(&mut l, &[(BANK, SHOP, 50)], 0), R::Ok);
}

#[test]
fn windows_turn_at_their_calendar_boundary_from_raft_time() {
    let mut l = Ledger::world();
    let base = (l.now / DAY_NS + 1) * DAY_NS;
    l.apply_at(base + 59 * 1_000_000_000, rule(1, count_cap(WALLET, Side::Debit, Window::Minute, 1)));
    assert_eq!(l.apply_at(base + 59 * 1_000_000_000 + 1, transfer(posted(900, &[(WALLET, SHOP, 1)]))).results[0].code, R::Ok);
    assert_eq!(l.apply_at(base + 59 * 1_000_000_000 + 2, transfer(posted(901, &[(WALLET, SHOP, 1)]))).results[0].code, R::RiskCountExceeded);
    assert_eq!(l.apply_at(base + MINUTE_NS, transfer(posted(902, &[(WALLET, SHOP, 1)]))).results[0].code, R::Ok, "the next minute");
    // Months: 2026-01-31 23:59 UTC+8 and 2026-02-01 00:00 UTC+8 are different months.
    let jan31 = 1_769_875_140u64 * 1_000_000_000; // 2026-01-31T15:59:00Z
    assert_eq!(rules::window_of(jan31, 480, Window::Month) + 1, rules::window_of(jan31 + MINUTE_NS, 480, Window::Month));
    assert_eq!(rules::window_of(jan31, 0, Window::Month), rules::window_of(jan31 + MINUTE_NS, 0, Window::Month));
    assert_eq!(rules::window_of(0, 0, Window::Month), 1970 * 12);
}

#[test]
fn removing_a_rule_lifts_it_and_bad_rules_are_refused() {
    let mut l = Ledger::world();
    l.ok(rule(1, credit_cap(SHOP, Window::Transfer, 1)));
    assert_eq!(pay(&mut l, &[(BANK, SHOP, 2)], 0), R::RiskAmountExceeded);
    l.ok(Operation::SetRiskRules(vec![RuleInput { rule_id: 1, rule: None, utc_offset_minutes: 0 }]));
    assert_eq!(pay(&mut l, &[(BANK, SHOP, 2)], 0), R::Ok);
    l.refuses(rule(0, credit_cap(SHOP, Window::Day, 1)), R::IdMustNotBeZero, None);
    l.refuses(rule(2, count_cap(SHOP, Side::Debit, Window::Transfer, 1)), R::LimitInvalid, None);
    l.refuses(rule(2, (RuleScope { asset: "EUR".into(), ..scope(0) }, Limit::Balance { max: cents(1) })), R::AssetNotFound, None);
    l.refuses(rule(2, (scope(SHOP), Limit::Balance { max: DecimalInput { digits: 1, scale: 3 } })), R::AmountScaleExceeded, None);
    let far = Operation::SetRiskRules(vec![RuleInput { rule_id: 2, rule: Some(credit_cap(SHOP, Window::Day, 1)), utc_offset_minutes: 841 }]);
    l.refuses(far, R::LimitInvalid, None);
}

mod properties {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Rule { id: u64, account: u128, kind: u8, max: u32, window: u8, remove: bool },
        Pay { debit: u128, credit: u128, cents: u128, code: u32, hold: bool, minutes: u64 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            1 => (1u64..4, 1u128..=3, 0u8..4, 1u32..3_000, 0u8..5, any::<bool>()).prop_map(|(id, account, kind, max, window, remove)| Op::Rule { id, account, kind, max, window, remove }),
            4 => (1u128..=3, 1u128..=3, 1u128..1_500, 0u32..2, any::<bool>(), 0u64..90).prop_map(|(debit, credit, cents, code, hold, minutes)| Op::Pay { debit, credit, cents, code, hold, minutes }),
        ]
    }

    const WINDOWS: [Window; 5] = [Window::Transfer, Window::Minute, Window::Hour, Window::Day, Window::Month];

    fn input(id: u64, account: u128, kind: u8, max: u32, window: u8, remove: bool) -> RuleInput {
        let window = WINDOWS[usize::from(window)];
        let side = if kind % 2 == 0 { Side::Credit } else { Side::Debit };
        let limit = match kind {
            0 | 1 => Limit::Amount { side, max: cents(u128::from(max)), window },
            2 if window != Window::Transfer => Limit::Count { side, max: max % 5, window },
            _ => Limit::Balance { max: cents(u128::from(max) * 10) },
        };
        RuleInput { rule_id: id, rule: (!remove).then(|| (scope(account), limit)), utc_offset_minutes: 480 }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
        /// Replays the accepted transfers against the rules in force when each was accepted: per
        /// (rule, account, window) the totals and counts stay within the rule, and a capped
        /// account's balance after each accepted credit is within the cap.
        #[test]
        fn no_rule_in_force_is_ever_exceeded(ops in prop::collection::vec(op(), 1..80)) {
            let mut l = Ledger::new();
            l.all_ok(accounts(vec![account(1, "CNY"), account(2, "CNY"), account(3, "CNY")]));
            let mut in_force: BTreeMap<u64, rules::Rule> = BTreeMap::new();
            // (rule id, its timestamp, account, window) -> (amount, count)
            let mut used: BTreeMap<(u64, u64, u128, i64), (u128, u32)> = BTreeMap::new();
            let mut id = 100u128;
            for op in &ops {
                match op {
                    Op::Rule { id: rule_id, account, kind, max, window, remove } => {
                        let r = l.one(Operation::SetRiskRules(vec![input(*rule_id, *account, *kind, *max, *window, *remove)]));
                        if r.code == R::Ok {
                            in_force = rules::all(&l.store).unwrap().into_iter().map(|r| (r.rule_id, r)).collect();
                        }
                    }
                    Op::Pay { debit, credit, cents: c, code, hold, minutes } => {
                        id += 1;
                        let t = TransferInput { code: *code, ..if *hold { pending(id, &[(*debit, *credit, *c)], 0) } else { posted(id, &[(*debit, *credit, *c)]) } };
                        let at = l.now + minutes * MINUTE_NS + MS;
                        let r = l.apply_at(at, transfer(t)).results[0];
                        if r.code != R::Ok {
                            continue;
                        }
                        for rule in in_force.values() {
                            let a = rule.scope.account_id;
                            let touched = |side: Side| (side == Side::Debit && a == *debit) || (side == Side::Credit && a == *credit);
                            match rule.limit {
                                Limit::Amount { side, max, window } if touched(side) => {
                                    let w = rules::window_of(r.timestamp_ns, rule.utc_offset_minutes, window);
                                    let key = (rule.rule_id, rule.timestamp_ns, a, if window == Window::Transfer { i64::from(u32::try_from(id).unwrap()) } else { w });
                                    let e = used.entry(key).or_default();
                                    e.0 += *c;
                                    prop_assert!(e.0 <= max, "rule {:?} passed: {} > {}", rule, e.0, max);
                                }
                                Limit::Count { side, max, window } if touched(side) => {
                                    let w = rules::window_of(r.timestamp_ns, rule.utc_offset_minutes, window);
                                    let e = used.entry((rule.rule_id, rule.timestamp_ns, a, w)).or_default();
                                    e.1 += 1;
                                    prop_assert!(e.1 <= max, "rule {:?} passed: {} > {}", rule, e.1, max);
                                }
                                Limit::Balance { max } if a == *credit => {
                                    let b = l.balances(a);
                                    prop_assert!((b.credits_posted + b.credits_pending).saturating_sub(b.debits_posted) <= max, "rule {:?} passed", rule);
                                }
                                _ => {}
                            }
                        }
                    }
                }
            }
        }
    }
}
