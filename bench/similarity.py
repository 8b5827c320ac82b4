"""How long the similarity report takes for a class, and whether it finds the planted copies.

    .venv/bin/python bench/similarity.py [--handins 200] [--copies 5]
    .venv/bin/python bench/similarity.py --real [--mirrors /work/.mirror] [--manifest bench/real_handins.toml]

Synthetic (default): a class built from the reference solution: every handin takes each function
body from one of a few structural variants (the way correct answers converge), adds code of its own
(helper functions of random shape, as real handins have), and a few handins are copies of another
with names, comments and spacing changed. Prints the time, the candidate pairs and the pairs reported.

--real: the real public HW1P1 handins of bench/real_handins.toml (one per repository, the latest
that is not the untouched skeleton; the repositories fetched as for bench/real_handins.py), with
the manifest's official handout as the skeleton, as a TA would set it. Copies of some of them are
planted, disguised one way each (renamed, reordered, re-commented, moved into renamed modules,
merged into one module, all at once); the report must pair each copy with its original and no two
different repositories. Then the same with half the class moved into an archive (earlier
semesters), and a class of 4. Prints every reported pair that is not planted, for a person to judge.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grader.similarity import compare_handins, read_sources, skeleton_of

REFERENCE = Path(__file__).resolve().parents[1] / "mytorch_reference"
OPS = ["+", "-", "*", "/", "@"]


def _own_code(rng: random.Random, n_helpers: int) -> str:
    """Helper functions whose token shapes differ from one student to the next."""
    out = []
    for i in range(n_helpers):
        lines = [f"def _helper_{i}(x, y):"]
        for j in range(rng.randint(3, 7)):
            expr = "x"
            for _ in range(rng.randint(2, 5)):
                expr = rng.choice([f"({expr} {rng.choice(OPS)} y)", f"np.{rng.choice(['exp', 'sum', 'abs', 'sqrt', 'maximum'])}({expr}{', 0' if rng.random() < .3 else ''})",
                                   f"{expr}[{rng.randint(0, 3)}]", f"{expr}.T", f"{expr} {rng.choice(OPS)} {rng.randint(1, 9)}"])
            lines.append(f"    v{j} = {expr}")
            if rng.random() < 0.4:
                lines.append(f"    if v{j} is None:\n        return {rng.randint(0, 5)}")
        lines.append(f"    return v{rng.randint(0, j)}")
        out.append("\n".join(lines))
    return "\n\n\n" + "\n\n\n".join(out) + "\n"


def _variant(source: str, choice: int) -> str:
    """One of a few structural variants of a solution file (all equally plausible)."""
    if choice == 1:
        source = re.sub(r"np\.(\w+)\(", r"numpy_\1(", source).replace("import numpy as np",
                                                                          "import numpy as np\nfrom numpy import *")
    if choice == 2:
        source = source.replace(" @ ", ".dot(").replace("\n", "\n")
    return source


def _disguise(source: str, rng: random.Random) -> str:
    """What a copier does: rename, recomment, respace. Token shapes stay."""
    source = re.sub(r"#.*", "# " + "my note " * rng.randint(1, 3), source)
    for name in ("dLdZ", "dLdA", "dLdW", "dLdb", "self.A", "self.Z"):
        source = source.replace(name, name + "_x")
    return source.replace("    ", "  ")


def build_class(n: int, copies: int, seed: int = 7) -> tuple[dict[str, dict[str, str]], set[tuple[str, str]]]:
    rng = random.Random(seed)
    reference = {p: s for p, s in read_sources(REFERENCE).items() if not p.endswith("__init__.py")}
    handins = {}
    for i in range(n):
        files = {p: _variant(s, rng.randint(0, 2)) for p, s in reference.items()}
        files["mytorch/nn/activation.py"] += _own_code(rng, 4)
        files["models/mlp.py"] += _own_code(rng, 3)
        handins[f"student{i:03d}"] = files
    planted = set()
    for c in range(copies):
        src, dst = f"student{2 * c:03d}", f"student{n - 1 - c:03d}"
        handins[dst] = {p: _disguise(s, rng) for p, s in handins[src].items()}
        planted.add(tuple(sorted((src, dst))))
    return handins, planted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handins", type=int, default=200)
    parser.add_argument("--copies", type=int, default=5)
    parser.add_argument("--real", action="store_true", help="real public handins with planted copies")
    parser.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    parser.add_argument("--manifest", type=Path, default=Path(__file__).with_name("real_handins.toml"))
    args = parser.parse_args()
    if args.real:
        from similarity_real import run_real

        return run_real(args.mirrors, args.manifest)
    handins, planted = build_class(args.handins, args.copies)
    skeleton = skeleton_of(REFERENCE)
    started = time.perf_counter()
    report = compare_handins(handins, skeleton)
    elapsed = time.perf_counter() - started
    found = {(p.a, p.b) for p in report.pairs}
    print(f"handins: {report.handins}  files per handin: {len(next(iter(handins.values())))}")
    print(f"similarity report: {elapsed:.2f} s wall ({report.seconds:.2f} s inside compare_handins)")
    print(f"candidate pairs: {report.candidate_pairs}  reported (>= {report.threshold:.0%}): {len(report.pairs)}")
    print(f"planted copies found: {len(planted & found)}/{len(planted)}; "
          f"other pairs reported: {len(found - planted)}")
    for pair in report.pairs[:8]:
        print(f"  {pair.a} ~ {pair.b}: {pair.similarity_a:.0%} / {pair.similarity_b:.0%}, {pair.tokens} tokens")
    return 0


if __name__ == "__main__":
    sys.exit(main())
