//! The bank checker (Jepsen's `bank` workload): every ok read of all balances sums to the
//! initial total, names exactly the accounts of the test, and shows no negative balance.

use std::collections::BTreeSet;

use super::Verdict;
use crate::history::{AccountId, Amount, Completed, Op, Outcome};

pub fn check(ops: &[Completed], accounts: &BTreeSet<AccountId>, total: Amount) -> Verdict {
    let mut verdict = Verdict::new("bank");
    for op in ops.iter().filter(|o| o.outcome == Outcome::Ok) {
        let Op::Read { balances: Some(balances), .. } = &op.op else { continue };
        let at = op.invoke_ns;
        let seen: BTreeSet<AccountId> = balances.keys().copied().collect();
        if &seen != accounts {
            verdict.anomaly(format!("read at {at} ns by process {}: accounts {seen:?}, expected {accounts:?}", op.process));
        }
        let sum: Amount = balances.values().sum();
        if sum != total {
            verdict.anomaly(format!("read at {at} ns by process {}: total {sum}, expected {total}: {balances:?}", op.process));
        }
        for (account, balance) in balances.iter().filter(|(_, b)| **b < 0) {
            verdict.anomaly(format!("read at {at} ns by process {}: account {account} is negative ({balance})", op.process));
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn read(balances: &[(AccountId, Amount)]) -> Completed {
        Completed {
            process: 0,
            invoke_ns: 1,
            complete_ns: 2,
            outcome: Outcome::Ok,
            op: Op::Read { balances: Some(balances.iter().copied().collect::<BTreeMap<_, _>>()), held: None },
            ledger_timestamp_ns: None,
            error: None,
        }
    }

    #[test]
    fn accepts_conserving_reads_and_catches_bad_ones() {
        let accounts = BTreeSet::from([1, 2]);
        assert_eq!(check(&[read(&[(1, 60), (2, 40)])], &accounts, 100).valid, Some(true));
        let wrong_total = check(&[read(&[(1, 60), (2, 41)])], &accounts, 100);
        assert_eq!(wrong_total.valid, Some(false));
        assert!(wrong_total.anomalies[0].contains("total 101"), "{wrong_total:?}");
        assert_eq!(check(&[read(&[(1, 110), (2, -10)])], &accounts, 100).anomaly_count, 1);
        assert_eq!(check(&[read(&[(1, 100)])], &accounts, 100).valid, Some(false));
        // Failed or unknown reads say nothing.
        let mut unknown = read(&[(1, 0), (2, 0)]);
        unknown.outcome = Outcome::Info;
        assert_eq!(check(&[unknown], &accounts, 100).valid, Some(true));
    }
}
