"""The tree is ruff-clean (the developer guide asks for it; this puts it in the test run).

The rule set and its deliberate exceptions are in pyproject.toml ([tool.ruff]); ruff's version is
pinned in the test extra because each release changes its default rules.
"""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_tree_is_ruff_clean():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format=concise", "."],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
