//! The fault-injection suite: what a run records (`history`) and how it is judged (`checker`),
//! and the runner that produces it (`cluster`, `net`, `workload`, `run`).
//!
//! A history is what the clients saw, Jepsen-style: every operation is *invoked*, then completes
//! *ok* (it happened), *fail* (it definitely did not happen) or *info* (unknown: a timeout or a
//! lost connection; it may have happened, once). Checkers never trust the system under test
//! beyond what the history and a final read show.

pub mod checker;
pub mod cluster;
pub mod history;
pub mod net;
pub mod power_cut;
pub mod report;
pub mod rotate;
pub mod run;
pub mod schedule;
pub mod workload;
