//! The two-phase workload: clients place holds (pending transfers with a short timeout) and
//! later post them, void them, send both at once (a race only one may win), or leave them to
//! expire (the leader's expiry tick, driven by Raft time, releases them). Some posts and voids
//! are sent after the timeout on purpose and must be refused as expired. Reads record posted
//! balances and pending amounts together. Every write is retried with its key while unknown.

use std::time::{Duration, Instant};

use ledger_client::LedgerClient;

use super::{Recorder, read, two_accounts, write_with_retries};
use crate::history::{Amount, Op, Outcome, Process};
use crate::schedule::Rng;

/// Hold timeouts, in ms: short, so many expire within a run.
pub const HOLD_TIMEOUT_MS_MIN: u64 = 1_000;
pub const HOLD_TIMEOUT_MS_MAX: u64 = 3_000;
/// The racing half of a post/void race is recorded as this process + the offset (a Jepsen
/// process has one operation in flight).
pub const RACE_PROCESS_OFFSET: Process = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Post,
    Void,
    /// Post and void sent at the same time.
    Race,
}

/// One client process until `deadline`. Returns the writes left unknown.
pub async fn worker(
    client: LedgerClient,
    recorder: Recorder,
    process: Process,
    seed: u64,
    accounts: u64,
    interval: Duration,
    deadline: Instant,
) -> Vec<Op> {
    let mut rng = Rng::new(seed ^ (u64::from(process) << 32) ^ 0x7477_6f70);
    let mut sequence = 0u64;
    let next_id = |seq: &mut u64| {
        *seq += 1;
        let id = u64::from(process) * 10_000_000 + *seq;
        (id, format!("jepsen-{seed}-{id}"))
    };
    let mut unknown = Vec::new();
    // Holds this process will resolve: (when, hold id, how).
    let mut plans: Vec<(Instant, u64, Fate)> = Vec::new();
    while Instant::now() < deadline {
        let began = Instant::now();
        let due = plans.iter().enumerate().filter(|(_, p)| p.0 <= began).min_by_key(|(_, p)| p.0).map(|(i, _)| i);
        if let Some(index) = due {
            let (_, hold, fate) = plans.swap_remove(index);
            let (post_id, post_key) = next_id(&mut sequence);
            let (void_id, void_key) = next_id(&mut sequence);
            let post = Op::Post { id: post_id, key: post_key, hold };
            let void = Op::Void { id: void_id, key: void_key, hold };
            let sent: Vec<(Op, Outcome)> = match fate {
                Fate::Post => vec![(post.clone(), write_with_retries(&client, &recorder, process, &post, deadline).await)],
                Fate::Void => vec![(void.clone(), write_with_retries(&client, &recorder, process, &void, deadline).await)],
                Fate::Race => {
                    let (p, v) = tokio::join!(
                        write_with_retries(&client, &recorder, process, &post, deadline),
                        write_with_retries(&client, &recorder, process + RACE_PROCESS_OFFSET, &void, deadline),
                    );
                    vec![(post, p), (void, v)]
                }
            };
            unknown.extend(sent.into_iter().filter(|(_, o)| *o == Outcome::Info).map(|(op, _)| op));
        } else if rng.range(0, 9) < 3 {
            read(&client, &recorder, process, accounts, true).await;
        } else {
            let (id, key) = next_id(&mut sequence);
            let (from, to) = two_accounts(&mut rng, accounts);
            let timeout_ms = rng.range(HOLD_TIMEOUT_MS_MIN, HOLD_TIMEOUT_MS_MAX);
            let op = Op::Hold { id, key, from, to, amount: rng.range(1, 30) as Amount, timeout_ms };
            match write_with_retries(&client, &recorder, process, &op, deadline).await {
                Outcome::Ok => {
                    // 4 in 10 posted, 3 voided, 1 raced, 2 left to expire; the resolution comes
                    // at up to 1.25 × the timeout, so some arrive late and must be refused.
                    let fate = match rng.range(0, 9) {
                        0..=3 => Some(Fate::Post),
                        4..=6 => Some(Fate::Void),
                        7 => Some(Fate::Race),
                        _ => None,
                    };
                    if let Some(fate) = fate {
                        let delay = Duration::from_millis(rng.range(0, timeout_ms * 5 / 4));
                        plans.push((Instant::now() + delay, id, fate));
                    }
                }
                Outcome::Info => unknown.push(op),
                Outcome::Fail | Outcome::Invoke => {}
            }
        }
        if let Some(rest) = interval.checked_sub(began.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    unknown
}
