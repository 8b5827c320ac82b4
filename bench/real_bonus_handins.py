"""Grade real public HW1P1 Bonus handins with the course's bonus autograder and with ours, per section.

    .venv/bin/python bench/real_bonus_handins.py [--manifest bench/real_bonus_handins.toml]
                                                 [--mirrors DIR] [--workdir DIR] [--only ID ...] [--json OUT]

Run on purpose, never in CI, like bench/real_handins.py (whose extraction and `grader grade` call it
reuses): the manifest names public repositories (fetched as bare snapshots under --mirrors), commits
and folders; no student or course code is stored here.

The official script is the course's `hw1p1_bonus_autograder.py` with its six pickled answers, taken
from the snapshot the manifest's [official] table names: the S24 script imports
`mytorch.models.mlp` (models/ inside mytorch/), the S25 one `models.mlp` (models/ beside it), so each
handin runs the one matching its layout ([official.s24] / [official.s25]). It runs as shipped, once per
handin, under bubblewrap with no network: any failing top-level import (no models/mlp.py, no
mytorch/nn/dropout.py) stops it before a single test ("crash", every section failed). Its Adam and
AdamW tests run the optimizer on the student's own MLP4; its dropout tests compare with one seeded run.
Sections: Adam (5), AdamW (5), Dropout (10 = the script's forward 5 + backward 5, both needed here,
since ours is all or nothing).

Ours is `grader grade DIR --suite hw1p1_bonus --json` through the real sandbox. The table shows
official/ours per section (P passed, F failed, ! they differ); every difference must carry a verdict
in the manifest saying who is right by the bonus writeups and torch.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_handins import GRADER, extract, git_dir, load_manifest, run_ours

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MANIFEST = ROOT / "bench" / "real_bonus_handins.toml"
SECTIONS = {"Adam": ["Adam"], "AdamW": ["AdamW"], "Dropout": ["Dropout Forward", "Dropout Backward"]}
OFFICIAL_FILES = ("hw1p1_bonus_autograder.py", "adam_sol_W.pkl", "adam_sol_b.pkl", "adamW_sol_W.pkl",
                  "adamW_sol_b.pkl", "dropout_sol_forward.pkl", "dropout_sol_backward.pkl")


def official_files(mirrors: Path, cfg: dict, dest: Path) -> Path:
    """The script and its pickles from the snapshot CFG names, into DEST (once)."""
    if not dest.exists():
        dest.mkdir(parents=True)
        prefix = f"{cfg['folder'].strip('/')}/" if cfg.get("folder") else ""
        for name in OFFICIAL_FILES:
            blob = subprocess.run(["git", "--git-dir", str(git_dir(mirrors, cfg["repo"])), "show",
                                   f"{cfg['commit']}:{prefix}{name}"], capture_output=True, check=True).stdout
            (dest / name).write_bytes(blob)
    return dest


def layout_of(handin: Path) -> str:
    if (handin / "mytorch" / "models" / "mlp.py").exists():
        return "s24"
    return "s25" if (handin / "models" / "mlp.py").exists() else "s24"   # neither: the S24 script fails


def run_official(handin: Path, script_dir: Path, workdir: Path, timeout: float) -> dict:
    """The script as shipped; {"crash": message or None, "sections": {name: passed}}."""
    rundir = Path(tempfile.mkdtemp(prefix="bonus-official-", dir=workdir))
    shutil.copytree(handin, rundir, dirs_exist_ok=True)
    for path in script_dir.iterdir():
        shutil.copy(path, rundir / path.name)
    argv = [sys.executable, "-B", "hw1p1_bonus_autograder.py"]
    if shutil.which("bwrap"):
        argv = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                "--bind", str(rundir), str(rundir), "--unshare-all", "--die-with-parent",
                "--new-session", "--chdir", str(rundir), *argv]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1")
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout,
                              cwd=rundir, check=False)
    except subprocess.TimeoutExpired:
        return {"crash": f"time limit ({timeout:.0f} s)", "sections": dict.fromkeys(SECTIONS, False)}
    finally:
        shutil.rmtree(rundir, ignore_errors=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith('{"scores"')]
    if not lines:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"crash": last[:200], "sections": dict.fromkeys(SECTIONS, False)}
    scores = json.loads(lines[-1])["scores"]
    return {"crash": None, "scores": scores,
            "sections": {name: all(scores.get(k, 0) > 0 for k in keys) for name, keys in SECTIONS.items()}}


def _cell(official: bool, ours: bool | None) -> str:
    u = "-" if ours is None else ("P" if ours else "F")
    return f"{'P' if official else 'F'}/{u}" + ("!" if ours is not None and official != ours else " ")


def report(rows: list[dict]) -> str:
    head = f"{'handin':<40} {'sem':<4} {'layout':<7} " + " ".join(f"{s:<6}" for s in SECTIONS) + "  official ours"
    lines = [head, "-" * len(head)]
    sections = agree = verdict_agree = 0
    ran = ran_sections = ran_agree = 0
    disagreements = []
    for row in rows:
        entry, off, ours = row["entry"], row["official"], row["ours"]
        cells = []
        if not off["crash"]:
            ran += 1
        for name in SECTIONS:
            o = off["sections"][name]
            u = None if ours["error"] else ours["sections"].get(name, {}).get("passed")
            cells.append(_cell(o, u))
            if u is None:
                continue
            sections += 1
            ran_sections += not off["crash"]
            verdict = entry.get("verdicts", {}).get(name, "")
            if o == u:
                agree += 1
                ran_agree += not off["crash"]
                verdict_agree += not verdict.startswith("OUR BUG")
                continue
            verdict_agree += verdict.startswith("OURS RIGHT")
            disagreements.append((entry["id"], name, o, u, verdict, off["crash"],
                                  ours["sections"][name]["why"]))
        official_total = "crash" if off["crash"] else f"{sum(off['scores'].values()):g}"
        ours_total = ours["error"]["code"] if ours["error"] else str(ours["score"])
        lines.append(f"{entry['id']:<40} {entry.get('semester', ''):<4} {row['layout']:<7} "
                     + " ".join(f"{c:<6}" for c in cells) + f"  {official_total:>8} {ours_total:>4}")
    handins_agreeing = sum(
        all(not (r["official"]["sections"][n] != r["ours"]["sections"].get(n, {}).get("passed")
                 and not r["entry"].get("verdicts", {}).get(n, "").startswith("OURS RIGHT"))
            for n in SECTIONS) and not r["ours"]["error"]
        for r in rows)
    lines += ["", ("official/ours per section: P passed, F failed, ! they differ; official crash = the script "
                  "stopped at a top-level import (every section failed)"), "",
              (f"{len(rows)} handins, {sections} sections: {agree} agree with the official script, "
              f"{sections - agree} differ"),
              f"where the official script runs: {ran} handins, {ran_sections} sections, {ran_agree} agree",
              (f"agreeing with the manifest's verdicts: {verdict_agree} of {sections} sections, "
              f"{handins_agreeing} of {len(rows)} handins")]
    if disagreements:
        lines += ["", "Disagreements:"]
        for hid, name, o, u, verdict, crash, why in disagreements:
            lines.append(f"- {hid} / {name}: official {'PASS' if o else 'FAIL'}, ours {'PASS' if u else 'FAIL'}")
            lines.append(f"    verdict: {verdict or 'UNJUDGED'}")
            if crash:
                lines.append(f"    official: {crash}")
            if not u and why:
                lines.append(f"    ours: {why}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    parser.add_argument("--workdir", type=Path, default=None, help="kept afterwards (default: a temp dir)")
    parser.add_argument("--only", nargs="*", default=[])
    parser.add_argument("--timeout", type=float, default=120.0, help="for the official script, seconds")
    parser.add_argument("--grader", type=Path, default=GRADER)
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args(argv)
    manifest = load_manifest(args.manifest)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="real-bonus-"))
    workdir.mkdir(parents=True, exist_ok=True)
    scripts = {semester: official_files(args.mirrors, cfg, workdir / "official" / semester)
               for semester, cfg in manifest["official"].items()}
    rows = []
    for entry in manifest["handin"]:
        if args.only and entry["id"] not in args.only:
            continue
        handin = workdir / "handins" / entry["id"]
        if not handin.exists():
            extract(args.mirrors, entry["repo"], entry["commit"], entry.get("folder", ""), handin,
                    packages=("mytorch", "models"))
        layout = layout_of(handin)
        official = run_official(handin, scripts[layout], workdir, args.timeout)
        ours = run_ours(handin, args.grader, suite="hw1p1_bonus")
        rows.append({"entry": entry, "layout": layout, "official": official, "ours": ours})
        print(f"  graded {entry['id']}", file=sys.stderr, flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    print(report(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
