//! Offline wallets: the acceptance flow of issue 6 over the state machine, and a property test
//! that random interleavings of phone and terminal uploads post each record exactly once.

use proptest::prelude::*;

use super::fixtures::*;
use crate::result::ResultCode as R;
use crate::store::{self, MemStore};
use crate::types::*;
use crate::wallet::{self, mac, sync, token, TokenStatus};

pub const SOURCE: u128 = 100;
pub const PHONE_WALLET: u128 = 101;
pub const MERCHANT: u128 = 102;
pub const CLEARING: u128 = 103;
pub const TOKEN: u128 = 900;
pub const DEVICE: &str = "device-1";
/// Tests only: a documented dev key, never a production one.
const MASTER: &[u8] = b"ledger-dev-master-key";

/// Wallet topped up with 500.00 and a token of limit 100.00, count 10.
pub fn wallet_world() -> Ledger {
    let mut l = Ledger::new();
    l.all_ok(accounts(vec![
        account(SOURCE, "CNY"),
        limited(PHONE_WALLET, "CNY", 0),
        account(MERCHANT, "CNY"),
        account(CLEARING, "CNY"),
    ]));
    l.ok(transfer(posted(1, &[(SOURCE, PHONE_WALLET, 50_000)])));
    l.ok(Operation::IssueTokens(vec![issue(TOKEN, 10_000, 10)]));
    l
}

pub fn issue(token_id: u128, limit_cents: u128, count: u32) -> wallet::IssueTokenInput {
    wallet::IssueTokenInput {
        token_id,
        account_id: PHONE_WALLET,
        clearing_account_id: CLEARING,
        device_id: DEVICE.into(),
        offline_limit: cents(limit_cents),
        max_offline_count: count,
        validity_ms: 0,
    }
}

/// A record with a MAC made under the token's key, verified as the leader would.
pub fn record(sequence: u64, amount_cents: u128, merchant: u128) -> wallet::OfflineRecordInput {
    let key = mac::token_key(MASTER, DEVICE, TOKEN);
    let mac = mac::record_mac(&key, TOKEN, sequence, amount_cents, merchant, 7_000 + sequence);
    let mac_valid = mac::mac_equal(&mac, &mac::record_mac(&key, TOKEN, sequence, amount_cents, merchant, 7_000 + sequence));
    wallet::OfflineRecordInput { sequence, amount: cents(amount_cents), merchant_account_id: merchant, device_time_ms: 7_000 + sequence, mac, mac_valid }
}

pub fn upload(records: Vec<wallet::OfflineRecordInput>, reissue_through: u64) -> Operation {
    Operation::SyncOfflineRecords(vec![wallet::SyncInput { token_id: TOKEN, records, reissue_through_sequence: reissue_through }])
}

/// Spendable online: credits − debits − holds.
fn available(l: &Ledger, id: u128) -> u128 {
    token::available_minor(&l.account(id))
}

fn tok(store: &MemStore) -> wallet::Token {
    token::get_token(store, TOKEN).unwrap().unwrap()
}

fn check_conservation(store: &MemStore) {
    let (mut d, mut c, mut dp, mut cp) = (0u128, 0u128, 0u128, 0u128);
    for a in all_accounts(store) {
        let b = a.balances;
        d += b.debits_posted;
        c += b.credits_posted;
        dp += b.debits_pending;
        cp += b.credits_pending;
        if a.debits_must_not_exceed_credits {
            assert!(b.debits_posted + b.debits_pending <= b.credits_posted + a.overdraft_limit_minor, "{a:?}");
        }
    }
    assert_eq!((d, dp), (c, cp), "posted and pending totals balance");
}

