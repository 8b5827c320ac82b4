"""Grade real public HW2P1 (CNN) handins with the official local autograder of their semester and with ours.

    .venv/bin/python bench/real_handins_hw2p1.py [--manifest bench/real_handins_hw2p1.toml]
                                                 [--mirrors DIR] [--workdir DIR] [--only ID ...]
                                                 [--json OUT] [--from-json OUT] [--official-only]

The HW2P1 counterpart of bench/real_handins.py, whose materialisation (`extract`) and whose reading
of `grader grade --json` (`run_ours`) it shares. Run on purpose, never in CI: the manifest's public
repositories must already be fetched as bare snapshots under --mirrors, and the official script
imports PyTorch. No student or course code is stored here; the manifest names repository, commit
and folder of each handin and of each semester's official autograder.

HW2P1 handouts changed layout over the semesters, so the manifest has one [official.KEY] table per
handout generation and every handin names its generation (`handout = KEY`):
- F25/S26: mytorch/nn/{resampling,Conv1d,Conv2d,ConvTranspose,pool}.py, mytorch/flatten.py,
  models/{mlp_scan,cnn}.py, autograder/runner.py with autograder/hw2p1_autograder_flags.py;
- S24/F24/S25: the same files, the same 17 tests, no flags file;
- F23: mytorch/{resampling,Conv1d,...}.py without nn/, MCQ/mcq.py, padding in Conv1d/Conv2d and a
  backward check of the scanning MLPs;
- S23: as F23 without padding and without the scanning backward.

Each official runner (`python autograder/runner.py` from the handout root) imports every student
module by bare name at its top (sys.path gets mytorch/, mytorch/nn/, models/ appended relative to the
working directory) and then runs its `tests` list, catching each test's exception. The handout root
is put on sys.path as `PYTHONPATH=.` would, so handins that import `mytorch.nn.X` as a package are
not failed for that alone (the handout's own files import by bare name). Here the runner
is executed as a module (not __main__, so it builds `tests` and runs none), and each section calls
only its own test's handler in its own forked process with a time limit. When the runner's top-level
imports fail (a syntax error in one file, flatten.py in the wrong folder) the section still runs:
every module that imports is loaded by itself, the others become empty modules, and the row is
marked `*`. The column `shipped` is the runner as shipped (`__main__`, all tests, all flags on),
where such an import failure scores nothing at all. The official side runs under bubblewrap with no
network and a read-only file system except the handin's run directory.

The snapshots lack each handout's three largest expected-value files (ref_result/upsample_2d_res.npz,
convTranspose_2d_res.npz, maxpool2d_stride1_res.npz). They are rebuilt once per generation by running
the very test that reads each file on the trusted reference (mytorch_reference_hw2/, checked against
PyTorch): the runner seeds its own inputs, so the expected values are the reference's outputs on
them. Rebuilding the files that are present the same way reproduces them (downsample_2d_res.npz,
convTranspose_1d_res.npz, maxpool2d_res.npz in the F25, F23 and S23 generations, all close).

Ours is `grader grade DIR --suite hw2p1 --json` through the real sandbox, exactly as a TA would run
it. The table shows, per handin and section, official/ours (P passed, F failed, ! they differ), then
the totals and every disagreement with the verdict recorded in the manifest.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_handins import GRADER, extract, git_dir, load_manifest, run_ours

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MANIFEST = ROOT / "bench" / "real_handins_hw2p1.toml"
REFERENCE = ROOT / "mytorch_reference_hw2"
SUITE = "hw2p1"

# The 17 tests of every generation's runner (our label, the runner's `autolab` name), each run in
# its own process. The MCQ tests of F23/S23 are not part of the CNN homework graded here.
SECTIONS = {
    "Down1": "Downsampling1d", "Up1": "Upsampling1d", "Down2": "Downsampling2d", "Up2": "Upsampling2d",
    "C1s1": "Conv1d_stride1", "C1": "Conv1d", "C2s1": "Conv2d_stride1", "C2": "Conv2d",
    "CT1": "convTranspose1d", "CT2": "convTranspose2d",
    "MPs1": "MaxPool2d_stride1", "MP": "MaxPool2d", "APs1": "MeanPool2d_stride1", "AP": "MeanPool2d",
    "Scan": "CNN as Simple Scanning MLP", "Dist": "CNN as Distributed Scanning MLP",
    "CNN": "Build a CNN Model",
}
POINTS = {"Down1": 2.5, "Up1": 2.5, "Down2": 2.5, "Up2": 2.5, "C1s1": 10, "C1": 5, "C2s1": 10, "C2": 5,
          "CT1": 5, "CT2": 5, "MPs1": 10, "MP": 5, "APs1": 10, "AP": 5, "Scan": 5, "Dist": 10, "CNN": 5}
# Module names the runners import by bare name at their top, in their order, and the folders they
# append to sys.path (relative to the handout root) before doing so.
RUNNER_MODULES = ["flatten", "pool", "resampling", "ConvTranspose", "Conv2d", "Conv1d", "linear",
                  "activation", "loss", "mcq", "mlp_scan", "cnn"]
RUNNER_PATHS = ["mytorch", "mytorch/nn", "MCQ", "models"]
FLAGS = "hw2p1_autograder_flags"
PACKAGES = ("models", "mytorch", "MCQ")


def _key(name: str) -> str:
    """Section names compared without case, spaces or punctuation ("Conv2d-stride1" == "Conv2d_stride1")."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


