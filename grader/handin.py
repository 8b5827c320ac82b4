"""Safe unpacking of a handin and detection of its layout.

Accepts a plain or gzip-compressed tar (whatever the file is called), a zip, or a directory. Only
regular files and folders are accepted; links, devices, absolute paths and `..` are refused. The
limits are checked while streaming, so a gzip bomb stops at the unpacked-size cap. Noise that real
handins carry (`__pycache__`, `.pyc`, `.DS_Store`, AppleDouble `._*`, `PaxHeader` folders) is
dropped, so bytecode from a handin is never executed. The suite's layout names the graded folders
(HW1P1: `models/` and `mytorch/`); they may sit at the archive root or under one wrapping folder;
everything else is ignored with a note.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from grader.errors import GraderBug
from grader.suite import Layout

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


@dataclass(frozen=True)
class UnpackLimits:
    archive_bytes: int = 10 << 20      # the upload itself
    unpacked_bytes: int = 20 << 20     # sum of all regular files
    file_bytes: int = 5 << 20          # any one file
    members: int = 2000
    depth: int = 16


class HandinError(Exception):
    """The handin cannot be graded; `message` is one sentence for the student."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Handin:
    root: Path                    # contains the layout's packages (HW1P1: models/ and/or mytorch/)
    digest: str                   # sha256 over the graded files' paths and bytes
    notes: list[str] = field(default_factory=list)


def _ignored(parts: tuple[str, ...]) -> bool:
    name = parts[-1]
    return (any(p in ("__pycache__", "PaxHeader", "PaxHeaders") or p.startswith("._") for p in parts)
            or name.endswith((".pyc", ".pyo")) or name == ".DS_Store")


def _safe_parts(name: str, limits: UnpackLimits) -> tuple[str, ...]:
    if "\\" in name:
        name = name.replace("\\", "/")
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("/"):
        raise HandinError("unsafe_member", f"The archive contains an absolute path ({name}); "
                                           "build it with create_tarball.sh from the handout folder.")
    parts = tuple(p for p in path.parts if p not in ("", "."))
    if ".." in parts:
        raise HandinError("unsafe_member", f"The archive contains a path that leaves its folder ({name}).")
    if len(parts) > limits.depth:
        raise HandinError("unsafe_member", f"The archive nests folders too deeply ({name}).")
    return parts


class _Listing:
    """Reads every member as unpacking does, enforcing the size and count limits as it goes, and
    records the tree (folders, top-level names) without writing anything: the web tier's check."""

    dest = Path("/nonexistent-handin-listing")   # tarfile's data filter judges names against a folder

    def __init__(self, limits: UnpackLimits):
        self.limits = limits
        self.total = self.count = 0
        self.folders: set[tuple[str, ...]] = set()
        self.paths: set[tuple[str, ...]] = set()   # every file and folder seen, parents included

    def member(self) -> None:
        self.count += 1
        if self.count > self.limits.members:
            raise HandinError("too_many_members",
                              f"The archive has more than {self.limits.members} entries.")

    def _seen(self, parts: tuple[str, ...], folder: bool) -> None:
        self.folders.update(parts[:i] for i in range(1, len(parts) + folder))
        self.paths.update(parts[:i] for i in range(1, len(parts) + 1))

    def names_in(self, folder: tuple[str, ...]) -> set[str]:
        """The names of the files and folders directly in FOLDER (() is the archive's root)."""
        depth = len(folder)
        return {p[depth] for p in self.paths if len(p) == depth + 1 and p[:depth] == folder}

    def directory(self, parts: tuple[str, ...]) -> None:
        self._seen(parts, folder=True)

    def file(self, parts: tuple[str, ...], stream) -> None:
        self._seen(parts, folder=False)
        size = 0
        while chunk := stream.read(1 << 16):  # an OSError here is the archive's (bz2 data errors)
            size += len(chunk)
            self.total += len(chunk)
            if size > self.limits.file_bytes or self.total > self.limits.unpacked_bytes:
                raise HandinError("too_large", "The archive unpacks to more than "
                                  f"{self.limits.unpacked_bytes >> 20} MiB (or one file to more "
                                  f"than {self.limits.file_bytes >> 20} MiB).")
            self.write(chunk)

    def write(self, chunk: bytes) -> None:
        """Where a file's bytes go: nowhere while listing."""


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
        except OSError as exc:
            raise _ours(exc) from exc

    def file(self, parts: tuple[str, ...], stream) -> None:
        target = self.dest.joinpath(*parts)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise _ours(exc) from exc
        with os.fdopen(fd, "wb") as self._out:
            super().file(parts, stream)
        try:
            target.chmod(0o644)
        except OSError as exc:
            raise _ours(exc) from exc

    def write(self, chunk: bytes) -> None:
        try:
            self._out.write(chunk)
        except OSError as exc:
            raise _ours(exc) from exc


