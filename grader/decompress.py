"""Bounded decompression of an uploaded archive: the only place a handin's compressed bytes are
expanded (gzip, bzip2 and xz tars; a zip's stored, deflate, bzip2 and lzma members).

A hostile archive can ask a decompressor for gigabytes (a 3 KiB bzip2 stream unpacks to 3 GiB),
and the stdlib readers ask for it in one call (tarfile's stream mode hands a whole 16 KiB
compressed read to bz2, zipfile a 4 KiB one to bz2 and lzma). Here every decompressor is fed
INPUT_CHUNK compressed bytes at a time and asked for at most OUTPUT_CHUNK bytes per call
(`max_length`), and every byte it gives is counted against one `Budget` for the whole archive
while it streams:

- at most `Budget.limit` bytes in all (`UnpackLimits.stream_bytes`, 32 MiB by default), and
- never more than RATIO_FLOOR + MAX_RATIO x the compressed bytes fed so far (1 MiB + 100x).

So reading a hostile archive costs at most min(limit, RATIO_FLOOR + MAX_RATIO x its size) bytes of
decompression work (CPU is linear in that), and its memory is the upload, one OUTPUT_CHUNK, and the
decompressor's own state: zlib's 32 KiB window, bzip2's ~3.6 MiB block, an xz or lzma dictionary
of at most LZMA_DICT_LIMIT (larger ones are refused before decoding; a dictionary only becomes
resident as output fills it, so that is bounded by the budget as well).
"""

from __future__ import annotations

import bz2
import io
import lzma
import struct
import zlib
from collections.abc import Callable
from typing import Protocol

from grader.errors import HandinError

INPUT_CHUNK = 16 << 10
OUTPUT_CHUNK = 64 << 10
MAX_RATIO = 100               # real handins compress 1:3 to 1:20 (source text, tar padding)
RATIO_FLOOR = 1 << 20         # a small archive may always unpack to this much
LZMA_DICT_LIMIT = 64 << 20    # xz -9's dictionary; xz's own default (-6) is 8 MiB
_XZ_MEMORY_LIMIT = LZMA_DICT_LIMIT + (8 << 20)   # the dictionary plus liblzma's own tables


class Budget:
    """Decompressed bytes allowed for one archive, counted as they are produced."""

    def __init__(self, limit: int):
        self.limit = limit
        self.fed = 0          # compressed bytes handed to a decompressor
        self.produced = 0     # bytes it gave back

    def allowed(self) -> int:
        return min(self.limit, RATIO_FLOOR + MAX_RATIO * self.fed)

    def spend(self, n: int) -> None:
        self.produced += n
        if self.produced > self.limit:
            raise HandinError("too_large", f"The archive unpacks to more than {self.limit >> 20} MiB "
                                           "(files, headers and skipped entries together).")
        if self.produced > self.allowed():
            raise HandinError("too_large", f"The archive unpacks to more than {MAX_RATIO} times its "
                                           "compressed size, which no handin of source code does.")


class _Decompressor(Protocol):
    eof: bool
    needs_input: bool
    unused_data: bytes

    def decompress(self, data: bytes, max_length: int) -> bytes: ...


class _Zlib:
    """zlib's decompressor behind bz2's and lzma's interface (it keeps unread input apart)."""

    def __init__(self, wbits: int):
        self._d = zlib.decompressobj(wbits)

    @property
    def eof(self) -> bool:
        return self._d.eof

    @property
    def needs_input(self) -> bool:
        return not self._d.unconsumed_tail

    @property
    def unused_data(self) -> bytes:
        return self._d.unused_data

    def decompress(self, data: bytes, max_length: int) -> bytes:
        return self._d.decompress(self._d.unconsumed_tail + data, max_length)


class DecompressedStream(io.RawIOBase):
    """The decompressed bytes of DATA, produced OUTPUT_CHUNK at most per read and charged to BUDGET.

    CONCATENATED: DATA may hold several streams back to back (gzip members, pbzip2's bzip2 streams,
    xz streams), as gzip, bzip2 and xz themselves accept; whatever follows the last one that does
    not start a valid stream is ignored, as the stdlib's readers do. Otherwise (a zip member) DATA
    holds one stream, which also ends where DATA does (raw lzma needs no end marker)."""

    def __init__(self, data: bytes, new: Callable[[], _Decompressor], budget: Budget, *, concatenated: bool,
                 crc: int | None = None):
        self._data = memoryview(data)
        self._crc, self._expected_crc = 0, crc
        self._pos = 0
        self._new = new
        self._d = new()
        self._budget = budget
        self._concatenated = concatenated
        self._pending = b""     # input the previous stream did not use: the next stream's start
        self._streams = 1
        self._started = False   # the current stream has produced output (so it is not trailing junk)
        self._done = False

    def readable(self) -> bool:
        return True

    def _next_input(self) -> bytes:
        chunk = bytes(self._data[self._pos:self._pos + INPUT_CHUNK])
        self._pos += len(chunk)
        self._budget.fed += len(chunk)
        return chunk

    def _next_stream(self) -> bool:
        """After a stream's end: start the next one, or say there is none."""
        rest = self._d.unused_data
        if not self._concatenated or not (rest or self._pos < len(self._data)):
            return False
        self._d, self._started, self._pending = self._new(), False, rest
        self._streams += 1
        return True

    def readinto(self, buffer) -> int:
        want = min(len(buffer), OUTPUT_CHUNK)
        if self._done or want == 0:
            return 0
        while True:
            if self._d.eof and not self._next_stream():
                return self._end()
            data, self._pending = self._pending, b""
            data = data or (self._next_input() if self._d.needs_input else b"")
            try:
                out = self._d.decompress(data, want)
            except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
                if not self._started and self._streams > 1:
                    return self._end()   # trailing bytes after the last stream: ignored, as gzip does
                if "Memory usage limit" in str(exc):
                    raise _dictionary_too_large() from None
                raise
            if out:
                self._started = True
                self._budget.spend(len(out))
                if self._expected_crc is not None:
                    self._crc = zlib.crc32(out, self._crc)
                buffer[:len(out)] = out
                return len(out)
            if not data and not self._d.eof:
                if self._concatenated:
                    raise EOFError("the compressed stream ends before its end marker")
                return self._end()   # a zip member's stream ends with its data

    def _end(self) -> int:
        self._done = True
        if self._expected_crc is not None and self._crc != self._expected_crc:
            raise HandinError("not_archive", "The zip file is damaged (a member's checksum does not match).")
        return 0


