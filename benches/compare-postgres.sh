#!/usr/bin/env bash
# PostgreSQL and the ledger side by side, in one run, on the same workloads (issue 17 item 5):
# 10,000 accounts, uniform, one leg, a unique idempotency key per transfer, fsync on.
#   - PostgreSQL 64 clients x 1 transfer and 8 clients x 100 (one transaction of 100, its
#     accounts locked in id order first), with benches/pg-baseline.sh (pgbench, plpgsql);
#   - ledger-bench --spawn 3 (three nodes on this machine) on the same two shapes;
# then prints each figure and the ratio ledger / PostgreSQL. A benchmark, not a test: not in CI.
#
# Usage: benches/compare-postgres.sh [SECONDS]
#   SECONDS: each PostgreSQL run (default 20). The ledger runs send LEDGER_TRANSFERS_64X1
#   (default 60,000) and LEDGER_TRANSFERS_8X100 (default 400,000) transfers.
# Needs root (installs postgresql from the distribution's packages if absent; runs it as user
# postgres). Builds the workspace binaries if ledger-bench is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
transfers_64x1=${LEDGER_TRANSFERS_64X1:-60000}
transfers_8x100=${LEDGER_TRANSFERS_8X100:-400000}

if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
  echo "installing postgresql (apt-get)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2 \
    || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2; }
fi
# Debian's package starts a cluster of its own; ours runs in a temp dir on its own port.

bench="${CARGO_TARGET_DIR:-target}/release/ledger-bench"
if [ ! -x "$bench" ]; then
  scripts/ensure-deps.sh
  cargo build --release --locked --workspace --bins
fi

# `postgres C clients x N: T transfers/s (p50 X ms p99 Y ms per transaction)`
pg_run() {
  local line
  line=$(benches/pg-baseline.sh "$1" "$2" "$secs" | tail -1)
  echo "$line" >&2
  sed -n 's/.*: \([0-9,]*\) transfers\/s (p50 \([0-9.]*\) ms p99 \([0-9.]*\) ms.*/\1 \2 \3/p' <<<"$line" | tr -d ,
}

# `T P50 P99` from ledger-bench's JSON report (request latency: one request of `--batch` transfers).
ledger_run() {
  local clients=$1 batch=$2 transfers=$3 json
  json=$("$bench" --spawn 3 --accounts 10000 --transfers "$transfers" --clients "$clients" --batch "$batch" --json)
  echo "ledger-bench --spawn 3 --accounts 10000 --transfers $transfers --clients $clients --batch $batch" >&2
  python3 -c '
import json, sys
r = json.loads(sys.argv[1])
assert r["balances_valid"] and r["transfers_failed"] == 0, "ledger-bench found a wrong balance or a failed transfer"
l = r["request_latency"]
print(round(r["transfers_per_s"]), l["p50_ms"], l["p99_ms"])' "$(tail -1 <<<"$json")"
}

started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
read -r pg1 pg1_p50 pg1_p99 < <(pg_run 64 1)
read -r pg100 pg100_p50 pg100_p99 < <(pg_run 8 100)
read -r l1 l1_p50 l1_p99 < <(ledger_run 64 1 "$transfers_64x1")
read -r l100 l100_p50 l100_p99 < <(ledger_run 8 100 "$transfers_8x100")

python3 - "$started" "$secs" "$pg1" "$pg1_p50" "$pg1_p99" "$l1" "$l1_p50" "$l1_p99" "$pg100" "$pg100_p50" "$pg100_p99" "$l100" "$l100_p50" "$l100_p99" <<'PY'
import sys
a = sys.argv[1:]
started, secs = a[0], a[1]
rows = [("64 clients x 1", a[2:5], a[5:8], 1.5), ("8 clients x 100", a[8:11], a[11:14], 2.0)]
print(f"\nPostgreSQL vs ledger, started {started} (PostgreSQL {secs} s per workload; latency per request/transaction)")
print("| workload | PostgreSQL transfers/s | p50 / p99 ms | ledger (3 nodes) transfers/s | p50 / p99 ms | ratio | target |")
print("|---|---|---|---|---|---|---|")
for name, pg, ledger, target in rows:
    ratio = float(ledger[0]) / float(pg[0])
    mark = "met" if ratio >= target else "missed"
    print(f"| {name} | {int(pg[0]):,} | {float(pg[1]):.2f} / {float(pg[2]):.2f} | {int(ledger[0]):,} | {float(ledger[1]):.2f} / {float(ledger[2]):.2f} | {ratio:.2f} | >= {target} ({mark}) |")
PY
