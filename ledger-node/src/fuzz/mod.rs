//! Fuzz targets: functions that take arbitrary bytes, as they arrive from the network or the
//! disk, and must never panic. Each also asserts what must hold of its answer (see each
//! module). They run on stable Rust in every `cargo test`, from two sources (`tests.rs`):
//! proptest generators (arbitrary bytes, and structurally valid but hostile requests and
//! commands; `PROPTEST_CASES=n` for a longer hunt), and the checked-in corpus
//! `ledger-node/fuzz/corpus/<target>/` (seeds, and every input that once broke a target).
//! The cargo-fuzz crate in `ledger-node/fuzz/` (nightly, not a workspace member) drives the
//! same functions with libFuzzer; see its README.

pub mod apply;
pub mod peer;
pub mod requests;
pub mod world;

#[cfg(test)]
mod tests;

/// Every target, by the name of its corpus directory.
pub const TARGETS: [(&str, fn(&[u8])); 3] = [("request", requests::run), ("peer", peer::run), ("apply", apply::run)];

/// Runs the named target on one input (false: no target of that name).
pub fn run(target: &str, bytes: &[u8]) -> bool {
    match TARGETS.iter().find(|(name, _)| *name == target) {
        Some((_, run)) => {
            run(bytes);
            true
        }
        None => false,
    }
}
