#!/usr/bin/env bash
# Installs what the service needs on a fresh Debian/Ubuntu machine with Python 3.11+, then the
# project into .venv. `scripts/setup.sh test` also installs the test-only extras (pytest, torch,
# Playwright) and the system packages the tests drive (PostgreSQL, Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}

bash .ci/install-system-deps.sh "$mode"

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "    creating the virtual environment .venv with $python"
  "$python" -m venv .venv
fi
echo "    installing the Python packages into .venv (numpy, scipy, FastAPI, SQLAlchemy...; the first time takes a minute or two)"
.venv/bin/python -m pip install -q --upgrade pip
if [ "$mode" = test ]; then
  # torch==2.13.0 (CPU) is a test-only extra: it checks the reference solution, never grades.
  .venv/bin/python -m pip install -q -e '.[test,torch]'
else
  .venv/bin/python -m pip install -q -e .
fi
echo "    .venv is ready"
