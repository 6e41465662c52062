//! How fresh this node's state is known to be, for reads that accept bounded staleness.
//!
//! Freshness comes only from a quorum: a ReadIndex round (`Node::read_barrier`) started at time
//! T and completed (the leader confirmed its leadership with a quorum after T, and this node
//! applied up to the leader's commit index) proves that the state holds every write
//! acknowledged before T. The state only moves forward, so at any later time it misses at most
//! the writes acknowledged since T: its staleness is at most `now - T`, whatever happened since
//! (a partition, a deposed leader still sending heartbeats). Hearing from a leader proves
//! nothing: a deposed leader cut off with this node still sends heartbeats.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct ReadFreshness {
    start: Instant,
    /// When the latest completed ReadIndex round started, in ms after `start`, plus one (0: never).
    confirmed_ms: AtomicU64,
}

impl Default for ReadFreshness {
    fn default() -> ReadFreshness {
        ReadFreshness { start: Instant::now(), confirmed_ms: AtomicU64::new(0) }
    }
}

impl ReadFreshness {
    /// Records a ReadIndex round that started at `started` and completed: the state now holds
    /// every write acknowledged before `started`. Rounded down to the ms (never fresher than true).
    pub fn confirm(&self, started: Instant) {
        let ms = started.saturating_duration_since(self.start).as_millis() as u64 + 1;
        self.confirmed_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// How stale the state may be at most: time since the latest confirmed round started.
    pub fn staleness_bound(&self) -> Option<Duration> {
        match self.confirmed_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(self.start.elapsed().saturating_sub(Duration::from_millis(ms - 1))),
        }
    }

    /// True when the state is known to be at most `max` stale.
    pub fn fresh_within(&self, max: Duration) -> bool {
        self.staleness_bound().is_some_and(|bound| bound <= max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_completed_round_makes_the_state_fresh_and_never_more_than_its_start() {
        let freshness = ReadFreshness::default();
        assert!(!freshness.fresh_within(Duration::from_secs(3600)), "no round yet: never fresh");
        std::thread::sleep(Duration::from_millis(30));
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(50));
        freshness.confirm(started);
        let bound = freshness.staleness_bound().unwrap();
        assert!(bound >= Duration::from_millis(50), "counted from the round's start, not its end: {bound:?}");
        assert!(freshness.fresh_within(Duration::from_secs(1)));
        assert!(!freshness.fresh_within(Duration::from_millis(10)));
        // An older round completing late does not make the state look fresher or staler.
        freshness.confirm(freshness.start);
        assert!(freshness.staleness_bound().unwrap() >= bound);
        assert!(freshness.staleness_bound().unwrap() < bound + Duration::from_millis(20), "not moved back");
    }
}
