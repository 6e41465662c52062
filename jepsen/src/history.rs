//! Operations and histories (JSON Lines on disk: one `Event` per line).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub type Process = u32;
pub type AccountId = u64;
/// Amounts in minor units; the bank workload uses one asset and small totals (JSON has no
/// 128-bit integers).
pub type Amount = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Invoke,
    Ok,
    /// Definitely not applied.
    Fail,
    /// Unknown: may or may not have been applied (at most once).
    Info,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// A transfer of one or more legs, all applied or none; `key` is its idempotency key, reused
    /// by every retry of it. (Ids are u64 here: the workload's ids fit, and JSON has no 128-bit
    /// integers.)
    Transfer { id: u64, key: String, legs: Vec<Leg> },
    /// A read of every account's balance at one point (the value is set on completion):
    /// `balances` are the posted ones (credits − debits); `held` (two-phase workload) is each
    /// account's `[debits_pending, credits_pending]` in the same read.
    Read {
        balances: Option<BTreeMap<AccountId, Amount>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        held: Option<BTreeMap<AccountId, [Amount; 2]>>,
    },
    /// Two-phase: a pending transfer (a hold of `amount` on `from`'s debits and `to`'s credits)
    /// that expires `timeout_ms` after the ledger applied it unless posted or voided first.
    Hold { id: u64, key: String, from: AccountId, to: AccountId, amount: Amount, timeout_ms: u64 },
    /// Two-phase: posts all of hold `hold` (the money moves from `from` to `to`).
    Post { id: u64, key: String, hold: u64 },
    /// Two-phase: voids hold `hold` (its funds are released, nothing moves).
    Void { id: u64, key: String, hold: u64 },
}

impl Op {
    /// A one-leg transfer.
    pub fn transfer(id: u64, key: impl Into<String>, from: AccountId, to: AccountId, amount: Amount) -> Op {
        Op::Transfer { id, key: key.into(), legs: vec![Leg { from, to, amount }] }
    }

    /// What a transfer does to each account it touches, all legs summed (empty for other ops).
    pub fn deltas(&self) -> BTreeMap<AccountId, Amount> {
        let mut deltas = BTreeMap::new();
        if let Op::Transfer { legs, .. } = self {
            for leg in legs {
                *deltas.entry(leg.from).or_default() -= leg.amount;
                *deltas.entry(leg.to).or_default() += leg.amount;
            }
        }
        deltas
    }

    /// The id and idempotency key of a write (None for reads).
    pub fn write_id(&self) -> Option<(u64, &str)> {
        match self {
            Op::Transfer { id, key, .. } | Op::Hold { id, key, .. } | Op::Post { id, key, .. } | Op::Void { id, key, .. } => {
                Some((*id, key.as_str()))
            }
            Op::Read { .. } => None,
        }
    }
}

/// One leg of a transfer: `amount` moves from `from` to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leg {
    pub from: AccountId,
    pub to: AccountId,
    pub amount: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Nanoseconds since the run started (monotonic clock of the harness).
    pub time_ns: u64,
    pub process: Process,
    pub outcome: Outcome,
    pub op: Op,
    /// The node the client talked to last, for reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<u64>,
    /// Error text of a fail/info completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The ledger's timestamp in an ok transfer's result: every completion of one idempotency
    /// key must report the same one (the first result, replayed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_timestamp_ns: Option<u64>,
}

/// One operation with its completion (None: never completed, treated as info).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completed {
    pub process: Process,
    pub invoke_ns: u64,
    /// `u64::MAX` when it never completed.
    pub complete_ns: u64,
    pub outcome: Outcome,
    pub op: Op,
    pub ledger_timestamp_ns: Option<u64>,
    /// The completion's error text (a result code's name for a definite fail).
    pub error: Option<String>,
}

/// Pairs every invoke with its process's next completion, in invoke order. A process has at
/// most one operation in flight; an invoke without completion counts as `Info`.
pub fn pair(events: &[Event]) -> Result<Vec<Completed>, String> {
    let mut open: BTreeMap<Process, usize> = BTreeMap::new();
    let mut ops: Vec<Completed> = Vec::new();
    for (line, e) in events.iter().enumerate() {
        match e.outcome {
            Outcome::Invoke => {
                if open.contains_key(&e.process) {
                    return Err(format!("event {line}: process {} invoked twice without completing", e.process));
                }
                open.insert(e.process, ops.len());
                ops.push(Completed {
                    process: e.process,
                    invoke_ns: e.time_ns,
                    complete_ns: u64::MAX,
                    outcome: Outcome::Info,
                    op: e.op.clone(),
                    ledger_timestamp_ns: None,
                    error: None,
                });
            }
            outcome => {
                let Some(index) = open.remove(&e.process) else {
                    return Err(format!("event {line}: process {} completed nothing", e.process));
                };
                let op = &mut ops[index];
                op.complete_ns = e.time_ns;
                op.outcome = outcome;
                op.ledger_timestamp_ns = e.ledger_timestamp_ns;
                op.error = e.error.clone();
                // A read's value arrives with its completion.
                if let (Op::Read { balances, held }, Op::Read { balances: seen, held: seen_held }) = (&mut op.op, &e.op) {
                    *balances = seen.clone();
                    *held = seen_held.clone();
                }
            }
        }
    }
    Ok(ops)
}

pub fn to_jsonl(events: &[Event]) -> String {
    events.iter().map(|e| serde_json::to_string(e).expect("events serialize") + "\n").collect()
}

pub fn from_jsonl(text: &str) -> anyhow::Result<Vec<Event>> {
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| Ok(serde_json::from_str(l)?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(time_ns: u64, process: Process, outcome: Outcome, op: Op) -> Event {
        Event { time_ns, process, outcome, op, node: None, error: None, ledger_timestamp_ns: None }
    }

    #[test]
    fn pairs_invokes_with_completions_and_round_trips_jsonl() {
        let t = Op::Transfer { id: 1, key: "k1".into(), legs: vec![Leg { from: 1, to: 2, amount: 5 }, Leg { from: 2, to: 3, amount: 2 }] };
        let read = |b: Option<BTreeMap<AccountId, Amount>>| Op::Read { balances: b, held: None };
        let events = vec![
            event(1, 0, Outcome::Invoke, t.clone()),
            event(2, 1, Outcome::Invoke, read(None)),
            event(3, 1, Outcome::Ok, read(Some(BTreeMap::from([(1, 10), (2, 0)])))),
            event(4, 0, Outcome::Info, t.clone()),
            event(5, 2, Outcome::Invoke, t.clone()),
        ];
        let ops = pair(&events).unwrap();
        assert_eq!(ops.len(), 3);
        assert_eq!((ops[0].outcome, ops[0].complete_ns), (Outcome::Info, 4));
        assert_eq!(ops[1].op, read(Some(BTreeMap::from([(1, 10), (2, 0)]))));
        assert_eq!((ops[2].outcome, ops[2].complete_ns), (Outcome::Info, u64::MAX));
        assert_eq!(from_jsonl(&to_jsonl(&events)).unwrap(), events);
        assert_eq!(t.deltas(), BTreeMap::from([(1, -5), (2, 3), (3, 2)]));
    }

    #[test]
    fn refuses_malformed_histories() {
        let t = Op::transfer(1, "k", 1, 2, 1);
        assert!(pair(&[event(1, 0, Outcome::Ok, t.clone())]).is_err());
        assert!(pair(&[event(1, 0, Outcome::Invoke, t.clone()), event(2, 0, Outcome::Invoke, t)]).is_err());
    }
}
