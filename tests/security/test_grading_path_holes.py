"""Holes found by attacking the grading path (issue 12), each closed and tested through the real
sandbox: a handin must not be able to fake a grader error, fill the host's disk, break clean-up,
be zeroed by our own disk trouble, smuggle complex values past the comparison, or read host
paths and counters from /proc."""

from __future__ import annotations

import ast
import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from grader.errors import GraderBug
from grader.grade import grade
from grader.suites.hw1p1 import SUITE as HW1P1

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ["Linear Layer", "Activation", "MLP0", "MLP1", "MLP4", "Loss", "SGD", "Batch Norm"]


def prepend(root: Path, relpath: str, code: str) -> None:
    path = root / relpath
    text = path.read_text()
    assert "import numpy as np\n" in text
    path.write_text(text.replace("import numpy as np\n", "import numpy as np\n" + code, 1))


def section(result, name: str):
    return next(s for s in result.sections if s.name == name)


def feedback(result, name: str) -> str:
    """Everything the student reads for a section: an import-time error is said once, on the
    section, and its tests point to it."""
    found = section(result, name)
    return "\n".join([found.message or "", *(t.message for t in found.tests)])


def test_complex_arrays_refused(sandbox_executor, handin):
    # loss.py makes the runner save every value as complex with the correct real part and a
    # garbage imaginary part; compared as floats, the imaginary part would vanish and it would pass.
    prepend(handin, "mytorch/nn/loss.py",
            "import json, sys\n"
            "def _write_complex(path, arrays):\n"
            "    header, chunks, offset = {}, [], 0\n"
            "    for key, value in arrays.items():\n"
            "        data = (np.asarray(value, dtype=np.float64) + 7j).astype('<c8').tobytes()\n"
            "        header[key] = {'dtype': 'C64', 'shape': list(np.shape(value)),\n"
            "                       'data_offsets': [offset, offset + len(data)]}\n"
            "        chunks.append(data)\n"
            "        offset += len(data)\n"
            "    head = json.dumps(header).encode()\n"
            "    head += b' ' * (-len(head) % 8)\n"
            "    open(path, 'wb').write(len(head).to_bytes(8, 'little') + head + b''.join(chunks))\n"
            "for _module in list(sys.modules.values()):\n"   # vars(): hasattr would import lazy packages' __init__
            "    if {'write_arrays', 'run_section'} <= set(getattr(_module, '__dict__', {})):\n"
            "        _module.write_arrays = _write_complex\n")
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


def test_handin_cannot_fake_grader_error_by_killing_init(sandbox_executor, handin):
    # os.kill(1, SIGINT) raised KeyboardInterrupt in the sandbox's init, which reported a sandbox
    # failure: a grader error, retried and never counted. The init now takes no signal from inside.
    prepend(handin, "mytorch/nn/loss.py",
            "import os, signal\n"
            "for _sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGSTOP,\n"
            "             signal.SIGKILL):\n"
            "    for _target in (1, os.getppid()):\n"
            "        try:\n"
            "            os.kill(_target, _sig)\n"
            "        except OSError:\n"
            "            pass\n")
    result = grade(handin, sandbox_executor, suite=HW1P1)  # raised GraderBug before
    assert result.score == 100, [(s.name, s.message) for s in result.sections if not s.passed]


def test_output_dir_is_size_bounded(sandbox_executor, handin):
    # One section wrote 3 GB to the host's disk through /out and still scored: /out is now a small
    # tmpfs inside the sandbox, renewed per section; the trusted side reads back two named files.
    from sandbox import Limits

    cap = Limits().out_bytes
    prepend(handin, "mytorch/nn/loss.py",
            "import errno as _errno, os\n"
            "_written, _files, _err = 0, 0, None\n"
            "try:\n"
            "    while _written < 3 * 1024 ** 3:\n"
            "        with open(f'/out/junk{_files}', 'wb') as _f:\n"
            "            _files += 1\n"
            "            for _ in range(8):\n"
            "                _f.write(b'\\0' * (1 << 20))\n"
            "                _written += 1 << 20\n"
            "except OSError as _exc:\n"
            "    _err = _errno.errorcode[_exc.errno]\n"
            "for _name in os.listdir('/out'):\n"
            "    os.unlink(os.path.join('/out', _name))\n"
            "raise RuntimeError(f'WROTE {_written} STOPPED {_err}')\n")
    result = grade(handin, sandbox_executor, suite=HW1P1)
    text = feedback(result, "Loss")
    written = int(text.split("WROTE ")[1].split()[0])
    assert "STOPPED ENOSPC" in text, text
    assert written <= cap, text
    assert result.score == 90


