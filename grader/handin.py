"""Safe unpacking of a handin and detection of its layout.

Accepts a plain, gzip, bzip2 or xz tar (whatever the file is called), a zip (stored, deflate,
bzip2 or lzma), or a directory. Only regular files and folders are accepted; links, devices,
absolute paths and `..` are refused, and so is every name a disk could refuse to create (control
characters, bytes that are not UTF-8, a component over NAME_MAX_BYTES, a path over PATH_MAX_BYTES,
a file and a folder of the same name). One reader serves two sinks: `check_handin` (the web tier,
writing nothing) and `unpack_handin` (the worker, writing files), so both refuse exactly the same
archives. Decompression is bounded while it streams (grader/decompress.py: a bzip2 or zip bomb
stops after a few MiB), and the unpacked sizes are checked while streaming too. Noise that real
handins carry (`__pycache__`, `.pyc`, `.DS_Store`, AppleDouble `._*`, `PaxHeader` folders) is
dropped, so bytecode from a handin is never executed. The suite's layout names the graded folders
(HW1P1: `models/` and `mytorch/`); they may sit at the archive root or under one wrapping folder;
everything else is ignored with a note.
"""

from __future__ import annotations

import errno
import hashlib
import io
import lzma
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from grader import decompress
from grader.errors import GraderBug, HandinError
from grader.suite import Layout

__all__ = ["ARCHIVE_SUFFIXES", "Handin", "HandinError", "HandinFile", "UnpackLimits", "check_handin", "read_handin_files",
           "unpack_handin"]

# A PAX or GNU long-name header is read into memory whole by tarfile: cap its size (real ones hold
# a path and a few times, well under 1 KiB) and how many may precede one member (tarfile chains
# them recursively).
MAX_EXTENDED_HEADER_BYTES = 64 << 10
MAX_EXTENDED_HEADERS_IN_A_ROW = 8
_EXTENDED_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
                   tarfile.GNUTYPE_LONGLINK)


# File names of the archives unpack_handin reads (it decides by content; a browser's file picker
# and the upload form's early check use these names, so the form and the API take the same files).
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip")

# Names the unpack can always create, whatever the destination (under PATH_MAX_BYTES of its own):
# Linux refuses a component over NAME_MAX (255 bytes) and a path over PATH_MAX (4096).
NAME_MAX_BYTES = 255
PATH_MAX_BYTES = 1024


@dataclass(frozen=True)
class UnpackLimits:
    archive_bytes: int = 10 << 20      # the upload itself
    unpacked_bytes: int = 20 << 20     # sum of all regular files
    file_bytes: int = 5 << 20          # any one file
    stream_bytes: int = 32 << 20       # everything decompressed: files, headers, skipped entries
    members: int = 2000
    depth: int = 16


@dataclass
class Handin:
    root: Path                    # contains the layout's packages (HW1P1: models/ and/or mytorch/)
    digest: str                   # sha256 over the graded files' paths and bytes
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HandinFile:
    path: str       # as graded: relative to the folder holding the layout's packages
    size: int
    head: bytes     # its first bytes (all of it when it is short)


def _ignored(parts: tuple[str, ...]) -> bool:
    name = parts[-1]
    return (any(p in ("__pycache__", "PaxHeader", "PaxHeaders") or p.startswith("._") for p in parts)
            or name.endswith((".pyc", ".pyo")) or name == ".DS_Store")


def _shown(name: str) -> str:
    """NAME as it can stand in a one-line sentence: control characters and bytes that are not
    UTF-8 (tarfile keeps them as surrogates) escaped, a long name cut in the middle."""
    def char(c: str) -> str:
        if 0xDC80 <= ord(c) <= 0xDCFF:
            return f"\\x{ord(c) - 0xDC00:02x}"
        return c if c.isprintable() else ascii(c)[1:-1]
    shown = "".join(map(char, name))
    return shown if len(shown) <= 80 else shown[:60] + "..." + shown[-17:]