# The compared sections: ours (grader/suites/hw2p1.py), each with the official tests it stands for.
# Our points are whole numbers, so the four 2.5-point resampling tests are two 5-point sections; such
# a section passes officially when all of its official tests pass.
COMPARED = {
    "Resampling 1d": ["Down1", "Up1"], "Resampling 2d": ["Down2", "Up2"],
    "Conv1d_stride1": ["C1s1"], "Conv1d": ["C1"], "Conv2d_stride1": ["C2s1"], "Conv2d": ["C2"],
    "convTranspose1d": ["CT1"], "convTranspose2d": ["CT2"],
    "MaxPool2d_stride1": ["MPs1"], "MaxPool2d": ["MP"], "MeanPool2d_stride1": ["APs1"], "MeanPool2d": ["AP"],
    "CNN as Simple Scanning MLP": ["Scan"], "CNN as Distributed Scanning MLP": ["Dist"],
    "Build a CNN Model": ["CNN"],
}
SHORT = {"Resampling 1d": "Res1", "Resampling 2d": "Res2", "Conv1d_stride1": "C1s1", "Conv1d": "C1",
         "Conv2d_stride1": "C2s1", "Conv2d": "C2", "convTranspose1d": "CT1", "convTranspose2d": "CT2",
         "MaxPool2d_stride1": "MPs1", "MaxPool2d": "MP", "MeanPool2d_stride1": "APs1", "MeanPool2d": "AP",
         "CNN as Simple Scanning MLP": "Scan", "CNN as Distributed Scanning MLP": "Dist",
         "Build a CNN Model": "CNN"}


def official_passed(off: dict, section: str) -> bool | None:
    results = [off["sections"][label].get("passed") for label in COMPARED[section]]
    return None if None in results else all(results)


# ----------------------------------------------------------------------------------------------
# The official runner, one section per forked process (this part runs inside bubblewrap)

def _purge_handin_modules(rundir: Path) -> None:
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", "") or "").startswith(str(rundir)) or name == "mytorch" \
                or name.startswith(("mytorch.", "models.")):
            del sys.modules[name]