def _ours(exc: OSError) -> GraderBug:
    """Writing the unpacked handin failed (a full disk, say): the grader's failure, never the student's."""
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


def open_tar_stream(fileobj) -> tarfile.TarFile:
    """A tar (any compression) read in stream mode with extended headers capped: for every reader of
    an uploaded tar (the web tier's check and the worker's unpack)."""
    return tarfile.open(fileobj=fileobj, mode="r|*", tarinfo=_CappedTarInfo)


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


def _unpack_tar(fileobj, writer: _Listing, limits: UnpackLimits) -> None:
    try:
        # Stream mode ("r|*") reads members in order and never seeks, so limits apply as it goes.
        with open_tar_stream(fileobj) as archive:
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
                                      f"({member.name}); only regular files and folders are accepted.")
    except tarfile.FilterError as exc:
        raise HandinError("unsafe_member", f"The archive contains an unsafe entry: {exc}.") from None
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise HandinError("not_archive", f"The archive is damaged or truncated ({exc}).") from None


def _unpack_zip(fileobj, writer: _Listing, limits: UnpackLimits) -> None:
    try:
        with zipfile.ZipFile(fileobj) as archive:
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
                                      f"({info.filename}); only regular files and folders are accepted.")
                else:
                    with archive.open(info) as stream:  # sizes come from the stream, not the header
                        writer.file(parts, stream)
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError, zlib.error) as exc:
        raise HandinError("not_archive", f"The zip file is damaged or unsupported ({exc}).") from None


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
        present, absent = tuple(rule.present.split("/")), tuple(rule.absent.split("/"))
        if any((*f, *present) in listing.folders and (*f, *absent) not in listing.folders for f in roots):
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
    if data[:2] == b"\x1f\x8b" or data[:3] == b"BZh" or data[:6] == b"\xfd7zXZ\x00" or _is_tar(data):
        _unpack_tar(io.BytesIO(data), listing, limits)
    elif data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06":
        _unpack_zip(io.BytesIO(data), listing, limits)
    else:
        raise HandinError("not_archive", "This file is not a tar or zip archive; build handin.tar "
                                         "with create_tarball.sh.")


def _layout_notes(listing: _Listing, layout: Layout) -> tuple[tuple[str, ...], list[str]]:
    """Where the packages are (see `_locate_packages`) and what the student is told about the layout."""
    found, notes = _locate_packages(listing, layout)
    if layout.needs_one_of and not any((*found, *f.split("/")) in listing.paths for f in layout.needs_one_of):
        raise HandinError("layout", layout.none_of_them)
    for package in layout.packages:
        if (*found, package) not in listing.folders:
            notes.append(f"Your handin has no {package}/ folder.")
    ignored = sorted(n for n in listing.names_in(found) if n not in layout.packages)
    if ignored:
        shown = " or ".join(f"{p}/" for p in layout.packages)
        notes.append(f"Ignored what is not {shown}: " + ", ".join(ignored[:10])
                     + (", ..." if len(ignored) > 10 else "") + ".")
    return found, notes


def check_handin(source: bytes, limits: UnpackLimits = UnpackLimits(), *, layout: Layout) -> list[str]:
    """Everything `unpack_handin` would refuse, found by reading the archive without writing a
    file (the web tier's check before an upload takes a submission slot: a full unpack cost it
    ~20 ms of disk work per upload). Returns the notes the grade will carry; raises HandinError."""
    listing = _Listing(limits)
    _read_archive(source, listing, limits)
    return _layout_notes(listing, layout)[1]


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