#[test]
fn acceptance_issue_spend_offline_dedup_sync_reissue_clone_and_bad_mac() {
    // 1. Topped up with 500.00, token of 100.00: 400.00 left online.
    let mut l = wallet_world();
    assert_eq!(available(&l, PHONE_WALLET), 40_000);
    assert_eq!(l.b(CLEARING).3, 10_000, "clearing holds the offline limit");
    // 2. 450.00 online is refused, 300.00 passes.
    l.refuses(transfer(posted(2, &[(PHONE_WALLET, MERCHANT, 45_000)])), R::ExceedsCredits, Some(0));
    l.ok(transfer(posted(3, &[(PHONE_WALLET, MERCHANT, 30_000)])));
    let merchant_before = l.balances(MERCHANT).credits_posted;
    // 3. Terminal uploads 1, 2; the phone uploads 1, 2, 3: each posts once.
    let terminal = l.apply(upload(vec![record(1, 3_000, MERCHANT), record(2, 2_500, MERCHANT)], 0)).results;
    assert!(terminal[..2].iter().all(|r| r.code == R::Ok && !r.replay), "{terminal:?}");
    let phone = l.apply(upload(vec![record(1, 3_000, MERCHANT), record(2, 2_500, MERCHANT), record(3, 2_500, MERCHANT)], 3)).results;
    assert_eq!(phone.iter().map(|r| (r.code, r.replay)).collect::<Vec<_>>(), vec![(R::Ok, true), (R::Ok, true), (R::Ok, false), (R::Ok, false)]);
    assert_eq!(l.balances(MERCHANT).credits_posted - merchant_before, 8_000, "merchant has 80.00");
    // 4. The phone's sync re-issued: 20.00 released, a new hold of 100.00.
    let t = tok(&l.store);
    assert_eq!((t.generation, t.hold_remaining_minor, t.hold_placed_minor, t.seq_base), (1, 10_000, 10_000, 3));
    let w = l.balances(PHONE_WALLET);
    assert_eq!(w.credits_posted - w.debits_posted, 12_000, "posted balance 120.00");
    assert_eq!(w.debits_pending, 10_000);
    assert_eq!(available(&l, PHONE_WALLET), 2_000, "20.00 spendable online");
    check_conservation(&l.store);
    // 5. Sequence 2 with another amount: a clone. Exception, token revoked, nothing moves.
    let before = l.all_balances();
    let r = l.apply(upload(vec![record(2, 9_900, MERCHANT)], 0)).results;
    assert_eq!(r[0].code, R::SequenceReused);
    assert_eq!(tok(&l.store).status, TokenStatus::Revoked);
    assert_eq!(l.all_balances(), before);
    // 6. A bad MAC: an exception, nothing moves.
    let mut forged = record(4, 1_000, MERCHANT);
    forged.mac_valid = false;
    let r = l.apply(upload(vec![forged], 0)).results;
    assert_eq!(r[0].code, R::MacInvalid);
    assert_eq!(l.all_balances(), before);
    let exceptions = sync::exceptions(&l.store, TOKEN, 100).unwrap();
    assert_eq!(exceptions.iter().map(|e| (e.sequence, e.reason)).collect::<Vec<_>>(), vec![(2, R::SequenceReused), (4, R::MacInvalid)]);
    // Money across wallet, merchant, clearing and source.
    let total: i128 = [SOURCE, PHONE_WALLET, MERCHANT, CLEARING]
        .iter()
        .map(|&id| { let b = l.balances(id); b.credits_posted as i128 - b.debits_posted as i128 })
        .sum();
    assert_eq!(total, 0);
    check_conservation(&l.store);
}

#[test]
fn allowance_resets_to_the_limit_never_above_and_not_on_an_incomplete_sync() {
    let mut l = wallet_world();
    // Sequence 2 only: the phone claims through 2 but 1 is missing: no re-issue.
    let r = l.apply(upload(vec![record(2, 8_000, MERCHANT)], 2)).results;
    assert_eq!((r[0].code, r[1].code), (R::Ok, R::SyncIncomplete));
    assert_eq!(tok(&l.store).hold_remaining_minor, 2_000, "allowance stays at 20.00");
    let r = l.apply(upload(vec![record(1, 500, MERCHANT)], 2)).results;
    assert_eq!((r[0].code, r[1].code), (R::Ok, R::Ok));
    let t = tok(&l.store);
    assert_eq!((t.hold_remaining_minor, t.generation), (10_000, 1), "reset to 100.00, not 115.00");
    check_conservation(&l.store);
}