def _load_runner(rundir: Path, isolate: bool) -> tuple[dict, list[str]]:
    """The runner's namespace (its `tests` built, none run); with `isolate`, broken modules emptied first."""
    import importlib
    import runpy
    import types

    problems: list[str] = []
    if isolate:
        saved = list(sys.path)
        sys.path.extend(str(rundir / p) for p in RUNNER_PATHS)
        for name in RUNNER_MODULES:
            try:
                importlib.import_module(name)
            except BaseException as exc:  # noqa: BLE001 - any import failure is the handin's
                if name == "mcq" and isinstance(exc, ModuleNotFoundError) and exc.name == "mcq":
                    pass  # generations without MCQ never import it
                else:
                    problems.append(f"{name}: {type(exc).__name__}: {exc}"[:200])
                sys.modules[name] = types.ModuleType(name)
        sys.path[:] = saved
    namespace = runpy.run_path(str(rundir / "autograder" / "runner.py"), run_name="hw2p1_official_runner")
    return namespace, problems


def _run_official_section(rundir: Path, autolab: str) -> dict:
    import traceback

    try:
        namespace, problems = _load_runner(rundir, isolate=False)
    except BaseException as exc:  # noqa: BLE001 - the runner's top-level imports failed
        first = f"runner import: {type(exc).__name__}: {exc}"[:200]
        _purge_handin_modules(rundir)
        namespace, problems = _load_runner(rundir, isolate=True)
        problems.insert(0, first)
    tests = {_key(t["autolab"]): t for t in namespace["tests"]}
    test = tests.get(_key(autolab))
    if test is None:
        return {"passed": None, "error": f"the runner has no test {autolab!r}", "patched": problems}
    try:
        passed = bool(test["handler"]())
        error = None if passed else "the test returned False (see its log)"
    except BaseException as exc:  # noqa: BLE001 - run_tests counts an exception as a failed test
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if str(rundir) in f.filename]
        where = f" at {Path(frames[-1].filename).relative_to(rundir)}:{frames[-1].lineno}" if frames else ""
        passed, error = False, f"{type(exc).__name__}: {exc}"[:240] + where
    return {"passed": passed, "error": error, "patched": problems}


def _run_as_shipped(rundir: Path, log: Path) -> dict:
    """`python autograder/runner.py`, all tests; the scores are the JSON line its run_tests prints."""
    import runpy

    try:
        runpy.run_path(str(rundir / "autograder" / "runner.py"), run_name="__main__")
    except BaseException as exc:  # noqa: BLE001 - a top-level import failure ends the script
        return {"scores": None, "error": f"{type(exc).__name__}: {exc}"[:240]}
    finally:
        sys.stdout.flush()
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith('{"scores"'):
            return {"scores": json.loads(line)["scores"], "error": None}
    return {"scores": None, "error": "no summary line printed"}


