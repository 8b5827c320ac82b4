#!/usr/bin/env bash
# Set everything up and run the service on the embedded default: SQLite in ./data, in-process
# workers, and a demo course whose accounts are printed at start-up.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh run
.venv/bin/grader db upgrade
exec .venv/bin/grader serve --demo "$@"
