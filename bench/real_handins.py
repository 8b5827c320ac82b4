"""Grade real public HW1P1 handins with the official local autograder and with ours, section by section.

    .venv/bin/python bench/real_handins.py [--manifest bench/real_handins.toml] [--mirrors DIR]
                                           [--only ID ...] [--json OUT] [--timing ID]

Run on purpose, never in CI: it needs the public repositories of the manifest already fetched as
bare git snapshots under --mirrors (default /work/.mirror, one `owner+name/repo` directory each,
as the search tool's `fetch` leaves them) and PyTorch (the official script imports it). No student
code is stored in this repository: the manifest names repository, commit and folder, and each
handin is materialised from the snapshot into a temporary directory (models/ and mytorch/ only,
bytecode dropped).

The official autograder (v3.0.1 as shipped with the F25/S26 handout, named in the manifest's
[official] table) stops at the first exception and imports every student module before its first
test, so one crash hides every other section. Here each section runs in its own forked process with
only that section's flags on (a synthetic `autograder.hw1p1_autograder_flags` module) and a time
limit; its score is the script's own SCORE_LOGS entry. When the script's top-level imports fail
(an S25 handin has no Swish, a syntax error in one file, a broken __init__.py) the section still
runs: the importable names are loaded file by file and the missing ones become stand-ins that raise
when used, and the row is marked with `*` (the script as shipped would score 0 everywhere; that
total is shown too). The official run happens under bubblewrap with no network and a read-only
file system except the handin's run directory.

Ours is `grader grade DIR --json` through the real sandbox, exactly as a TA would run it.
The table shows, per handin and section, official/ours (P = passed, F = failed, ! = they differ),
then the totals and every disagreement with the verdict recorded in the manifest.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MANIFEST = ROOT / "bench" / "real_handins.toml"
GRADER = Path(sys.executable).with_name("grader")

SECTIONS = {
    "Linear Layer": ["LINEAR"],
    "Activation": ["IDENTITY", "SIGMOID", "TANH", "RELU", "GELU", "Swish", "SOFTMAX"],
    "MLP0": ["MLP0"],
    "MLP1": ["MLP1"],
    "MLP4": ["MLP4"],
    "Loss": ["MSELOSS", "CROSSENTROPYLOSS"],
    "SGD": ["SGD", "SGD_momentum"],
    "Batch Norm": ["BATCHNORM"],
}
ALL_GROUPS = [group for groups in SECTIONS.values() for group in groups]
SHORT = {"Linear Layer": "Lin", "Activation": "Act", "MLP0": "M0", "MLP1": "M1", "MLP4": "M4",
         "Loss": "Loss", "SGD": "SGD", "Batch Norm": "BN"}
# What the official script imports by name at its top.
NEEDED = {
    "mytorch.nn": ["Identity", "Sigmoid", "Tanh", "ReLU", "GELU", "Swish", "Softmax",
                   "MSELoss", "CrossEntropyLoss", "Linear", "BatchNorm1d"],
    "mytorch.optim": ["SGD"],
    "models": ["MLP0", "MLP1", "MLP4"],
}
FILES = {"mytorch.nn": ["activation", "linear", "loss", "batchnorm"], "mytorch.optim": ["sgd"],
         "models": ["mlp"]}


# ----------------------------------------------------------------------------------------------
# Materialising handins from the fetched snapshots

def git_dir(mirrors: Path, repo: str) -> Path:
    base = mirrors / repo.replace("/", "+") / "repo"
    return base / ".git" if (base / ".git").is_dir() else base


def extract(mirrors: Path, repo: str, commit: str, folder: str, dest: Path,
            packages=("models", "mytorch")) -> None:
    """models/ and mytorch/ of `folder` at `commit`, without bytecode or macOS litter."""
    prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
    tree = subprocess.run(["git", "--git-dir", str(git_dir(mirrors, repo)), "ls-tree", "--name-only", commit,
                           prefix or "."], capture_output=True, text=True, check=True).stdout.splitlines()
    # a package the handin does not have (an HW2P1 handout without MCQ/) is simply absent
    paths = [prefix + p for p in packages if (prefix + p) in tree]
    archive = subprocess.run(["git", "--git-dir", str(git_dir(mirrors, repo)), "archive", "--format=tar",
                              commit, *paths], capture_output=True, check=True).stdout
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            name = member.name[len(prefix):]
            parts = name.split("/")
            if (not member.isfile() and not member.isdir()) or "__pycache__" in parts \
                    or name.endswith(".pyc") or parts[-1].startswith("._") or parts[-1] == ".DS_Store":
                continue
            target = dest / name
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(member).read())


# ----------------------------------------------------------------------------------------------
# The official autograder, one section per forked process (this part runs inside bubblewrap)

def _stand_in(name: str, why: str):
    def fail(*args, **kwargs):
        raise ImportError(f"{name} could not be imported from the handin ({why})")
    return type(name, (), {"__init__": fail})


def _isolate_imports(rundir: Path) -> list[str]:
    """Make the script's top-level imports succeed whatever the handin's packages do; say what was patched."""
    import importlib
    import types

    problems: list[str] = []
    try:
        modules = {name: importlib.import_module(name) for name in NEEDED}
    except BaseException as exc:  # noqa: BLE001 - any import failure is the handin's
        problems.append(f"import: {type(exc).__name__}: {exc}")
        for key in [k for k in sys.modules if k.split(".")[0] in ("mytorch", "models")]:
            del sys.modules[key]
        modules = {}
        for package in ("mytorch", "mytorch.nn", "mytorch.optim", "models"):
            module = types.ModuleType(package)
            module.__path__ = [str(rundir / package.replace(".", "/"))]
            sys.modules[package] = module
            if "." in package:
                parent, child = package.rsplit(".", 1)
                setattr(sys.modules[parent], child, module)
            modules[package] = module
        for package, files in FILES.items():
            for file in files:
                try:
                    sub = importlib.import_module(f"{package}.{file}")
                except BaseException as exc:  # noqa: BLE001
                    problems.append(f"{package}.{file}: {type(exc).__name__}: {exc}")
                    continue
                for name in NEEDED[package]:
                    if hasattr(sub, name) and not hasattr(modules[package], name):
                        setattr(modules[package], name, getattr(sub, name))
    for package, names in NEEDED.items():
        for name in names:
            if not hasattr(modules[package], name):
                problems.append(f"{package}.{name} missing")
                setattr(modules[package], name, _stand_in(name, "missing"))
    return problems


def _run_official_section(rundir: Path, flags_on: list[str], key: str | None, isolate: bool) -> dict:
    import runpy
    import traceback
    import types

    os.chdir(rundir)
    sys.path.insert(0, str(rundir))
    package = types.ModuleType("autograder")
    package.__path__ = [str(rundir / "autograder")]
    flags = types.ModuleType("autograder.hw1p1_autograder_flags")
    for group in ALL_GROUPS:
        setattr(flags, f"DEBUG_AND_GRADE_{group}_flag", group in flags_on)
    package.hw1p1_autograder_flags = flags
    sys.modules["autograder"] = package
    sys.modules["autograder.hw1p1_autograder_flags"] = flags
    problems = _isolate_imports(rundir) if isolate else []
    try:
        namespace = runpy.run_path(str(rundir / "autograder" / "hw1p1_autograder.py"), run_name="__main__")
    except BaseException as exc:  # noqa: BLE001 - the official script has no exception handling
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if str(rundir) in f.filename]
        where = f" at {Path(frames[-1].filename).relative_to(rundir)}:{frames[-1].lineno}" if frames else ""
        return {"passed": False, "scores": None, "error": f"{type(exc).__name__}: {exc}"[:240] + where,
                "patched": problems}
    scores = namespace["SCORE_LOGS"]
    return {"passed": bool(scores[key]) if key else None, "scores": scores, "error": None, "patched": problems}


def _fork_run(rundir: Path, label: str, flags_on: list[str], key: str | None, isolate: bool,
              timeout: float) -> dict:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: student code runs here only
        os.close(read_end)
        log = os.open(str(rundir / f"official-{label}.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(log, 1)
        os.dup2(log, 2)
        try:
            result = _run_official_section(rundir, flags_on, key, isolate)
        except BaseException as exc:  # noqa: BLE001
            result = {"passed": False, "scores": None, "error": f"harness: {exc!r}", "patched": []}
        os.write(write_end, json.dumps(result, default=str).encode())
        os._exit(0)
    os.close(write_end)
    chunks, deadline = [], time.monotonic() + timeout
    while True:
        ready, _, _ = select.select([read_end], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_end)
            return {"passed": False, "scores": None, "error": f"time limit ({timeout:.0f} s)", "patched": []}
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        return {"passed": False, "scores": None, "error": "the section's process died", "patched": []}


def official_inside(rundir: Path, timeout: float) -> dict:
    """Runs inside the bubblewrap: torch imported once, then one fork per section and one as shipped."""
    import numpy  # noqa: F401 - imported before forking so each section pays nothing for it
    import torch
    torch.set_num_threads(1)
    results = {name: _fork_run(rundir, SHORT[name], groups, name, True, timeout)
               for name, groups in SECTIONS.items()}
    shipped = _fork_run(rundir, "as-shipped", ALL_GROUPS, None, False, timeout * 3)
    return {"sections": results, "as_shipped": shipped}


def run_official(handin: Path, autograder: Path, workdir: Path, timeout: float) -> dict:
    rundir = Path(tempfile.mkdtemp(prefix="official-", dir=workdir))
    shutil.copytree(handin, rundir, dirs_exist_ok=True)
    shutil.copytree(autograder, rundir / "autograder")
    argv = [sys.executable, "-B", str(Path(__file__).resolve()), "--_official-inside", str(rundir),
            "--timeout", str(timeout)]
    if shutil.which("bwrap"):
        argv = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                "--bind", str(rundir), str(rundir), "--unshare-all", "--die-with-parent",
                "--new-session", "--chdir", str(rundir), *argv]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout * 12 + 60,
                          check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"official harness failed ({proc.returncode}): {proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["rundir"] = str(rundir)
    return result


# ----------------------------------------------------------------------------------------------
# Ours

def run_ours(handin: Path, grader: Path = GRADER, suite: str | None = None) -> dict:
    argv = [str(grader), "grade", str(handin), "--json"] + (["--suite", suite] if suite else [])
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    try:
        data = json.loads(proc.stdout)
    except ValueError:  # the grader itself failed: a finding in its own right, never a crash of the bench
        return {"error": {"code": f"exit {proc.returncode}", "message": proc.stderr.strip()[-300:]},
                "sections": {}}
    if data.get("error"):
        return {"error": data["error"], "sections": {}}
    sections = {}
    for s in data["sections"]:
        failing = [t for t in s["tests"] if not t["passed"]]
        why = s.get("message") or (f"{failing[0]['name']}: {failing[0]['message']}" if failing else "")
        notes = [f"{t['name']}: {n}" for t in s["tests"] for n in t.get("notes", [])]
        sections[s["name"]] = {"passed": s["passed"], "why": " ".join(why.split())[:300], "notes": notes}
    return {"error": None, "sections": sections, "score": data["score"]}


# ----------------------------------------------------------------------------------------------
# The comparison

def load_manifest(path: Path) -> dict:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def compare(manifest: dict, mirrors: Path, workdir: Path, only: set[str], timeout: float,
            reuse_official: bool, grader: Path = GRADER):
    """Yields one row per handin as soon as both graders are done with it."""
    official_cfg = manifest["official"]
    autograder = workdir / "official" / "autograder"
    if not autograder.exists():
        extract(mirrors, official_cfg["repo"], official_cfg["commit"], official_cfg.get("folder", ""),
                workdir / "official", packages=("autograder",))
    for entry in manifest["handin"]:
        if only and entry["id"] not in only:
            continue
        handin = workdir / "handins" / entry["id"]
        if not handin.exists():
            try:
                extract(mirrors, entry["repo"], entry["commit"], entry.get("folder", ""), handin)
            except subprocess.CalledProcessError as exc:
                print(f"  skipped {entry['id']}: cannot extract it ({exc.stderr.decode()[:200].strip()})",
                      file=sys.stderr, flush=True)
                shutil.rmtree(handin, ignore_errors=True)
                continue
        # The official verdict depends only on the handin and the official script: kept between runs.
        cached = workdir / "official-results" / f"{entry['id']}-{entry['commit'][:12]}.json"
        started = time.monotonic()
        if cached.exists() and reuse_official:
            official = json.loads(cached.read_text())
        else:
            official = run_official(handin, autograder, workdir, timeout)
            cached.parent.mkdir(exist_ok=True)
            cached.write_text(json.dumps(official))
        official_seconds = time.monotonic() - started
        started = time.monotonic()
        ours = run_ours(handin, grader)
        ours_seconds = time.monotonic() - started
        yield {"entry": entry, "official": official, "ours": ours,
               "seconds": {"official": round(official_seconds, 2), "ours": round(ours_seconds, 2)}}
        print(f"  graded {entry['id']} (official {official_seconds:.1f} s, ours {ours_seconds:.1f} s)",
              file=sys.stderr, flush=True)


def _cell(official: bool, ours: bool | None) -> str:
    o = "P" if official else "F"
    u = "-" if ours is None else ("P" if ours else "F")
    return f"{o}/{u}" + ("!" if ours is not None and official != ours else " ")


def report(rows: list[dict]) -> tuple[str, int]:
    """The table, the totals and every disagreement with its verdict; also the number that differ."""
    head = f"{'handin':<34} {'sem':<4} {'state':<8} " + " ".join(f"{SHORT[s]:<5}" for s in SECTIONS) \
        + "  shipped ours"
    lines = [head, "-" * len(head)]
    sections = agree = 0
    disagreements, unjudged, errors = [], 0, []
    for row in rows:
        entry, off, ours = row["entry"], row["official"], row["ours"]
        patched = any(r["patched"] for r in off["sections"].values())
        shipped = off["as_shipped"]
        shipped_total = "crash" if shipped["error"] else str(sum(shipped["scores"].values()))
        cells = []
        for name in SECTIONS:
            o = off["sections"][name]["passed"]
            u = ours["sections"].get(name, {}).get("passed") if not ours["error"] else None
            cells.append(_cell(o, u))
            if u is None:
                continue
            sections += 1
            if o == u:
                agree += 1
                continue
            verdict = entry.get("verdicts", {}).get(name, "")
            unjudged += not verdict
            disagreements.append((entry["id"], name, o, u, verdict, off["sections"][name]["error"],
                                  ours["sections"][name]["why"]))
        ours_total = "error" if ours["error"] else str(ours["score"])
        if ours["error"]:
            errors.append(f"- {entry['id']}: {ours['error']['code']}: {ours['error']['message']}")
        lines.append(f"{entry['id'] + ('*' if patched else ''):<34} {entry.get('semester', ''):<4} "
                     f"{entry.get('state', ''):<8} " + " ".join(f"{c:<5}" for c in cells)
                     + f"  {shipped_total:>7} {ours_total:>4}")
    lines += ["", ("official/ours per section: P passed, F failed, ! they differ; * = the handin's imports "
                   "fail under the official script, sections run with stand-ins for what is missing; "
                   "shipped = the official script as shipped, all flags on (crash = no score at all)"), ""]
    lines.append(f"{len(rows)} handins, {sections} sections, {agree} agree, {sections - agree} differ"
                 f" ({unjudged} without a verdict in the manifest)")
    if errors:
        lines += ["", f"{len(errors)} handins our grader did not grade (not counted above):", *errors]
    if disagreements:
        lines += ["", "Disagreements:"]
        for hid, name, o, u, verdict, off_err, our_why in disagreements:
            lines.append(f"- {hid} / {name}: official {'PASS' if o else 'FAIL'}, ours {'PASS' if u else 'FAIL'}")
            lines.append(f"    verdict: {verdict or 'UNJUDGED'}")
            if not o and off_err:
                lines.append(f"    official: {off_err}")
            if not u and our_why:
                lines.append(f"    ours: {our_why}")
    return "\n".join(lines), sections - agree


def timing(manifest: dict, mirrors: Path, workdir: Path, handin_id: str, runs: int) -> str:
    """Wall time of one fresh process each: the official script as shipped (all flags) vs `grader grade`."""
    entry = next(e for e in manifest["handin"] if e["id"] == handin_id)
    handin = workdir / "handins" / handin_id
    if not handin.exists():
        extract(mirrors, entry["repo"], entry["commit"], entry.get("folder", ""), handin)
    official_cfg = manifest["official"]
    autograder = workdir / "official" / "autograder"
    if not autograder.exists():
        extract(mirrors, official_cfg["repo"], official_cfg["commit"], official_cfg.get("folder", ""),
                workdir / "official", packages=("autograder",))
    rundir = Path(tempfile.mkdtemp(prefix="timing-", dir=workdir))
    shutil.copytree(handin, rundir, dirs_exist_ok=True)
    shutil.copytree(autograder, rundir / "autograder")
    flags = "".join(f"DEBUG_AND_GRADE_{g}_flag = True\n" for g in ALL_GROUPS)
    (rundir / "autograder" / "hw1p1_autograder_flags.py").write_text(flags)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    official, ours, last = [], [], ""

    def timed(argv, **kwargs) -> tuple[float, float, subprocess.CompletedProcess]:
        """Wall seconds and CPU seconds (user + system of the process and everything it waited for)."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc

    for _ in range(runs):
        wall, cpu, proc = timed([sys.executable, "-B", "autograder/hw1p1_autograder.py"], cwd=rundir, env=env)
        official.append((wall, cpu))
        last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-200:]
        wall, cpu, proc = timed([str(GRADER), "grade", str(handin), "--json"])
        ours.append((wall, cpu))
        score = json.loads(proc.stdout)["score"]

    def summary(samples) -> str:
        walls, cpus = [w for w, _ in samples], [c for _, c in samples]
        return (f"wall median {statistics.median(walls):.2f} s (min {min(walls):.2f}), "
                f"CPU median {statistics.median(cpus):.2f} s")

    return (f"timing on {handin_id}, {runs} runs each, fresh processes, load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores:\n"
            f"  official v3.0.1 as shipped, all flags on (python autograder/hw1p1_autograder.py): "
            f"{summary(official)}; last line {last}\n"
            f"  ours (grader grade DIR --json, real sandbox, 8 sections + reference run): "
            f"{summary(ours)}; score {score}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    parser.add_argument("--workdir", type=Path, default=None, help="kept afterwards (default: a temp dir)")
    parser.add_argument("--only", nargs="*", default=[])
    parser.add_argument("--timeout", type=float, default=60.0, help="per official section, seconds")
    parser.add_argument("--fresh-official", action="store_true",
                        help="rerun the official script even when --workdir holds its result for a handin")
    parser.add_argument("--grader", type=Path, default=GRADER,
                        help="the `grader` command to compare (default: this tree's)")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--from-json", type=Path,
                        help="print the table again from a saved --json run, with the manifest's current verdicts")
    parser.add_argument("--timing", metavar="ID", help="time both graders on this handin instead")
    parser.add_argument("--runs", type=int, default=5)
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
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="real-handins-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.timing:
        print(timing(manifest, args.mirrors, workdir, args.timing, args.runs))
        return 0
    rows = []
    for row in compare(manifest, args.mirrors, workdir, set(args.only), args.timeout, not args.fresh_official,
                       args.grader):
        rows.append(row)
        if args.json:  # rewritten after every handin, so a long run can be read while it goes on
            args.json.write_text(json.dumps(rows, indent=1, default=str))
    text, _ = report(rows)
    official = manifest["official"]
    print(f"official autograder: {official['repo']}@{official['commit'][:10]}:"
          f"{(official.get('folder', '').strip('/') + '/autograder').lstrip('/')} ({official.get('version', '')})")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