#[test]
fn reissue_is_capped_by_the_balance_and_reports_the_cap() {
    let mut l = wallet_world();
    l.ok(transfer(posted(3, &[(PHONE_WALLET, MERCHANT, 35_000)])));
    // 50.00 left online; spend 100.00 offline, then the new hold can only be 50.00.
    l.apply(upload(vec![record(1, 10_000, MERCHANT)], 1));
    let t = tok(&l.store);
    assert_eq!((t.hold_placed_minor, t.offline_limit_minor), (5_000, 10_000));
    assert_eq!(available(&l, PHONE_WALLET), 0);
    check_conservation(&l.store);
}

#[test]
fn records_beyond_limit_or_count_are_exceptions_and_move_nothing() {
    let mut l = wallet_world();
    let before = l.all_balances();
    let r = l.apply(upload(vec![record(1, 10_001, MERCHANT), record(11, 100, MERCHANT)], 0)).results;
    assert_eq!((r[0].code, r[1].code), (R::OfflineLimitExceeded, R::OfflineCountExceeded));
    assert_eq!(l.all_balances(), before);
    assert_eq!(sync::exceptions(&l.store, TOKEN, 10).unwrap().len(), 2);
}

#[test]
fn a_revoked_token_keeps_its_hold_until_expiry_plus_grace_then_releases_it() {
    let mut l = wallet_world();
    l.ok(Operation::RevokeTokens(vec![wallet::RevokeTokenInput { token_id: TOKEN, reason: "lost phone".into() }]));
    // Records made before the revocation still post.
    assert_eq!(l.apply(upload(vec![record(1, 1_000, MERCHANT)], 0)).results[0].code, R::Ok);
    let t = tok(&l.store);
    assert_eq!(l.balances(PHONE_WALLET).debits_pending, 9_000);
    l.apply_at(t.release_at_ns, Operation::Tick);
    assert_eq!(tok(&l.store).status, TokenStatus::Released);
    assert_eq!(l.balances(PHONE_WALLET).debits_pending, 0);
    assert_eq!(l.balances(CLEARING).credits_pending, 0);
    assert_eq!(l.apply(upload(vec![record(2, 100, MERCHANT)], 0)).results[0].code, R::TokenNotActive);
    check_conservation(&l.store);
}

