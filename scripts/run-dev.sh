#!/usr/bin/env bash
# Builds and starts a single-node ledger on 127.0.0.1:7070 with its data in ./data.
# Extra arguments go to `ledger-node dev` (e.g. --data-dir /tmp/ledger --listen 127.0.0.1:7171).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
exec cargo run --release --locked -p ledger-node --bin ledger-node -- dev "$@"
