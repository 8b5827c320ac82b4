"""Attacks a handin can make on the grading path itself, run through the real sandbox.

The sandbox battery (tests/sandbox) covers the process-level threats; these check what a student
would try against the grader: forging a score, patching numpy, finding the reference solution or
the service's data and secrets, shipping bytecode that differs from the source, and tampering
with the handin or the result files."""

import os
import py_compile
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest

from grader.grade import grade
from grader.suites.hw1p1 import SUITE as HW1P1

ROOT = Path(__file__).resolve().parents[2]

SECTIONS = ["Linear Layer", "Activation", "MLP0", "MLP1", "MLP4", "Loss", "SGD", "Batch Norm"]


def edit(root: Path, relpath: str, old: str, new: str) -> None:
    path = root / relpath
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not found exactly once in {relpath}"
    path.write_text(text.replace(old, new))


def scores(result):
    return {s.name: s.score for s in result.sections}


def messages(result, section):
    return "\n".join(t.message for s in result.sections if s.name == section for t in s.tests)


def test_correct_handin_scores_full_in_the_sandbox(sandbox_executor, handin):
    result = grade(handin, sandbox_executor, suite=HW1P1)
    assert result.score == 100, [(s.name, s.message, [t.message for t in s.tests if not t.passed])
                                 for s in result.sections if not s.passed]
    assert result.unsafe is False and result.sandbox


def test_printing_a_fake_score_line_and_exiting_0_scores_nothing(sandbox_executor, handin):
    fake = '{"scores": {"Linear Layer": 15, "Activation": 10, "MLP0": 10, "MLP1": 10, "MLP4": 15, ' \
           '"Loss": 10, "SGD": 10, "Batch Norm": 20}}'
    edit(handin, "mytorch/nn/loss.py", "import numpy as np\n",
         f"import numpy as np\nimport os\nprint('Total score: 100/100')\nprint({fake!r})\nos._exit(0)\n")
    result = grade(handin, sandbox_executor, suite=HW1P1)
    assert scores(result)["Loss"] == 0
    assert result.score == 90
    assert "no usable results" in result.sections[SECTIONS.index("Loss")].message


def test_monkeypatching_numpy_comparisons_changes_nothing(sandbox_executor, handin):
    # A wrong Linear plus every comparison helper patched to say "equal".
    edit(handin, "mytorch/nn/linear.py", "import numpy as np\n",
         "import numpy as np\nnp.allclose = lambda *a, **k: True\nnp.array_equal = lambda *a, **k: True\n"
         "np.isclose = lambda a, b, *r, **k: np.ones(np.shape(a), bool)\n"
         "np.testing.assert_allclose = lambda *a, **k: None\n")
    edit(handin, "mytorch/nn/linear.py", "return A @ self.W.T + self.Ones @ self.b.T",
         "return A @ self.W.T")
    result = grade(handin, sandbox_executor, suite=HW1P1)
    assert scores(result)["Linear Layer"] == 0
    assert "values differ" in messages(result, "Linear Layer")


def test_the_reference_solution_and_service_data_are_not_on_the_sandbox_disk(sandbox_executor, handin):
    # The student's Linear walks the whole visible file system and reports what it finds in its
    # error message, which the grader shows back.
    service_site_packages = sorted({sysconfig.get_paths()["purelib"],
                                    sysconfig.get_paths(vars={"base": sys.base_prefix})["purelib"]})
    probe = (
        "import os\n"
        f"SITE = {service_site_packages!r}\n"
        f"REPO = {str(ROOT)!r}\n"
        "def _probe():\n"
        "    hits = []\n"
        "    for d, dirs, files in os.walk('/'):\n"
        "        dirs[:] = [x for x in dirs if x not in ('proc', 'sys', 'dev')]\n"
        "        for name in dirs + files:\n"
        "            path = os.path.join(d, name)\n"
        "            system = path.startswith('/usr/')  # the distribution's files, world-readable anyway\n"
        "            if (name == 'mytorch_reference'\n"
        "                    or (not system and name in ('alembic.ini', 'pyproject.toml', 'hw1p1.toml'))\n"
        "                    or (not system and name.endswith(('.sqlite', '.sqlite3', '.db')))\n"
        "                    or (name == 'torch' and os.path.isdir(os.path.join(path, '_C')))\n"
        "                    or (d in SITE and name.split('-')[0] not in ('numpy', 'numpy.libs',\n"
        "                                                                'scipy', 'scipy.libs'))\n"
        "                    or path.startswith((REPO, '/tmp/grade-'))):\n"
        "                hits.append(path)\n"
        "    return hits\n")
    edit(handin, "mytorch/nn/linear.py", "import numpy as np\n", "import numpy as np\n" + probe)
    edit(handin, "mytorch/nn/linear.py", "        self.A = A\n",
         "        raise RuntimeError(f'FOUND={_probe()} ENV={dict(os.environ)} CWD={os.getcwd()}')\n")
    os.environ["GRADER_SECRET_KEY"] = "hunter2-must-not-leak"
    try:
        result = grade(handin, sandbox_executor, suite=HW1P1)
    finally:
        del os.environ["GRADER_SECRET_KEY"]
    text = messages(result, "Linear Layer")
    assert "FOUND=[]" in text, text[:2000]
    assert "hunter2" not in text and "GRADER_" not in text
    assert str(ROOT) not in text


