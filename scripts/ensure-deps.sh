#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build the ledger: libclang (bindgen, for the
# rocksdb crate) and a C++ compiler (RocksDB's bundled source). Idempotent and quiet when all is there.
#
# Look for what bindgen actually loads, not for anything named libclang*: clang-sys dlopens
# `libclang.so`, `libclang.so.<N>`, `libclang-<N>.so` or `libclang-<N>.so.<M>` (the C API) and
# skips `libclang-cpp.so.<N>` (the C++ API, Debian's libclang-cpp14, present on fresh machines
# of our kind without the C library). Matching that one is the bug this script once had.
# Tested by scripts/tests/ensure-deps.sh in a private mount namespace that hides the libraries.
set -euo pipefail

# The directories clang-sys searches on Linux (besides `llvm-config --libdir`, which the
# llvm-*/lib glob covers for Debian's packages).
libclang_dirs() {
  if [ -n "${LIBCLANG_PATH:-}" ]; then
    # clang-sys accepts a directory or the library file itself.
    if [ -f "$LIBCLANG_PATH" ]; then dirname "$LIBCLANG_PATH"; else echo "$LIBCLANG_PATH"; fi
  fi
  local multiarch
  multiarch="$(gcc -print-multiarch 2>/dev/null || true)"
  compgen -G "/usr/lib/llvm-*/lib" || true
  [ -n "$multiarch" ] && echo "/usr/lib/$multiarch"
  echo /usr/lib64
  echo /usr/lib
  echo /usr/local/lib
}

has_loadable_libclang() {
  local dir pattern
  while read -r dir; do
    [ -d "$dir" ] || continue
    for pattern in 'libclang.so' 'libclang.so.[0-9]*' 'libclang-[0-9]*.so' 'libclang-[0-9]*.so.[0-9]*'; do
      compgen -G "$dir/$pattern" >/dev/null && return 0
    done
  done < <(libclang_dirs)
  return 1
}

need=()
has_loadable_libclang || need+=(libclang-dev)
command -v c++ >/dev/null || need+=(g++)
command -v cargo >/dev/null || { echo "cargo is not installed: install Rust (rustup) first" >&2; exit 1; }

if ((${#need[@]})); then
  echo "installing: ${need[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi
