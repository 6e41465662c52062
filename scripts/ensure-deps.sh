#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build the ledger: libclang (bindgen, for the
# rocksdb crate) and a C++ compiler (RocksDB's bundled source). Idempotent and quiet when all is there.
set -euo pipefail

need=()
if ! compgen -G "/usr/lib/llvm-*/lib/libclang*.so*" >/dev/null && ! compgen -G "/usr/lib/x86_64-linux-gnu/libclang*.so*" >/dev/null; then
  need+=(libclang-dev)
fi
command -v c++ >/dev/null || need+=(g++)
command -v cargo >/dev/null || { echo "cargo is not installed: install Rust (rustup) first" >&2; exit 1; }

if ((${#need[@]})); then
  echo "installing: ${need[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi
