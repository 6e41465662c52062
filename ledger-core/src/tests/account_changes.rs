//! Account changes after creation: settings updates (metadata, overdraft limit, code) and
//! external-reference rebinds. Each refusal has its code and changes nothing; each change is
//! journaled with before and after and kept in the account's history; a transfer and a limit
//! change in one log see each other in log order.

use std::collections::BTreeMap;

use super::fixtures::*;
use super::journal::verified_lines;
use crate::account::history::{self, ChangeKind};
use crate::account::rebind::RebindInput;
use crate::account::update::AccountUpdateInput;
use crate::journal::{AccountSettingsLine, Event};
use crate::result::ResultCode as R;
use crate::store;
use crate::types::*;

pub fn update(account_id: u128) -> AccountUpdateInput {
    AccountUpdateInput { account_id, metadata: None, overdraft_limit: None, code: None, reason: "test".into(), actor: "ops (admin)".into() }
}

pub fn updates(items: Vec<AccountUpdateInput>) -> Operation {
    Operation::UpdateAccounts(items)
}

pub fn rebind(external_ref: &str, from: u128, to: u128) -> Operation {
    Operation::RebindExternalRefs(vec![RebindInput {
        external_ref: external_ref.into(),
        from_account_id: from,
        to_account_id: to,
        reason: "test".into(),
        actor: "ops (admin)".into(),
    }])
}

fn limit(account_id: u128, cents_limit: u128) -> Operation {
    updates(vec![AccountUpdateInput { overdraft_limit: Some(cents(cents_limit)), ..update(account_id) }])
}

fn history_of(l: &Ledger, account_id: u128) -> Vec<history::AccountChange> {
    history::list(&l.store, account_id, None, usize::MAX).unwrap()
}

fn owner_of(l: &Ledger, external_ref: &str) -> Option<u128> {
    store::account_id_by_external_ref(&l.store, external_ref).unwrap()
}

#[test]
fn an_update_changes_settings_never_balances_and_is_journaled_with_before_and_after() {
    let mut l = Ledger::world();
    let balances = l.all_balances();
    let metadata = BTreeMap::from([("bank".to_string(), "ICBC 6222".to_string())]);
    let input = AccountUpdateInput { metadata: Some(metadata.clone()), overdraft_limit: Some(cents(5_000)), code: Some(7), ..update(WALLET) };
    let r = l.ok(updates(vec![input]));
    let account = l.account(WALLET);
    assert_eq!((account.code, account.overdraft_limit_minor, &account.metadata), (7, 5_000, &metadata));
    assert_eq!(l.all_balances(), balances, "an update never moves money");
    let line = verified_lines(&l.store).unwrap().pop().unwrap();
    assert_eq!(line.timestamp_ns, r.timestamp_ns);
    let Event::AccountUpdated { account_id, before, after, actor, reason } = line.event else { panic!("not an update") };
    assert_eq!((account_id.as_str(), actor.as_str(), reason.as_str()), ("2", "ops (admin)", "test"));
    assert_eq!(before, AccountSettingsLine { code: 1, overdraft_limit: "0.00".into(), metadata: BTreeMap::new() });
    assert_eq!(after, AccountSettingsLine { code: 7, overdraft_limit: "50.00".into(), metadata });
    let changes = history_of(&l, WALLET);
    assert_eq!(changes.len(), 1);
    assert_eq!((changes[0].timestamp_ns, changes[0].actor.as_str()), (r.timestamp_ns, "ops (admin)"));
    assert!(matches!(&changes[0].kind, ChangeKind::Settings { before, after } if before.code == 1 && after.code == 7));
}

#[test]
fn the_same_settings_again_succeed_and_change_nothing() {
    let mut l = Ledger::world();
    l.ok(updates(vec![AccountUpdateInput { code: Some(3), ..update(SHOP) }]));
    let r = l.changes_nothing(updates(vec![AccountUpdateInput { code: Some(3), ..update(SHOP) }]));
    assert_eq!((r.code, r.timestamp_ns), (R::Ok, 0));
    let r = l.changes_nothing(updates(vec![update(SHOP)]));
    assert_eq!((r.code, r.timestamp_ns), (R::Ok, 0), "nothing asked, nothing changed");
    assert_eq!(history_of(&l, SHOP).len(), 1);
}

#[test]
fn an_overdraft_limit_never_goes_below_what_is_drawn_holds_included() {
    let mut l = Ledger::new();
    l.all_ok(accounts(vec![account(BANK, "CNY"), limited(WALLET, "CNY", 1_000), account(SHOP, "CNY")]));
    l.ok(transfer(posted(20, &[(WALLET, SHOP, 600)])));
    l.ok(transfer(pending(21, &[(WALLET, SHOP, 300)], 0)));
    // Drawn: 6.00 posted + 3.00 held = 9.00 beyond its zero credits.
    l.refuses(limit(WALLET, 899), R::OverdraftBelowDrawn, None);
    l.ok(limit(WALLET, 900));
    l.refuses(transfer(posted(22, &[(WALLET, SHOP, 1)])), R::ExceedsCredits, Some(0));
    l.ok(transfer(posted(23, &[(BANK, WALLET, 900)])));
    l.ok(limit(WALLET, 0));
    assert_eq!(l.account(WALLET).overdraft_limit_minor, 0);
}

#[test]
fn a_transfer_and_a_limit_change_see_each_other_in_log_order() {
    // Lowered first: the transfer sees the new limit.
    let mut l = Ledger::new();
    l.all_ok(accounts(vec![limited(WALLET, "CNY", 1_000), account(SHOP, "CNY")]));
    let applied = l.apply(Operation::UpdateAccounts(vec![AccountUpdateInput { overdraft_limit: Some(cents(100)), ..update(WALLET) }]));
    assert_eq!(applied.results[0].code, R::Ok);
    l.refuses(transfer(posted(30, &[(WALLET, SHOP, 500)])), R::ExceedsCredits, Some(0));
    // The transfer first: it sees the old limit, and the lowering then sees what it drew.
    let mut l = Ledger::new();
    l.all_ok(accounts(vec![limited(WALLET, "CNY", 1_000), account(SHOP, "CNY")]));
    l.ok(transfer(posted(30, &[(WALLET, SHOP, 500)])));
    l.refuses(limit(WALLET, 100), R::OverdraftBelowDrawn, None);
    assert_eq!(l.account(WALLET).overdraft_limit_minor, 1_000);
}

#[test]
fn a_new_code_takes_the_new_codes_risk_rule() {
    use super::risk::limit;
    use crate::risk::LimitScope;
    let mut l = Ledger::world();
    l.ok(limit(LimitScope::Code { asset: "CNY".into(), code: 9 }, Some(100), None, None, 0));
    l.ok(transfer(posted(30, &[(WALLET, SHOP, 200)])));
    l.ok(updates(vec![AccountUpdateInput { code: Some(9), ..update(WALLET) }]));
    l.refuses(transfer(posted(31, &[(WALLET, SHOP, 200)])), R::DebitLimitExceeded, Some(0));
}

#[test]
fn refused_updates_name_their_reason_and_change_nothing() {
    let mut l = Ledger::world();
    l.refuses(updates(vec![update(0)]), R::IdMustNotBeZero, None);
    l.refuses(updates(vec![update(999)]), R::AccountNotFound, None);
    l.refuses(updates(vec![AccountUpdateInput { code: Some(5), ..update(CLOSED) }]), R::AccountClosed, None);
    l.refuses(updates(vec![AccountUpdateInput { code: Some(0), ..update(SHOP) }]), R::AccountCodeMustNotBeZero, None);
    let too_many: BTreeMap<String, String> = (0..17).map(|i| (format!("k{i}"), String::new())).collect();
    l.refuses(updates(vec![AccountUpdateInput { metadata: Some(too_many), ..update(SHOP) }]), R::MetadataInvalid, None);
    let long_value = BTreeMap::from([("k".to_string(), "v".repeat(257))]);
    l.refuses(updates(vec![AccountUpdateInput { metadata: Some(long_value), ..update(SHOP) }]), R::MetadataInvalid, None);
    l.refuses(updates(vec![AccountUpdateInput { code: Some(2), reason: "r".repeat(257), ..update(SHOP) }]), R::ReasonInvalid, None);
    // An overdraft only where debits are bounded by credits, and in the asset's scale.
    l.refuses(limit(SHOP, 100), R::OverdraftLimitInvalid, None);
    let fine = AccountUpdateInput { overdraft_limit: Some(crate::amount::DecimalInput { digits: 1, scale: 3 }), ..update(WALLET) };
    l.refuses(updates(vec![fine]), R::OverdraftLimitInvalid, None);
    // Frozen accounts may be changed.
    l.ok(updates(vec![AccountUpdateInput { code: Some(4), ..update(FROZEN) }]));
}

