//! Checkers: each reads a paired history (and, where needed, the ledger's final state) and
//! returns a verdict naming the first anomalies it found.

pub mod atomic_reads;
pub mod bank;
pub mod ledger_time;
pub mod linearizable;
pub mod transfers;
pub mod two_phase;

use serde::Serialize;

/// Anomalies kept per verdict; the count says how many there were in all.
pub const ANOMALIES_KEPT: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub checker: &'static str,
    /// None: the checker could not decide (e.g. the search budget ran out).
    pub valid: Option<bool>,
    pub anomaly_count: usize,
    pub anomalies: Vec<String>,
}

impl Verdict {
    pub fn new(checker: &'static str) -> Verdict {
        Verdict { checker, valid: Some(true), anomaly_count: 0, anomalies: Vec::new() }
    }

    pub fn anomaly(&mut self, what: String) {
        self.valid = Some(false);
        self.anomaly_count += 1;
        if self.anomalies.len() < ANOMALIES_KEPT {
            self.anomalies.push(what);
        }
    }
}
