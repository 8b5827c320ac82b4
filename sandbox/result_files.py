"""Reading files that sandboxed code wrote, defensively (the trusted side's weak point).

No symlinks are followed (O_NOFOLLOW relative to the directory), FIFOs and devices are refused
(O_NONBLOCK + fstat S_ISREG), sizes are capped before reading, zip members are counted and read with a
byte cap (declared sizes are never trusted), every .npy header is checked before any allocation, only
plain real numeric dtypes are accepted, and the payload is decoded with np.frombuffer, which cannot
unpickle (stricter than np.load(allow_pickle=False)). Safetensors files are parsed by the
`safetensors` library (bounds and overlaps checked in Rust; no code in the format), then held to the
same dtype and count rules.
"""

from __future__ import annotations

import io
import math
import os
import stat
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ResultFileError

if TYPE_CHECKING:
    import numpy

# bool, signed, unsigned, float. Complex is refused: comparing it as float would drop the imaginary part.
ALLOWED_DTYPE_KINDS = frozenset("biuf")
MAX_HEADER_BYTES = 10_000
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


def read_text_safely(path: Path, max_bytes: int) -> str:
    """Read a small UTF-8 text file (e.g. a JSON report) written by sandboxed code."""
    data = _read_regular_file(path, max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ResultFileError(f"The result file {Path(path).name} is not valid UTF-8 text.") from exc


def _read_capped(stream: io.BufferedIOBase, limit: int) -> bytes:
    """Read at most limit + 1 bytes, whatever the zip header claims."""
    chunks, total = [], 0
    while total <= limit and (chunk := stream.read(min(1 << 20, limit + 1 - total))):
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _load_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, max_array_bytes: int) -> numpy.ndarray:
    import numpy as np
    from numpy.lib import format as npy_format

    with zf.open(info) as member:
        version = npy_format.read_magic(member)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(member, max_header_size=MAX_HEADER_BYTES)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(member, max_header_size=MAX_HEADER_BYTES)
        else:  # 3.0 exists only for structured dtypes with unicode names, which are refused anyway
            raise ResultFileError(f"Array {info.filename} has an unsupported .npy version {version}.")
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None \
                or dtype.kind not in ALLOWED_DTYPE_KINDS:
            raise ResultFileError(f"Array {info.filename} has a forbidden dtype {dtype.str!r} "
                                  "(only real numeric and bool arrays are accepted).")
        if any(not isinstance(n, int) or n < 0 for n in shape):
            raise ResultFileError(f"Array {info.filename} declares an invalid shape.")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > max_array_bytes:
            raise ResultFileError(f"Array {info.filename} declares {nbytes} bytes, over the "
                                  f"{max_array_bytes}-byte limit.")
        payload = _read_capped(member, nbytes)
    if len(payload) != nbytes:
        raise ResultFileError(f"Array {info.filename} holds {'more' if len(payload) > nbytes else 'fewer'} "
                              "bytes than its header declares.")
    array = np.frombuffer(payload, dtype=dtype)
    return array.reshape(shape, order="F" if fortran else "C").copy()


def load_npz_safely(path: Path, *, max_file_bytes: int = 64 << 20, max_members: int = 256,
                    max_array_bytes: int = 64 << 20, max_total_bytes: int = 256 << 20
                    ) -> dict[str, numpy.ndarray]:
    """Load an .npz written by sandboxed code into {name: array}. Raises ResultFileError (one clear
    sentence) for anything suspicious: symlink, FIFO, too big, too many members, bad header, pickled
    or structured data, a payload that does not match its header (deflate bombs are cut off)."""
    return load_npz_bytes(_read_regular_file(path, max_file_bytes), Path(path).name, max_members=max_members,
                          max_array_bytes=max_array_bytes, max_total_bytes=max_total_bytes)


def load_npz_bytes(data: bytes, name: str, *, max_members: int = 256, max_array_bytes: int = 64 << 20,
                   max_total_bytes: int = 256 << 20) -> dict[str, numpy.ndarray]:
    """`load_npz_safely` for an .npz already read (e.g. by `read_result_file`); NAME is for messages."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            if len(infos) > max_members:
                raise ResultFileError(f"The result file {name} has {len(infos)} members, over the "
                                      f"limit of {max_members}.")
            arrays: dict[str, numpy.ndarray] = {}
            total = 0
            for info in infos:
                if not info.filename.endswith(".npy") or info.flag_bits & 0x1 \
                        or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    raise ResultFileError(f"The result file {name} has an unexpected member {info.filename!r}.")
                key = info.filename[:-4]
                if key in arrays:
                    raise ResultFileError(f"The result file {name} has a duplicate member {info.filename!r}.")
                array = _load_member(zf, info, min(max_array_bytes, max_total_bytes - total))
                total += array.nbytes
                arrays[key] = array
            return arrays
    except ResultFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, KeyError,
            NotImplementedError, RuntimeError, SyntaxError, TypeError) as exc:
        raise ResultFileError(f"The result file {name} is not a valid .npz archive ({exc}).") from exc


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
