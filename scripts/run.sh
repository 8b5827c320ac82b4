#!/usr/bin/env bash
# Set everything up and run the service on the embedded default: SQLite in ./data, grading
# workers as child processes of the server, and a demo course whose accounts are printed at start-up.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
step() { echo "==> [$((SECONDS - start))s] $*"; }
step "Setting up (system packages, .venv, the project); the first run takes a few minutes, later runs seconds."
bash scripts/setup.sh run
step "Database: applying migrations (SQLite in ./data unless DATABASE_URL is set)."
.venv/bin/grader db upgrade
step "Starting the service; the demo course's logins follow. Stop it with Ctrl-C."
exec .venv/bin/grader serve --demo "$@"