#[test]
fn a_number_moves_between_open_accounts_and_the_history_of_both_says_so() {
    let mut l = Ledger::world();
    let balances = l.all_balances();
    let r = l.ok(rebind(REF, REFERENCED, SHOP));
    assert_eq!(r.id, SHOP);
    assert_eq!((l.account(REFERENCED).external_ref, l.account(SHOP).external_ref.as_deref()), (None, Some(REF)));
    assert_eq!(owner_of(&l, REF), Some(SHOP));
    assert_eq!(l.all_balances(), balances, "a rebind never moves money");
    let line = verified_lines(&l.store).unwrap().pop().unwrap();
    let Event::ExternalRefRebound { external_ref, from_account_id, to_account_id, actor, .. } = line.event else { panic!("not a rebind") };
    assert_eq!((external_ref.as_str(), from_account_id.as_deref(), to_account_id.as_deref(), actor.as_str()), (REF, Some("8"), Some("3"), "ops (admin)"));
    let from = history_of(&l, REFERENCED);
    let to = history_of(&l, SHOP);
    assert_eq!(from[0].kind, ChangeKind::ExternalRef { before: Some(REF.into()), after: None, other_account_id: SHOP });
    assert_eq!(to[0].kind, ChangeKind::ExternalRef { before: None, after: Some(REF.into()), other_account_id: REFERENCED });
    assert_eq!((from[0].timestamp_ns, to[0].timestamp_ns), (r.timestamp_ns, r.timestamp_ns));
    // A retry finds the number where it was asked to be: success, no change.
    let again = l.changes_nothing(rebind(REF, REFERENCED, SHOP));
    assert_eq!((again.code, again.timestamp_ns), (R::Ok, 0));
    l.ok(rebind(REF, SHOP, 0));
    let again = l.changes_nothing(rebind(REF, SHOP, 0));
    assert_eq!((again.code, again.timestamp_ns), (R::Ok, 0), "a retried release");
}

#[test]
fn a_closed_accounts_number_is_released_and_bound_again_even_by_a_new_account() {
    let mut l = Ledger::world();
    l.ok(statuses(vec![status(REFERENCED, AccountStatus::Closed)]));
    // Closed, it still holds its number: a new account cannot take it yet.
    let mut newcomer = account(40, "CNY");
    newcomer.external_ref = Some(REF.into());
    assert_eq!(l.one(accounts(vec![newcomer.clone()])).code, R::ExternalRefAlreadyUsed);
    let r = l.ok(rebind(REF, REFERENCED, 0));
    assert_eq!(r.id, REFERENCED);
    assert_eq!((owner_of(&l, REF), l.account(REFERENCED).external_ref), (None, None));
    l.ok(accounts(vec![newcomer]));
    assert_eq!(owner_of(&l, REF), Some(40));
    // Released again from an open account, then bound to another unbound one.
    l.ok(rebind(REF, 40, 0));
    l.ok(rebind(REF, 0, SHOP));
    assert_eq!(owner_of(&l, REF), Some(SHOP));
}

#[test]
fn refused_rebinds_name_their_reason_and_change_nothing() {
    let mut l = Ledger::world();
    l.ok(rebind("+8613900000000", 0, BANK));
    l.refuses(rebind("", REFERENCED, SHOP), R::ExternalRefInvalid, None);
    l.refuses(rebind(&"9".repeat(129), REFERENCED, SHOP), R::ExternalRefInvalid, None);
    l.refuses(rebind(REF, SHOP, SHOP), R::AccountsMustBeDifferent, None);
    l.refuses(rebind(REF, 0, 0), R::AccountsMustBeDifferent, None);
    let long = Operation::RebindExternalRefs(vec![RebindInput { external_ref: REF.into(), from_account_id: REFERENCED, to_account_id: SHOP, reason: "r".repeat(257), actor: String::new() }]);
    l.refuses(long, R::ReasonInvalid, None);
    l.refuses(rebind("+8613700000000", SHOP, WALLET), R::ExternalRefNotBound, None);
    l.refuses(rebind(REF, 0, SHOP), R::ExternalRefAlreadyUsed, None);
    l.refuses(rebind(REF, WALLET, SHOP), R::ExternalRefAlreadyUsed, None);
    l.refuses(rebind(REF, REFERENCED, 999), R::AccountNotFound, None);
    l.refuses(rebind(REF, REFERENCED, CLOSED), R::AccountClosed, None);
    l.refuses(rebind(REF, REFERENCED, BANK), R::AccountHasExternalRef, None);
}

#[test]
fn history_pages_follow_the_cursor() {
    let mut l = Ledger::world();
    let stamps: Vec<u64> = (2..6).map(|code| l.ok(updates(vec![AccountUpdateInput { code: Some(code), ..update(SHOP) }])).timestamp_ns).collect();
    let all = history_of(&l, SHOP);
    assert_eq!(all.iter().map(|c| c.timestamp_ns).collect::<Vec<_>>(), stamps);
    let page = history::list(&l.store, SHOP, Some(stamps[1]), 1).unwrap();
    assert_eq!(page.iter().map(|c| c.timestamp_ns).collect::<Vec<_>>(), vec![stamps[2]]);
    assert!(history::list(&l.store, SHOP, Some(u64::MAX), 10).unwrap().is_empty());
    assert!(history_of(&l, WALLET).is_empty(), "another account's changes are not its own");
}

