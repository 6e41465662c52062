//! The two-phase checker: pending transfers (holds) posted, voided or left to expire, judged
//! against the history and the ledger's final state (read after every hold's timeout passed):
//! - no hold is both posted and voided (two ok answers, or a post and a void both in the ledger);
//! - a post or void acknowledged ok is reflected at the end (the hold is posted / voided and the
//!   post / void is in the ledger); a post or void refused because the hold was already posted,
//!   already voided or expired agrees with the hold's final state;
//! - an acknowledged hold is in the ledger, a definitely failed one is not, and none is still
//!   pending at the end (every hold was resolved or expired);
//! - funds are released exactly once: the final balances are the initial ones plus the posted
//!   holds' amounts, and every pending balance is back to zero;
//! - every ok read conserves money, pending amounts included: posted balances sum to the
//!   initial total, debits pending equal credits pending, no pending balance is negative or
//!   larger than the holds sent so far could make it, and no account's posted balance minus its
//!   debits pending is negative (`debits_must_not_exceed_credits`).

use std::collections::{BTreeMap, BTreeSet};

use super::Verdict;
use crate::history::{AccountId, Amount, Completed, Op, Outcome};

/// Where a hold is at the end of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldState {
    /// Not in the ledger.
    Absent,
    Pending,
    Posted,
    Voided,
    Expired,
}

/// What the ledger holds at the end, read after the faults healed and every timeout passed.
#[derive(Debug, Clone, Default)]
pub struct FinalState {
    /// Every hold id the workload sent, with its state.
    pub holds: BTreeMap<u64, HoldState>,
    /// Ids of the workload's posts and voids found in the ledger.
    pub present: BTreeSet<u64>,
    /// Posted balances (credits − debits).
    pub balances: BTreeMap<AccountId, Amount>,
    /// `[debits_pending, credits_pending]` per account.
    pub held: BTreeMap<AccountId, [Amount; 2]>,
}

/// The state a definite refusal of a post or void implies for its hold.
fn implied_by_refusal(error: Option<&str>) -> Option<HoldState> {
    match error? {
        "pending_transfer_already_posted" => Some(HoldState::Posted),
        "pending_transfer_already_voided" => Some(HoldState::Voided),
        "pending_transfer_expired" => Some(HoldState::Expired),
        _ => None,
    }
}

struct Hold {
    from: AccountId,
    to: AccountId,
    amount: Amount,
    invoke_ns: u64,
    ok: bool,
    failed: bool,
}

