#!/usr/bin/env bash
# Runs every test of the workspace: unit, property, and end-to-end tests against real binaries.
# One profile (release) for build and tests: RocksDB's C++ is compiled once.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
# Prove the install step itself: hide what a fresh machine lacks and check what it asks apt for.
scripts/tests/ensure-deps.sh
# The end-to-end tests start the real binaries: build them first.
cargo build --release --locked --workspace --bins
exec cargo test --release --locked --workspace "$@"
