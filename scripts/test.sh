#!/usr/bin/env bash
# Runs every test of the workspace: unit, property, and end-to-end tests against real binaries,
# then the Python client's type check and tests (scripts/test-python.sh).
# One profile (release) for build and tests: RocksDB's C++ is compiled once.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
# Prove the install step itself: hide what a fresh machine lacks and check what it asks apt for.
scripts/tests/ensure-deps.sh
# The rules first: ledger-core builds without RocksDB's C++, so a broken rule shows in seconds
# rather than after the big build.
cargo test --release --locked -p ledger-core
# The end-to-end tests start the real binaries: build them first.
cargo build --release --locked --workspace --bins
# Both suites run whatever the other's outcome; the script fails if either fails.
status=0
# --no-fail-fast: every failing test binary is reported, not only the first.
cargo test --release --locked --workspace --no-fail-fast "$@" || status=$?
# The Python client (clients/python) against the same binaries: prints `python: N passed, M failed`.
scripts/test-python.sh || status=$?
exit "$status"
