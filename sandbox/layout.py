"""What the sandbox's filesystem looks like: a list of mount operations, shared by both backends.

The Python runtime appears at the same paths as on the host (its shared library has an absolute
RUNPATH), but reduced to the interpreter, libpython and the standard library. Its site-packages is
replaced by an empty tmpfs holding only numpy and scipy (and their bundled `.libs`), found from the
running interpreter. Nothing else of the host is visible: not /root, not the repo, not the venv.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT_PATH = "/sandbox/run.py"
OUT_DIR = "/out"
TMP_DIR = "/tmp"
DEVICES = ("null", "zero", "full", "random", "urandom")
EMPTY_FILE = ".empty"  # in /dev: the source of the masks over /proc's host-wide files
# Host-wide counters and kernel details a fresh procfs still shows: masked by empty read-only files.
MASKED_PROC_FILES = (
    "meminfo", "stat", "uptime", "loadavg", "vmstat", "diskstats", "interrupts", "softirqs", "swaps",
    "partitions", "zoneinfo", "buddyinfo", "pagetypeinfo", "slabinfo", "schedstat", "sched_debug",
    "timer_list", "kcore", "keys", "key-users", "modules", "kallsyms", "cmdline", "cgroups", "locks",
    "latency_stats", "devices", "filesystems", "misc", "iomem", "ioports", "vmallocinfo", "mdstat",
    "kpagecount", "kpageflags", "kpagecgroup", "consoles", "crypto", "execdomains", "version",
)


@dataclass(frozen=True)
class Mount:
    """One step of building the root. kind: bind | copy | tmpfs | symlink | proc | dev | remount_ro.
    A "copy" puts a host file or folder into the root's own tmpfs, read-only with the root: unlike
    a bind, /proc/self/mountinfo then shows no host path for it."""

    kind: str
    dest: str
    source: str = ""
    writable: bool = False
    size: int = 0


@dataclass(frozen=True)
class Runtime:
    """Where the host's Python runtime and the allowed packages live."""

    executable: str  # real interpreter binary, also its path inside
    libpython: str | None
    stdlib: str
    site_packages: str  # inside path that site.py adds for the base prefix
    packages: tuple[str, ...] = field(default_factory=tuple)  # host dirs bound into site_packages


def find_runtime(packages: tuple[str, ...] = ("numpy", "scipy")) -> Runtime:
    """Locate the interpreter, libpython, stdlib and the package dirs from the running interpreter."""
    executable = os.path.realpath(sys.executable)
    soname = sysconfig.get_config_var("INSTSONAME")
    libdir = sysconfig.get_config_var("LIBDIR")
    libpython = None
    if soname and libdir and ".so" in str(soname):
        candidate = os.path.join(str(libdir), str(soname))
        libpython = candidate if os.path.exists(candidate) else None
    stdlib = os.path.dirname(os.__file__)
    site_packages = sysconfig.get_path("purelib", vars={"base": sys.base_prefix})
    dirs: list[str] = []
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError(f"package {name} is not installed")
        pkg_dir = os.path.realpath(next(iter(spec.submodule_search_locations)))
        dirs.append(pkg_dir)
        libs = pkg_dir + ".libs"
        if os.path.isdir(libs):
            dirs.append(libs)
    return Runtime(executable, libpython, stdlib, site_packages, tuple(dirs))


def _system_mounts() -> list[Mount]:
    mounts = [Mount("bind", "/usr", "/usr")]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = f"/{name}"
        if os.path.islink(host):
            mounts.append(Mount("symlink", host, os.readlink(host)))
        elif os.path.isdir(host):
            mounts.append(Mount("bind", host, host))
    if os.path.exists("/etc/ld.so.cache"):
        mounts.append(Mount("bind", "/etc/ld.so.cache", "/etc/ld.so.cache"))
    return mounts


def runtime_mounts(runtime: Runtime, *, from_zygote_view: bool = False) -> list[Mount]:
    """Mounts for the Python runtime. from_zygote_view: the zygote already sees the reduced
    site-packages at its inside path, so bind that directory instead of the package dirs."""
    mounts = _system_mounts()
    mounts.append(Mount("bind", runtime.executable, runtime.executable))
    if runtime.libpython:
        mounts.append(Mount("bind", runtime.libpython, os.path.realpath(runtime.libpython)))
    mounts.append(Mount("bind", runtime.stdlib, runtime.stdlib))
    if from_zygote_view:
        mounts.append(Mount("bind", runtime.site_packages, runtime.site_packages))
    else:
        mounts += site_packages_mounts(runtime)
    return mounts


def site_packages_mounts(runtime: Runtime) -> list[Mount]:
    """An empty tmpfs over site-packages holding only the allowed packages, then made read-only."""
    mounts = [Mount("tmpfs", runtime.site_packages, size=1 << 20)]
    for pkg_dir in runtime.packages:
        mounts.append(Mount("bind", os.path.join(runtime.site_packages, os.path.basename(pkg_dir)), pkg_dir))
    mounts.append(Mount("remount_ro", runtime.site_packages))
    return mounts


def job_mounts(
    *, script: Path, ro_binds: list[tuple[Path, str]], out_dir: Path, tmp_bytes: int, shm_bytes: int
) -> list[Mount]:
    """Per-run mounts: /proc, /dev, sized /tmp and /dev/shm, the script, read-only inputs, /out."""
    mounts = [
        Mount("proc", "/proc"),
        Mount("dev", "/dev"),
        Mount("tmpfs", TMP_DIR, size=tmp_bytes, writable=True),
        Mount("tmpfs", "/dev/shm", size=shm_bytes, writable=True),
        *_copies(script, ro_binds),
    ]
    mounts.append(Mount("bind", OUT_DIR, str(out_dir), writable=True))
    return mounts


def batch_mounts(*, script: Path, ro_binds: list[tuple[Path, str]], tmp_bytes: int, shm_bytes: int,
                 out_bytes: int) -> list[Mount]:
    """A batch's mounts: as `job_mounts`, but /out is a sized tmpfs too (renewed for every task)."""
    return [
        Mount("proc", "/proc"),
        Mount("dev", "/dev"),
        Mount("tmpfs", TMP_DIR, size=tmp_bytes, writable=True),
        Mount("tmpfs", "/dev/shm", size=shm_bytes, writable=True),
        Mount("tmpfs", OUT_DIR, size=out_bytes, writable=True),
        *_copies(script, ro_binds),
    ]


def _copies(script: Path, ro_binds: list[tuple[Path, str]]) -> list[Mount]:
    mounts = [Mount("copy", SCRIPT_PATH, str(script))]
    for host_path, inside in ro_binds:
        if not inside.startswith("/") or ".." in inside.split("/"):
            raise ValueError(f"inside path must be absolute and normalised: {inside!r}")
        mounts.append(Mount("copy", inside, str(host_path)))
    return mounts


def root_bytes(mounts: list[Mount]) -> int:
    """Size of the root tmpfs: its mountpoints plus every copy (rounded up to pages)."""
    total = 1 << 20
    for m in mounts:
        if m.kind != "copy":
            continue
        paths = [m.source]
        if os.path.isdir(m.source):
            paths = [os.path.join(d, n) for d, dirs, files in os.walk(m.source) for n in dirs + files]
        for path in paths:
            total += 4096 + (-(-os.lstat(path).st_size // 4096) * 4096)
    return total


def sandbox_environment() -> dict[str, str]:
    """The complete environment of the sandboxed Python."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": TMP_DIR,
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMEXPR_NUM_THREADS": "1",
        "VECLIB_MAXIMUM_THREADS": "1",
        "MPLBACKEND": "Agg",
    }
