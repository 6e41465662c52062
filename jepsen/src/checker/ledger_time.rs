//! `ledger_time`: no acknowledged write carries a ledger timestamp further ahead of the true time
//! than the node allows (`LEDGER_TIME_SKEW_MAX`, 10 s, in `ledger-node/src/service/ledger_clock.rs`).
//! A leader whose clock runs hours fast must stamp the voters' median time (plus the skew): a
//! ledger time hours ahead would expire every hold at once and, since ledger time never goes
//! back, freeze it for hours. The harness and the nodes share one machine, so the harness's wall
//! clock is the true time; an ok write's stamp must be at most its completion's wall time plus
//! the skew plus `SLACK`.

use crate::checker::Verdict;
use crate::history::{Completed, Outcome};

/// The node's allowed skew ahead of the voters' median.
pub const SKEW_MAX_NS: u64 = 10_000_000_000;
/// Sampling delay, scheduling on a loaded machine.
pub const SLACK_NS: u64 = 5_000_000_000;

/// `wall_start_ns`: the harness's wall clock (ns since the epoch) when history time 0 was taken.
pub fn check(ops: &[Completed], wall_start_ns: u64) -> Verdict {
    let mut verdict = Verdict::new("ledger_time");
    for op in ops {
        let (Outcome::Ok, Some(stamp)) = (op.outcome, op.ledger_timestamp_ns) else { continue };
        if op.complete_ns == u64::MAX {
            continue;
        }
        let ceiling = wall_start_ns + op.complete_ns + SKEW_MAX_NS + SLACK_NS;
        if stamp > ceiling {
            verdict.anomaly(format!(
                "process {} {:?}: ledger timestamp {stamp} is {:.1} s ahead of the true time at its acknowledgement (allowed: {} s skew + {} s slack)",
                op.process,
                op.op.write_id(),
                (stamp - (wall_start_ns + op.complete_ns)) as f64 / 1e9,
                SKEW_MAX_NS / 1_000_000_000,
                SLACK_NS / 1_000_000_000,
            ));
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Op;

    fn write(complete_ns: u64, stamp: u64) -> Completed {
        Completed {
            process: 0,
            invoke_ns: complete_ns.saturating_sub(1_000),
            complete_ns,
            outcome: Outcome::Ok,
            op: Op::transfer(1, "k1", 1, 2, 5),
            ledger_timestamp_ns: Some(stamp),
            error: None,
        }
    }

    #[test]
    fn stamps_near_the_true_time_or_behind_it_pass() {
        let start = 1_000_000_000_000_000_000;
        let ops = [write(1_000_000_000, start + 1_000_000_000), write(2_000_000_000, start + 11_000_000_000), write(3_000_000_000, start - 600_000_000_000)];
        assert_eq!(check(&ops, start).valid, Some(true));
    }

    #[test]
    fn a_stamp_an_hour_ahead_fails() {
        let start = 1_000_000_000_000_000_000;
        let ops = [write(1_000_000_000, start + 1_000_000_000), write(2_000_000_000, start + 3_600_000_000_000)];
        let verdict = check(&ops, start);
        assert_eq!(verdict.valid, Some(false));
        assert_eq!(verdict.anomaly_count, 1);
    }
}
