"""Per-run overhead of the sandbox: a trivial script that imports numpy and scipy.special, run
(1) as a plain python subprocess, (2) through the bwrap exec path, (3) through the zygote, one
sandbox per run, and (4) as 8 tasks of one batch sandbox (`Sandbox.run_batch`, what grading a
handin's 8 sections costs), per task. Prints median and p90 wall time per run. Run as root: `python bench/sandbox.py [runs]`."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sandbox import Sandbox, SlotBusy

SCRIPT = ("import numpy, scipy.special\n"
          "def main(argv):\n"
          "    print(scipy.special.gamma(numpy.float64(5.0)))\n"
          "    return 0\n"
          "if __name__ == '__main__':\n"
          "    main([])\n")
BATCH = 8


def measure(label: str, run, runs: int, per: int = 1) -> None:
    run()  # warm up (page cache, zygote)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) / per)
    times.sort()
    p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
    print(f"{label:<36} median {statistics.median(times) * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms   "
          f"(n={runs}{f' x {per}' if per > 1 else ''})")



def free_slot(zygote: bool) -> Sandbox:
    for slot in range(4500, 4900):
        try:
            return Sandbox(slot, zygote=zygote)
        except SlotBusy:
            continue
    raise SystemExit("no free slot")


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp, "run.py")
        script.write_text(SCRIPT)
        script.chmod(0o644)
        out = Path(tmp, "out")
        out.mkdir()

        def plain() -> None:
            subprocess.run([sys.executable, "-I", "-B", str(script)], check=True, capture_output=True)

        measure("plain python subprocess", plain, runs)
        for zygote, label in ((False, "bwrap exec path"), (True, "zygote path")):
            with free_slot(zygote) as sandbox:
                def sandboxed() -> None:
                    result = sandbox.run_python(script, [], ro_binds=[], out_dir=out)
                    assert result.outcome == "ok", result
                measure(f"{label} ({sandbox.backend_name})", sandboxed, runs)
                if zygote:
                    def batch() -> None:
                        results = sandbox.run_batch(script, [[]] * BATCH, ro_binds=[], read_back=())
                        assert all(r.outcome == "ok" for r in results), results
                    measure(f"zygote batch, per task ({BATCH} tasks)", batch, max(1, runs // 4), per=BATCH)


if __name__ == "__main__":
    main()