def test_proc_hides_host_mountinfo(sandbox_executor, handin, tmp_path):
    # The section's /proc showed the job directory and the repository in mountinfo, and host-wide
    # counters. Job files are now copies in the sandbox's own root, and the counters are masked.
    prepend(handin, "mytorch/nn/linear.py",
            "def _proc():\n"
            "    roots = [line.split()[3] for line in open('/proc/self/mountinfo')]\n"
            "    sizes = {}\n"
            "    for name in ('meminfo', 'stat', 'loadavg', 'uptime', 'diskstats', 'vmstat'):\n"
            "        try:\n"
            "            sizes[name] = len(open('/proc/' + name).read())\n"
            "        except OSError:\n"
            "            sizes[name] = -1\n"
            "    return f'ROOTS={roots} SIZES={sizes}'\n"
            "raise RuntimeError(_proc())\n")
    work = tmp_path / "work"
    work.mkdir()
    result = grade(handin, sandbox_executor, workdir=work, suite=HW1P1)
    text = feedback(result, "Linear Layer")
    assert "ROOTS=" in text and "SIZES=" in text, text
    roots = text.split("ROOTS=")[1].split(" SIZES=")[0]
    # The numpy/scipy runtime bind shows where it is installed (documented); a checkout under /tmp
    # with .venv inside it, as CI may use, must not trip the other secrets through it.
    import numpy
    runtime = str(Path(numpy.__file__).resolve().parents[1])
    shown = [r for r in ast.literal_eval(roots) if not r.startswith(runtime)]
    for secret in (str(work), str(ROOT / "grader"), "grade-", "sandbox-slot", "/tmp/"):
        assert not any(secret in r for r in shown), (secret, roots)
    sizes = text.split("SIZES=")[1]
    assert all(size in (0, -1) for size in ast.literal_eval(sizes[:sizes.index("}") + 1]).values()), sizes


def test_a_section_cannot_leave_state_for_the_next(sandbox_executor, handin):
    # loss.py (the Loss section) leaves files in /tmp, /dev/shm and /out and a daemon; batchnorm.py
    # (a later section, same sandbox) fails if it finds any of them.
    prepend(handin, "mytorch/nn/loss.py",
            "import os, time\n"
            "for _path in ('/tmp/left', '/dev/shm/left', '/out/left'):\n"
            "    open(_path, 'w').write('x')\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            "        time.sleep(60)\n"
            "        os._exit(0)\n"
            "    os._exit(0)\n")
    prepend(handin, "mytorch/nn/batchnorm.py",
            "import os\n"
            "_left = [p for p in ('/tmp/left', '/dev/shm/left', '/out/left') if os.path.exists(p)]\n"
            "_others = [p for p in os.listdir('/proc') if p.isdigit() and int(p) not in (1, os.getpid())]\n"
            "if _left or _others:\n"
            "    raise RuntimeError(f'LEFT {_left} {_others}')\n")
    result = grade(handin, sandbox_executor, suite=HW1P1)
    assert result.score == 100, [(s.name, s.message, [t.message for t in s.tests]) for s in result.sections
                                 if not s.passed]


def test_a_section_cannot_break_the_shared_process_for_the_next(sandbox_executor, handin):
    # loss.py breaks numpy in its process; SGD and Batch Norm, which come later and use np.sum,
    # run in processes of their own and keep their points.
    prepend(handin, "mytorch/nn/loss.py", "np.sum = lambda *args, **kwargs: 0.0\n")
    result = grade(handin, sandbox_executor, suite=HW1P1)
    scores = {s.name: s.score for s in result.sections}
    assert scores["Loss"] == 0 and result.score == 90, scores


def test_every_section_runs_in_a_process_no_other_section_ran_in(sandbox_executor, handin, tmp_path):
    # Each graded file leaves a mark in builtins and fails if another section's mark is there:
    # the handin scores full only if no section's process ever saw another section's code.
    marks = {"mytorch/nn/loss.py": "loss", "mytorch/optim/sgd.py": "sgd", "mytorch/nn/batchnorm.py": "batchnorm"}
    for path, mark in marks.items():
        prepend(handin, path, "import builtins as _b\n"
                              f"if getattr(_b, '_section_marks', set()) - {{{mark!r}}}:\n"
                              "    raise RuntimeError(f'another section ran here: {_b._section_marks}')\n"
                              f"_b._section_marks = getattr(_b, '_section_marks', set()) | {{{mark!r}}}\n")
    result = grade(handin, sandbox_executor, suite=HW1P1)
    assert result.score == 100, [(s.name, s.message, [t.message for t in s.tests]) for s in result.sections
                                 if not s.passed]
    assert set(result.timings) == {"unpack", "reference", "student", "compare", "total"}   # no second pass