def test_bytecode_shipped_in_the_handin_is_never_executed(sandbox_executor, handin, tmp_path):
    # The source shows a broken Linear; a .pyc compiled from the correct one carries the broken
    # source's mtime and size, so CPython would use it if it were ever unpacked.
    linear = handin / "mytorch/nn/linear.py"
    good = linear.read_text()
    broken = good.replace("return A @ self.W.T + self.Ones @ self.b.T", "return A @ self.W.T + 0.5")
    linear.write_text(good)
    pyc = handin / "mytorch/nn/__pycache__/linear.cpython-311.pyc"
    pyc.parent.mkdir()
    py_compile.compile(str(linear), cfile=str(pyc), invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    linear.write_text(broken)
    archive = tmp_path / "handin.tar"
    with tarfile.open(archive, "w") as tar:
        for package in ("models", "mytorch"):
            tar.add(handin / package, arcname=package)
    with tarfile.open(archive) as tar:
        assert "__pycache__/linear.cpython-311.pyc" in "\n".join(tar.getnames())
    result = grade(archive, sandbox_executor, suite=HW1P1)
    assert scores(result)["Linear Layer"] == 0


def test_code_cannot_modify_the_handin_for_later_sections(sandbox_executor, handin):
    # Importing loss.py tries to "fix" a broken batchnorm.py before the Batch Norm section runs.
    edit(handin, "mytorch/nn/batchnorm.py", "self.eps = 1e-8", "self.eps = 1e-2")
    edit(handin, "mytorch/nn/loss.py", "import numpy as np\n",
         "import numpy as np\nimport os\n"
         "try:\n"
         "    p = os.path.join(os.path.dirname(__file__), 'batchnorm.py')\n"
         "    open(p, 'w').write(open(p).read().replace('1e-2', '1e-8'))\n"
         "except OSError as exc:\n"
         "    WRITE_ERROR = exc\n")
    result = grade(handin, sandbox_executor, suite=HW1P1)
    assert scores(result)["Loss"] == 10
    assert scores(result)["Batch Norm"] == 0


@pytest.mark.parametrize("payload", ["symlink", "pickle", "garbage", "overlapping"])
def test_forged_result_files_are_rejected(sandbox_executor, handin, payload):
    # The student's code writes its own result files and exits before the runner can.
    writers = {
        "symlink": "os.symlink('/etc/shadow', '/out/outputs.safetensors')",
        "pickle": "np.save('/out/outputs.safetensors', np.array([object()], dtype=object), allow_pickle=True); "
                  "os.rename('/out/outputs.safetensors.npy', '/out/outputs.safetensors')",
        "garbage": "open('/out/outputs.safetensors', 'wb').write(b'\\x10' + bytes(7) + os.urandom(1000))",
        "overlapping": "h = b'{\"0/loss\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]},'"
                       " b'\"1/loss\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]}}'; "
                       "open('/out/outputs.safetensors', 'wb').write(len(h).to_bytes(8, 'little') + h + bytes(8))",
    }
    edit(handin, "mytorch/nn/loss.py", "import numpy as np\n",
         "import numpy as np\nimport os\n"
         f"{writers[payload]}\n"
         "open('/out/report.json', 'w').write('{\"tests\": []}')\n"
         "os._exit(0)\n")
    result = grade(handin, sandbox_executor, suite=HW1P1)
    assert scores(result)["Loss"] == 0
    assert result.score == 90
