//! Ledger time: the time a leader stamps on what it proposes. The state machine takes it from
//! the log (never a clock) and never lets it go back; what this module bounds is how far
//! **forward** one wrong clock can move it.
//!
//! Every node samples the clocks of the voters about once a second (`NodeInfo` answers carry the
//! answering node's wall clock; half the round trip is added) and keeps the **lower median** of
//! the clocks read from a majority of the voters, this node's own included, with the monotonic
//! instant it was read at. A leader proposes its own wall clock, but at most
//! `LEDGER_TIME_SKEW_MAX` ahead of that median as carried forward by the monotonic clock since
//! the sample. Beyond it the proposal is clamped, counted in `ledger_time_clamped_total` and
//! logged. So a leader whose clock is a day fast proposes the majority's time (plus at most the
//! skew), and a hold of 60 s placed a second earlier is not expired by its next command; a
//! leader whose clock steps forward while it leads is bounded by the same ceiling, since the
//! monotonic clock does not step. Nothing here is in apply: the log carries the bounded times,
//! so replicas stay deterministic, and an idle cluster follows real time (the median moves with
//! the clocks, not with the log). Limits: a majority of fast clocks moves ledger time with it;
//! until a node has its first sample (about a second after it starts, and only once a majority
//! of voters answers) its proposals are not bounded; a one-node cluster is its own majority.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use openraft::type_config::async_runtime::WatchReceiver;

use super::{Node, now_ns};
use crate::raft::{NodeAddr, NodeId};

/// How far ahead of the voters' median clock a leader may stamp a proposal.
pub const LEDGER_TIME_SKEW_MAX: Duration = Duration::from_secs(10);
/// How often every node reads the voters' clocks.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// How long one peer has to answer a clock read.
const SAMPLE_TIMEOUT: Duration = Duration::from_millis(500);
/// At most one warning per this long while proposals are being clamped (the metric counts all).
const WARN_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
struct Sample {
    median_ns: u64,
    at: Instant,
}

/// The ceiling on proposal times, from the last sample of the voters' clocks.
#[derive(Debug, Default)]
pub struct LedgerClock {
    sample: Mutex<Option<Sample>>,
    last_warning: Mutex<Option<Instant>>,
}

impl LedgerClock {
    /// The time to stamp on a proposal now.
    pub fn proposal_ns(&self) -> u64 {
        self.bound(now_ns(), Instant::now())
    }

    /// `own_ns` (this node's wall clock at `now`), clamped to the ceiling.
    fn bound(&self, own_ns: u64, now: Instant) -> u64 {
        let Some(ceiling) = self.ceiling_ns(now) else { return own_ns };
        if own_ns <= ceiling {
            return own_ns;
        }
        metrics::counter!(crate::telemetry::LEDGER_TIME_CLAMPED_TOTAL).increment(1);
        let mut last = self.last_warning.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|at| now.duration_since(at) >= WARN_INTERVAL) {
            *last = Some(now);
            tracing::warn!(
                ahead_ms = (own_ns - ceiling) / 1_000_000 + LEDGER_TIME_SKEW_MAX.as_millis() as u64,
                skew_max_ms = LEDGER_TIME_SKEW_MAX.as_millis() as u64,
                "this node's clock is ahead of the voters' median clock by more than the allowed skew: \
                 proposals are stamped with the median plus the skew (fix this node's clock)"
            );
        }
        ceiling
    }

    fn ceiling_ns(&self, now: Instant) -> Option<u64> {
        let sample = (*self.sample.lock().unwrap_or_else(|p| p.into_inner()))?;
        let since = now.saturating_duration_since(sample.at).as_nanos() as u64;
        Some(sample.median_ns.saturating_add(since).saturating_add(LEDGER_TIME_SKEW_MAX.as_nanos() as u64))
    }

    fn record(&self, median_ns: u64, at: Instant) {
        *self.sample.lock().unwrap_or_else(|p| p.into_inner()) = Some(Sample { median_ns, at });
    }
}

