"""Makes tests/support.py (as `support`) and the repository's modules (e.g. `bench.pg`) importable
from every test folder."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
