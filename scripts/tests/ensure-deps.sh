#!/usr/bin/env bash
# Proves scripts/ensure-deps.sh on a machine that already has everything: each case runs it in a
# private mount namespace where overlay whiteouts hide what a fresh machine lacks (libclang's C
# library, or the C++ compiler), with `apt-get` replaced by a shim on PATH that records its
# arguments. Asserts what was requested. Needs root (mount namespaces, overlayfs, mknod).
# Prints `ensure-deps: N passed, M failed` and exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ] || ! command -v unshare >/dev/null; then
  echo "ensure-deps: needs root and unshare to build a private mount namespace" >&2
  [ "${CI:-}" = "true" ] && exit 1
  echo "ensure-deps: skipped (not root)"; exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/shim"
cat >"$work/shim/apt-get" <<'SHIM'
#!/bin/sh
echo "$*" >>"$APT_LOG"
SHIM
chmod +x "$work/shim/apt-get"

# Runs ensure-deps.sh in a new mount namespace after hiding every file of $dirs matching one of
# $patterns (whiteouts in an overlay over that dir). Prints what apt-get was asked.
# usage: run_hidden CASE "PATTERN..." [ENV=VALUE...]
run_hidden() {
  local name="$1" patterns="$2"; shift 2
  local log="$work/$name.apt"
  : >"$log"
  unshare --mount --propagation private env APT_LOG="$log" PATTERNS="$patterns" CASE_DIR="$work/$name" \
    PATH="$work/shim:$PATH" "$@" bash -c '
    set -euo pipefail
    mkdir -p "$CASE_DIR"
    mount -t tmpfs tmpfs "$CASE_DIR"
    n=0
    for dir in /usr/lib/llvm-*/lib /usr/lib/$(gcc -print-multiarch) /usr/lib64 /usr/lib /usr/local/lib /usr/bin /bin; do
      [ -d "$dir" ] && [ ! -L "$dir" ] || continue
      hide=()
      for p in $PATTERNS; do for f in "$dir"/$p; do [ -e "$f" ] || [ -L "$f" ] && hide+=("$(basename "$f")"); done; done
      ((${#hide[@]})) || continue
      n=$((n + 1)); upper="$CASE_DIR/u$n"; wd="$CASE_DIR/w$n"; mkdir -p "$upper" "$wd"
      for f in "${hide[@]}"; do mknod "$upper/$f" c 0 0; done
      mount -t overlay overlay -o "lowerdir=$dir,upperdir=$upper,workdir=$wd" "$dir"
    done
    scripts/ensure-deps.sh >/dev/null 2>&1
  ' || { echo "ensure-deps.sh failed in case $name" >&2; echo "FAILED"; return 0; }
  tr '\n' ';' <"$log"
}

passed=0; failed=0
check() {
  local name="$1" got="$2" want="$3"
  if [[ "$got" == $want ]]; then
    passed=$((passed + 1)); echo "ensure-deps case $name ... ok"
  else
    failed=$((failed + 1)); echo "ensure-deps case $name ... FAILED: apt-get got [$got], wanted [$want]"
  fi
}

CLANG_C='libclang.so libclang.so.[0-9]* libclang-[0-9]*.so libclang-[0-9]*.so.[0-9]*'
CXX='c++ g++'

# Nothing hidden: everything is there (this machine ran ensure-deps.sh for real first).
check everything_present "$(run_hidden present '')" ''
# A fresh machine: libclang-cpp.so.<N> (the C++ API) stays visible, the C library is gone.
check libclang_c_hidden "$(run_hidden noclang "$CLANG_C")" 'update -qq;install -y -qq libclang-dev;'
# The C++ compiler missing.
check cxx_hidden "$(run_hidden nocxx "$CXX")" 'update -qq;install -y -qq g++;'
# Both missing: one install of both.
check both_hidden "$(run_hidden none "$CLANG_C $CXX")" 'update -qq;install -y -qq libclang-dev g++;'
# LIBCLANG_PATH names a directory that holds the library: honoured, nothing installed.
real="$(ls /usr/lib/llvm-*/lib/libclang-[0-9]*.so.[0-9]* /usr/lib/llvm-*/lib/libclang.so.[0-9]* 2>/dev/null | head -1 || true)"
if [ -n "$real" ]; then
  mkdir -p "$work/libclang"; cp -L "$real" "$work/libclang/libclang.so"
  check libclang_path_honoured "$(run_hidden viaenv "$CLANG_C" LIBCLANG_PATH="$work/libclang")" ''
else
  failed=$((failed + 1)); echo "ensure-deps case libclang_path_honoured ... FAILED: no libclang under /usr/lib/llvm-*/lib after ensure-deps.sh"
fi

echo "ensure-deps: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