pub fn check(ops: &[Completed], initial: &BTreeMap<AccountId, Amount>, end: &FinalState) -> Verdict {
    let mut verdict = Verdict::new("two_phase");
    let mut holds: BTreeMap<u64, Hold> = BTreeMap::new();
    // Per hold: (is_post, resolution id, outcome, error) of every post / void attempt.
    let mut resolutions: BTreeMap<u64, Vec<(bool, u64, &Completed)>> = BTreeMap::new();
    for op in ops {
        match &op.op {
            Op::Hold { id, from, to, amount, .. } => {
                let hold = holds.entry(*id).or_insert(Hold { from: *from, to: *to, amount: *amount, invoke_ns: op.invoke_ns, ok: false, failed: false });
                hold.invoke_ns = hold.invoke_ns.min(op.invoke_ns);
                hold.ok |= op.outcome == Outcome::Ok;
                hold.failed |= op.outcome == Outcome::Fail;
            }
            Op::Post { id, hold, .. } => resolutions.entry(*hold).or_default().push((true, *id, op)),
            Op::Void { id, hold, .. } => resolutions.entry(*hold).or_default().push((false, *id, op)),
            _ => {}
        }
    }

    for (id, hold) in &holds {
        let state = end.holds.get(id).copied().unwrap_or(HoldState::Absent);
        if hold.ok && state == HoldState::Absent {
            verdict.anomaly(format!("hold {id} was acknowledged ok but is not in the ledger"));
        }
        if hold.failed && state != HoldState::Absent {
            verdict.anomaly(format!("hold {id} failed definitely but is in the ledger ({state:?})"));
        }
        if hold.ok && hold.failed {
            verdict.anomaly(format!("hold {id} was both acknowledged and refused"));
        }
        if state == HoldState::Pending {
            verdict.anomaly(format!("hold {id} is still pending after its timeout"));
        }
        let attempts = resolutions.get(id).map(Vec::as_slice).unwrap_or_default();
        let ok_post = attempts.iter().any(|(post, _, a)| *post && a.outcome == Outcome::Ok);
        let ok_void = attempts.iter().any(|(post, _, a)| !*post && a.outcome == Outcome::Ok);
        if ok_post && ok_void {
            verdict.anomaly(format!("hold {id} was both posted and voided (both acknowledged ok)"));
        }
        let present_posts: BTreeSet<u64> = attempts.iter().filter(|(post, r, _)| *post && end.present.contains(r)).map(|(_, r, _)| *r).collect();
        let present_voids: BTreeSet<u64> = attempts.iter().filter(|(post, r, _)| !*post && end.present.contains(r)).map(|(_, r, _)| *r).collect();
        if present_posts.len() + present_voids.len() > 1 {
            verdict.anomaly(format!("hold {id} was resolved more than once: posts {present_posts:?}, voids {present_voids:?} in the ledger"));
        }
        for (post, resolution, attempt) in attempts {
            let (what, want) = if *post { ("post", HoldState::Posted) } else { ("void", HoldState::Voided) };
            let present = end.present.contains(resolution);
            if attempt.outcome == Outcome::Ok && (state != want || !present) {
                verdict.anomaly(format!(
                    "{what} {resolution} of hold {id} was acknowledged ok, but the hold ends {state:?} and the {what} is {}in the ledger",
                    if present { "" } else { "not " }
                ));
            }
            if attempt.outcome == Outcome::Fail && present {
                verdict.anomaly(format!("{what} {resolution} of hold {id} failed definitely but is in the ledger"));
            }
            if attempt.outcome == Outcome::Fail {
                if let Some(implied) = implied_by_refusal(attempt.error.as_deref()) {
                    if implied != state {
                        verdict.anomaly(format!("{what} {resolution} of hold {id} was refused as {implied:?}, but the hold ends {state:?}"));
                    }
                }
            }
        }
        match state {
            HoldState::Posted if present_posts.is_empty() => verdict.anomaly(format!("hold {id} ends posted but none of its posts is in the ledger")),
            HoldState::Voided if present_voids.is_empty() => verdict.anomaly(format!("hold {id} ends voided but none of its voids is in the ledger")),
            HoldState::Expired | HoldState::Pending | HoldState::Absent if !present_posts.is_empty() || !present_voids.is_empty() => {
                verdict.anomaly(format!("hold {id} ends {state:?} but a post or void of it is in the ledger"))
            }
            _ => {}
        }
    }
    for id in end.holds.iter().filter(|(_, s)| **s != HoldState::Absent).map(|(id, _)| id) {
        if !holds.contains_key(id) {
            verdict.anomaly(format!("hold {id} is in the ledger but no client sent it"));
        }
    }

    // Released exactly once: only posted holds moved money, and nothing is held any more.
    let mut expected = initial.clone();
    for (id, hold) in &holds {
        if end.holds.get(id) == Some(&HoldState::Posted) {
            *expected.entry(hold.from).or_default() -= hold.amount;
            *expected.entry(hold.to).or_default() += hold.amount;
        }
    }
    for (account, want) in &expected {
        let got = end.balances.get(account).copied().unwrap_or_default();
        if got != *want {
            verdict.anomaly(format!("account {account}: final balance {got}, but the initial balance plus the posted holds give {want}"));
        }
        let held = end.held.get(account).copied().unwrap_or_default();
        if held != [0, 0] {
            verdict.anomaly(format!("account {account}: pending balances {held:?} at the end, after every hold's timeout"));
        }
    }

    // Every read: money conserved, pending amounts included.
    let total: Amount = initial.values().sum();
    let (sent_from, sent_to) = (running_sums(&holds, |h| h.from), running_sums(&holds, |h| h.to));
    for op in ops.iter().filter(|o| o.outcome == Outcome::Ok) {
        let Op::Read { balances: Some(balances), held } = &op.op else { continue };
        let at = op.invoke_ns;
        let sum: Amount = balances.values().sum();
        if sum != total {
            verdict.anomaly(format!("read at {at} ns: posted balances total {sum}, expected {total}"));
        }
        let Some(held) = held else {
            verdict.anomaly(format!("read at {at} ns has no pending balances"));
            continue;
        };
        let debits: Amount = held.values().map(|h| h[0]).sum();
        let credits: Amount = held.values().map(|h| h[1]).sum();
        if debits != credits {
            verdict.anomaly(format!("read at {at} ns: debits pending {debits} but credits pending {credits}"));
        }
        for (account, [debit, credit]) in held {
            // The most each side could hold: every hold sent before the read completed.
            let sent = |side: &BTreeMap<AccountId, Vec<(u64, Amount)>>| sent_by(side, *account, op.complete_ns);
            if *debit < 0 || *credit < 0 || *debit > sent(&sent_from) || *credit > sent(&sent_to) {
                verdict.anomaly(format!("read at {at} ns: account {account} holds {debit} / {credit} pending, not explained by the holds sent"));
            }
            if balances.get(account).is_some_and(|b| b - debit < 0) {
                verdict.anomaly(format!("read at {at} ns: account {account} has {} posted but {debit} held", balances[account]));
            }
        }
    }
    verdict
}

