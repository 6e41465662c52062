//! Atomic reads: every ok read of all balances is the initial state plus some set of *whole*
//! transfers. Per-account linearizability cannot see a read that caught a multi-leg transfer
//! half applied (each account may place the transfer on its own side of the read), and the bank
//! total cannot either (each leg conserves money); this checker can.
//!
//! For each read, a transfer (all attempts of one id merged) is *in* when it was acknowledged
//! before the read began, *out* when it began after the read ended, failed definitely, or (all
//! attempts unknown) is absent from the ledger at the end; otherwise it is *uncertain*. The read
//! must equal initial + in + some subset of the uncertain ones, compared on every account at once.
//! The subsets are searched meet-in-the-middle: the uncertain transfers are split in two halves,
//! the balance vectors each half can reach are enumerated (deduplicated), and the read is
//! explained when some vector of one half plus some vector of the other equals it. A read with
//! more than `UNCERTAIN_MAX` uncertain transfers is left undecided (2^18 vectors per half at
//! worst). Unknown transfers that landed stay uncertain for every later read, so a majority kill
//! leaves a few dozen: a plain enumeration of all subsets (2^n) could not judge such reads.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::Verdict;
use crate::history::{AccountId, Amount, Completed, Op, Outcome};

/// Uncertain transfers per read beyond which the read is not judged (2^18 vectors per half at
/// worst: a few tens of MB and well under a second per read).
pub const UNCERTAIN_MAX: usize = 36;

struct Transfer {
    id: u64,
    invoke_ns: u64,
    ok_complete_ns: Option<u64>,
    failed: bool,
    /// Net effect per account, in the order of `accounts`.
    delta: Vec<Amount>,
}

pub fn check(ops: &[Completed], initial: &BTreeMap<AccountId, Amount>, present: Option<&BTreeSet<u64>>) -> Verdict {
    let mut verdict = Verdict::new("atomic_reads");
    let accounts: Vec<AccountId> = initial.keys().copied().collect();
    let mut transfers: BTreeMap<u64, Transfer> = BTreeMap::new();
    for op in ops {
        let Op::Transfer { id, .. } = &op.op else { continue };
        let deltas = op.op.deltas();
        let t = transfers.entry(*id).or_insert_with(|| Transfer {
            id: *id,
            invoke_ns: op.invoke_ns,
            ok_complete_ns: None,
            failed: false,
            delta: accounts.iter().map(|a| deltas.get(a).copied().unwrap_or_default()).collect(),
        });
        t.invoke_ns = t.invoke_ns.min(op.invoke_ns);
        match op.outcome {
            Outcome::Ok => t.ok_complete_ns = Some(t.ok_complete_ns.map_or(op.complete_ns, |c| c.min(op.complete_ns))),
            Outcome::Fail => t.failed = true,
            Outcome::Info | Outcome::Invoke => {}
        }
    }
    let transfers: Vec<Transfer> = transfers.into_values().filter(|t| !t.failed && t.delta.iter().any(|d| *d != 0)).collect();
    let mut undecided = 0usize;
    for read in ops.iter().filter(|o| o.outcome == Outcome::Ok) {
        let Op::Read { balances: Some(balances), .. } = &read.op else { continue };
        let mut residual: Vec<Amount> =
            accounts.iter().map(|a| balances.get(a).copied().unwrap_or_default() - initial[a]).collect();
        let mut uncertain: Vec<&Transfer> = Vec::new();
        for t in &transfers {
            let surely_in = t.ok_complete_ns.is_some_and(|c| c < read.invoke_ns);
            let surely_out = t.invoke_ns > read.complete_ns
                || (t.ok_complete_ns.is_none() && present.is_some_and(|p| !p.contains(&t.id)));
            if surely_in {
                residual.iter_mut().zip(&t.delta).for_each(|(r, d)| *r -= d);
            } else if !surely_out {
                uncertain.push(t);
            }
        }
        if uncertain.len() > UNCERTAIN_MAX {
            undecided += 1;
            continue;
        }
        if !explained(&residual, &uncertain) {
            let ids: Vec<u64> = uncertain.iter().map(|t| t.id).collect();
            verdict.anomaly(format!(
                "read at {} ns by process {} ({balances:?}) is no set of whole transfers: after the {} acknowledged before it, no subset of the concurrent ones {ids:?} explains it",
                read.invoke_ns,
                read.process,
                transfers.iter().filter(|t| t.ok_complete_ns.is_some_and(|c| c < read.invoke_ns)).count()
            ));
        }
    }
    if undecided > 0 && verdict.valid == Some(true) {
        verdict.valid = None;
    }
    verdict
}

/// True when some subset of `uncertain` sums to `residual` on every account (meet in the middle).
fn explained(residual: &[Amount], uncertain: &[&Transfer]) -> bool {
    let (first, second) = uncertain.split_at(uncertain.len() / 2);
    let first = reachable(first, residual.len());
    reachable(second, residual.len()).iter().any(|v| {
        let rest: Vec<Amount> = residual.iter().zip(v).map(|(r, x)| r - x).collect();
        first.contains(&rest)
    })
}

