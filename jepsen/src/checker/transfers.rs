//! Durability and exactly-once, judged against the ledger's final state:
//! - every transfer acknowledged ok is in the ledger; every definitely failed one is not;
//! - nothing is in the ledger that no client asked for;
//! - final balances equal the initial ones plus each present transfer applied exactly once
//!   (a transfer applied twice, or a phantom, shows here);
//! - every ok completion of one idempotency key reports the same ledger timestamp (retries got
//!   the first result, replayed, not a second application).

use std::collections::{BTreeMap, BTreeSet};

use super::Verdict;
use crate::history::{AccountId, Amount, Completed, Op, Outcome};

/// What the ledger holds at the end, read after the faults healed.
#[derive(Debug, Clone, Default)]
pub struct FinalState {
    /// Ids of the workload's transfers found in the ledger.
    pub present: BTreeSet<u64>,
    pub balances: BTreeMap<AccountId, Amount>,
}

pub fn check(ops: &[Completed], initial: &BTreeMap<AccountId, Amount>, end: &FinalState) -> (Verdict, Verdict) {
    let mut durability = Verdict::new("durability");
    let mut exactly_once = Verdict::new("exactly_once");
    // Per transfer id: its legs, and every outcome its attempts saw.
    let mut transfers: BTreeMap<u64, (&Op, String)> = BTreeMap::new();
    let mut outcomes: BTreeMap<u64, Vec<&Completed>> = BTreeMap::new();
    for op in ops {
        if let Op::Transfer { id, key, .. } = &op.op {
            let previous = transfers.insert(*id, (&op.op, key.clone()));
            if previous.is_some_and(|p| p.0 != &op.op) {
                exactly_once.anomaly(format!("transfer {id} was sent with two different contents"));
            }
            outcomes.entry(*id).or_default().push(op);
        }
    }
    for (id, attempts) in &outcomes {
        let acknowledged = attempts.iter().any(|a| a.outcome == Outcome::Ok);
        let failed = attempts.iter().any(|a| a.outcome == Outcome::Fail);
        let present = end.present.contains(id);
        if acknowledged && !present {
            durability.anomaly(format!("transfer {id} was acknowledged ok but is not in the ledger"));
        }
        if failed && present {
            durability.anomaly(format!("transfer {id} failed definitely but is in the ledger"));
        }
        if acknowledged && failed {
            exactly_once.anomaly(format!("transfer {id} was both acknowledged and refused"));
        }
        let stamps: BTreeSet<u64> = attempts.iter().filter(|a| a.outcome == Outcome::Ok).filter_map(|a| a.ledger_timestamp_ns).collect();
        if stamps.len() > 1 {
            exactly_once.anomaly(format!("transfer {id}: its ok completions report different ledger timestamps {stamps:?}"));
        }
    }
    for id in end.present.difference(&transfers.keys().copied().collect()) {
        exactly_once.anomaly(format!("transfer {id} is in the ledger but no client sent it"));
    }
    let mut expected = initial.clone();
    for id in &end.present {
        // Every leg of a present transfer, applied once (a partly applied one shows here).
        if let Some((op, _)) = transfers.get(id) {
            for (account, delta) in op.deltas() {
                *expected.entry(account).or_default() += delta;
            }
        }
    }
    for (account, want) in &expected {
        let got = end.balances.get(account).copied().unwrap_or_default();
        if got != *want {
            exactly_once.anomaly(format!(
                "account {account}: final balance {got}, but the transfers in the ledger applied once give {want}"
            ));
        }
    }
    (durability, exactly_once)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer(id: u64, outcome: Outcome, stamp: Option<u64>) -> Completed {
        Completed {
            process: 0,
            invoke_ns: 1,
            complete_ns: 2,
            outcome,
            op: Op::transfer(id, format!("k{id}"), 1, 2, 10),
            ledger_timestamp_ns: stamp,
            error: None,
        }
    }

    fn state(present: &[u64], a: Amount, b: Amount) -> FinalState {
        FinalState { present: present.iter().copied().collect(), balances: BTreeMap::from([(1, a), (2, b)]) }
    }

    fn initial() -> BTreeMap<AccountId, Amount> {
        BTreeMap::from([(1, 100), (2, 0)])
    }

    #[test]
    fn a_clean_history_passes() {
        let ops = [transfer(1, Outcome::Ok, Some(7)), transfer(2, Outcome::Info, None), transfer(2, Outcome::Ok, Some(9)), transfer(3, Outcome::Fail, None)];
        let (d, e) = check(&ops, &initial(), &state(&[1, 2], 80, 20));
        assert_eq!((d.valid, e.valid), (Some(true), Some(true)), "{d:?} {e:?}");
        // An unknown outcome may also be absent.
        let (d, e) = check(&[transfer(4, Outcome::Info, None)], &initial(), &state(&[], 100, 0));
        assert_eq!((d.valid, e.valid), (Some(true), Some(true)));
    }

    #[test]
    fn a_lost_acknowledged_transfer_fails_durability() {
        let (d, _) = check(&[transfer(1, Outcome::Ok, Some(7))], &initial(), &state(&[], 100, 0));
        assert_eq!(d.valid, Some(false));
        assert!(d.anomalies[0].contains("acknowledged ok but is not in the ledger"));
    }

    #[test]
    fn a_failed_transfer_that_applied_fails_durability() {
        let (d, _) = check(&[transfer(1, Outcome::Fail, None)], &initial(), &state(&[1], 90, 10));
        assert_eq!(d.valid, Some(false));
    }

    #[test]
    fn a_double_application_fails_exactly_once() {
        let (_, e) = check(&[transfer(1, Outcome::Ok, Some(7))], &initial(), &state(&[1], 80, 20));
        assert_eq!(e.valid, Some(false));
        assert!(e.anomalies[0].contains("applied once give"), "{e:?}");
    }

    #[test]
    fn a_retry_that_got_a_new_result_fails_exactly_once() {
        let ops = [transfer(1, Outcome::Ok, Some(7)), transfer(1, Outcome::Ok, Some(8))];
        let (_, e) = check(&ops, &initial(), &state(&[1], 90, 10));
        assert_eq!(e.valid, Some(false));
    }

    #[test]
    fn a_partially_applied_multi_leg_transfer_fails_exactly_once() {
        use crate::history::Leg;
        let legs = vec![Leg { from: 1, to: 2, amount: 10 }, Leg { from: 2, to: 3, amount: 4 }, Leg { from: 1, to: 3, amount: 1 }];
        let op = Completed { op: Op::Transfer { id: 1, key: "k1".into(), legs }, ..transfer(1, Outcome::Ok, Some(7)) };
        let initial = BTreeMap::from([(1, 100), (2, 0), (3, 0)]);
        let end = |balances: [Amount; 3]| FinalState { present: BTreeSet::from([1]), balances: BTreeMap::from([(1, balances[0]), (2, balances[1]), (3, balances[2])]) };
        let (d, e) = check(std::slice::from_ref(&op), &initial, &end([89, 6, 5]));
        assert_eq!((d.valid, e.valid), (Some(true), Some(true)), "all legs applied: {e:?}");
        // The second leg is missing: the balances are not those of the transfer applied once.
        let (_, e) = check(std::slice::from_ref(&op), &initial, &end([89, 10, 1]));
        assert_eq!(e.valid, Some(false));
        assert!(e.anomalies.iter().any(|a| a.contains("account 2")) && e.anomalies.iter().any(|a| a.contains("account 3")), "{e:?}");
    }

    #[test]
    fn a_phantom_transfer_fails_exactly_once() {
        let (_, e) = check(&[], &initial(), &state(&[5], 100, 0));
        assert_eq!(e.valid, Some(false));
        assert!(e.anomalies[0].contains("no client sent it"));
    }
}
