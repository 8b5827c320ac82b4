"""Process isolation for untrusted Python: bubblewrap (or a zygote with the same guarantees),
per-slot uids, rlimits, cgroups, seccomp, and a safe reader for the files it writes back.

Knows nothing about grading. Default limits are documented in `sandbox.limits`.
"""

from .errors import BackendUnavailable, ResultFileError
from .limits import Limits
from .result import RunResult
from .result_files import load_safetensors_bytes, read_result_file
from .sandbox import Sandbox, SlotBusy
from .selfcheck import check_backend
from .unsafe import UnsafeSandbox

__all__ = [
    "BackendUnavailable", "Limits", "ResultFileError", "RunResult", "Sandbox", "SlotBusy", "UnsafeSandbox",
    "check_backend", "load_safetensors_bytes", "read_result_file",
]
