"""What a hostile archive costs the web tier's upload check and the worker's unpack.

    .venv/bin/python bench/hostile_archive.py [--mib 1024] [--code DIR]

Builds decompression bombs (one file of MIB MiB of zeros, as a gzip, bzip2 and xz tar and as a
zip with deflate, bzip2 and lzma; and a bzip2 tar whose bomb is a skipped `__pycache__` entry),
plus the costliest upload that is accepted (31.5 MiB of low-entropy bytes, as a bzip2 and an xz
tar under 10 MiB), and
runs `check_handin` and `unpack_handin` on each in a fresh process: the outcome, CPU seconds, peak
RSS above the process's baseline, and the bytes decompressed (grader/decompress.py's budgets).
--code runs another checkout's grader (e.g. a `git worktree` of an older commit) on the same files.
"""

from __future__ import annotations

import argparse
import bz2
import io
import lzma
import os
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT / "tests" / "grader"))

from hostile import TAR_KINDS, ZIP_METHODS, measure, tar_bomb, zip_bomb


def _low_entropy(n: int) -> bytes:
    """N random bytes of 4 letters (2 bits each): bzip2 packs them 4:1 and decodes them at its slowest."""
    table = [bytes(((b >> s) & 3) + 65 for s in (0, 2, 4, 6)) for b in range(256)]
    return b"".join(table[b] for b in os.urandom(n // 4))


def costliest_tar(compress) -> bytes:
    """31.5 MiB under the caps (18 MiB of graded files, 13.5 MiB of skipped __pycache__ entries) that
    compress to under 10 MiB: all the decompression work an accepted upload can ask for."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        names = ["models/mlp.py", *(f"mytorch/nn/f{i}.txt" for i in range(4)),
                 *(f"mytorch/nn/__pycache__/p{i}.pyc" for i in range(3))]
        for name in names:
            data = b"x = 1\n" if name.endswith(".py") else _low_entropy(9 << 19)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return compress(buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=1024, help="the bomb's unpacked size (a multiple of 8)")
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose grader is measured")
    parser.add_argument("--only", default="", help="comma-separated bomb names to run (default: all)")
    args = parser.parse_args()
    size = args.mib << 20
    bombs = {f"tar.{k}": lambda k=k: tar_bomb(k, size) for k in TAR_KINDS}
    bombs |= {f"zip.{m}": lambda m=m: zip_bomb(m, size) for m in ZIP_METHODS}
    bombs["tar.bz2 skipped"] = lambda: tar_bomb("bz2", size, "mytorch/__pycache__/x.cpython-311.pyc")
    bombs["costliest tar.bz2"] = lambda: costliest_tar(bz2.compress)
    bombs["costliest tar.xz"] = lambda: costliest_tar(lzma.compress)
    wanted = set(filter(None, args.only.split(",")))
    print(f"grader from {args.code}; each bomb unpacks to {args.mib} MiB")
    print(f"{'bomb':16} {'bytes':>9} {'sink':6} {'outcome':10} {'CPU s':>7} {'RSS+ MiB':>8} {'decompressed MiB':>16}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, build in bombs.items():
            if wanted and name not in wanted:
                continue
            path = Path(tmp) / "bomb"
            path.write_bytes(build())
            for sink in ("check", "unpack"):
                m = measure(path, sink, args.code)
                made = "-" if m["decompressed"] is None else f"{m['decompressed'] / (1 << 20):.1f}"
                print(f"{name:16} {path.stat().st_size:9} {sink:6} {m['outcome']:10} {m['cpu']:7.2f} "
                      f"{m['rss_growth'] / (1 << 20):8.1f} {made:>16}", flush=True)


if __name__ == "__main__":
    main()
