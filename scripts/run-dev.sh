#!/usr/bin/env bash
# Builds and starts a single-node ledger on 127.0.0.1:7070 with its data in ./data.
# Extra arguments go to `ledger-node dev` (e.g. --data-dir /tmp/ledger --listen 127.0.0.1:7171).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
# The same build as scripts/test.sh (`--workspace --bins`): cargo unifies features per
# invocation, so `cargo run -p ledger-node` would recompile our crates after the tests (minutes)
# and the tests would recompile them after it. Then the binary itself, not `cargo run`.
cargo build --release --locked --workspace --bins
exec "${CARGO_TARGET_DIR:-target}/release/ledger-node" dev "$@"
