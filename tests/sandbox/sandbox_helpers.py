"""Shared constants and helpers of the sandbox battery (imported as a plain module: tests/ is no package)."""

from __future__ import annotations

import os
import shutil
import subprocess

# A fake secret in the service's environment: no sandboxed process may ever see it.
FAKE_SECRET = "hunter2-fake-grader-secret"
os.environ["GRADER_SECRET"] = FAKE_SECRET

TEST_LIMITS_KW = {"cpu_seconds": 1, "wall_seconds": 4, "memory_bytes": 512 << 20, "max_processes": 16,
                  "max_file_bytes": 1 << 20, "max_open_files": 64, "tmp_bytes": 8 << 20, "output_bytes": 64 << 10}


def _bwrap_works() -> str | None:
    if os.geteuid() != 0:
        return "the sandbox battery needs root (to drop to per-slot uids)"
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed"
    probe = subprocess.run(["bwrap", "--unshare-all", "--ro-bind", "/", "/", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        return f"bwrap cannot create namespaces here: {probe.stderr.decode().strip()}"
    return None


_SKIP = _bwrap_works()


def free_sandbox(limits, *, zygote: bool, **options):
    """A Sandbox on the first free slot from 4000 up (the service or other test runs may hold others)."""
    from sandbox import Sandbox, SlotBusy

    for slot in range(4000, 4900):
        try:
            return Sandbox(slot, limits, zygote=zygote, **options)
        except SlotBusy:
            continue
    raise RuntimeError("no free sandbox slot")
