"""`Sandbox`: one worker slot (own host uid, own cgroup, optional zygote) that runs Python isolated."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import stat
import tempfile
import threading
from pathlib import Path
from typing import Self

from . import bwrap_backend
from .backend import ExitInfo, Job, Started
from .cgroups import SlotCgroup
from .cleanup import kill_uid, remove_tree, wait_released
from .errors import BackendUnavailable, ResultFileError
from .layout import OUT_DIR, TMP_DIR, batch_mounts, find_runtime, job_mounts
from .limits import Limits
from .result import RunFacts, RunResult, classify
from .result_files import read_result_file
from .seccomp_filter import build_seccomp_bpf
from .supervise import watch
from .zygote import Batch, Zygote, ZygoteError

logger = logging.getLogger(__name__)

SLOT_UID_BASE = 60000
SLOT_LOCK_DIR = Path("/run/grader-sandbox")
RELEASE_TIMEOUT = 10.0   # the longest a slot waits for its last run's zombies to be reaped


class SlotBusy(RuntimeError):
    """Another Sandbox (in this or another process) holds the slot: its uid and cgroup are in use."""


def _lock_slot(slot: int) -> int:
    """Hold an exclusive lock for the slot for this object's lifetime (two owners would kill each
    other's runs: same uid, same cgroup)."""
    lock_dir = SLOT_LOCK_DIR if os.access("/run", os.W_OK) else Path(tempfile.gettempdir())
    lock_dir.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(lock_dir / f"slot{slot}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SlotBusy(f"sandbox slot {slot} is already in use by another Sandbox") from None
    return fd


def _others_can_traverse(path: Path) -> bool:
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in (path.resolve(), *path.resolve().parents))


ALLOWED_PACKAGES = ("numpy", "scipy")


