//! The timestamps of one command, in a module of its own: every rule that stamps a row takes a
//! `Clock`, and none of them needs the dispatcher (`apply`) for it.

/// Hands out the timestamps of one command: strictly increasing across the ledger, starting at
/// the leader's proposal time or just after the last timestamp given, whichever is later (a new
/// leader's clock may be behind the old one's).
pub struct Clock {
    next_ns: u64,
    issued: bool,
}

impl Clock {
    pub fn new(last_timestamp_ns: u64, proposed_at_ns: u64) -> Clock {
        Clock { next_ns: proposed_at_ns.max(last_timestamp_ns + 1), issued: false }
    }
    /// The next timestamp, without taking it.
    pub fn peek(&self) -> u64 {
        self.next_ns
    }
    /// The last timestamp handed out (or the one before the first, if none was).
    pub fn last(&self) -> u64 {
        self.next_ns - 1
    }
    /// Where the clock stands now (see `rewind`).
    pub fn checkpoint(&self) -> ClockCheckpoint {
        ClockCheckpoint { next_ns: self.next_ns, issued: self.issued }
    }
    /// Takes back the timestamps handed out since `checkpoint`: for an item refused after it
    /// took some, when nothing that was written keeps them.
    pub fn rewind(&mut self, to: ClockCheckpoint) {
        assert!(to.next_ns <= self.next_ns, "a clock rewinds only to an earlier checkpoint");
        self.next_ns = to.next_ns;
        self.issued = to.issued;
    }
    /// Whether any timestamp was handed out (and kept) in this command.
    pub fn issued(&self) -> bool {
        self.issued
    }
    pub fn tick(&mut self) -> u64 {
        let now = self.next_ns;
        self.next_ns = now.checked_add(1).expect("timestamps exhausted (year 2554)");
        self.issued = true;
        now
    }
}

/// A point to rewind a `Clock` to.
#[derive(Debug, Clone, Copy)]
pub struct ClockCheckpoint {
    next_ns: u64,
    issued: bool,
}