/// Per account, the holds not refused on that side, by invoke time, with running sums of their
/// amounts (so each read's bound is a binary search, not a scan of every hold).
fn running_sums(holds: &BTreeMap<u64, Hold>, side: fn(&Hold) -> AccountId) -> BTreeMap<AccountId, Vec<(u64, Amount)>> {
    let mut by_account: BTreeMap<AccountId, Vec<(u64, Amount)>> = BTreeMap::new();
    for h in holds.values().filter(|h| !h.failed) {
        by_account.entry(side(h)).or_default().push((h.invoke_ns, h.amount));
    }
    for sums in by_account.values_mut() {
        sums.sort_unstable();
        let mut running = 0;
        for entry in sums.iter_mut() {
            running += entry.1;
            entry.1 = running;
        }
    }
    by_account
}

/// The amount of every hold on `account`'s side invoked at or before `until_ns`.
fn sent_by(sums: &BTreeMap<AccountId, Vec<(u64, Amount)>>, account: AccountId, until_ns: u64) -> Amount {
    let Some(sums) = sums.get(&account) else { return 0 };
    match sums.partition_point(|(invoke_ns, _)| *invoke_ns <= until_ns) {
        0 => 0,
        n => sums[n - 1].1,
    }
}

/// The two-phase history as the bank and linearizability checkers see posted balances: a post
/// moves its hold's amount from `from` to `to` between its invoke and completion (like a
/// transfer); holds, voids and expiries move nothing posted.
pub fn posted_view(ops: &[Completed]) -> Vec<Completed> {
    let holds: BTreeMap<u64, (AccountId, AccountId, Amount)> = ops
        .iter()
        .filter_map(|o| if let Op::Hold { id, from, to, amount, .. } = o.op { Some((id, (from, to, amount))) } else { None })
        .collect();
    ops.iter()
        .filter_map(|o| match &o.op {
            Op::Read { .. } => Some(o.clone()),
            Op::Post { id, key, hold } => {
                let (from, to, amount) = holds.get(hold)?;
                Some(Completed { op: Op::transfer(*id, key.clone(), *from, *to, *amount), ..o.clone() })
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(invoke_ns: u64, outcome: Outcome, op: Op, error: Option<&str>) -> Completed {
        Completed { process: 0, invoke_ns, complete_ns: invoke_ns + 1, outcome, op, ledger_timestamp_ns: None, error: error.map(str::to_string) }
    }
    fn hold(id: u64) -> Op {
        Op::Hold { id, key: format!("h{id}"), from: 1, to: 2, amount: 10, timeout_ms: 1000 }
    }
    fn post(id: u64, hold: u64) -> Op {
        Op::Post { id, key: format!("p{id}"), hold }
    }
    fn void(id: u64, hold: u64) -> Op {
        Op::Void { id, key: format!("v{id}"), hold }
    }
    fn read(a: Amount, b: Amount, held_a: [Amount; 2], held_b: [Amount; 2]) -> Op {
        Op::Read { balances: Some(BTreeMap::from([(1, a), (2, b)])), held: Some(BTreeMap::from([(1, held_a), (2, held_b)])) }
    }
    fn initial() -> BTreeMap<AccountId, Amount> {
        BTreeMap::from([(1, 100), (2, 0)])
    }
    fn end(holds: &[(u64, HoldState)], present: &[u64], a: Amount, b: Amount) -> FinalState {
        FinalState {
            holds: holds.iter().copied().collect(),
            present: present.iter().copied().collect(),
            balances: BTreeMap::from([(1, a), (2, b)]),
            held: BTreeMap::from([(1, [0, 0]), (2, [0, 0])]),
        }
    }

    /// Hold 1 posted, hold 2 voided (its racing post refused), hold 3 expired (a late post
    /// refused as expired), hold 4 refused; reads see the holds pending and the post.
    fn good_history() -> Vec<Completed> {
        vec![
            op(1, Outcome::Ok, hold(1), None),
            op(2, Outcome::Ok, hold(2), None),
            op(3, Outcome::Ok, hold(3), None),
            op(4, Outcome::Fail, hold(4), Some("exceeds_credits")),
            op(5, Outcome::Ok, read(100, 0, [30, 0], [0, 30]), None),
            op(6, Outcome::Ok, post(11, 1), None),
            op(7, Outcome::Ok, void(12, 2), None),
            op(7, Outcome::Fail, post(13, 2), Some("pending_transfer_already_voided")),
            op(8, Outcome::Ok, read(90, 10, [10, 0], [0, 10]), None),
            op(9, Outcome::Fail, post(14, 3), Some("pending_transfer_expired")),
            op(10, Outcome::Info, void(15, 1), None),
            op(11, Outcome::Ok, read(90, 10, [0, 0], [0, 0]), None),
        ]
    }
    fn good_end() -> FinalState {
        end(&[(1, HoldState::Posted), (2, HoldState::Voided), (3, HoldState::Expired), (4, HoldState::Absent)], &[11, 12], 90, 10)
    }

    #[test]
    fn a_good_history_passes() {
        let verdict = check(&good_history(), &initial(), &good_end());
        assert_eq!(verdict.valid, Some(true), "{verdict:?}");
    }

    #[test]
    fn a_hold_both_posted_and_voided_fails() {
        let mut history = good_history();
        history[7] = op(7, Outcome::Ok, post(13, 2), None);
        let verdict = check(&history, &initial(), &good_end());
        assert_eq!(verdict.valid, Some(false));
        assert!(verdict.anomalies.iter().any(|a| a.contains("both posted and voided")), "{verdict:?}");
        // Also when both only show in the ledger (their answers were lost).
        let mut history = good_history();
        history[6].outcome = Outcome::Info;
        history[7] = op(7, Outcome::Info, post(13, 2), None);
        let mut state = good_end();
        state.present.insert(13);
        let verdict = check(&history, &initial(), &state);
        assert!(verdict.anomalies.iter().any(|a| a.contains("resolved more than once")), "{verdict:?}");
    }

    #[test]
    fn a_lost_post_fails() {
        // Post 11 was acknowledged, but the hold expired and the money never moved.
        let mut state = good_end();
        state.holds.insert(1, HoldState::Expired);
        state.present.remove(&11);
        state.balances = BTreeMap::from([(1, 100), (2, 0)]);
        let verdict = check(&good_history(), &initial(), &state);
        assert_eq!(verdict.valid, Some(false));
        assert!(verdict.anomalies.iter().any(|a| a.contains("post 11 of hold 1 was acknowledged ok")), "{verdict:?}");
    }

    #[test]
    fn a_double_release_fails() {
        // Expired hold 3 released its funds twice: once from the pending balance (as it should),
        // and once more into the posted balance; the pending balance also went below zero.
        let mut state = good_end();
        state.balances = BTreeMap::from([(1, 100), (2, 0)]);
        state.held.insert(1, [-10, 0]);
        let verdict = check(&good_history(), &initial(), &state);
        assert_eq!(verdict.valid, Some(false));
        assert!(verdict.anomalies.iter().any(|a| a.contains("plus the posted holds give 90")), "{verdict:?}");
        assert!(verdict.anomalies.iter().any(|a| a.contains("pending balances [-10, 0]")), "{verdict:?}");
    }

    #[test]
    fn a_hold_left_pending_or_a_refusal_that_disagrees_fails() {
        let mut state = good_end();
        state.holds.insert(3, HoldState::Pending);
        state.held = BTreeMap::from([(1, [10, 0]), (2, [0, 10])]);
        let verdict = check(&good_history(), &initial(), &state);
        assert!(verdict.anomalies.iter().any(|a| a.contains("still pending")), "{verdict:?}");
        assert!(verdict.anomalies.iter().any(|a| a.contains("refused as Expired")), "{verdict:?}");
    }

    #[test]
    fn a_read_that_loses_a_hold_or_money_fails() {
        let mut history = good_history();
        // Debits pending without the matching credits pending.
        history[4] = op(5, Outcome::Ok, read(100, 0, [30, 0], [0, 20]), None);
        assert!(check(&history, &initial(), &good_end()).anomalies.iter().any(|a| a.contains("credits pending 20")));
        // More held than the holds sent.
        history[4] = op(5, Outcome::Ok, read(100, 0, [50, 0], [0, 50]), None);
        assert!(check(&history, &initial(), &good_end()).anomalies.iter().any(|a| a.contains("not explained")));
        // Posted total off.
        history[4] = op(5, Outcome::Ok, read(100, 10, [30, 0], [0, 30]), None);
        assert!(check(&history, &initial(), &good_end()).anomalies.iter().any(|a| a.contains("total 110")));
    }

    #[test]
    fn the_posted_view_turns_posts_into_transfers() {
        let view = posted_view(&good_history());
        let transfers: Vec<&Op> = view.iter().map(|o| &o.op).filter(|o| matches!(o, Op::Transfer { .. })).collect();
        assert_eq!(transfers.len(), 3, "posts 11, 13, 14 (outcomes kept), nothing else");
        assert_eq!(transfers[0], &Op::transfer(11, "p11", 1, 2, 10));
        assert_eq!(view.iter().filter(|o| matches!(o.op, Op::Read { .. })).count(), 3);
        assert_eq!(super::super::linearizable::check(&view, &initial(), Some(&BTreeSet::from([11]))).valid, Some(true));
    }
}
