//! Linearizability per account, Wing–Gong–Lowe style (as Knossos and Porcupine do it).
//!
//! Each account is an object whose state is its balance. A transfer is one `add(delta)` on each
//! account it touches, `delta` being the sum of its legs on that account (a multi-leg transfer is
//! atomic, so its legs land on one account at one point); a read of all balances is `read(v)` on
//! each account. That a read concurrent with a transfer saw all its legs or none *across*
//! accounts is not a per-account property: `atomic_reads` checks it. Ok operations must take effect once, between their invoke and completion;
//! unknown (info) ones may take effect once at any time after their invoke, or never; failed ones
//! never. The search looks for an order that respects real time and explains every read; it
//! memoizes (taken set, balance) pairs and gives up, undecided, after a step budget.
//! Per-object linearizability composes (Herlihy & Wing), so accounts are checked one at a time;
//! the bank checker covers the totals across accounts.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::Verdict;
use crate::history::{AccountId, Amount, Completed, Op, Outcome};

/// Search steps per account before the checker answers "undecided".
pub const STEPS_PER_ACCOUNT_MAX: u64 = 5_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Add(Amount),
    Read(Amount),
}

#[derive(Debug, Clone, Copy)]
struct Call {
    /// Index in the history, for reports.
    history_index: usize,
    invoke_ns: u64,
    complete_ns: u64,
    required: bool,
    kind: Kind,
}

/// One transfer's attempts, merged.
struct Attempts {
    first_index: usize,
    invoke_ns: u64,
    /// The earliest ok completion.
    ok_complete_ns: Option<u64>,
    failed: bool,
    delta: Amount,
}

/// The account's calls. Every attempt of one transfer (retries share its id and key, and the
/// ledger applies a key at most once) is one call: it begins at the first attempt's invoke; it is
/// required, ending at the first ok completion, when an attempt was acknowledged; dropped when
/// one failed definitely. When every attempt is unknown, `present` (the transfers found in the
/// ledger at the end) decides: present means it happened once, at some point after its invoke
/// (required, no deadline); absent means it never did. Without `present` it is optional.
fn calls_of(ops: &[Completed], account: AccountId, present: Option<&BTreeSet<u64>>) -> Vec<Call> {
    let mut calls = Vec::new();
    let mut transfers: BTreeMap<u64, Attempts> = BTreeMap::new();
    for (history_index, op) in ops.iter().enumerate() {
        match &op.op {
            // A multi-leg transfer is one add of its net effect on the account, at one point.
            // A net zero (money in and out again) changes no balance: nothing to place.
            Op::Transfer { id, .. } => {
                let delta = op.op.deltas().get(&account).copied().unwrap_or_default();
                let entry = transfers.entry(*id).or_insert(Attempts {
                    first_index: history_index,
                    invoke_ns: op.invoke_ns,
                    ok_complete_ns: None,
                    failed: false,
                    delta,
                });
                entry.invoke_ns = entry.invoke_ns.min(op.invoke_ns);
                match op.outcome {
                    Outcome::Ok => entry.ok_complete_ns = Some(entry.ok_complete_ns.map_or(op.complete_ns, |c| c.min(op.complete_ns))),
                    Outcome::Fail => entry.failed = true,
                    Outcome::Info | Outcome::Invoke => {}
                }
            }
            Op::Read { balances: Some(b), .. } if op.outcome == Outcome::Ok => {
                if let Some(v) = b.get(&account) {
                    let kind = Kind::Read(*v);
                    calls.push(Call { history_index, invoke_ns: op.invoke_ns, complete_ns: op.complete_ns, required: true, kind });
                }
            }
            _ => {}
        }
    }
    for (id, t) in transfers {
        if t.delta == 0 || t.failed {
            continue;
        }
        let (required, complete_ns) = match (t.ok_complete_ns, present) {
            (Some(complete_ns), _) => (true, complete_ns),
            (None, Some(present)) if present.contains(&id) => (true, u64::MAX),
            (None, Some(_)) => continue,
            (None, None) => (false, u64::MAX),
        };
        calls.push(Call { history_index: t.first_index, invoke_ns: t.invoke_ns, complete_ns, required, kind: Kind::Add(t.delta) });
    }
    calls
}

/// The outcome of one account's search.
#[derive(Debug, PartialEq, Eq)]
pub enum Search {
    Linearizable,
    /// No order explains the history: the history indexes of the operations that could not be
    /// placed at the deepest point the search reached.
    NotLinearizable { stuck_at: Vec<usize> },
    Undecided,
}

pub fn search_account(ops: &[Completed], account: AccountId, initial: Amount, present: Option<&BTreeSet<u64>>) -> Search {
    let calls = calls_of(ops, account, present);
    let n = calls.len();
    let mut taken = vec![false; n];
    let mut required_left = calls.iter().filter(|c| c.required).count();
    let words = n.div_ceil(64);
    let mut memo: HashSet<(Vec<u64>, Amount)> = HashSet::new();
    let bits = |taken: &[bool]| {
        let mut v = vec![0u64; words];
        for (i, t) in taken.iter().enumerate() {
            if *t {
                v[i / 64] |= 1 << (i % 64);
            }
        }
        v
    };
    // An untaken call may go next only if no untaken required call completed before it began.
    // Adds commute: when no read can go next, every untaken read began after the required add
    // that completes first ended, so that add precedes them all and may be taken first without
    // losing any order that matters. This keeps many concurrent transfers from exploding.
    let candidates = |taken: &[bool]| -> Vec<usize> {
        let horizon = (0..n).filter(|&i| !taken[i] && calls[i].required).map(|i| calls[i].complete_ns).min().unwrap_or(u64::MAX);
        let all: Vec<usize> = (0..n).filter(|&i| !taken[i] && calls[i].invoke_ns <= horizon).collect();
        if all.iter().any(|&i| matches!(calls[i].kind, Kind::Read(_))) {
            return all;
        }
        let first = all.iter().copied().filter(|&i| calls[i].required).min_by_key(|&i| calls[i].complete_ns);
        match first {
            Some(i) => vec![i],
            None => all,
        }
    };
    struct Frame {
        balance: Amount,
        chosen: Option<usize>,
        candidates: Vec<usize>,
        next: usize,
    }
    let mut stack = vec![Frame { balance: initial, chosen: None, candidates: candidates(&taken), next: 0 }];
    let (mut steps, mut deepest, mut stuck_at) = (0u64, 0usize, Vec::new());
    while let Some(top) = stack.last_mut() {
        if required_left == 0 {
            return Search::Linearizable;
        }
        steps += 1;
        if steps > STEPS_PER_ACCOUNT_MAX {
            return Search::Undecided;
        }
        if top.next >= top.candidates.len() {
            if stack.len() > deepest {
                deepest = stack.len();
                stuck_at = stack.last().map(|f| f.candidates.iter().map(|&i| calls[i].history_index).collect()).unwrap_or_default();
            }
            let frame = stack.pop().expect("non-empty");
            if let Some(i) = frame.chosen {
                taken[i] = false;
                if calls[i].required {
                    required_left += 1;
                }
            }
            continue;
        }
        let i = top.candidates[top.next];
        top.next += 1;
        let balance = match calls[i].kind {
            Kind::Add(delta) => top.balance + delta,
            Kind::Read(v) if v == top.balance => top.balance,
            Kind::Read(_) => continue,
        };
        taken[i] = true;
        if !memo.insert((bits(&taken), balance)) {
            taken[i] = false;
            continue;
        }
        if calls[i].required {
            required_left -= 1;
        }
        let next = candidates(&taken);
        stack.push(Frame { balance, chosen: Some(i), candidates: next, next: 0 });
    }
    Search::NotLinearizable { stuck_at }
}

/// `present`: the transfer ids found in the ledger at the end (see `calls_of`), when known.
pub fn check(ops: &[Completed], initial: &BTreeMap<AccountId, Amount>, present: Option<&BTreeSet<u64>>) -> Verdict {
    let mut verdict = Verdict::new("linearizable");
    let mut undecided = false;
    for (account, balance) in initial {
        match search_account(ops, *account, *balance, present) {
            Search::Linearizable => {}
            Search::Undecided => undecided = true,
            Search::NotLinearizable { stuck_at } => {
                let involved: Vec<String> = stuck_at.iter().take(8).map(|&i| format!("#{i} {:?} {:?}", ops[i].outcome, ops[i].op)).collect();
                verdict.anomaly(format!("account {account}: no order of its operations explains its reads; could not place: {}", involved.join("; ")));
            }
        }
    }
    if undecided && verdict.valid == Some(true) {
        verdict.valid = None;
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(invoke_ns: u64, complete_ns: u64, outcome: Outcome, op: Op) -> Completed {
        Completed { process: 0, invoke_ns, complete_ns, outcome, op, ledger_timestamp_ns: None, error: None }
    }
    fn transfer(id: u64, amount: Amount) -> Op {
        Op::transfer(id, format!("k{id}"), 1, 2, amount)
    }
    fn read(a: Amount, b: Amount) -> Op {
        Op::Read { balances: Some(BTreeMap::from([(1, a), (2, b)])), held: None }
    }
    fn initial() -> BTreeMap<AccountId, Amount> {
        BTreeMap::from([(1, 100), (2, 0)])
    }

    #[test]
    fn sequential_and_concurrent_histories_pass() {
        let history = [op(1, 2, Outcome::Ok, transfer(1, 10)), op(3, 4, Outcome::Ok, read(90, 10))];
        assert_eq!(check(&history, &initial(), None).valid, Some(true));
        // A read concurrent with a transfer may see it or not.
        for seen in [(100, 0), (90, 10)] {
            let history = [op(1, 5, Outcome::Ok, transfer(1, 10)), op(2, 3, Outcome::Ok, read(seen.0, seen.1))];
            assert_eq!(check(&history, &initial(), None).valid, Some(true), "{seen:?}");
        }
        // An unknown transfer may have happened, or not, but only once.
        for seen in [(100, 0), (90, 10)] {
            let history = [op(1, u64::MAX, Outcome::Info, transfer(1, 10)), op(5, 6, Outcome::Ok, read(seen.0, seen.1))];
            assert_eq!(check(&history, &initial(), None).valid, Some(true), "{seen:?}");
        }
    }

    #[test]
    fn a_stale_read_after_an_acknowledged_transfer_fails() {
        let history = [op(1, 2, Outcome::Ok, transfer(1, 10)), op(3, 4, Outcome::Ok, read(100, 0))];
        let verdict = check(&history, &initial(), None);
        assert_eq!(verdict.valid, Some(false));
        assert!(verdict.anomalies[0].contains("account 1"), "{verdict:?}");
    }

    #[test]
    fn a_read_that_goes_back_in_time_fails() {
        // The second read, after the first saw the transfer, does not.
        let history = [
            op(1, 10, Outcome::Ok, transfer(1, 10)),
            op(2, 3, Outcome::Ok, read(90, 10)),
            op(4, 5, Outcome::Ok, read(100, 0)),
        ];
        assert_eq!(check(&history, &initial(), None).valid, Some(false));
    }

    #[test]
    fn a_doubly_applied_unknown_transfer_fails() {
        let history = [op(1, u64::MAX, Outcome::Info, transfer(1, 10)), op(5, 6, Outcome::Ok, read(80, 20))];
        assert_eq!(check(&history, &initial(), None).valid, Some(false));
    }

    #[test]
    fn a_failed_transfer_must_not_show() {
        let history = [op(1, 2, Outcome::Fail, transfer(1, 10)), op(3, 4, Outcome::Ok, read(90, 10))];
        assert_eq!(check(&history, &initial(), None).valid, Some(false));
    }

    #[test]
    fn a_read_after_a_multi_leg_transfer_showing_only_some_legs_fails() {
        use crate::history::Leg;
        // 1 → 2 and 2 → 3 of 10: account 2 ends where it began, account 3 gains 10.
        let legs = vec![Leg { from: 1, to: 2, amount: 10 }, Leg { from: 2, to: 3, amount: 10 }];
        let t = op(1, 2, Outcome::Ok, Op::Transfer { id: 1, key: "k1".into(), legs });
        let initial = BTreeMap::from([(1, 100), (2, 0), (3, 0)]);
        let read = |a, b, c| op(3, 4, Outcome::Ok, Op::Read { balances: Some(BTreeMap::from([(1, a), (2, b), (3, c)])), held: None });
        assert_eq!(check(&[t.clone(), read(90, 0, 10)], &initial, None).valid, Some(true));
        // Only the first leg applied.
        let verdict = check(&[t.clone(), read(90, 10, 0)], &initial, None);
        assert_eq!(verdict.valid, Some(false));
        assert!(verdict.anomalies.iter().any(|a| a.contains("account 3")), "{verdict:?}");
        // Only the second leg applied.
        assert_eq!(check(&[t, read(100, -10, 10)], &initial, None).valid, Some(false));
    }

    #[test]
    fn a_retried_transfer_is_one_call_whichever_attempt_applied() {
        // The first attempt landed but its answer was lost; a read saw it; the retry got the
        // first result replayed. One application, not two.
        let history = [
            op(1, 3, Outcome::Info, transfer(1, 10)),
            op(4, 5, Outcome::Ok, read(90, 10)),
            op(6, 7, Outcome::Ok, transfer(1, 10)),
            op(8, 9, Outcome::Ok, read(90, 10)),
        ];
        assert_eq!(check(&history, &initial(), None).valid, Some(true));
        assert_eq!(check(&history, &initial(), Some(&BTreeSet::from([1]))).valid, Some(true));
        // Applied twice (a second application after the replay) is still caught.
        let mut twice = history.to_vec();
        twice.push(op(10, 11, Outcome::Ok, read(80, 20)));
        assert_eq!(check(&twice, &initial(), None).valid, Some(false));
    }

    #[test]
    fn unknown_transfers_are_judged_by_the_final_state() {
        let history = [op(1, u64::MAX, Outcome::Info, transfer(1, 10)), op(5, 6, Outcome::Ok, read(90, 10))];
        assert_eq!(check(&history, &initial(), Some(&BTreeSet::from([1]))).valid, Some(true));
        // Seen by a read, but not in the ledger at the end: it happened and was lost.
        assert_eq!(check(&history, &initial(), Some(&BTreeSet::new())).valid, Some(false));
        // Not seen yet, but in the ledger: it may land after the read.
        let unseen = [op(1, u64::MAX, Outcome::Info, transfer(1, 10)), op(5, 6, Outcome::Ok, read(100, 0))];
        assert_eq!(check(&unseen, &initial(), Some(&BTreeSet::from([1]))).valid, Some(true));
    }

    #[test]
    fn many_concurrent_operations_are_decided() {
        // 40 concurrent transfers of 1 and a read after all of them: balance must be exact.
        let mut history: Vec<Completed> = (0..40).map(|i| op(i, 100 + i, Outcome::Ok, transfer(i, 1))).collect();
        history.push(op(200, 201, Outcome::Ok, read(60, 40)));
        assert_eq!(check(&history, &initial(), None).valid, Some(true));
        history.push(op(202, 203, Outcome::Ok, read(61, 39)));
        assert_eq!(check(&history, &initial(), None).valid, Some(false));
    }

    /// Re-judges a run's history: `JEPSEN_HISTORY=<run dir>/history.jsonl cargo test --release
    /// -p jepsen -- --ignored rejudge --nocapture` (8 accounts of 1000, the run's defaults).
    #[test]
    #[ignore]
    fn rejudge() {
        let path = std::env::var("JEPSEN_HISTORY").expect("JEPSEN_HISTORY");
        let events = crate::history::from_jsonl(&std::fs::read_to_string(path).expect("history")).expect("parse");
        let ops = crate::history::pair(&events).expect("pair");
        for account in 1..=8u64 {
            let started = std::time::Instant::now();
            let result = search_account(&ops, account, 1_000, None);
            let calls = calls_of(&ops, account, None);
            let info = calls.iter().filter(|c| !c.required).count();
            println!("account {account}: {} calls, {info} unknown: {result:?} in {:?}", calls.len(), started.elapsed());
        }
    }
}
