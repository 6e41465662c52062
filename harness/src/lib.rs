//! One harness for every tool that runs real `ledger-node` processes: the end-to-end tests
//! (`tests/`), the fault-injection runs (`jepsen/`) and the load generator (`benches/`).
//!
//! - [`binary`]: where a workspace binary is (an override variable, next to the running
//!   executable, `$CARGO_TARGET_DIR/release`, `<workspace>/target/release`).
//! - [`free_port`]: a loopback port that was free a moment ago.
//! - [`NodeSpec`]: how one node is started (dev or cluster member, addresses, TLS files,
//!   bootstrap peers, extra flags and environment, where its output goes); [`NodeSpec::spawn`]
//!   starts it as a [`NodeProcess`].
//! - [`NodeProcess`]: wait until it accepts connections (a condition with a bound, never a
//!   sleep), kill -9, signal (SIGTERM, SIGSTOP, SIGCONT), wait for its exit with a bound. A
//!   process still running when dropped is killed, so no test leaves a node behind.
//! - [`certs`]: `ledger-node certs`, and the file names it gives a node's certificate ([`TlsFiles`]).
//!
//! Standard library only, so that jepsen and ledger-bench pull in nothing through it.

mod binary;
mod node;
mod port;
mod tls;

pub use binary::binary;
pub use node::{LOG_FILTER, Mode, NodeProcess, NodeSpec, Output};
pub use port::free_port;
pub use tls::{TlsFiles, certs};