def _check_name(name: str, parts: tuple[str, ...]) -> None:
    """Refuse a name the disk sink could fail to create, so the check refuses it first."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise HandinError("bad_name", f"The archive has a name with a control character ({_shown(name)}); "
                                      "rename the file.")
    try:
        encoded = [p.encode("utf-8") for p in parts]
    except UnicodeEncodeError:
        raise HandinError("bad_name", f"The archive has a name that is not UTF-8 ({_shown(name)}); "
                                      "rename the file.") from None
    if any(len(p) > NAME_MAX_BYTES for p in encoded):
        raise HandinError("bad_name", f"The archive has a name longer than {NAME_MAX_BYTES} bytes "
                                      f"({_shown(name)}).")
    if sum(len(p) + 1 for p in encoded) > PATH_MAX_BYTES:
        raise HandinError("bad_name", f"The archive has a path longer than {PATH_MAX_BYTES} bytes "
                                      f"({_shown(name)}).")


def _too_many_members(limits: UnpackLimits) -> HandinError:
    return HandinError("too_many_members", f"The archive has more than {limits.members} entries.")


def _safe_parts(name: str, limits: UnpackLimits) -> tuple[str, ...]:
    if "\\" in name:
        name = name.replace("\\", "/")
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("/"):
        raise HandinError("unsafe_member", f"The archive contains an absolute path ({_shown(name)}); "
                                           "build it with create_tarball.sh from the handout folder.")
    parts = tuple(p for p in path.parts if p not in ("", "."))
    if ".." in parts:
        raise HandinError("unsafe_member", f"The archive contains a path that leaves its folder ({_shown(name)}).")
    if len(parts) > limits.depth:
        raise HandinError("unsafe_member", f"The archive nests folders too deeply ({_shown(name)}).")
    _check_name(name, parts)
    return parts


class _Listing:
    """Reads every member as unpacking does, enforcing the size and count limits as it goes, and
    records the tree (folders, top-level names) without writing anything: the web tier's check."""

    dest = Path("/nonexistent-handin-listing")   # tarfile's data filter judges names against a folder

    def __init__(self, limits: UnpackLimits):
        self.limits = limits
        self.total = self.count = 0
        self.kinds: dict[tuple[str, ...], bool] = {}   # every path seen, parents included: is it a folder
        self.folders: set[tuple[str, ...]] = set()

    def member(self) -> None:
        self.count += 1
        if self.count > self.limits.members:
            raise _too_many_members(self.limits)

    def _admit(self, parts: tuple[str, ...], folder: bool) -> None:
        """Record PARTS (and its parents as folders), refusing a path that is a file in one entry
        and a folder in another: the disk holds one or the other."""
        for i in range(1, len(parts) + 1):
            path, is_folder = parts[:i], folder or i < len(parts)
            if self.kinds.setdefault(path, is_folder) != is_folder:
                raise HandinError("bad_name", "The archive has a file and a folder with the same name "
                                              f"({_shown('/'.join(path))}).")
            if is_folder:
                self.folders.add(path)

    def names_in(self, folder: tuple[str, ...]) -> set[str]:
        """The names of the files and folders directly in FOLDER (() is the archive's root)."""
        depth = len(folder)
        return {p[depth] for p in self.kinds if len(p) == depth + 1 and p[:depth] == folder}

    def directory(self, parts: tuple[str, ...]) -> None:
        self._admit(parts, folder=True)

    def file(self, parts: tuple[str, ...], stream) -> None:
        self._admit(parts, folder=False)
        self.open(parts)
        try:
            size = 0
            while chunk := stream.read(1 << 16):
                size += len(chunk)
                self.total += len(chunk)
                if size > self.limits.file_bytes or self.total > self.limits.unpacked_bytes:
                    raise HandinError("too_large", "The archive unpacks to more than "
                                      f"{self.limits.unpacked_bytes >> 20} MiB (or one file to more "
                                      f"than {self.limits.file_bytes >> 20} MiB).")
                self.write(chunk)
        except BaseException:
            self.abandon()
            raise
        self.close(parts)

    def open(self, parts: tuple[str, ...]) -> None:
        """Where a file's bytes go: nowhere while listing."""

    def write(self, chunk: bytes) -> None:
        pass

    def close(self, parts: tuple[str, ...]) -> None:
        pass

    def abandon(self) -> None:
        """The file stopped half-way (a refusal)."""