def _fork_run(rundir: Path, label: str, job, timeout: float) -> dict:
    """job() in a forked child with its output in official-LABEL.log; its result travels by file.

    Some tests open a multiprocessing.Pool they never close, whose workers inherit every descriptor,
    so the child's end is seen by its exit and the result file, never by a pipe's EOF; the child's
    whole process group is killed afterwards.
    """
    log = rundir / f"official-{label}.log"
    out = rundir / f".result-{label}.json"
    out.unlink(missing_ok=True)
    pid = os.fork()
    if pid == 0:  # the child: student code runs here only
        os.setpgid(0, 0)
        fd = os.open(str(log), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        try:
            result = job()
        except BaseException as exc:  # noqa: BLE001
            result = {"passed": False, "error": f"harness: {exc!r}"[:240], "patched": []}
        sys.stdout.flush()
        sys.stderr.flush()
        out.write_text(json.dumps(result, default=str))
        os._exit(0)
    deadline, finished = time.monotonic() + timeout, False
    while not finished and time.monotonic() < deadline:
        finished = os.waitpid(pid, os.WNOHANG)[0] == pid
        time.sleep(0 if finished else 0.05)
    try:
        os.killpg(pid, signal.SIGKILL)  # the child if it ran out of time, and any pool it left behind
    except ProcessLookupError:
        pass
    if not finished:
        os.waitpid(pid, 0)
        return {"passed": False, "error": f"time limit ({timeout:.0f} s)", "patched": []}
    try:
        return json.loads(out.read_text())
    except (OSError, ValueError):
        return {"passed": False, "error": "the section's process died", "patched": []}


def official_inside(rundir: Path, timeout: float) -> dict:
    """Runs inside the bubblewrap: torch imported once, then one fork per section and one as shipped."""
    import numpy  # noqa: F401 - imported before forking so each section pays nothing for it
    import torch
    torch.set_num_threads(1)
    # as `PYTHONPATH=. python autograder/runner.py` sees it: the script's folder first, then the handout
    # root (some handins import `mytorch.nn.X` as a package where the handout's files use bare names;
    # without the root on the path the script could not even import those)
    sys.path[:] = [str(rundir / "autograder"), str(rundir)] + [p for p in sys.path if p not in ("", ".", str(rundir))]
    os.chdir(rundir)
    results = {label: _fork_run(rundir, label, lambda name=name: _run_official_section(rundir, name), timeout)
               for label, name in SECTIONS.items()}
    shipped = _fork_run(rundir, "as-shipped",
                        lambda: _run_as_shipped(rundir, rundir / "official-as-shipped.log"), timeout * 4)
    return {"sections": results, "as_shipped": shipped}


def run_official(handin: Path, autograder: Path, workdir: Path, timeout: float) -> dict:
    rundir = Path(tempfile.mkdtemp(prefix="official-", dir=workdir))
    shutil.copytree(handin, rundir, dirs_exist_ok=True)
    shutil.copytree(autograder, rundir / "autograder", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if f"from {FLAGS} import" in (rundir / "autograder" / "runner.py").read_text(errors="replace"):
        # every test built; the handin's or the official repository's own flag choices do not matter
        flags = re.findall(r"^(DEBUG_AND_GRADE_\w+_flag)\s*=", (autograder / f"{FLAGS}.py").read_text(), re.MULTILINE)
        (rundir / "autograder" / f"{FLAGS}.py").write_text("".join(f"{f} = True\n" for f in flags))
    argv = [sys.executable, "-B", str(Path(__file__).resolve()), "--_official-inside", str(rundir),
            "--timeout", str(timeout)]
    if shutil.which("bwrap"):
        argv = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                "--bind", str(rundir), str(rundir), "--unshare-all", "--die-with-parent",
                "--new-session", "--chdir", str(rundir), *argv]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout * 25 + 60,
                          check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"official harness failed ({proc.returncode}): {proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["rundir"] = str(rundir)
    return result


# ----------------------------------------------------------------------------------------------
# The official autograder folder, and the expected values the snapshots lack

def extract_official(mirrors: Path, cfg: dict, dest: Path) -> list[str]:
    """autograder/ of an official handout, file by file; returns the files whose blobs are absent.

    The snapshots leave out a repository's largest blobs; in every HW2P1 handout those are the same
    three expected-value files (ref_result/upsample_2d_res.npz, convTranspose_2d_res.npz,
    maxpool2d_stride1_res.npz) and the unused updownsample_2d_res.npz.
    """
    git = str(git_dir(mirrors, cfg["repo"]))
    prefix = f"{cfg.get('folder', '').strip('/')}/autograder/".lstrip("/")
    listing = subprocess.run(["git", "--git-dir", git, "ls-tree", "-r", "-z", cfg["commit"], prefix],
                             capture_output=True, text=True, check=True).stdout
    missing = []
    for record in filter(None, listing.split("\0")):
        meta, path = record.split("\t", 1)
        name = path[len(prefix):]
        if "__pycache__" in name or name.endswith(".pyc") or name.rsplit("/", 1)[-1].startswith((".", "._")):
            continue
        blob = subprocess.run(["git", "--git-dir", git, "cat-file", "blob", meta.split()[2]],
                              capture_output=True, check=False)
        if blob.returncode:
            missing.append(name)
            continue
        target = dest / "autograder" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob.stdout)
    return missing


class _Recorded(dict):
    """What a runner's test loads from an absent expected-value file: its own arrays, saved as expected."""

    def __init__(self, path: str, saved: dict):
        super().__init__()
        self.path, self.saved = path, saved

    def __getitem__(self, key: str):
        frame = sys._getframe(1)
        value = frame.f_locals["ep_bres_arr" if "backward" in key else "ep_fres_arr"]
        self.saved.setdefault(self.path, {})[key] = value
        return value


