"""`bench/similarity.py --real`: planted copies among real public HW1P1 handins (see that docstring).

No student code is stored here: the handins come from the fetched snapshots the manifest names.
"""

from __future__ import annotations

import ast
import builtins
import io
import keyword
import os
import random
import re
import tempfile
import time
import tokenize
from pathlib import Path

from real_handins import extract, load_manifest

from grader.similarity import (
    compare_handins,
    graded_modules,
    read_handin,
    read_sources,
)
from grader.suites.hw1p1 import SUITE

KEEP = {"np", "numpy", "self", "cls", "scipy"}


def _offsets(source: str) -> list[int]:
    starts, at = [0], 0
    for line in source.splitlines(keepends=True):
        at += len(line)
        starts.append(at)
    return starts


def _tokens(source: str):
    return list(tokenize.generate_tokens(io.StringIO(source).readline))


def renamed(files: dict[str, str], api: set[str]) -> dict[str, str]:
    """Every name the student chose (not the handout's API, keywords, builtins or numpy's
    functions) replaced consistently across the handin."""
    mapping: dict[str, str] = {}
    out = {}
    for path, source in files.items():
        try:
            tokens = _tokens(source)
        except (tokenize.TokenError, SyntaxError):
            out[path] = source
            continue
        lines = _offsets(source)
        edits = []
        for i, tok in enumerate(tokens):
            if tok.type != tokenize.NAME or keyword.iskeyword(tok.string) or tok.string in KEEP \
                    or tok.string in api or hasattr(builtins, tok.string):
                continue
            if i >= 2 and tokens[i - 1].string == "." and tokens[i - 2].string in ("np", "numpy"):
                continue
            new = mapping.setdefault(tok.string, f"{tok.string[0]}q{len(mapping)}")
            start = lines[tok.start[0] - 1] + tok.start[1]
            edits.append((start, start + len(tok.string), new))
        for start, end, new in reversed(edits):
            source = source[:start] + new + source[end:]
        out[path] = source
    return out


