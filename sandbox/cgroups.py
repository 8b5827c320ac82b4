"""Per-slot cgroups: the only layer that caps memory across processes, tmpfs and memfds.

v1 (memory, pids, cpuacct hierarchies) and v2 (unified) are supported. A slot's groups are created
once and reused (creating and removing a group per run costs 13-20 ms). If no hierarchy is writable,
`SlotCgroup.create` returns None and the caller falls back to rlimits + sized tmpfs + no memfd.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
GROUP_NAME = "grader-sandbox"
# Extra pids for the sandbox's own helpers (bwrap, its reaper; the zygote, its child and its init).
HELPER_PIDS = 5


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read(path: Path) -> str:
    with open(path) as f:
        return f.read()


def detect_version() -> str | None:
    """'v2' if /sys/fs/cgroup is a writable unified hierarchy with memory+pids, 'v1' if the v1
    memory and pids hierarchies are writable, else None."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        controllers = _read(CGROUP_ROOT / "cgroup.controllers").split()
        if {"memory", "pids"} <= set(controllers) and os.access(CGROUP_ROOT, os.W_OK):
            return "v2"
        return None
    if all(os.access(CGROUP_ROOT / c, os.W_OK) for c in ("memory", "pids")):
        return "v1"
    return None


@dataclass
class SlotCgroup:
    version: str
    dirs: dict[str, Path]  # controller (or "unified") -> group dir
    cpu_base: float = 0.0  # v2 has no resettable counter: usage at `prepare`

    @classmethod
    def create(cls, slot: int) -> SlotCgroup | None:
        version = detect_version()
        if version is None:
            return None
        try:
            if version == "v2":
                parent = CGROUP_ROOT / GROUP_NAME
                parent.mkdir(exist_ok=True)
                wanted = {"memory", "pids", "cpu"} & set(_read(CGROUP_ROOT / "cgroup.controllers").split())
                _write(CGROUP_ROOT / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
                _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
                group = parent / f"slot{slot}"
                group.mkdir(exist_ok=True)
                return cls("v2", {"unified": group})
            dirs: dict[str, Path] = {}
            for controller in ("memory", "pids", "cpuacct"):
                root = CGROUP_ROOT / controller
                if not os.access(root, os.W_OK):
                    continue
                group = root / GROUP_NAME / f"slot{slot}"
                group.mkdir(parents=True, exist_ok=True)
                dirs[controller] = group
            return cls("v1", dirs)
        except OSError as exc:
            logger.warning("cgroup %s not usable for slot %d: %s", version, slot, exc)
            return None

    @property
    def name(self) -> str:
        return f"cgroup-{self.version}"

    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs.values()]

    def prepare(self, memory_bytes: int, max_processes: int) -> None:
        """Set this run's limits and reset the counters read by `oom_kills` and `cpu_seconds`."""
        pids = str(max_processes + HELPER_PIDS)
        if self.version == "v2":
            group = self.dirs["unified"]
            _write(group / "memory.max", str(memory_bytes))
            if (group / "memory.swap.max").exists():
                _write(group / "memory.swap.max", "0")
            _write(group / "pids.max", pids)
            self.cpu_base = 0.0
            self.cpu_base = self.cpu_seconds() or 0.0
            return
        memory = self.dirs["memory"]
        memsw = memory / "memory.memsw.limit_in_bytes"
        # v1 refuses a memory limit above the memory+swap limit (EINVAL): when a slot's limit grows
        # since its last run, the memsw limit has to be raised first.
        if memsw.exists():
            try:
                _write(memsw, str(memory_bytes))
            except OSError:
                pass
        _write(memory / "memory.limit_in_bytes", str(memory_bytes))
        if memsw.exists():
            try:
                _write(memsw, str(memory_bytes))
            except OSError:
                pass
        _write(self.dirs["pids"] / "pids.max", pids)
        if "cpuacct" in self.dirs:
            _write(self.dirs["cpuacct"] / "cpuacct.usage", "0")

    def oom_kills(self) -> int:
        """Cumulative count of OOM kills in this group (compare before and after a run)."""
        if self.version == "v2":
            text = _read(self.dirs["unified"] / "memory.events")
        else:
            text = _read(self.dirs["memory"] / "memory.oom_control")
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def cpu_seconds(self) -> float | None:
        """CPU time used by the group since `prepare` (v1 cpuacct) or in total (v2), if known."""
        try:
            if self.version == "v2":
                for line in _read(self.dirs["unified"] / "cpu.stat").splitlines():
                    if line.startswith("usage_usec "):
                        return int(line.split()[1]) / 1e6 - self.cpu_base
                return None
            if "cpuacct" in self.dirs:
                return int(_read(self.dirs["cpuacct"] / "cpuacct.usage")) / 1e9
        except OSError:
            return None
        return None

    def pids(self) -> list[int]:
        found: set[int] = set()
        for procs in self.procs_files():
            try:
                found.update(int(p) for p in _read(Path(procs)).split())
            except OSError:
                pass
        return sorted(found)

    def tasks(self) -> int | None:
        """The tasks charged to the group (pids.current), zombies included until they are reaped;
        None without a pids controller."""
        group = self.dirs.get("pids") or self.dirs.get("unified")
        try:
            return None if group is None else int(_read(group / "pids.current"))
        except (OSError, ValueError):
            return None

    def kill_all(self, timeout: float = 5.0, spare: int | None = None) -> bool:
        """SIGKILL every process in the group but SPARE (the slot's fork server, which lives there)
        until none is left. Returns True when none is left."""
        if spare is None and self.version == "v2" and (self.dirs["unified"] / "cgroup.kill").exists():
            _write(self.dirs["unified"] / "cgroup.kill", "1")
        deadline = time.monotonic() + timeout
        while pids := [pid for pid in self.pids() if pid != spare]:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if time.monotonic() > deadline:
                logger.error("cgroup still holds processes %s after kill", pids)
                return False
            time.sleep(0.005)
        return True