class Sandbox:
    """One worker slot: own host uid (60000 + slot), own cgroup. Thread-safe to use different Sandbox
    objects from different threads concurrently; one run at a time per Sandbox (runs are serialised).

    Files given as `script` and in `ro_binds` must be readable by others (mode o+r, directories o+x):
    their parent directories need not be, since they are bound in by root. `out_dir` is chowned to the
    slot uid for the run."""

    def __init__(self, slot: int, limits: Limits = Limits(), *, zygote: bool = True,
                 preload: tuple[str, ...] = ("numpy", "scipy", "scipy.special"),
                 scratch_dir: Path | None = None) -> None:
        """SCRATCH_DIR: where the slot's host-side folders go (its stage mountpoint, and each run's /out
        without the zygote); the system temp directory when None."""
        if os.geteuid() != 0:
            raise BackendUnavailable("the sandbox must be started as root to drop to per-slot uids")
        bwrap = bwrap_backend.find_bwrap()
        if bwrap is None:
            raise BackendUnavailable("bubblewrap (bwrap) is not installed")
        if not 0 <= slot < 5000:
            raise ValueError("slot must be in 0..4999")
        if scratch_dir is not None and not zygote and not _others_can_traverse(Path(scratch_dir)):
            raise ValueError(f"without the zygote, bwrap runs as the slot uid and must reach {scratch_dir}")
        self._lock_fd = _lock_slot(slot)
        self.slot = slot
        self.limits = limits
        self.uid = self.gid = SLOT_UID_BASE + slot
        self._bwrap = bwrap
        self._preload = preload
        self._lock = threading.Lock()
        self._runtime = find_runtime(ALLOWED_PACKAGES)
        self._cgroup = SlotCgroup.create(slot)
        if self._cgroup is None:
            logger.warning("slot %d: no writable cgroup; total memory is bounded only by rlimits, "
                           "sized tmpfs and a memfd ban", slot)
        self._bpf = build_seccomp_bpf(deny_memfd=self._cgroup is None)
        self._scratch_dir = scratch_dir
        self._stage = tempfile.mkdtemp(prefix=f"sandbox-slot{slot}-", dir=scratch_dir)
        self._zygote: Zygote | None = None
        kill_uid(self.uid)
        if zygote:
            self._zygote = self._new_zygote()

    @property
    def backend_name(self) -> str:
        kind = "zygote" if self._zygote else "bwrap"
        return f"{kind}+{self._cgroup.name if self._cgroup else 'rlimits'}"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the zygote and remove the slot's scratch mountpoint."""
        with self._lock:
            if self._zygote is not None:
                self._zygote.close()
                self._zygote = None
            shutil.rmtree(self._stage, ignore_errors=True)
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = -1

    def run_python(self, script: Path, args: list[str], *, ro_binds: list[tuple[Path, str]],
                   out_dir: Path, limits: Limits | None = None) -> RunResult:
        """Run `python -I -B <script> *args` isolated. The script is visible read-only at
        /sandbox/run.py (its sys.argv[0]); each (host_path, inside_path) in ro_binds is visible
        read-only at inside_path; out_dir is visible writable at /out. Besides /out only the private,
        size-capped /tmp and /dev/shm are writable. cwd = /tmp. The environment is empty except PATH,
        HOME=/tmp, single-threaded BLAS variables and PYTHONDONTWRITEBYTECODE=1."""
        limits = limits or self.limits
        with self._lock:
            return self._run(Path(script), list(args), ro_binds, Path(out_dir), limits)

    def _prepare_out_dir(self, out_dir: Path) -> None:
        info = os.lstat(out_dir)
        if not stat.S_ISDIR(info.st_mode):
            raise ValueError(f"out_dir is not a directory: {out_dir}")
        os.chown(out_dir, self.uid, self.gid)
        os.chmod(out_dir, 0o700)

    def _run(self, script: Path, args: list[str], ro_binds: list[tuple[Path, str]], out_dir: Path,
             limits: Limits) -> RunResult:
        if not script.is_file():
            raise ValueError(f"script is not a file: {script}")
        self._prepare_out_dir(out_dir)
        self._clean_up()
        self._wait_released()
        oom_before = 0
        if self._cgroup is not None:
            self._cgroup.prepare(limits.memory_bytes, limits.max_processes)
            oom_before = self._cgroup.oom_kills()
        rlimits = limits.rlimits()
        # RLIMIT_NPROC counts the uid's processes: leave room for our own helpers running as the slot
        # uid (bwrap and its reaper, or the zygote child's init), so the script gets max_processes.
        helpers = 1 if self._zygote is not None else 2
        rlimits["RLIMIT_NPROC"] = (limits.max_processes + helpers,) * 2
        job = Job(
            runtime=self._runtime,
            job_mounts=job_mounts(script=script.resolve(), ro_binds=[(p.resolve(), i) for p, i in ro_binds],
                                  out_dir=out_dir.resolve(), tmp_bytes=limits.tmp_bytes,
                                  shm_bytes=limits.shm_bytes),
            args=args, rlimits=rlimits, uid=self.uid, gid=self.gid, stage=self._stage,
            cgroup_procs=self._cgroup.procs_files() if self._cgroup else [],
        )
        try:
            started = self._start(job)
        except (ZygoteError, OSError) as exc:
            logger.error("slot %d: could not start a run: %s", self.slot, exc)
            return self._result(RunFacts(setup_error=str(exc)), limits, "", "", 0.0)

        def kill_everything() -> None:
            started.kill()
            self._clean_up()

        watched = watch(stdout_fd=started.stdout_fd, stderr_fd=started.stderr_fd, exit_fd=started.exit_fd,
                        limits=limits, cgroup=self._cgroup, kill=kill_everything)
        info: ExitInfo = started.finish()
        self._clean_up()
        oom = self._cgroup is not None and self._cgroup.oom_kills() > oom_before
        cpu = (self._cgroup.cpu_seconds() if self._cgroup else None) or info.cpu_seconds or 0.0
        stderr = watched.stderr.text()
        setup_error = info.setup_error
        if setup_error and (watched.killed_for or oom) and not setup_error.startswith("launcher"):
            setup_error = None  # we (or the OOM killer) killed it before it could report
        if setup_error:
            logger.error("slot %d: sandbox setup failed: %s; stderr: %s", self.slot, setup_error, stderr[-500:])
        facts = RunFacts(returncode=info.returncode, signal=info.signal, killed_for=watched.killed_for,
                         oom_killed=oom, cpu_seconds=cpu, stderr_tail=stderr[-4096:], setup_error=setup_error)
        return self._result(facts, limits, watched.stdout.text(), stderr, watched.wall_seconds)

    def run_batch(self, script: Path, tasks: list[list[str]], *, ro_binds: list[tuple[Path, str]],
                  read_back: tuple[str, ...] | dict[str, int], limits: Limits | None = None,
                  setup_args: list[str] | None = None,
                  task_limits: list[Limits | None] | None = None) -> list[RunResult]:
        """Run TASKS (argument lists) one after another in ONE sandbox: the namespaces, the root and
        the script's top level are set up once; each task is a fresh process of the slot uid that
        calls the script's `main(args)`, with its own limits (CPU, wall, memory, processes, output),
        fresh /tmp, /dev/shm and /out, and nothing left of the task before it. Each task's /out is
        a tmpfs of `limits.out_bytes`; the files named in READ_BACK come back in `RunResult.files`
        (or a reason in `file_errors`), each read up to `limits.out_bytes` or the cap READ_BACK
        gives it ({name: max bytes}), so a file larger than its cap is never held in memory. The script's top level is trusted: it runs once, before any
        task, in the sandbox's (root) init, so it must only define things. Without the zygote each
        task is a separate `run_python`. With SETUP_ARGS, the init also calls the script's
        `setup(setup_args)` once before the first task (trusted too: it may read the ro_binds the
        caller wrote, never anything a task or handin controls), and every task inherits its work.
        TASK_LIMITS, one entry per task (None: LIMITS), bound each task's CPU, wall clock, memory,
        processes and output on its own; the sandbox's /tmp, /dev/shm and /out sizes are LIMITS'."""
        limits = limits or self.limits
        per_task = [(task_limits[i] if task_limits and task_limits[i] else limits) for i in range(len(tasks))]
        with self._lock:
            if self._zygote is None:
                return [self._run_with_host_out(Path(script), args, ro_binds, read_back, task)
                        for args, task in zip(tasks, per_task)]
            results: list[RunResult] = []
            while len(results) < len(tasks):
                try:
                    batch = self._open_batch(Path(script), ro_binds, limits, setup_args)
                except (ZygoteError, OSError) as exc:  # before any task code ran: ours
                    logger.error("slot %d: could not start a batch: %s", self.slot, exc)
                    failed = self._result(RunFacts(setup_error=str(exc)), limits, "", "", 0.0)
                    return results + [failed] * (len(tasks) - len(results))
                try:
                    first = len(results)
                    while len(results) < len(tasks):
                        index = len(results)
                        result = self._run_task(batch, index, tasks[index], read_back, per_task[index])
                        if result.outcome == "sandbox_error" and len(results) > first:
                            break  # an earlier task may have wedged this sandbox: retry in a fresh one
                        results.append(result)
                        if batch.lost:
                            break  # the task took its sandbox down: a fresh one for the rest
                finally:
                    batch.close()
                    self._clean_up()
            return results

    def _open_batch(self, script: Path, ro_binds: list[tuple[Path, str]], limits: Limits,
                    setup_args: list[str] | None) -> Batch:
        if not script.is_file():
            raise ValueError(f"script is not a file: {script}")
        self._clean_up()
        if self._cgroup is not None:
            self._cgroup.prepare(limits.memory_bytes, limits.max_processes)
        job = Job(
            runtime=self._runtime,
            job_mounts=batch_mounts(script=script.resolve(), ro_binds=[(Path(p).resolve(), i) for p, i in ro_binds],
                                    tmp_bytes=limits.tmp_bytes, shm_bytes=limits.shm_bytes,
                                    out_bytes=limits.out_bytes),
            args=[], rlimits=limits.rlimits(), uid=self.uid, gid=self.gid, stage=self._stage,
            cgroup_procs=self._cgroup.procs_files() if self._cgroup else [],
        )
        scratch = [(TMP_DIR, limits.tmp_bytes, 0o1777, None), ("/dev/shm", limits.shm_bytes, 0o1777, None),
                   (OUT_DIR, limits.out_bytes, 0o700, limits.out_files)]
        assert self._zygote is not None
        if not self._zygote.alive:
            self._restart_zygote("zygote is not running")
        try:
            return self._zygote.start_batch(job, scratch, setup_args)
        except ZygoteError as exc:
            self._restart_zygote(str(exc))
            return self._zygote.start_batch(job, scratch, setup_args)

    def _run_task(self, batch: Batch, index: int, args: list[str], read_back: tuple[str, ...],
                  limits: Limits) -> RunResult:
        oom_before = 0
        if self._cgroup is not None:
            self._cgroup.prepare(limits.memory_bytes, limits.max_processes)
            oom_before = self._cgroup.oom_kills()
        try:
            started = batch.start(index, args, limits.rlimits())
        except ZygoteError as exc:  # the task never started: ours
            logger.error("slot %d: task %d did not start: %s", self.slot, index, exc)
            batch.lost = True
            return self._result(RunFacts(setup_error=str(exc)), limits, "", "", 0.0)

        def kill_task() -> None:  # every process of the slot uid; the sandbox's init is root and stays
            kill_uid(self.uid, among=self._cgroup.pids if self._cgroup else None)

        watched = watch(stdout_fd=started.stdout_fd, stderr_fd=started.stderr_fd, exit_fd=started.exit_fd,
                        limits=limits, cgroup=self._cgroup, kill=kill_task)
        info = started.finish()
        kill_task()
        oom = self._cgroup is not None and self._cgroup.oom_kills() > oom_before
        cpu = (self._cgroup.cpu_seconds() if self._cgroup else None) or info.cpu_seconds or 0.0
        stderr = watched.stderr.text()
        facts = RunFacts(returncode=info.returncode, signal=info.signal, killed_for=watched.killed_for,
                         oom_killed=oom, cpu_seconds=cpu, stderr_tail=stderr[-4096:])
        result = self._result(facts, limits, watched.stdout.text(), stderr, watched.wall_seconds)
        if not batch.lost:
            self._read_back(Path(batch.out_path()), read_back, limits, result)
        return result

    def _read_back(self, out: Path, names: tuple[str, ...] | dict[str, int], limits: Limits,
                   result: RunResult) -> None:
        caps = names if isinstance(names, dict) else dict.fromkeys(names, limits.out_bytes)
        for name, cap in caps.items():
            try:
                result.files[name] = read_result_file(out / name, min(cap, limits.out_bytes))
            except ResultFileError as exc:
                result.file_errors[name] = str(exc)

    def _run_with_host_out(self, script: Path, args: list[str], ro_binds: list[tuple[Path, str]],
                           read_back: tuple[str, ...] | dict[str, int], limits: Limits) -> RunResult:
        """A batch task on the plain bwrap path: its own sandbox, /out a private host folder."""
        out = Path(tempfile.mkdtemp(prefix=f"sandbox-slot{self.slot}-out-", dir=self._scratch_dir))
        try:
            result = self._run(script, list(args), ro_binds, out, limits)
            self._read_back(out, read_back, limits, result)
            return result
        finally:
            remove_tree(out)

    def _restart_zygote(self, reason: str) -> None:
        logger.warning("slot %d: restarting the zygote (%s)", self.slot, reason)
        if self._zygote is not None:
            self._zygote.close()
        self._zygote = self._new_zygote()

    def _new_zygote(self) -> Zygote:
        return Zygote(self._runtime, self._stage, self._bpf, self._preload,
                      cgroup_procs=self._cgroup.procs_files() if self._cgroup else [])

    def _start(self, job: Job) -> Started:
        if self._zygote is None:
            return bwrap_backend.start(self._bwrap, job, self._bpf)
        try:
            if not self._zygote.alive:
                raise ZygoteError("zygote is not running")
            return self._zygote.start(job)
        except ZygoteError as exc:
            self._restart_zygote(str(exc))
            return self._zygote.start(job)

    def _clean_up(self) -> None:
        """Kill every process of this slot, whatever it did to hide. Every process a run starts is in
        the slot's cgroup and nothing inside can leave it, so with a cgroup only its few pids are
        looked at (scanning all of /proc cost ~90 ms on a busy host); without one, the whole uid. The
        zygote sits in the cgroup too (its children are born there) and is the one process spared.
        The constructor scans the whole uid once, for what a crashed service left behind."""
        if self._cgroup is not None:
            self._cgroup.kill_all(spare=self._zygote.proc.pid if self._zygote else None)
            kill_uid(self.uid, among=self._cgroup.pids)
        else:
            kill_uid(self.uid)

    def _wait_released(self) -> None:
        """Before a run: until the last one's processes are not only dead but reaped, so it starts
        with the whole process budget (cleanup.wait_released). The zygote reaps its runs itself;
        a bwrap run's init can end a zombie of the host's init."""
        if self._zygote is None:
            wait_released(self.uid, RELEASE_TIMEOUT, self._cgroup.tasks if self._cgroup else None)

    def _result(self, facts: RunFacts, limits: Limits, stdout: str, stderr: str, wall: float) -> RunResult:
        outcome, message = classify(facts, limits)
        return RunResult(outcome=outcome, returncode=facts.returncode, signal=facts.signal, stdout=stdout,
                         stderr=stderr, wall_seconds=wall, cpu_seconds=facts.cpu_seconds, message=message)