/// The lower median of clocks read at one instant, if they come from a majority of `voters`.
/// The lower one: with two clocks (a majority of three) the earlier is trusted.
pub fn lower_median(mut clocks: Vec<u64>, voters: usize) -> Option<u64> {
    if clocks.is_empty() || clocks.len() * 2 <= voters {
        return None;
    }
    clocks.sort_unstable();
    Some(clocks[(clocks.len() - 1) / 2])
}

impl Node {
    /// Reads the voters' clocks every `SAMPLE_INTERVAL` into `ledger_clock`. Runs until the node
    /// shuts down.
    pub async fn run_clock_sampler(self) {
        let mut interval = tokio::time::interval(SAMPLE_INTERVAL);
        loop {
            interval.tick().await;
            self.sample_clocks().await;
        }
    }

    async fn sample_clocks(&self) {
        let voters: Vec<(NodeId, NodeAddr)> = {
            let metrics = self.raft.metrics().borrow_watched().clone();
            let membership = metrics.membership_config.membership();
            membership.voter_ids().filter_map(|id| membership.get_node(&id).map(|n| (id, n.clone()))).collect()
        };
        if voters.is_empty() {
            return;
        }
        let reads = voters.iter().filter(|(id, _)| *id != self.id).map(|(_, addr)| async move {
            let sent = Instant::now();
            let answer = self.peers.node_info(&addr.peer, SAMPLE_TIMEOUT).await;
            (sent, Instant::now(), answer)
        });
        let answers = futures::future::join_all(reads).await;
        let (at, own_ns) = (Instant::now(), now_ns());
        let mut clocks = Vec::with_capacity(voters.len());
        if voters.iter().any(|(id, _)| *id == self.id) {
            clocks.push(own_ns);
        }
        for (sent, received, answer) in answers {
            // 0: a release older than the field.
            let Ok(info) = answer else { continue };
            if info.now_ns == 0 {
                continue;
            }
            let since_read = (received.duration_since(sent) / 2 + at.duration_since(received)).as_nanos() as u64;
            clocks.push(info.now_ns.saturating_add(since_read));
        }
        if let Some(median_ns) = lower_median(clocks, voters.len()) {
            self.ledger_clock.record(median_ns, at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_NS: u64 = 86_400 * 1_000_000_000;
    const SKEW_NS: u64 = LEDGER_TIME_SKEW_MAX.as_nanos() as u64;

    #[test]
    fn the_lower_median_of_a_majority() {
        assert_eq!(lower_median(vec![30, 10, 20], 3), Some(20));
        assert_eq!(lower_median(vec![10 + DAY_NS, 10], 3), Some(10), "two of three: the earlier");
        assert_eq!(lower_median(vec![10], 3), None, "one of three is no majority");
        assert_eq!(lower_median(vec![10], 1), Some(10), "a one-node cluster");
        assert_eq!(lower_median(vec![1, 2, DAY_NS, DAY_NS, 3], 5), Some(3));
        assert_eq!(lower_median(vec![1, 2], 4), None);
    }

    #[test]
    fn a_clock_a_day_fast_is_clamped_to_the_median_plus_the_skew() {
        let clock = LedgerClock::default();
        let start = Instant::now();
        let real_ns = 1_700_000_000_000_000_000u64;
        assert_eq!(clock.bound(real_ns + DAY_NS, start), real_ns + DAY_NS, "no sample yet: unbounded");
        clock.record(real_ns, start);
        assert_eq!(clock.bound(real_ns + DAY_NS, start), real_ns + SKEW_NS);
        // The ceiling moves with the monotonic clock, not with the fast wall clock.
        let later = start + Duration::from_secs(5);
        assert_eq!(clock.bound(real_ns + DAY_NS + 5_000_000_000, later), real_ns + 5_000_000_000 + SKEW_NS);
        // A clock within the skew is proposed as it is.
        assert_eq!(clock.bound(real_ns + 7_000_000_000, later), real_ns + 7_000_000_000);
        assert_eq!(clock.bound(real_ns - DAY_NS, later), real_ns - DAY_NS, "a slow clock is not raised here");
    }
}