#[test]
fn entries_replay_to_the_balances_after_wallet_operations() {
    let mut l = wallet_world();
    l.apply(upload(vec![record(1, 3_000, MERCHANT), record(2, 2_500, MERCHANT)], 2));
    for a in all_accounts(&l.store) {
        let mut b = Balances::default();
        for e in store::account_entries(&l.store, a.id, None, None, usize::MAX, false).unwrap() {
            let (posted, pending) = if e.is_debit { (&mut b.debits_posted, &mut b.debits_pending) } else { (&mut b.credits_posted, &mut b.credits_pending) };
            match e.kind {
                EntryKind::Posted => *posted += e.amount_minor,
                EntryKind::Pending => *pending += e.amount_minor,
                EntryKind::VoidPending | EntryKind::ExpirePending => *pending -= e.amount_minor,
                EntryKind::PostPending => unreachable!("no post-pending here"),
            }
            assert_eq!(b, e.balances_after, "{e:?}");
        }
        assert_eq!(b, a.balances, "account {}", a.id);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Phone and terminal upload random subsets of the same records, duplicated and in any
    /// order, in random batches: each record posts exactly once and money is conserved.
    #[test]
    fn random_phone_and_terminal_interleavings_post_each_record_once(
        amounts in prop::collection::vec(1u128..1_250, 1..8),
        uploads in prop::collection::vec((prop::collection::vec(0usize..8, 0..10), any::<bool>()), 1..12),
    ) {
        let mut l = wallet_world();
        let records: Vec<_> = amounts.iter().enumerate().map(|(i, &a)| record(i as u64 + 1, a, MERCHANT)).collect();
        let merchant_before = l.balances(MERCHANT).credits_posted;
        let mut batches: Vec<Vec<usize>> = uploads.iter().map(|(picks, _)| picks.iter().map(|p| p % records.len()).collect()).collect();
        // Finally the terminal uploads everything, so every record has arrived.
        batches.push((0..records.len()).rev().collect());
        let mut posted_now = vec![0u32; records.len()];
        for batch in &batches {
            let results = l.apply(upload(batch.iter().map(|&i| records[i].clone()).collect(), 0)).results;
            for (&i, r) in batch.iter().zip(&results) {
                prop_assert_eq!(r.code, R::Ok);
                if !r.replay { posted_now[i] += 1; }
            }
            check_conservation(&l.store);
        }
        prop_assert!(posted_now.iter().all(|&n| n == 1), "{:?}", posted_now);
        prop_assert_eq!(l.balances(MERCHANT).credits_posted - merchant_before, amounts.iter().sum::<u128>());
        let t = tok(&l.store);
        prop_assert_eq!(t.hold_remaining_minor + amounts.iter().sum::<u128>(), 10_000);
        prop_assert_eq!(l.balances(PHONE_WALLET).debits_pending, t.hold_remaining_minor);
    }
}

/// Found by the fuzzer (corpus `apply/crash-issue-closed-clearing`): a hold the ledger refuses
/// refused the issue but left the hold's idempotency record and a used timestamp behind.
#[test]
fn an_issue_whose_hold_is_refused_writes_nothing() {
    let mut l = wallet_world();
    l.all_ok(accounts(vec![account(110, "CNY"), capped(111, "CNY")]));
    l.all_ok(statuses(vec![status(110, AccountStatus::Closed)]));
    for (clearing, code) in [(110, R::AccountClosed), (111, R::ExceedsDebits)] {
        let input = wallet::IssueTokenInput { clearing_account_id: clearing, ..issue(950 + clearing, 1_000, 5) };
        let r = l.refuses(Operation::IssueTokens(vec![input.clone()]), code, None);
        assert_eq!((r.id, r.timestamp_ns), (input.token_id, 0));
        // Nothing was recorded: the same issue with a usable clearing account succeeds.
        l.ok(Operation::IssueTokens(vec![wallet::IssueTokenInput { clearing_account_id: CLEARING, ..input }]));
    }
}

/// Found by the fuzzer (corpus `apply/crash-offline-spend-overcredits`): an offline payment to a
/// merchant whose credits must not exceed its debits was posted past that rule.
#[test]
fn an_offline_payment_keeps_the_merchants_balance_rule() {
    let mut l = wallet_world();
    l.all_ok(accounts(vec![capped(112, "CNY")]));
    l.ok(transfer(posted(2, &[(112, SOURCE, 1_000)])));
    let before = l.all_balances();
    let r = l.apply(upload(vec![record(1, 1_001, 112)], 0)).results;
    assert_eq!((r[0].code, r[0].replay), (R::ExceedsDebits, false));
    assert_eq!(l.all_balances(), before);
    assert_eq!(sync::exceptions(&l.store, TOKEN, 10).unwrap()[0].reason, R::ExceedsDebits);
    // Up to its debits it is paid.
    let r = l.apply(upload(vec![record(2, 1_000, 112)], 0)).results;
    assert_eq!(r[0].code, R::Ok);
    assert_eq!(l.b(112), (1_000, 1_000, 0, 0));
}