class _Writer(_Listing):
    """Writes members under DEST as well."""

    def __init__(self, dest: Path, limits: UnpackLimits):
        super().__init__(limits)
        self.dest = dest
        self._out = None

    def directory(self, parts: tuple[str, ...]) -> None:
        super().directory(parts)
        try:
            self.dest.joinpath(*parts).mkdir(parents=True, exist_ok=True)
        except (OSError, ValueError) as exc:
            raise _failed(exc, parts) from exc

    def open(self, parts: tuple[str, ...]) -> None:
        target = self.dest.joinpath(*parts)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        except (OSError, ValueError) as exc:
            raise _failed(exc, parts) from exc
        self._out = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        try:
            self._out.write(chunk)
        except OSError as exc:   # a full disk, say: ours
            raise GraderBug(f"unpacking the handin failed on the grader's disk: {exc}") from exc

    def close(self, parts: tuple[str, ...]) -> None:
        try:
            self._out.close()
            self.dest.joinpath(*parts).chmod(0o644)
        except OSError as exc:
            raise _failed(exc, parts) from exc
        finally:
            self._out = None

    def abandon(self) -> None:
        if self._out is not None:   # the half-written file goes with the job folder
            self._out.close()
            self._out = None


class _Keeper(_Listing):
    """Keeps each file's size and first KEEP bytes in memory (at most the unpacked-bytes cap in all)."""

    def __init__(self, limits: UnpackLimits, keep: int):
        super().__init__(limits)
        self.keep = keep
        self.files: dict[tuple[str, ...], tuple[int, bytes]] = {}   # a later entry of one path replaces it
        self._head = bytearray()
        self._size = 0

    def open(self, parts: tuple[str, ...]) -> None:
        self._head, self._size = bytearray(), 0

    def write(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if len(self._head) < self.keep:
            self._head += chunk[:self.keep - len(self._head)]

    def close(self, parts: tuple[str, ...]) -> None:
        self.files[parts] = (self._size, bytes(self._head))


# What a name alone can make the disk refuse. `_check_name` and `_admit` refuse all of it first;
# should one slip through, it is still the archive's refusal, never a grader error.
_NAME_ERRNOS = {errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.EILSEQ, errno.EINVAL}


def _failed(exc: OSError | ValueError, parts: tuple[str, ...]) -> Exception:
    if isinstance(exc, ValueError) or exc.errno in _NAME_ERRNOS:   # ValueError: an embedded NUL
        return HandinError("bad_name", f"The archive has a name this server cannot create "
                                       f"({_shown('/'.join(parts))}); rename the file.")
    return GraderBug(f"unpacking the handin failed on the grader's disk: {exc}")


class _CappedTarInfo(tarfile.TarInfo):
    """Refuses an oversized or endless run of extended headers before tarfile reads one into memory."""

    def _proc_member(self, tarfile_):
        if self.type in _EXTENDED_TYPES:
            if self.size > MAX_EXTENDED_HEADER_BYTES:
                raise HandinError("unsafe_member", f"The archive has an extended (PAX or long-name) header of "
                                                   f"{self.size} bytes, over the {MAX_EXTENDED_HEADER_BYTES >> 10} "
                                                   "KiB limit.")
            in_a_row = getattr(tarfile_, "_extended_in_a_row", 0) + 1
            if in_a_row > MAX_EXTENDED_HEADERS_IN_A_ROW:
                raise HandinError("unsafe_member", "The archive has more than "
                                  f"{MAX_EXTENDED_HEADERS_IN_A_ROW} extended headers in a row.")
            tarfile_._extended_in_a_row = in_a_row
        else:
            tarfile_._extended_in_a_row = 0
        return super()._proc_member(tarfile_)


def open_tar_stream(data: bytes, budget: decompress.Budget) -> tarfile.TarFile:
    """A tar (any compression) read in stream mode with extended headers capped, its decompression
    bounded by BUDGET: for every reader of an uploaded tar (the web tier's check and the worker's
    unpack). tarfile itself decompresses nothing: its own stream reader hands a decompressor a
    whole read at once and copies what comes out again and again."""
    stream = decompress.open_compressed(data, decompress.tar_compression(data), budget)
    return tarfile.open(fileobj=stream, mode="r|", tarinfo=_CappedTarInfo)


def _kind_of(member: tarfile.TarInfo) -> str:
    if member.issym():
        return "a symbolic link"
    if member.islnk():
        return "a hard link"
    if member.ischr() or member.isblk():
        return "a device file"
    if member.isfifo():
        return "a FIFO"
    return "a special file"


def _unpack_tar(data: bytes, writer: _Listing, limits: UnpackLimits) -> None:
    try:
        # Stream mode ("r|") reads members in order and never seeks, so limits apply as it goes.
        with open_tar_stream(data, decompress.Budget(limits.stream_bytes)) as archive:
            for member in archive:
                writer.member()
                parts = _safe_parts(member.name, limits)
                if not parts or _ignored(parts):
                    continue
                if member.isdir():
                    writer.directory(parts)
                elif member.isreg():
                    tarfile.data_filter(member, str(writer.dest))  # the stdlib's own safety rules
                    writer.file(parts, archive.extractfile(member))
                else:
                    raise HandinError("unsafe_member", f"The archive contains {_kind_of(member)} "
                                      f"({_shown(member.name)}); only regular files and folders are accepted.")
    except tarfile.FilterError as exc:
        raise HandinError("unsafe_member", f"The archive contains an unsafe entry: {_shown(str(exc))}.") from None
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
        raise HandinError("not_archive", f"The archive is damaged or truncated ({_shown(str(exc))}).") from None


def _central_directory_entries(data: bytes) -> int:
    """How many entries the zip's central directory may hold, counted before zipfile parses it
    (it keeps an object per entry: 120,000 empty entries fit a 10 MiB upload and cost 64 MiB).
    Counts the entry signatures in the directory zipfile will read (a zip64 one: everything
    before the end record), so it never undercounts."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 0xFFFF))
    if end < 0:
        return 0   # no end record: zipfile says the file is not a zip
    size = int.from_bytes(data[end + 12:end + 16], "little")
    start = 0 if size == 0xFFFFFFFF else max(0, end - size)
    return data.count(b"PK\x01\x02", start, end)


def _unpack_zip(data: bytes, writer: _Listing, limits: UnpackLimits) -> None:
    budget = decompress.Budget(limits.stream_bytes)
    if _central_directory_entries(data) > limits.members:
        raise _too_many_members(limits)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                writer.member()
                parts = _safe_parts(info.filename, limits)
                if not parts or _ignored(parts):
                    continue
                mode = info.external_attr >> 16
                if info.is_dir():
                    writer.directory(parts)
                elif stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # many zippers store no type bits
                    raise HandinError("unsafe_member", f"The archive contains a link or special file "
                                      f"({_shown(info.filename)}); only regular files and folders are accepted.")
                elif info.flag_bits & 0x1:
                    raise HandinError("not_archive", f"The zip file is encrypted ({_shown(info.filename)}); "
                                                     "send it without a password.")
                else:   # sizes come from the stream, never the header; zipfile would not bound bz2 or lzma
                    raw = decompress.zip_member_data(data, info.header_offset, info.compress_size)
                    writer.file(parts, decompress.open_zip_member(raw, info.compress_type, budget, crc=info.CRC))
    except UnicodeDecodeError:   # zipfile decodes a name flagged UTF-8 strictly
        raise HandinError("bad_name", "The zip file has a name that is not UTF-8; rename the file.") from None
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError, zlib.error, lzma.LZMAError) as exc:
        raise HandinError("not_archive", f"The zip file is damaged or unsupported ({_shown(str(exc))}).") from None


def _copy_directory(src: Path, writer: _Listing, limits: UnpackLimits) -> None:
    for dirpath, dirnames, filenames in os.walk(src):
        rel = Path(dirpath).relative_to(src).parts
        dirnames[:] = [d for d in dirnames if not _ignored((*rel, d))
                       and not os.path.islink(os.path.join(dirpath, d))]
        for name in filenames:
            parts = (*rel, name)
            path = Path(dirpath, name)
            if _ignored(parts) or not path.is_file() or path.is_symlink():
                continue
            writer.member()
            _check_name("/".join(parts), parts)   # a folder on disk can hold names an archive may not
            with open(path, "rb") as stream:
                writer.file(parts, stream)


def _read_upload(source: Path | bytes, limits: UnpackLimits) -> bytes:
    if isinstance(source, bytes):
        data = source
    else:
        try:
            with open(source, "rb") as f:
                data = f.read(limits.archive_bytes + 1)
        except OSError as exc:
            raise HandinError("unreadable", f"The handin cannot be read ({source}: "
                                            f"{exc.strerror or type(exc).__name__}).") from None
    if len(data) > limits.archive_bytes:
        raise HandinError("too_large", f"The upload is larger than {limits.archive_bytes >> 20} MiB.")
    return data


def _is_tar(data: bytes) -> bool:
    return len(data) >= 512 and data[257:262] == b"ustar" or _looks_like_v7_tar(data)


def _looks_like_v7_tar(data: bytes) -> bool:
    if len(data) < 512:
        return False
    try:
        tarfile.TarInfo.frombuf(data[:512], "utf-8", "surrogateescape")
        return True
    except tarfile.EOFHeaderError:  # a zero block: a tar that holds nothing but its end marker
        return True
    except tarfile.HeaderError:
        return False


def _folders(packages: tuple[str, ...]) -> str:
    names = [f"{p}/" for p in packages]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _locate_packages(listing: _Listing, layout: Layout) -> tuple[tuple[str, ...], list[str]]:
    """The folder that holds the layout's packages: the root `()`, or one wrapping folder `(name,)`."""
    def has_packages(folder: tuple[str, ...]) -> bool:
        return any((*folder, p) in listing.folders for p in layout.packages)

    top = listing.names_in(())
    folders = sorted(name for name in top if (name,) in listing.folders)
    roots = [(), *((f,) for f in folders if f not in layout.packages)]  # the root or a wrapper
    for rule in layout.misplaced:  # built for another assessment: say so rather than grade zeros
        present, absent = tuple(rule.present.split("/")), [tuple(a.split("/")) for a in rule.absent]
        if any((*f, *present) in listing.kinds and not any((*f, *a) in listing.kinds for a in absent)
               for f in roots):
            raise HandinError("layout", rule.message)
    if has_packages(()):
        return (), []
    if len(folders) == 1 and has_packages((folders[0],)):
        return (folders[0],), [f"Your archive wraps everything in {folders[0]}/; graded what is inside it."]
    if not top:
        raise HandinError("empty", "The archive is empty.")
    raise HandinError("layout", f"The archive has no {_folders(layout.packages)} folder at its root; "
                                f"{layout.build_hint}.")


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def _read_archive(source: Path | bytes, listing: _Listing, limits: UnpackLimits) -> None:
    if isinstance(source, Path) and source.is_dir():
        _copy_directory(source, listing, limits)
        return
    data = _read_upload(source, limits)
    if not data:
        raise HandinError("empty", "The upload is empty.")
    if decompress.tar_compression(data) or _is_tar(data):
        _unpack_tar(data, listing, limits)
    elif data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06":
        _unpack_zip(data, listing, limits)
    else:
        raise HandinError("not_archive", "This file is not a tar or zip archive; build handin.tar "
                                         "with create_tarball.sh.")


def _layout_notes(listing: _Listing, layout: Layout) -> tuple[tuple[str, ...], list[str]]:
    """Where the packages are (see `_locate_packages`) and what the student is told about the layout."""
    found, notes = _locate_packages(listing, layout)
    if layout.needs_one_of and not any((*found, *f.split("/")) in listing.kinds for f in layout.needs_one_of):
        raise HandinError("layout", layout.none_of_them)
    for package in layout.packages:
        if (*found, package) not in listing.folders:
            notes.append(f"Your handin has no {package}/ folder.")
    ignored = sorted(n for n in listing.names_in(found) if n not in layout.packages)
    if ignored:
        shown = " or ".join(f"{p}/" for p in layout.packages)
        notes.append(f"Ignored what is not {shown}: " + ", ".join(map(_shown, ignored[:10]))
                     + (", ..." if len(ignored) > 10 else "") + ".")
    return found, notes


def check_handin(source: bytes, limits: UnpackLimits = UnpackLimits(), *, layout: Layout,
                 required: tuple[str, ...] = ()) -> list[str]:
    """Everything `unpack_handin` would refuse, found by reading the archive without writing a
    file (the web tier's check before an upload takes a submission slot: a full unpack cost it
    ~20 ms of disk work per upload). Returns the notes the grade will carry; raises HandinError.
    With REQUIRED (the suite's graded files), an archive missing any of them is refused too,
    listing them all: the upload check uses it so that a tar built wrong (no models/) never
    replaces a counted score; `unpack_handin` still grades whatever files a handin has."""
    listing = _Listing(limits)
    _read_archive(source, listing, limits)
    found, notes = _layout_notes(listing, layout)
    missing = [f for f in required if listing.kinds.get((*found, *f.split("/"))) is not False]
    if missing:
        raise HandinError("missing_files", f"Your archive is missing {len(missing)} graded file(s): "
                                           f"{', '.join(missing)}. Every one is graded, so it was not accepted; "
                                           f"{layout.build_hint}.")
    return notes


def read_handin_files(source: bytes, limits: UnpackLimits = UnpackLimits(), *, layout: Layout,
                      keep_bytes: int) -> list[HandinFile]:
    """The graded files `unpack_handin` would leave (the same refusals, raised as HandinError),
    read without writing a file: each one's path, size and first KEEP_BYTES, sorted by path."""
    keeper = _Keeper(limits, keep_bytes)
    _read_archive(source, keeper, limits)
    found, _ = _layout_notes(keeper, layout)
    depth = len(found)
    return [HandinFile("/".join(parts[depth:]), size, head) for parts, (size, head) in sorted(keeper.files.items())
            if parts[:depth] == found and len(parts) > depth + 1 and parts[depth] in layout.packages]


def unpack_handin(source: Path | bytes, dest: Path, limits: UnpackLimits = UnpackLimits(), *,
                  layout: Layout) -> Handin:
    """Unpack SOURCE (archive bytes, an archive file, or a directory) into DEST/handin, keeping
    the folders LAYOUT names."""
    raw = dest / "raw"
    raw.mkdir(parents=True)
    writer = _Writer(raw, limits)
    _read_archive(source, writer, limits)
    found, notes = _layout_notes(writer, layout)
    handin = dest / "handin"
    handin.mkdir()
    for package in layout.packages:
        if (*found, package) in writer.folders:
            shutil.move(str(raw.joinpath(*found, package)), handin / package)
    shutil.rmtree(raw)
    for path in [handin, *handin.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
    return Handin(root=handin, digest=_digest(handin), notes=notes)


def unpack_tree(source: Path | bytes, dest: Path, limits: UnpackLimits = UnpackLimits()) -> Path:
    """Unpack SOURCE whole, every folder kept, into DEST/tree with the same checks and caps as a
    handin (a TA's archive of many handins for the similarity report). Returns DEST/tree."""
    tree = dest / "tree"
    tree.mkdir(parents=True)
    _read_archive(source, _Writer(tree, limits), limits)
    return tree