def test_a_section_crash_hang_or_memory_blowup_costs_only_that_section(sandbox_executor, handin):
    prepend(handin, "mytorch/nn/loss.py",  # memory: four processes of 400 MB against a 1 GiB cgroup
            "import os, time\n"
            "_kids = []\n"
            "for _ in range(4):\n"
            "    _pid = os.fork()\n"
            "    if _pid == 0:\n"
            "        _block = bytearray(b'\\x01') * (400 << 20)\n"
            "        time.sleep(5)\n"
            "        os._exit(0)\n"
            "    _kids.append(_pid)\n"
            "for _pid in _kids:\n"
            "    os.waitpid(_pid, 0)\n")
    prepend(handin, "mytorch/optim/sgd.py", "import ctypes\nctypes.string_at(0)\n")  # crash
    prepend(handin, "mytorch/nn/batchnorm.py", "import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)\n")
    result = grade(handin, sandbox_executor, suite=HW1P1)
    scores = {s.name: s.score for s in result.sections}
    assert scores == {"Linear Layer": 15, "Activation": 10, "MLP0": 10, "MLP1": 10, "MLP4": 15, "Loss": 0,
                      "SGD": 0, "Batch Norm": 0}, [(s.name, s.message) for s in result.sections]
    messages = {s.name: s.message or "" for s in result.sections}
    assert "Memory limit" in messages["Loss"] or "MemoryError" in messages["Loss"], messages["Loss"]
    assert "signal 11" in messages["SGD"], messages["SGD"]
    assert "Time limit" in messages["Batch Norm"], messages["Batch Norm"]


def test_job_directories_are_private(sandbox_executor, handin, tmp_path):
    # The job directory holds the student's code: nobody but the service may traverse it on the
    # host (the sandbox binds in what the slot reads).
    seen = []
    prepend(handin, "mytorch/nn/loss.py", "")
    work = tmp_path / "work"
    work.mkdir()

    class Spy:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def run_handin(self, job, *args, **kwargs):
            seen.append(stat.S_IMODE(os.stat(job).st_mode))
            return self.inner.run_handin(job, *args, **kwargs)

    result = grade(handin, Spy(sandbox_executor), suite=HW1P1, workdir=work)
    assert result.score == 100
    assert seen and all(mode & 0o077 == 0 for mode in seen), [oct(m) for m in seen]


def test_forged_time_limit_report_neither_scores_nor_shows_hostile_frames(handin):
    """Issue 20 item 3: the runner reports where a section was when its time ran out, and that
    report is written inside the student's process. A handin that replaces the runner's handler
    with its own, writing a report in which every test is clean but one "was running" (with frames
    outside the handin, a made-up function name and a huge line of code), and then spins until the
    kill, still scores 0 for the section, and only well-formed frames reach the page."""
    import sandbox
    from grader.execute import SandboxExecutor

    prepend(handin, "mytorch/nn/loss.py",
            "import gc, json, os, signal\n"
            "def _forge(signum, frame):\n"
            "    watch = next(o for o in gc.get_objects() if type(o).__name__ == '_TimeLimitWatch')\n"
            "    tests = watch.section['tests']\n"
            "    reports = [{'name': t['name'], 'error': None, 'bad_values': {}} for t in tests]\n"
            "    reports[-1].update(kind='time_limit', location={'path': 'mytorch/nn/loss.py', 'line': 3},\n"
            "                       stack=[{'path': '../../etc/passwd', 'line': 1, 'function': 'f', 'code': 'x'},\n"
            "                              {'path': '/etc/shadow.py', 'line': 2, 'function': 'g', 'code': 'y'},\n"
            "                              {'path': 'mytorch/nn/loss.py', 'line': 3,\n"
            "                               'function': '<script>alert(1)</script>', 'code': 'A' * 5000}])\n"
            "    open(os.path.join(watch.out_dir, 'report.json'), 'w').write(json.dumps({'tests': reports}))\n"
            "    open(os.path.join(watch.out_dir, 'outputs.safetensors'), 'wb').write((8).to_bytes(8, 'little') + b'{}      ')\n"
            "signal.signal(signal.SIGALRM, _forge)\n"
            "signal.signal(signal.SIGXCPU, _forge)\n")
    loss = handin / "mytorch/nn/loss.py"
    loss.write_text(loss.read_text().replace(
        "    def backward(self):\n        return 2 * (self.A - self.Y)",
        "    def backward(self):\n        while True:\n            pass\n        return 2 * (self.A - self.Y)", 1))
    try:
        executor = SandboxExecutor(slots=1, first_slot=300, limits=sandbox.Limits(cpu_seconds=2, wall_seconds=5))
    except sandbox.BackendUnavailable as exc:
        pytest.skip(f"no sandbox backend on this kernel: {exc}")
    try:
        result = grade(handin, executor, suite=HW1P1)
    finally:
        executor.close()
    stopped = section(result, "Loss")
    assert stopped.score == 0 and not stopped.passed, stopped
    assert "Time limit" in stopped.message, stopped.message
    killed = [t for t in stopped.tests if t.stopped == "time_limit"]
    assert len(killed) == 1 and not killed[0].passed
    assert "etc/passwd" not in killed[0].error and "shadow" not in killed[0].error, killed[0].error
    assert "<script>" not in killed[0].error and "A" * 201 not in killed[0].error, killed[0].error
    assert result.score == 90   # every other section as it is
