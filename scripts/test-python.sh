#!/usr/bin/env bash
# The Python client's checks (clients/python): a virtual environment outside the source tree
# ($CARGO_TARGET_DIR/pyenv, default target/pyenv), the package and its test tools installed from
# PyPI (pinned in clients/python/requirements-test.txt; skipped when nothing changed), then
# `mypy --strict` over the package and its tests, and pytest against the real binaries (build
# them first: scripts/test.sh does). Ends with one line `python: N passed, M failed` counting the
# pytest tests plus the mypy run as one check; a run that collects no test is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
export CARGO_TARGET_DIR="$target"
venv="$target/pyenv"
python="${LEDGER_PYTHON:-python3}"

# A venv whose interpreter is gone (Python upgraded or removed) is made anew.
if ! "$venv/bin/python" -c '' 2>/dev/null; then
  rm -rf "$venv"
  "$python" -m venv "$venv" || { echo "python: cannot create a venv with $python (install python3-venv)" >&2; exit 1; }
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)

# Reinstall only what changed: the tools when their pins change, the package when its sources
# or the .proto files it is generated from change.
digest() { sha256sum "$@" | sha256sum | cut -d' ' -f1; }
tools_stamp="$(digest clients/python/requirements-test.txt)"
if [ "$(cat "$venv/.tools-stamp" 2>/dev/null)" != "$tools_stamp" ]; then
  "${pip[@]}" install -r clients/python/requirements-test.txt
  echo "$tools_stamp" >"$venv/.tools-stamp"
fi
mapfile -t sources < <(find clients/python/pyproject.toml clients/python/setup.py clients/python/src proto/proto/ledger/v1 \
  -type f ! -path '*/__pycache__/*' ! -path '*.egg-info/*' | LC_ALL=C sort)
package_stamp="$(digest "${sources[@]}")"
if [ "$(cat "$venv/.package-stamp" 2>/dev/null)" != "$package_stamp" ]; then
  # The build tools are the pinned ones just installed (no isolated download per run).
  "${pip[@]}" install --no-build-isolation ./clients/python
  rm -rf clients/python/build clients/python/src/*.egg-info
  echo "$package_stamp" >"$venv/.package-stamp"
fi

passed=0
failed=0
cd clients/python
# mypy checks the installed package (with its generated code) and the tests.
mypy=("$venv/bin/mypy" --strict --cache-dir "$venv/mypy-cache")
if "${mypy[@]}" -p ledger_client && "${mypy[@]}" tests; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
fi

report="$venv/pytest-report.xml"
rm -f "$report"
status=0
"$venv/bin/python" -m pytest -q --junitxml="$report" || status=$?
if [ -f "$report" ]; then
  read -r tests failures errors skipped < <("$venv/bin/python" - "$report" <<'PY'
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root)
total = lambda key: sum(int(s.get(key, 0)) for s in suites)
print(total("tests"), total("failures"), total("errors"), total("skipped"))
PY
)
  passed=$((passed + tests - failures - errors - skipped))
  # A skipped test is not a passed one: nothing here may be skipped.
  failed=$((failed + failures + errors + skipped))
fi
# No report, or exit 5 (no tests collected), or any other error: a failure too.
if [ "$status" -ne 0 ] && [ "$status" -ne 1 ] || [ ! -f "$report" ]; then
  failed=$((failed + 1))
fi
echo "python: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
