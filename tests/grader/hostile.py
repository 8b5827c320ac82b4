"""Hostile archives, and the cost of reading one, for the unpacking attack tests and
bench/hostile_archive.py.

Bombs: a tar holding one file of zeros, compressed with each compression the unpacker reads (a
3 KiB bzip2 bomb unpacks to 3 GiB), and a zip holding the same with each zip method. `measure`
runs the web tier's check (or the worker's unpack) on a file in a fresh process and reports what
it cost: peak memory above the process's own baseline, CPU, and the bytes decompressed, counted by
grader.decompress's budgets (instrumented in that process only).
"""

from __future__ import annotations

import bz2
import json
import lzma
import subprocess
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TAR_KINDS = ("gz", "bz2", "xz")
ZIP_METHODS = {"deflate": zipfile.ZIP_DEFLATED, "bzip2": zipfile.ZIP_BZIP2, "lzma": zipfile.ZIP_LZMA}
_CHUNK = bytes(8 << 20)


def _compressor(kind: str):
    return {"gz": lambda: zlib.compressobj(9, zlib.DEFLATED, 31), "bz2": lambda: bz2.BZ2Compressor(9),
            "xz": lambda: lzma.LZMACompressor(lzma.FORMAT_XZ)}[kind]()


def tar_bomb(kind: str, size: int, name: str = "mytorch/nn/linear.py") -> bytes:
    """A KIND-compressed tar holding NAME: SIZE zero bytes (a multiple of 8 MiB), built while
    streaming so the builder never holds SIZE bytes."""
    info = tarfile.TarInfo(name)
    info.size = size
    packer = _compressor(kind)
    parts = [packer.compress(info.tobuf(tarfile.USTAR_FORMAT))]
    parts += [packer.compress(_CHUNK) for _ in range(size // len(_CHUNK))]
    parts.append(packer.compress(bytes(1024)))   # the end-of-archive blocks
    return b"".join(parts) + packer.flush()


def zip_bomb(method: str, size: int, name: str = "mytorch/nn/linear.py") -> bytes:
    """A zip holding NAME: SIZE zero bytes compressed with METHOD (deflate, bzip2 or lzma)."""
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", ZIP_METHODS[method]) as archive, \
            archive.open(name, "w", force_zip64=True) as member:
        for _ in range(size // len(_CHUNK)):
            member.write(_CHUNK)
    return buffer.getvalue()


_CHILD = r"""
import json, resource, sys, tempfile
from pathlib import Path

from grader.handin import HandinError, check_handin, unpack_handin
from grader.suites.hw1p1 import LAYOUT

budgets = []
try:
    from grader import decompress
except ImportError:   # a checkout from before grader/decompress.py: nothing to count
    budgets = None
else:
    _init = decompress.Budget.__init__
    def _recorded(self, limit):
        _init(self, limit)
        budgets.append(self)
    decompress.Budget.__init__ = _recorded

def usage():
    self = resource.getrusage(resource.RUSAGE_SELF)
    return self.ru_maxrss, self.ru_utime + self.ru_stime

data = Path(sys.argv[1]).read_bytes()
rss0, cpu0 = usage()
outcome = "accepted"
try:
    if sys.argv[2] == "check":
        check_handin(data, layout=LAYOUT)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            unpack_handin(data, Path(tmp) / "job", layout=LAYOUT)
except HandinError as exc:
    outcome = exc.code
rss1, cpu1 = usage()
print(json.dumps({"outcome": outcome, "rss_growth": (rss1 - rss0) << 10, "cpu": cpu1 - cpu0,
                  "fed": budgets and sum(b.fed for b in budgets),
                  "decompressed": budgets and sum(b.produced for b in budgets)}))
"""


def measure(path: Path, what: str = "check", code: Path = REPO) -> dict:
    """Run check_handin (WHAT="check") or unpack_handin ("unpack") on PATH in a fresh process
    importing the grader from CODE: {"outcome" (a HandinError code or "accepted"), "rss_growth"
    (bytes of peak RSS above the process's peak before the call), "cpu" (seconds, user + system),
    "fed" / "decompressed" (compressed bytes read and bytes produced)}."""
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path), what], cwd=code, check=True,
                         capture_output=True, text=True, env={"PYTHONPATH": str(code), "PATH": "/usr/bin:/bin"})
    return json.loads(out.stdout)