def _dictionary_too_large() -> HandinError:
    return HandinError("too_large", f"The archive's xz or lzma compression needs a dictionary over "
                                    f"{LZMA_DICT_LIMIT >> 20} MiB; compress it with gzip or send a plain tar.")


# --- tar: a whole compressed archive ------------------------------------------------------------

def tar_compression(data: bytes) -> str | None:
    """The compression a tar upload uses, from its first bytes: "gz", "bz2", "xz", or None."""
    if data[:2] == b"\x1f\x8b":
        return "gz"
    if data[:3] == b"BZh":
        return "bz2"
    if data[:6] == b"\xfd7zXZ\x00":
        return "xz"
    return None


def open_compressed(data: bytes, kind: str | None, budget: Budget) -> io.RawIOBase:
    """DATA (a whole archive compressed as KIND, see `tar_compression`) as a bounded stream."""
    factories: dict[str | None, Callable[[], _Decompressor]] = {
        "gz": lambda: _Zlib(16 + zlib.MAX_WBITS),
        "bz2": bz2.BZ2Decompressor,
        "xz": lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=_XZ_MEMORY_LIMIT),
        None: _Stored,
    }
    return DecompressedStream(data, factories[kind], budget, concatenated=kind is not None)


class _Stored:
    """No compression, behind the same interface (a plain tar or a stored zip member is charged
    to the budget too, at a ratio of 1)."""

    eof = False
    unused_data = b""

    def __init__(self):
        self._rest = b""

    @property
    def needs_input(self) -> bool:
        return not self._rest

    def decompress(self, data: bytes, max_length: int) -> bytes:
        data, self._rest = self._rest + data, b""
        self._rest = data[max_length:]
        return data[:max_length]


# --- zip: one member's data -------------------------------------------------------------------------

_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")   # zipfile's structFileHeader (APPNOTE 4.3.7)
ZIP_METHODS = {0: "stored", 8: "deflate", 12: "bzip2", 14: "lzma"}


def zip_member_data(archive: bytes, header_offset: int, compress_size: int) -> bytes:
    """The compressed bytes of the zip member whose local header is at HEADER_OFFSET."""
    header = archive[header_offset:header_offset + _LOCAL_HEADER.size]
    if len(header) < _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
        raise HandinError("not_archive", "The zip file is damaged (a member's header is missing).")
    fields = _LOCAL_HEADER.unpack(header)
    start = header_offset + _LOCAL_HEADER.size + fields[10] + fields[11]   # name and extra lengths
    if start + compress_size > len(archive):
        raise HandinError("not_archive", "The zip file is damaged or truncated (a member runs past its end).")
    return archive[start:start + compress_size]


def open_zip_member(data: bytes, method: int, budget: Budget, *, crc: int) -> io.RawIOBase:
    """A zip member's DATA (see `zip_member_data`), compressed with METHOD, as a bounded stream whose
    end checks CRC."""
    if method == 0:
        new: Callable[[], _Decompressor] = _Stored
    elif method == 8:
        new = lambda: _Zlib(-zlib.MAX_WBITS)
    elif method == 12:
        new = bz2.BZ2Decompressor
    elif method == 14:
        data, filters = _zip_lzma_filters(data)
        new = lambda: lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=filters)
    else:
        raise HandinError("not_archive", f"The zip file uses a compression this server does not read "
                                         f"(method {method}); use deflate, or send a tar.")
    return DecompressedStream(data, new, budget, concatenated=False, crc=crc)


def _zip_lzma_filters(data: bytes) -> tuple[bytes, list[dict]]:
    """A zip lzma member starts with its own header (APPNOTE 5.8.8): version (2 bytes), the size
    of the properties (2), then LZMA1's properties: lc/lp/pb in one byte and the dictionary size."""
    if len(data) < 9:
        raise HandinError("not_archive", "The zip file is damaged (an lzma member is truncated).")
    props_size = int.from_bytes(data[2:4], "little")
    if props_size != 5:
        raise HandinError("not_archive", "The zip file is damaged (an lzma member's header is wrong).")
    packed, dict_size = data[4], int.from_bytes(data[5:9], "little")
    if packed >= 9 * 5 * 5:
        raise HandinError("not_archive", "The zip file is damaged (an lzma member's header is wrong).")
    if dict_size > LZMA_DICT_LIMIT:   # FORMAT_RAW takes no memlimit: judge the dictionary here
        raise _dictionary_too_large()
    lc, lp, pb = packed % 9, packed // 9 % 5, packed // 45
    return data[9:], [{"id": lzma.FILTER_LZMA1, "lc": lc, "lp": lp, "pb": pb, "dict_size": max(dict_size, 4096)}]
