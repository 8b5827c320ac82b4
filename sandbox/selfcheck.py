"""Start-up capability self-test: pick the backend only if it really isolates (fail closed)."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from .errors import BackendUnavailable
from .limits import Limits
from .sandbox import Sandbox, SlotBusy

logger = logging.getLogger(__name__)

SELF_CHECK_SLOT = 4999
SELF_CHECK_SLOTS = 64  # slots 4936-4999, counted down
_SECRET_NAME = "SANDBOX_SELF_CHECK_SECRET"
_PROBE = r'''
import json, os, socket, time
report = {}
children = 0
for _ in range(40):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(2)
        os._exit(0)
    children += 1
report["fork_capped"] = children < 40
environ = b""
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    try:
        environ += open(f"/proc/{pid}/environ", "rb").read()
    except OSError:
        pass
report["no_secret_env"] = b"SANDBOX_SELF_CHECK_SECRET" not in environ
try:
    open("/proc/sys/kernel/core_pattern", "w").close()
    report["core_pattern_locked"] = False
except OSError:
    report["core_pattern_locked"] = True
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(1)
    s.connect(("192.0.2.1", 80))
    report["no_network"] = False
except OSError:
    report["no_network"] = True
written = 0
try:
    with open("/tmp/fill", "wb") as f:
        for _ in range(32):
            f.write(b"\0" * (1 << 20))
            f.flush()
            written += 1 << 20
except OSError:
    pass
report["tmp_capped"] = written <= 8 << 20
print(json.dumps(report))
'''


def _free_self_check_sandbox(limits: Limits) -> Sandbox:
    """A sandbox on the first free self-check slot: workers starting together each get their own."""
    for slot in range(SELF_CHECK_SLOT, SELF_CHECK_SLOT - SELF_CHECK_SLOTS, -1):
        try:
            return Sandbox(slot, limits, zygote=False, preload=())
        except SlotBusy:
            continue
    raise SlotBusy(f"all {SELF_CHECK_SLOTS} self-check slots are busy")


def check_backend() -> str:
    """Run a short probe in a real sandbox; return the backend name (e.g. "bwrap+cgroup-v1").
    Raises BackendUnavailable with the reason when isolation does not hold."""
    limits = Limits(cpu_seconds=5, wall_seconds=15, memory_bytes=768 << 20, max_processes=16,
                    tmp_bytes=8 << 20)
    os.environ[_SECRET_NAME] = "if-you-can-read-this-the-sandbox-leaks"
    try:
        with tempfile.TemporaryDirectory(prefix="sandbox-selfcheck-") as tmp:
            script = Path(tmp, "probe.py")
            script.write_text(_PROBE)
            script.chmod(0o644)
            os.chmod(tmp, 0o755)
            out = Path(tmp, "out")
            out.mkdir()
            try:
                with _free_self_check_sandbox(limits) as sandbox:
                    result = sandbox.run_python(script, [], ro_binds=[], out_dir=out)
                    name = sandbox.backend_name
            except (OSError, ValueError, SlotBusy) as exc:
                raise BackendUnavailable(f"the sandbox cannot start: {exc}") from exc
    finally:
        os.environ.pop(_SECRET_NAME, None)
    if result.outcome != "ok":
        raise BackendUnavailable(f"the probe did not run cleanly: {result.message} {result.stderr[-500:]}")
    try:
        report = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise BackendUnavailable(f"the probe printed no report: {result.stdout[-200:]!r}") from exc
    failed = [check for check, passed in report.items() if not passed]
    if failed:
        raise BackendUnavailable(f"isolation checks failed: {', '.join(failed)}")
    logger.info("sandbox backend: %s (self-check passed)", name)
    return name
