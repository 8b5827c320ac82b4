"""Resource limits for one sandboxed run.

Defaults (all configurable per Sandbox, per run and per batch task):

- cpu_seconds = 10.0      CPU time of any single process (RLIMIT_CPU, SIGXCPU then SIGKILL one second
                          later) and, where a cpuacct/cpu cgroup is writable, of the whole run.
- wall_seconds = 20.0     wall-clock time from start to the kill of the whole process tree.
- memory_bytes = 1 GiB    total memory across all processes, tmpfs pages and memfds (memory cgroup where
                          writable); also the per-process address-space limit (RLIMIT_AS).
- max_processes = 64      processes and threads (RLIMIT_NPROC of the per-slot uid, and pids cgroup).
- max_file_bytes = 16 MiB largest file a process may write (RLIMIT_FSIZE).
- max_open_files = 64     open file descriptors per process (RLIMIT_NOFILE).
- tmp_bytes = 64 MiB      size of the private /tmp tmpfs; /dev/shm gets a quarter of it.
- output_bytes = 1 MiB    per stream (stdout, stderr); the run is killed beyond it, head and tail are kept.
- out_bytes = 32 MiB      size of a batch task's /out tmpfs (never on the host's disk), out_files entries.

Core dumps are always off (RLIMIT_CORE = 0) and locked memory is 0 (RLIMIT_MEMLOCK).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Limits for one run. See the module docstring for what each field bounds and its default."""

    cpu_seconds: float = 10.0
    """CPU seconds per process (and in total where a cpu cgroup is writable)."""
    wall_seconds: float = 20.0
    """Wall-clock seconds before the whole run is killed."""
    memory_bytes: int = 1 << 30
    """Total memory (cgroup) and per-process address space (RLIMIT_AS)."""
    max_processes: int = 64
    """Processes plus threads of the run."""
    max_file_bytes: int = 16 << 20
    """Largest file size a process may write."""
    max_open_files: int = 64
    """Open file descriptors per process."""
    tmp_bytes: int = 64 << 20
    """Size of the private /tmp; /dev/shm is a quarter of it."""
    output_bytes: int = 1 << 20
    """Captured bytes per stream before the run is killed for flooding its output."""
    out_bytes: int = 32 << 20
    """Size of a batch task's /out (a tmpfs in the sandbox; the host reads back named files only)."""
    out_files: int = 64
    """Files and folders a batch task may create in /out."""

    @property
    def shm_bytes(self) -> int:
        return max(1 << 20, self.tmp_bytes // 4)

    def rlimits(self) -> dict[str, tuple[int, int]]:
        """The rlimits to set before the sandboxed program starts, by resource name."""
        cpu = max(1, math.ceil(self.cpu_seconds))
        return {
            "RLIMIT_AS": (self.memory_bytes, self.memory_bytes),
            "RLIMIT_CPU": (cpu, cpu + 1),
            "RLIMIT_NPROC": (self.max_processes, self.max_processes),
            "RLIMIT_FSIZE": (self.max_file_bytes, self.max_file_bytes),
            "RLIMIT_NOFILE": (self.max_open_files, self.max_open_files),
            "RLIMIT_CORE": (0, 0),
            "RLIMIT_MEMLOCK": (0, 0),
        }