def recommented(files: dict[str, str]) -> dict[str, str]:
    """Comments and docstrings gone, new comments, two-space indents, blank lines added."""
    out = {}
    for path, source in files.items():
        try:
            tree = ast.parse(source)
            for node in ast.walk(tree):
                body = getattr(node, "body", None)
                if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                        and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                    body[0].value.value = "My implementation."
            source = ast.unparse(tree)   # drops every comment
        except SyntaxError:
            source = re.sub(r"(?m)#.*$", "", source)
        lines = []
        for n, line in enumerate(source.splitlines()):
            indent = len(line) - len(line.lstrip(" "))
            lines.append(" " * (indent // 2) + line.lstrip(" "))
            if n % 4 == 3 and line.strip():
                lines.append(" " * (indent // 2) + f"# step {n}: see the writeup\n")
        out[path] = "\n".join(lines) + "\n"
    return out


def reordered(files: dict[str, str]) -> dict[str, str]:
    """Classes of each module and methods of each class in reverse order (imports stay first)."""
    out = {}
    for path, source in files.items():
        try:
            tree = ast.parse(source)
        except SyntaxError:
            out[path] = source
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                node.body.reverse()
        head = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        tree.body = head + [n for n in tree.body if n not in head][::-1]
        out[path] = ast.unparse(tree) + "\n"
    return out


def moved(files: dict[str, str]) -> dict[str, str]:
    """Each graded module's code in a renamed module, the original path re-exporting it (grades the same)."""
    out = {}
    for path, source in files.items():
        folder, name = path.rsplit("/", 1)
        out[f"{folder}/impl_{name}"] = source
        out[path] = f"from .impl_{name[:-3]} import *\n"
    return out


def merged(files: dict[str, str]) -> dict[str, str]:
    """All of mytorch's code in one module, each original path re-exporting it."""
    out, core = {}, []
    for path, source in sorted(files.items()):
        if path.startswith("mytorch/"):
            core.append(source)
            out[path] = "from mytorch.core_impl import *\n"
        else:
            out[path] = source
    out["mytorch/core_impl.py"] = "\n\n".join(core)
    return out


def everything(files: dict[str, str], api: set[str]) -> dict[str, str]:
    return moved(recommented(reordered(renamed(files, api))))


DISGUISES = {
    "renamed": lambda f, api: renamed(f, api),
    "re-commented": lambda f, api: recommented(f),
    "reordered": lambda f, api: reordered(f),
    "moved to renamed modules": lambda f, api: moved(f),
    "merged into one module": lambda f, api: merged(f),
    "all of them": everything,
}


def _handins(mirrors: Path, manifest: Path, tmp: Path) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """One handin per repository (its latest complete one, else its latest partial one), and the
    official handout's files as the skeleton."""
    m = load_manifest(manifest)
    best: dict[str, dict] = {}
    for h in m["handin"]:
        if h["state"] == "skeleton":
            continue
        rank = (h["state"] == "complete", h["date"], h["id"])
        if h["repo"] not in best or rank > best[h["repo"]]["_rank"]:
            best[h["repo"]] = h | {"_rank": rank}
    first = graded_modules(SUITE)
    handins = {}
    for repo, h in sorted(best.items()):
        dest = tmp / h["id"]
        extract(mirrors, h["repo"], h["commit"], h["folder"], dest)
        handins[h["id"]] = read_handin(dest, SUITE.layout.packages, first).files
    official = m["official"]
    extract(mirrors, official["repo"], official["commit"], official["folder"], tmp / "handout")
    skeleton = {p: s for p, s in read_sources(tmp / "handout").items()}
    return handins, skeleton


def _plant(originals: dict[str, dict[str, str]], api: set[str], per_kind: int, offset: int = 0):
    names = sorted(originals)
    planted, copies = {}, {}
    at = offset
    for kind, disguise in DISGUISES.items():
        for _ in range(per_kind):
            source = names[at % len(names)]
            at += 3
            copy = f"copy{len(copies):02d}-{source}"
            copies[copy] = disguise(originals[source], api)
            planted[copy] = (source, kind)
    return copies, planted


def _report_found(title: str, report, planted: dict[str, tuple[str, str]], archive: bool) -> None:
    pairs = report.archive_pairs if archive else report.pairs
    found = set()
    for p in pairs:
        for copy, (source, _) in planted.items():
            if {p.a, p.b} == {copy, source}:
                found.add(copy)
    print(f"\n{title}")
    print(f"  handins: {report.handins} (+ archive {report.archive_handins}); max sharers {report.max_sharers}; "
          f"{report.seconds:.2f} s")
    by_kind: dict[str, list[int]] = {}
    for copy, (source, kind) in planted.items():
        by_kind.setdefault(kind, [0, 0])
        by_kind[kind][1] += 1
        by_kind[kind][0] += copy in found
    for kind, (hit, total) in by_kind.items():
        sims = [max(p.similarity_a, p.similarity_b) for p in pairs for c, (s, k) in planted.items()
                if k == kind and {p.a, p.b} == {c, s}]
        print(f"  planted, {kind:26s} found {hit}/{total}" + (f"  (similarity {min(sims):.0%}-{max(sims):.0%})" if sims else ""))
    print(f"  planted copies found: {len(found)}/{len(planted)}")
    origin = {c: s for c, (s, _) in planted.items()}
    other = [p for p in report.pairs + report.archive_pairs
             if not any({p.a, p.b} == {c, s} for c, s in origin.items())
             and not (p.a in origin and p.b in origin and origin[p.a] == origin[p.b])]   # two copies of one
    own = [p for p in other if not (p.a.startswith("copy") or p.b.startswith("copy"))]
    print(f"  other pairs reported: {len(other)} ({len(own)} between two different real repositories)")
    for p in other:
        print(f"    {p.a} ~ {p.b}: {p.similarity_a:.0%} / {p.similarity_b:.0%}, {p.tokens} tokens, {', '.join(p.paths)}")


def _in_child(work) -> tuple[float, int, int]:
    """Run WORK (building a report) in a forked child: its CPU seconds, peak RSS in MiB (the child's
    own: ru_maxrss of the children), and the stored report's size in bytes."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        size = len(work().model_dump_json())
        os.write(write, str(size).encode())
        os._exit(0)
    os.close(write)
    size = int(os.read(read, 64) or 0)
    os.close(read)
    _, _, usage = os.wait4(pid, 0)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss >> 10, size


def run_real(mirrors: Path, manifest: Path) -> int:
    with tempfile.TemporaryDirectory(prefix="similarity-real-") as tmp:
        handins, skeleton = _handins(mirrors, manifest, Path(tmp))
    api = {node.name for source in skeleton.values() for node in ast.walk(ast.parse(source))
           if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    api |= set(re.findall(r"self\.(\w+)", "\n".join(skeleton.values())))
    print(f"real handins: {len(handins)} (one per repository); skeleton: the official handout, {len(skeleton)} files")

    copies, planted = _plant(handins, api, per_kind=2)
    started = time.perf_counter()
    report = compare_handins(handins | copies, skeleton)
    wall = time.perf_counter() - started
    _report_found(f"class of {len(handins)} real + {len(copies)} planted copies ({wall:.2f} s wall)",
                  report, planted, archive=False)

    low = compare_handins(handins, skeleton, threshold=0.0)
    top = [p for p in low.pairs if p.tokens >= low.min_tokens][:3]
    print("  closest pairs of two different real repositories: " + "; ".join(
        f"{p.a} ~ {p.b} {p.similarity:.0%} ({p.tokens} tokens)" for p in top))

    names = sorted(handins)
    archive = {f"archive:{n}": handins[n] for n in names[::2]}
    kept = {n: handins[n] for n in names[1::2]}
    copies, planted_raw = _plant({n: handins[n] for n in names[::2]}, api, per_kind=1)
    planted = {c: (f"archive:{s}", k) for c, (s, k) in planted_raw.items()}
    report = compare_handins(kept | copies, skeleton, archive=archive)
    _report_found(f"class of {len(kept)} real + {len(copies)} copies of archive entries; archive of {len(archive)}",
                  report, planted, archive=True)

    rng = random.Random(4)
    flagged = {"class-size default": 0, "max sharers 10": 0}
    copies_found = {"class-size default": 0, "max sharers 10": 0}
    draws = 100
    for _ in range(draws):
        four = rng.sample(names, 4)
        small = {n: handins[n] for n in four}
        copy = {"copy": DISGUISES["all of them"](small[four[0]], api)}
        for label, sharers in (("class-size default", None), ("max sharers 10", 10)):
            flagged[label] += len(compare_handins(small, skeleton, max_sharers=sharers).pairs)
            with_copy = compare_handins({n: small[n] for n in four[:3]} | copy, skeleton, max_sharers=sharers)
            copies_found[label] += any({p.a, p.b} == {"copy", four[0]} for p in with_copy.pairs)
    print(f"\n{draws} random classes of 4 real handins (threshold 50%):")
    for label, count in flagged.items():
        print(f"  {label:20s} pairs flagged among 4 independent handins: {count} in {6 * draws} pairs; "
              f"a disguised copy among 3 of them found {copies_found[label]}/{draws}")

    with tempfile.TemporaryDirectory(prefix="similarity-crafted-") as tmp:
        for i in range(78):   # the attack of issue 18 item 6: 78 files of 256 KiB of code
            path = Path(tmp, "mytorch", "nn", f"pad{i:02d}.py")
            path.parent.mkdir(parents=True, exist_ok=True)
            lines = [f"v{j} = [{j}, {i} * {j}, v{max(j - 1, 0)}]" for j in range(20_000)]
            path.write_text("\n".join(lines)[:256 << 10])
        # the graded module imports every one of them: the caps are all that bound it
        Path(tmp, "mytorch", "nn", "linear.py").write_text("".join(f"from .pad{i:02d} import *\n" for i in range(78)))
        plain = _in_child(lambda: compare_handins(dict(handins), skeleton))
        crafted = _in_child(lambda: compare_handins(handins | {
            name: read_handin(Path(tmp), SUITE.layout.packages, graded_modules(SUITE)).files
            for name in ("crafted1", "crafted2")}, skeleton))
    print(f"\nthe class of {len(handins)}: {plain[0]:.2f} s CPU, peak {plain[1]} MiB, report {plain[2] >> 10} KiB")
    print(f"with two crafted handins (78 x 256 KiB .py each, all imported by linear.py; read within the caps): "
          f"{crafted[0]:.2f} s CPU, peak {crafted[1]} MiB, report {crafted[2] >> 10} KiB")
    return 0
