#!/usr/bin/env bash
# System packages, installed only when missing (idempotent; apt-get update only when needed).
#   run:  what the service needs (bubblewrap and libseccomp2 for the sandbox)
#   test: also what the tests drive (PostgreSQL server binaries, Chromium for browser tests)
set -euo pipefail
mode=${1:-test}

need=()
command -v bwrap >/dev/null || need+=(bubblewrap)
# the sandbox builds its seccomp filter with libseccomp through ctypes
ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2' || need+=(libseccomp2)
if [ "$mode" = test ]; then
  command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  command -v chromium >/dev/null || need+=(chromium)
  command -v setpriv >/dev/null || need+=(util-linux)  # tests/deploy starts bubblewrap as a slot uid
fi

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "Missing system packages: ${need[*]}; run as root or install them with apt-get." >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  echo "    installing system packages with apt-get: ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "    system packages: already installed"
fi

