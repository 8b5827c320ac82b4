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
fi

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "Missing system packages: ${need[*]}; run as root or install them with apt-get." >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# tests/deploy: libseccomp2 compiles the worker container's seccomp profile natively (the sandbox
# needs it too) and setpriv (util-linux) starts bubblewrap as a slot uid.
if [ "${1:-test}" = test ]; then
  deploy_need=()
  ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2' || deploy_need+=(libseccomp2)
  command -v setpriv >/dev/null || deploy_need+=(util-linux)
  if [ ${#deploy_need[@]} -gt 0 ] && [ "$(id -u)" -eq 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${deploy_need[@]}" >/dev/null
  fi
fi