/// Every balance vector some subset of `transfers` adds up to (the empty subset included).
fn reachable(transfers: &[&Transfer], accounts: usize) -> HashSet<Vec<Amount>> {
    let mut sums: HashSet<Vec<Amount>> = HashSet::from([vec![0; accounts]]);
    for t in transfers {
        let more: Vec<Vec<Amount>> = sums.iter().map(|v| v.iter().zip(&t.delta).map(|(a, b)| a + b).collect()).collect();
        sums.extend(more);
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Leg;

    fn op(invoke_ns: u64, complete_ns: u64, outcome: Outcome, op: Op) -> Completed {
        Completed { process: 0, invoke_ns, complete_ns, outcome, op, ledger_timestamp_ns: None, error: None }
    }
    fn two_legs(id: u64) -> Op {
        // 1 → 2 and 2 → 3 of 10: account 2 ends where it began.
        Op::Transfer { id, key: format!("k{id}"), legs: vec![Leg { from: 1, to: 2, amount: 10 }, Leg { from: 2, to: 3, amount: 10 }] }
    }
    fn read(invoke_ns: u64, a: Amount, b: Amount, c: Amount) -> Completed {
        op(invoke_ns, invoke_ns + 1, Outcome::Ok, Op::Read { balances: Some(BTreeMap::from([(1, a), (2, b), (3, c)])), held: None })
    }
    fn initial() -> BTreeMap<AccountId, Amount> {
        BTreeMap::from([(1, 100), (2, 0), (3, 0)])
    }

    #[test]
    fn a_concurrent_read_sees_a_transfer_whole_or_not_at_all() {
        for seen in [(100, 0, 0), (90, 0, 10)] {
            let history = [op(1, 10, Outcome::Ok, two_legs(1)), read(2, seen.0, seen.1, seen.2)];
            assert_eq!(check(&history, &initial(), None).valid, Some(true), "{seen:?}");
        }
    }

    #[test]
    fn a_concurrent_read_that_caught_a_multi_leg_transfer_half_applied_fails() {
        // 1 → 2 and 3 → 4 of 10; the read shows the first leg and not the second. Each account
        // alone holds a value it had before or after the transfer, and the total is right.
        let legs = vec![Leg { from: 1, to: 2, amount: 10 }, Leg { from: 3, to: 4, amount: 10 }];
        let initial = BTreeMap::from([(1, 100), (2, 0), (3, 100), (4, 0)]);
        let t = op(1, 10, Outcome::Ok, Op::Transfer { id: 1, key: "k1".into(), legs });
        let r = op(2, 3, Outcome::Ok, Op::Read { balances: Some(BTreeMap::from([(1, 90), (2, 10), (3, 100), (4, 0)])), held: None });
        let history = [t, r];
        let verdict = check(&history, &initial, None);
        assert_eq!(verdict.valid, Some(false));
        assert!(verdict.anomalies[0].contains("no set of whole transfers"), "{verdict:?}");
        assert_eq!(crate::checker::linearizable::check(&history, &initial, None).valid, Some(true), "the gap this closes");
        assert_eq!(crate::checker::bank::check(&history, &BTreeSet::from([1, 2, 3, 4]), 200).valid, Some(true));
    }

    #[test]
    fn acknowledged_transfers_must_show_and_later_or_lost_ones_must_not() {
        let history = [op(1, 2, Outcome::Ok, two_legs(1)), read(3, 100, 0, 0)];
        assert_eq!(check(&history, &initial(), None).valid, Some(false), "a stale read");
        let history = [read(1, 90, 0, 10), op(5, 6, Outcome::Ok, two_legs(1))];
        assert_eq!(check(&history, &initial(), None).valid, Some(false), "a read from the future");
        let history = [op(1, u64::MAX, Outcome::Info, two_legs(1)), read(3, 90, 0, 10)];
        assert_eq!(check(&history, &initial(), Some(&BTreeSet::from([1]))).valid, Some(true));
        assert_eq!(check(&history, &initial(), Some(&BTreeSet::new())).valid, Some(false), "seen, then not in the ledger");
    }

    /// A majority kill leaves a few dozen unknown transfers that landed: reads after it are still
    /// judged (the enumeration of all 2^30 subsets could not), both ways.
    #[test]
    fn thirty_unknown_transfers_are_judged_meet_in_the_middle() {
        let one_leg = |id: u64, from: AccountId, to: AccountId, amount: Amount| Op::Transfer { id, key: format!("k{id}"), legs: vec![Leg { from, to, amount }] };
        let initial = BTreeMap::from([(1, 1000), (2, 1000), (3, 1000)]);
        let mut history: Vec<Completed> = (0..30u64)
            .map(|i| op(1 + i, u64::MAX, Outcome::Info, one_leg(i, 1 + i % 3, 1 + (i + 1) % 3, 1 + i as Amount)))
            .collect();
        // Transfers 0 (1 → 2 of 1) and 4 (2 → 3 of 5) landed, nothing else yet.
        history.push(op(100, 101, Outcome::Ok, Op::Read { balances: Some(BTreeMap::from([(1, 999), (2, 996), (3, 1005)])), held: None }));
        let verdict = check(&history, &initial, None);
        assert_eq!(verdict.valid, Some(true), "{verdict:?}");
        // Money from nowhere: no subset explains it.
        history.push(op(102, 103, Outcome::Ok, Op::Read { balances: Some(BTreeMap::from([(1, 999), (2, 996), (3, 1006)])), held: None }));
        assert_eq!(check(&history, &initial, None).valid, Some(false));
        // Past the bound, a read is left undecided rather than judged wrong.
        let many: Vec<Completed> = (0..UNCERTAIN_MAX as u64 + 1).map(|i| op(1 + i, u64::MAX, Outcome::Info, one_leg(i, 1, 2, 1))).collect();
        let mut history = many;
        history.push(op(100, 101, Outcome::Ok, Op::Read { balances: Some(BTreeMap::from([(1, 1000), (2, 1000), (3, 1000)])), held: None }));
        assert_eq!(check(&history, &initial, None).valid, None);
    }
}
