"""Holes found by attacking the grading path (issue 12), each closed and tested through the real
sandbox: a handin must not be able to fake a grader error, fill the host's disk, break clean-up,
be zeroed by our own disk trouble, smuggle complex values past the comparison, or read host
paths and counters from /proc."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from grader.errors import GraderBug
from grader.grade import grade
from grader.suites.hw1p1 import SUITE as HW1P1

SECTIONS = ["Linear Layer", "Activation", "MLP0", "MLP1", "MLP4", "Loss", "SGD", "Batch Norm"]


def prepend(root: Path, relpath: str, code: str) -> None:
    path = root / relpath
    text = path.read_text()
    assert "import numpy as np\n" in text
    path.write_text(text.replace("import numpy as np\n", "import numpy as np\n" + code, 1))


def section(result, name: str):
    return next(s for s in result.sections if s.name == name)


def test_complex_arrays_refused(sandbox_executor, handin):
    # loss.py makes the runner save every value as complex with the correct real part and a
    # garbage imaginary part; compared as floats, the imaginary part would vanish and it would pass.
    prepend(handin, "mytorch/nn/loss.py",
            "_savez = np.savez\n"
            "def _complex_savez(path, **arrays):\n"
            "    _savez(path, **{k: np.asarray(v, dtype=np.float64) + 7j for k, v in arrays.items()})\n"
            "np.savez = _complex_savez\n")
    result = grade(handin, sandbox_executor, suite=HW1P1)
    loss = section(result, "Loss")
    assert loss.score == 0
    assert "forbidden dtype" in loss.message
    assert result.score == 90


def test_cleanup_survives_deep_directory_chain(sandbox_executor, handin, tmp_path):
    # 3,000 nested folders wherever the section may write: shutil.rmtree recursed (RecursionError)
    # and the job directory, with the handin in it, stayed behind.
    prepend(handin, "mytorch/nn/loss.py",
            "import os\n"
            "for _place in ('/out', '/tmp'):\n"
            "    try:\n"
            "        os.chdir(_place)\n"
            "        for _ in range(3000):\n"
            "            os.mkdir('d')\n"
            "            os.chdir('d')\n"
            "    except OSError:\n"
            "        pass\n"
            "os.chdir('/')\n")
    work = tmp_path / "work"
    work.mkdir()
    result = grade(handin, sandbox_executor, suite=HW1P1, workdir=work)
    assert [s.name for s in result.sections] == SECTIONS
    assert list(work.iterdir()) == []


def test_remove_tree_deletes_a_chain_deeper_than_path_max(tmp_path):
    from sandbox.cleanup import remove_tree

    top = tmp_path / "job"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(5000):  # 10,000 characters of path: deeper than PATH_MAX and the recursion limit
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd))
    finally:
        os.close(fd)
    remove_tree(top)
    assert not top.exists()



@pytest.fixture
def tiny_disk(tmp_path):
    """A real 256 KiB filesystem to grade on: the handin does not fit."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=700", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_is_grader_error_not_zero(sandbox_executor, handin, tiny_disk):
    (handin / "models" / "weights.py").write_text("W = " + repr(list(range(100_000))) + "\n")
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for package in ("models", "mytorch"):
            tar.add(handin / package, arcname=package)
    with pytest.raises(GraderBug, match="disk"):
        grade(archive.getvalue(), sandbox_executor, suite=HW1P1, workdir=tiny_disk)
    assert list(tiny_disk.iterdir()) == []
