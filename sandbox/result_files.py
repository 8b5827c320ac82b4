"""Reading files that sandboxed code wrote, defensively (the trusted side's weak point).

No symlinks are followed (O_NOFOLLOW relative to the directory), FIFOs and devices are refused
(O_NONBLOCK + fstat S_ISREG), and sizes are capped while reading (`read_result_file`). Arrays come
back as safetensors, parsed by the `safetensors` library (bounds and overlaps checked in Rust; no
code in the format, nothing to unpickle), and only plain real numeric or bool dtypes, in a bounded
number, are accepted (`load_safetensors_bytes`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ResultFileError

if TYPE_CHECKING:
    import numpy

# bool, signed, unsigned, float. Complex is refused: comparing it as float would drop the imaginary part.
ALLOWED_DTYPE_KINDS = frozenset("biuf")
MAX_SAFETENSORS_HEADER_BYTES = 1 << 20


def read_result_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file sandboxed code wrote (no symlink, FIFO or device; capped)."""
    return _read_regular_file(path, max_bytes)


def _read_regular_file(path: Path, max_bytes: int) -> bytes:
    path = Path(path)
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise ResultFileError(f"The result directory for {path.name} cannot be opened ({exc.strerror}).") from exc
    try:
        try:
            fd = os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
        except FileNotFoundError as exc:
            raise ResultFileError(f"The result file {path.name} was not written.") from exc
        except OSError as exc:  # ELOOP for a symlink
            raise ResultFileError(f"The result file {path.name} is not a regular file ({exc.strerror}).") from exc
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise ResultFileError(f"The result file {path.name} is not a regular file.")
            if info.st_size > max_bytes:
                raise ResultFileError(f"The result file {path.name} is larger than {max_bytes} bytes.")
            chunks, total = [], 0
            while chunk := os.read(fd, min(1 << 20, max_bytes + 1 - total)):
                chunks.append(chunk)
                total += len(chunk)
                if total > max_bytes:
                    raise ResultFileError(f"The result file {path.name} is larger than {max_bytes} bytes.")
            return b"".join(chunks)
        finally:
            os.close(fd)
    finally:
        os.close(dir_fd)


def load_safetensors_bytes(data: bytes, name: str, *, max_members: int = 256) -> dict[str, numpy.ndarray]:
    """Arrays from a safetensors file sandboxed code wrote (already read with a size cap, e.g. by
    `read_result_file`); NAME is for messages. Raises ResultFileError (one clear sentence) for a
    damaged file, too many arrays, or any dtype that is not plain real numeric or bool."""
    from safetensors.numpy import load

    header_bytes = int.from_bytes(data[:8], "little") if len(data) >= 8 else None
    if header_bytes is None or header_bytes > MAX_SAFETENSORS_HEADER_BYTES:
        raise ResultFileError(f"The result file {name} is not a valid safetensors file (its header size "
                              "is missing or over the limit).")
    try:
        arrays = load(data)
    except Exception as exc:  # SafetensorError, or a dtype numpy lacks (KeyError)
        raise ResultFileError(f"The result file {name} is not a valid safetensors file ({exc}).") from exc
    if len(arrays) > max_members:
        raise ResultFileError(f"The result file {name} has {len(arrays)} arrays, over the limit of {max_members}.")
    for key, array in arrays.items():
        if array.dtype.kind not in ALLOWED_DTYPE_KINDS:
            raise ResultFileError(f"Array {key} has a forbidden dtype {array.dtype.str!r} "
                                  "(only real numeric and bool arrays are accepted).")
    return {key: array.copy() for key, array in arrays.items()}  # writable, and no view of DATA