def reconstruct_expected(autograder: Path, missing: list[str], timeout: float) -> list[str]:
    """Write each absent ref_result/*.npz by running the very test that reads it on the trusted reference.

    The runner seeds its inputs itself, so the expected values are the reference's outputs on those
    inputs (the reference is checked against PyTorch in tests/reference/). Each generation's files are
    rebuilt with that generation's own test. Returns what was rebuilt.
    """
    wanted = [m for m in missing if m.startswith("ref_result/") and m.endswith(".npz")]
    if not wanted:
        return []
    work = Path(tempfile.mkdtemp(prefix="reconstruct-"))
    shutil.copytree(REFERENCE, work, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(autograder, work / "autograder")
    flags_file = work / "autograder" / f"{FLAGS}.py"
    if flags_file.exists():
        flags = re.findall(r"^(DEBUG_AND_GRADE_\w+_flag)\s*=", flags_file.read_text(), re.MULTILINE)
        flags_file.write_text("".join(f"{f} = True\n" for f in flags))
    code = r"""
import json, os, runpy, sys, types
import numpy as np
root = sys.argv[1]; wanted = json.loads(sys.argv[2])
os.chdir(root)
sys.path[:0] = [os.path.join(root, "autograder"), root] + [os.path.join(root, p) for p in __PATHS__]
sys.modules.setdefault("mcq", types.ModuleType("mcq"))
sys.path.insert(0, __BENCH__)
from real_handins_hw2p1 import _Recorded
saved, real_load = {}, np.load
def load(path, *args, **kwargs):
    rel = os.path.relpath(os.path.abspath(path), os.path.join(root, "autograder"))
    return _Recorded(rel, saved) if rel in wanted else real_load(path, *args, **kwargs)
np.load = load
ns = runpy.run_path(os.path.join(root, "autograder", "runner.py"), run_name="reconstruct")
for test in ns["tests"]:
    try:
        test["handler"]()
    except Exception:
        pass
for rel, arrays in saved.items():
    np.savez(os.path.join(root, "autograder", rel), **arrays)
print(json.dumps(sorted(saved)))
""".replace("__PATHS__", repr(RUNNER_PATHS)).replace("__BENCH__", repr(str(Path(__file__).resolve().parent)))
    proc = subprocess.run([sys.executable, "-B", "-c", code, str(work), json.dumps(wanted)], capture_output=True,
                          text=True, timeout=timeout * 20, check=False,
                          env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    if proc.returncode:
        raise RuntimeError(f"rebuilding {wanted} failed: {proc.stderr[-1500:]}")
    rebuilt = json.loads(proc.stdout.strip().splitlines()[-1])
    for rel in rebuilt:
        shutil.copy(work / "autograder" / rel, autograder / rel)
    shutil.rmtree(work, ignore_errors=True)
    return rebuilt


# ----------------------------------------------------------------------------------------------
# Ours, and the comparison

def compare(manifest: dict, mirrors: Path, workdir: Path, only: set[str], timeout: float,
            reuse_official: bool, grader: Path, with_ours: bool):
    """Yields one row per handin as soon as both graders are done with it."""
    officials = {}
    for key, cfg in manifest["official"].items():
        dest = workdir / "official" / key.replace("/", "-")
        if not (dest / "autograder").exists():
            missing = extract_official(mirrors, cfg, dest)
            rebuilt = reconstruct_expected(dest / "autograder", missing, timeout)
            (dest / "missing.json").write_text(json.dumps({"missing": missing, "rebuilt": rebuilt}))
            print(f"  official {key}: absent from the snapshot {missing}; rebuilt from the reference {rebuilt}",
                  file=sys.stderr, flush=True)
        officials[key] = dest / "autograder"
    for entry in manifest["handin"]:
        if only and entry["id"] not in only:
            continue
        handin = workdir / "handins" / entry["id"]
        if not handin.exists():
            try:
                extract(mirrors, entry["repo"], entry["commit"], entry.get("folder", ""), handin, PACKAGES)
            except subprocess.CalledProcessError as exc:
                print(f"  skipped {entry['id']}: cannot extract it ({exc.stderr.decode()[:200].strip()})",
                      file=sys.stderr, flush=True)
                shutil.rmtree(handin, ignore_errors=True)
                continue
        # The official verdict depends only on the handin and the official script: kept between runs.
        cached = workdir / "official-results" / f"{entry['id']}-{entry['commit'][:12]}-{entry['handout'].replace('/', '-')}.json"
        started = time.monotonic()
        if cached.exists() and reuse_official:
            official = json.loads(cached.read_text())
        else:
            official = run_official(handin, officials[entry["handout"]], workdir, timeout)
            cached.parent.mkdir(exist_ok=True)
            cached.write_text(json.dumps(official))
        official_seconds = time.monotonic() - started
        started = time.monotonic()
        ours = run_ours(handin, grader, SUITE) if with_ours else {"error": None, "sections": {}, "score": None}
        ours_seconds = time.monotonic() - started
        yield {"entry": entry, "official": official, "ours": ours,
               "seconds": {"official": round(official_seconds, 2), "ours": round(ours_seconds, 2)}}
        print(f"  graded {entry['id']} (official {official_seconds:.1f} s, ours {ours_seconds:.1f} s)",
              file=sys.stderr, flush=True)


def _cell(official: bool | None, ours: bool | None) -> str:
    o = "-" if official is None else ("P" if official else "F")
    u = "-" if ours is None else ("P" if ours else "F")
    return f"{o}/{u}" + ("!" if ours is not None and official is not None and official != ours else " ")


def _official_total(off: dict) -> float:
    return sum(POINTS[label] for label, r in off["sections"].items() if r.get("passed"))


def report(rows: list[dict]) -> tuple[str, int]:
    """The table, the totals and every disagreement with its verdict; also the number that differ."""
    head = f"{'handin':<36} {'sem':<4} {'state':<8} " + " ".join(f"{SHORT[s]:<5}" for s in COMPARED) \
        + "  off  shipped  ours"
    lines = [head, "-" * len(head)]
    sections = agree = judged_right = 0
    handins_graded = handins_agreeing = handins_matching_verdicts = 0
    disagreements, unjudged, errors, unknown = [], 0, [], set()
    for row in rows:
        entry, off, ours = row["entry"], row["official"], row["ours"]
        patched = any(r.get("patched") for r in off["sections"].values())
        shipped = off["as_shipped"]
        shipped_total = "crash" if shipped.get("error") or shipped.get("scores") is None \
            else f"{sum(v for k, v in shipped['scores'].items() if not k.startswith('MCQ')):g}"
        ours_sections = {} if ours.get("error") else ours.get("sections", {})
        unknown |= set(ours_sections) - set(COMPARED)
        cells, row_differs, row_unexplained = [], False, False
        for name, labels in COMPARED.items():
            o = official_passed(off, name)
            u = ours_sections.get(name, {}).get("passed")
            cells.append(_cell(o, u))
            if u is None or o is None:
                continue
            sections += 1
            if o == u:
                agree += 1
                judged_right += 1
                continue
            row_differs = True
            verdict = entry.get("verdicts", {}).get(name, "")
            unjudged += not verdict
            if verdict and not verdict.startswith("OUR BUG"):
                judged_right += 1  # the difference is explained, and ours is the right one
            else:
                row_unexplained = True
            errs = [off["sections"][label].get("error") for label in labels]
            disagreements.append((entry["id"], name, o, u, verdict, "; ".join(e for e in errs if e),
                                  ours_sections[name].get("why", "")))
        if ours_sections:
            handins_graded += 1
            handins_agreeing += not row_differs
            handins_matching_verdicts += not row_unexplained
        ours_total = "error" if ours.get("error") else ("-" if ours.get("score") is None else f"{ours['score']:g}")
        if ours.get("error"):
            errors.append(f"- {entry['id']}: {ours['error'].get('code')}: {ours['error'].get('message')}")
        lines.append(f"{entry['id'] + ('*' if patched else ''):<36} {entry.get('semester', ''):<4} "
                     f"{entry.get('state', ''):<8} " + " ".join(f"{c:<5}" for c in cells)
                     + f"  {_official_total(off):>4g} {shipped_total:>7} {ours_total:>5}")
    lines += ["", ("official/ours per section: P passed, F failed, - not graded, ! they differ; * = the "
                   "runner's top-level imports fail on this handin, sections ran with the broken modules "
                   "emptied; off = official points section by section (F25 values); shipped = the runner "
                   "as shipped, MCQ left out (crash = no score at all)"), ""]
    lines.append(f"{len(rows)} handins; {handins_graded} graded by ours; {sections} sections compared: "
                 f"{agree} agree with the official script ({agree / max(sections, 1):.1%}), "
                 f"{judged_right} agree with the verdicts ({judged_right / max(sections, 1):.1%}), "
                 f"{sections - agree} differ ({unjudged} without a verdict in the manifest)")
    lines.append(f"handins: {handins_agreeing}/{handins_graded} agree with the official script on every "
                 f"section, {handins_matching_verdicts}/{handins_graded} agree with the verdicts on every section")
    if unknown:
        lines.append(f"our sections this bench does not know: {sorted(unknown)}")
    if errors:
        lines += ["", f"{len(errors)} handins our grader did not grade (not counted above):", *errors]
    if disagreements:
        lines += ["", "Disagreements:"]
        for hid, name, o, u, verdict, off_err, our_why in disagreements:
            lines.append(f"- {hid} / {name}: official {'PASS' if o else 'FAIL'}, ours {'PASS' if u else 'FAIL'}")
            lines.append(f"    verdict: {verdict or 'UNJUDGED'}")
            if not o and off_err:
                lines.append(f"    official: {off_err[:300]}")
            if not u and our_why:
                lines.append(f"    ours: {our_why}")
    return "\n".join(lines), sections - agree


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    parser.add_argument("--workdir", type=Path, default=None, help="kept afterwards (default: a temp dir)")
    parser.add_argument("--only", nargs="*", default=[])
    parser.add_argument("--timeout", type=float, default=120.0, help="per official section, seconds")
    parser.add_argument("--fresh-official", action="store_true",
                        help="rerun the official script even when --workdir holds its result for a handin")
    parser.add_argument("--official-only", action="store_true", help="do not run ours (before the suite exists)")
    parser.add_argument("--grader", type=Path, default=GRADER,
                        help="the `grader` command to compare (default: this tree's)")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--from-json", type=Path,
                        help="print the table again from a saved --json run, with the manifest's current verdicts")
    parser.add_argument("--_official-inside", dest="inside", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inside:
        print(json.dumps(official_inside(args.inside, args.timeout), default=str))
        return 0
    manifest = load_manifest(args.manifest)
    if args.from_json:
        entries = {e["id"]: e for e in manifest["handin"]}
        rows = [dict(row, entry=entries.get(row["entry"]["id"], row["entry"]))
                for row in json.loads(args.from_json.read_text())]
        print(report(rows)[0])
        return 0
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="real-handins-hw2p1-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for row in compare(manifest, args.mirrors, workdir, set(args.only), args.timeout, not args.fresh_official,
                       args.grader, not args.official_only):
        rows.append(row)
        if args.json:  # rewritten after every handin, so a long run can be read while it goes on
            args.json.write_text(json.dumps(rows, indent=1, default=str))
    text, _ = report(rows)
    for key, cfg in manifest["official"].items():
        print(f"official autograder {key}: {cfg['repo']}@{cfg['commit'][:10]}:"
              f"{(cfg.get('folder', '').strip('/') + '/autograder/runner.py').lstrip('/')} ({cfg.get('version', '')})")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