mod properties {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    const IDS: u128 = 6;
    const REFS: [&str; 3] = ["+861", "+862", "+863"];

    #[derive(Debug, Clone)]
    enum Op {
        Rebind { external_ref: usize, from: u128, to: u128 },
        Update { account: u128, overdraft_cents: Option<u128>, code: Option<u32> },
        Pay { debit: u128, credit: u128, cents: u128, hold: bool },
        Close { account: u128 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0..REFS.len(), 0..=IDS, 0..=IDS).prop_map(|(external_ref, from, to)| Op::Rebind { external_ref, from, to }),
            2 => (1..=IDS, prop::option::of(0u128..3_000), prop::option::of(1u32..4)).prop_map(|(account, overdraft_cents, code)| Op::Update { account, overdraft_cents, code }),
            3 => (1..=IDS, 1..=IDS, 1u128..2_000, any::<bool>()).prop_map(|(debit, credit, cents, hold)| Op::Pay { debit, credit, cents, hold }),
            1 => (1..=IDS).prop_map(|account| Op::Close { account }),
        ]
    }

    fn operation(op: &Op, id: u128) -> Operation {
        match op {
            Op::Rebind { external_ref, from, to } => rebind(REFS[*external_ref], *from, *to),
            Op::Update { account, overdraft_cents, code } => {
                updates(vec![AccountUpdateInput { overdraft_limit: overdraft_cents.map(cents), code: *code, ..update(*account) }])
            }
            Op::Pay { debit, credit, cents, hold: false } => transfer(posted(id, &[(*debit, *credit, *cents)])),
            Op::Pay { debit, credit, cents, hold: true } => transfer(pending(id, &[(*debit, *credit, *cents)], 0)),
            Op::Close { account } => statuses(vec![status(*account, AccountStatus::Closed)]),
        }
    }

    /// The index and the accounts agree: each reference names one account and that account
    /// names it back, so no number is ever on two accounts (open or not).
    fn references_agree(l: &Ledger) -> Result<(), TestCaseError> {
        let accounts = all_accounts(&l.store);
        let mut open_refs = BTreeSet::new();
        for a in &accounts {
            if let Some(r) = &a.external_ref {
                prop_assert_eq!(owner_of(l, r), Some(a.id), "account {} names {} but the index does not", a.id, r);
                if a.status != AccountStatus::Closed {
                    prop_assert!(open_refs.insert(r.clone()), "{} on two open accounts", r);
                }
            }
        }
        for r in REFS {
            if let Some(owner) = owner_of(l, r) {
                let named = l.account(owner).external_ref;
                prop_assert_eq!(named.as_deref(), Some(r));
            }
        }
        Ok(())
    }

    fn money_conserved_and_flags_hold(l: &Ledger) -> Result<(), TestCaseError> {
        let accounts = all_accounts(&l.store);
        let sum = |f: fn(&Balances) -> u128| accounts.iter().map(|a| f(&a.balances)).sum::<u128>();
        prop_assert_eq!(sum(|b| b.debits_posted), sum(|b| b.credits_posted));
        prop_assert_eq!(sum(|b| b.debits_pending), sum(|b| b.credits_pending));
        for a in &accounts {
            prop_assert!(crate::account::check_constraints(a).is_ok(), "account {} breaks its balance rule", a.id);
        }
        Ok(())
    }

    fn start() -> Ledger {
        let mut l = Ledger::new();
        let mut specs = vec![account(1, "CNY"), account(2, "CNY")];
        for id in 3..=IDS {
            let mut a = limited(id, "CNY", 1_000);
            a.external_ref = REFS.get(usize::try_from(id).unwrap() - 3).map(|r| r.to_string());
            specs.push(a);
        }
        l.all_ok(accounts(specs));
        l
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// Rebinding never leaves one number on two open accounts; an update or a rebind never
        /// changes a balance; money is conserved and every balance rule holds throughout.
        #[test]
        fn rebinds_and_updates_keep_numbers_unique_and_balances_unchanged(ops in prop::collection::vec(op(), 1..60)) {
            let mut l = start();
            for (i, op) in ops.iter().enumerate() {
                let before = l.all_balances();
                let results = l.apply(operation(op, 10_000 + i as u128)).results;
                prop_assert_eq!(results.len(), 1);
                if matches!(op, Op::Rebind { .. } | Op::Update { .. }) {
                    prop_assert_eq!(l.all_balances(), before, "{:?} moved money", op);
                }
                references_agree(&l)?;
                money_conserved_and_flags_hold(&l)?;
            }
            prop_assert!(verified_lines(&l.store).is_ok());
        }
    }
}
