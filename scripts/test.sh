#!/usr/bin/env bash
# Set everything up (including test-only packages) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
# The whole suite (no arguments) must run every group: a run where all the sandbox, security or
# browser tests were skipped (bubblewrap, root or Chromium missing) fails (tests/conftest.py counts
# them). With arguments, pytest runs exactly what was asked.
if [ "$#" -eq 0 ]; then
  set -- --require-ran=sandbox,security,browser
fi
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$status"
