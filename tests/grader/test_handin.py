"""Unpacking a handin safely, and the one-sentence reasons given when it cannot be graded."""
import gzip
import io
import os
import stat
import tarfile
import tracemalloc
import uuid
import zipfile
import zlib
from pathlib import Path

import pytest
from catalogue import build_handin, tar_bytes, zip_bytes

from grader.handin import HandinError, UnpackLimits, check_handin, unpack_handin
from grader.suites.hw1p1 import LAYOUT as HW1P1_LAYOUT

LIMITS = UnpackLimits()


# ---------------------------------------------------------------------------------------------
# Helpers


def assert_sentence(message: str) -> None:
    """One readable sentence: one line, starts with a capital, ends with a full stop, short."""
    assert isinstance(message, str) and message.strip() == message and message
    assert "\n" not in message, message
    assert message[0].isupper() and message.endswith("."), message
    assert len(message) < 300, message
    assert "Traceback" not in message and "Error:" not in message.split("(")[0], message


def make_tar(members, *, mode="w", fmt=tarfile.PAX_FORMAT) -> bytes:
    """MEMBERS: (TarInfo, data or None)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode, format=fmt) as archive:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
            else:
                archive.addfile(info)
    return buffer.getvalue()


def reg(name: str, data: bytes = b"x = 1\n"):
    return tarfile.TarInfo(name), data


def special(name: str, kind: bytes, linkname: str = ""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


VALID = [reg("models/mlp.py"), reg("mytorch/nn/linear.py")]


def snapshot(folder: Path, exclude: Path) -> dict[str, int]:
    return {str(p): p.stat().st_size for p in folder.rglob("*")
            if p.is_file() and exclude not in p.parents}


def refuse(source, tmp_path: Path, code: str, limits: UnpackLimits = LIMITS) -> str:
    """Unpack SOURCE into tmp_path/job, expect HandinError CODE, check nothing escaped."""
    dest = tmp_path / "job"
    before = snapshot(tmp_path, dest)
    with pytest.raises(HandinError) as info:
        unpack_handin(source, dest, limits, layout=HW1P1_LAYOUT)
    assert info.value.code == code, (info.value.code, info.value.message)
    assert_sentence(info.value.message)
    assert snapshot(tmp_path, dest) == before  # nothing written outside the destination
    if isinstance(source, bytes):   # the web tier's check refuses it the same way, writing nothing
        with pytest.raises(HandinError) as checked:
            check_handin(source, limits, layout=HW1P1_LAYOUT)
        assert (checked.value.code, checked.value.message) == (info.value.code, info.value.message)
        assert snapshot(tmp_path, dest) == before
    return info.value.message


# ---------------------------------------------------------------------------------------------
# Unsafe members


def test_path_traversal_is_refused(tmp_path):
    message = refuse(make_tar([*VALID, reg("../evil.py", b"import os\n")]), tmp_path, "unsafe_member")
    assert "../evil.py" in message
    assert not (tmp_path / "evil.py").exists()


def test_path_traversal_in_the_middle_is_refused(tmp_path):
    refuse(make_tar([*VALID, reg("models/../../evil.py")]), tmp_path, "unsafe_member")
    assert not (tmp_path / "evil.py").exists()


def test_absolute_path_is_refused(tmp_path):
    target = Path("/tmp") / f"hw1p1-test-{uuid.uuid4().hex}" / "evil.py"
    message = refuse(make_tar([*VALID, reg(str(target))]), tmp_path, "unsafe_member")
    assert "absolute path" in message
    assert not target.exists() and not target.parent.exists()


@pytest.mark.parametrize("kind, linkname, words", [
    (tarfile.SYMTYPE, "/etc/passwd", "symbolic link"),
    (tarfile.SYMTYPE, "../../outside", "symbolic link"),
    (tarfile.LNKTYPE, "models/mlp.py", "hard link"),
    (tarfile.LNKTYPE, "/etc/passwd", "hard link"),
    (tarfile.CHRTYPE, "", "device"),
    (tarfile.BLKTYPE, "", "device"),
    (tarfile.FIFOTYPE, "", "FIFO"),
], ids=["symlink-absolute", "symlink-relative", "hardlink-inside", "hardlink-outside", "chardev",
        "blockdev", "fifo"])
def test_links_and_special_files_are_refused(tmp_path, kind, linkname, words):
    message = refuse(make_tar([*VALID, special("mytorch/nn/loss.py", kind, linkname)]), tmp_path,
                     "unsafe_member")
    assert words in message and "mytorch/nn/loss.py" in message
    assert not list(tmp_path.rglob("loss.py"))


def test_zip_symlink_is_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("models/mlp.py", "x = 1\n")
        link = zipfile.ZipInfo("mytorch/nn/linear.py")
        link.create_system = 3  # Unix, so external_attr carries the mode
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    message = refuse(buffer.getvalue(), tmp_path, "unsafe_member")
    assert "mytorch/nn/linear.py" in message
    assert not list(tmp_path.rglob("linear.py"))


def test_zip_without_file_type_bits_is_accepted(tmp_path):
    """zipfile.writestr (and other zippers) store permission bits but no S_IFREG: still a file."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("models/mlp.py", "x = 1\n")       # external_attr 0o600 << 16
        archive.writestr(zipfile.ZipInfo("mytorch/nn/linear.py"), "y = 2\n")  # external_attr 0
    handin = unpack_handin(buffer.getvalue(), tmp_path / "job", layout=HW1P1_LAYOUT)
    assert (handin.root / "models" / "mlp.py").read_text() == "x = 1\n"
    assert (handin.root / "mytorch" / "nn" / "linear.py").read_text() == "y = 2\n"


def test_zip_path_traversal_is_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("models/mlp.py", "x = 1\n")
        archive.writestr("../evil.py", "import os\n")
    refuse(buffer.getvalue(), tmp_path, "unsafe_member")
    assert not (tmp_path / "evil.py").exists()


def test_directory_source_does_not_follow_symlinks(tmp_path):
    src = build_handin(tmp_path / "src")
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    (src / "mytorch" / "nn" / "stolen.py").symlink_to(secret)
    (src / "models" / "outside").symlink_to(tmp_path, target_is_directory=True)
    handin = unpack_handin(src, tmp_path / "job", layout=HW1P1_LAYOUT)
    assert not (handin.root / "mytorch" / "nn" / "stolen.py").exists()
    assert not (handin.root / "models" / "outside").exists()
    assert (handin.root / "mytorch" / "nn" / "linear.py").is_file()


# ---------------------------------------------------------------------------------------------
# Size limits


class Zeros(io.RawIOBase):
    """SIZE zero bytes, produced lazily."""

    def __init__(self, size: int):
        self.left = size

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


BOMB_SIZE = 100 << 20


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """A gzip-compressed tar holding one 100 MiB file of zeros (about 100 KiB compressed)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as archive:
        info = tarfile.TarInfo("mytorch/nn/linear.py")
        info.size = BOMB_SIZE
        archive.addfile(info, Zeros(BOMB_SIZE))
    return buffer.getvalue()


def _largest_file(folder: Path) -> int:
    return max((p.stat().st_size for p in folder.rglob("*") if p.is_file()), default=0)


def test_gzip_bomb_stops_at_the_cap(tmp_path, gzip_bomb):
    assert len(gzip_bomb) < LIMITS.archive_bytes  # small upload, huge content
    message = refuse(gzip_bomb, tmp_path, "too_large")
    assert "MiB" in message
    # It stopped early: nothing of the bomb's size was ever written.
    assert _largest_file(tmp_path / "job") <= LIMITS.file_bytes
    assert sum(p.stat().st_size for p in (tmp_path / "job").rglob("*") if p.is_file()) <= LIMITS.unpacked_bytes


def test_zip_bomb_stops_at_the_cap(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive, \
            archive.open("mytorch/nn/linear.py", "w", force_zip64=True) as member:
        chunk = bytes(1 << 20)
        for _ in range(BOMB_SIZE >> 20):
            member.write(chunk)
    data = buffer.getvalue()
    assert len(data) < LIMITS.archive_bytes
    refuse(data, tmp_path, "too_large")
    assert _largest_file(tmp_path / "job") <= LIMITS.file_bytes


def test_zip_with_lying_header_sizes_stops_at_the_cap(tmp_path):
    """The central directory claims a tiny file; the stream is what counts."""
    limits = UnpackLimits(file_bytes=1 << 20, unpacked_bytes=2 << 20)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mytorch/nn/linear.py", bytes(3 << 20))
    refuse(buffer.getvalue(), tmp_path, "too_large", limits)
    assert _largest_file(tmp_path / "job") <= limits.file_bytes


def test_many_medium_files_hit_the_total_cap(tmp_path):
    limits = UnpackLimits(file_bytes=1 << 20, unpacked_bytes=3 << 20)
    members = [reg(f"mytorch/nn/blob{i}.py", bytes(900 << 10)) for i in range(5)]
    refuse(gzip.compress(make_tar(members)), tmp_path, "too_large", limits)
    total = sum(p.stat().st_size for p in (tmp_path / "job").rglob("*") if p.is_file())
    assert total <= limits.unpacked_bytes


def test_too_large_upload_is_refused(tmp_path):
    data = make_tar(VALID)
    message = refuse(data, tmp_path, "too_large", UnpackLimits(archive_bytes=len(data) - 1))
    assert "upload" in message


def test_too_large_upload_file_is_refused(tmp_path):
    path = tmp_path / "handin.tar"
    path.write_bytes(make_tar(VALID) + bytes(4096))
    refuse(path, tmp_path, "too_large", UnpackLimits(archive_bytes=4096))


def test_too_many_members_is_refused(tmp_path):
    members = [reg(f"mytorch/nn/f{i}.py", b"") for i in range(LIMITS.members + 1)]
    message = refuse(make_tar(members), tmp_path, "too_many_members")
    assert str(LIMITS.members) in message


def test_too_deep_nesting_is_refused(tmp_path):
    deep = "/".join(["d"] * (LIMITS.depth + 1)) + "/x.py"
    refuse(make_tar([*VALID, reg("mytorch/" + deep)]), tmp_path, "unsafe_member")


# ---------------------------------------------------------------------------------------------
# Not an archive, empty, wrong layout


@pytest.mark.parametrize("data", [
    b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" + b"0" * 2000,
    b"def forward(self, A):\n    return A\n" * 40,
    b"hello",
    bytes(range(256)) * 8,
], ids=["pdf", "python-source", "short-text", "binary"])
def test_not_an_archive(tmp_path, data):
    message = refuse(data, tmp_path, "not_archive")
    assert "tar" in message


def test_truncated_tar_is_refused(tmp_path):
    data = gzip.compress(tar_bytes(build_handin(tmp_path / "src")))
    message = refuse(data[: len(data) // 2], tmp_path, "not_archive")
    assert "damaged" in message or "truncated" in message


def test_damaged_zip_is_refused(tmp_path):
    data = zip_bytes(build_handin(tmp_path / "src"))
    refuse(data[: len(data) // 2], tmp_path, "not_archive")


def test_empty_upload(tmp_path):
    message = refuse(b"", tmp_path, "empty")
    assert "empty" in message


def test_empty_upload_file(tmp_path):
    path = tmp_path / "handin.tar"
    path.write_bytes(b"")
    refuse(path, tmp_path, "empty")


@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_empty_tar(tmp_path, mode):
    message = refuse(make_tar([], mode=mode), tmp_path, "empty")
    assert "empty" in message


def test_empty_zip(tmp_path):
    buffer = io.BytesIO()
    zipfile.ZipFile(buffer, "w").close()
    refuse(buffer.getvalue(), tmp_path, "empty")


def test_archive_with_only_noise_is_empty(tmp_path):
    noise = [reg("__pycache__/x.cpython-311.pyc", b"\0" * 16), reg(".DS_Store", b"\0\0\0\1Bud1"),
             reg("._models", b"\0\5\26\7")]
    refuse(make_tar(noise), tmp_path, "empty")


def test_archive_without_models_or_mytorch(tmp_path):
    members = [reg("hw1p1/autograder/hw1p1_autograder.py"), reg("hw1p1/README.md"), reg("notes.txt")]
    message = refuse(make_tar(members), tmp_path, "layout")
    assert "models/" in message and "mytorch/" in message


def test_two_wrapping_folders_are_not_guessed(tmp_path):
    members = [reg("a/models/mlp.py"), reg("a/mytorch/nn/linear.py"),
               reg("b/models/mlp.py"), reg("b/mytorch/nn/linear.py")]
    refuse(make_tar(members), tmp_path, "layout")


@pytest.mark.parametrize("wrapper", ["", "HW1P1_bonus/"])
def test_bonus_layout_with_models_inside_mytorch(tmp_path, wrapper):
    """The separate bonus assignment puts models/ inside mytorch/: say so, don't grade it."""
    members = [reg(wrapper + "mytorch/models/mlp.py"), reg(wrapper + "mytorch/nn/linear.py"),
               reg(wrapper + "mytorch/optim/sgd.py")]
    message = refuse(make_tar(members), tmp_path, "layout")
    assert "beside" in message and "inside" in message


# ---------------------------------------------------------------------------------------------
# Accepted: what is kept and what is noted


def test_noise_is_dropped_and_extra_content_is_noted(tmp_path):
    members = [*VALID, reg("mytorch/nn/__pycache__/linear.cpython-311.pyc", b"\0" * 16),
               reg("mytorch/.DS_Store", b"Bud1"), reg("._models", b"\0\5\26\7"),
               reg("mytorch/nn/._linear.py", b"\0\5\26\7"), reg("PaxHeader/models", b"30 mtime=1\n"),
               reg("handin.tar", b"old"), reg("notes.txt", b"hi")]
    handin = unpack_handin(make_tar(members), tmp_path / "job", layout=HW1P1_LAYOUT)
    files = sorted(p.relative_to(handin.root).as_posix() for p in handin.root.rglob("*") if p.is_file())
    assert files == ["models/mlp.py", "mytorch/nn/linear.py"]
    assert any("handin.tar" in n and "notes.txt" in n for n in handin.notes), handin.notes
    for note in handin.notes:
        assert_sentence(note)


def test_modes_from_the_archive_are_not_applied(tmp_path):
    info, data = reg("mytorch/nn/linear.py")
    info.mode = 0o4777  # setuid, world-writable
    handin = unpack_handin(make_tar([(info, data), reg("models/mlp.py")]), tmp_path / "job", layout=HW1P1_LAYOUT)
    mode = stat.S_IMODE(os.stat(handin.root / "mytorch" / "nn" / "linear.py").st_mode)
    assert mode == 0o644


def test_missing_package_is_noted(tmp_path):
    handin = unpack_handin(make_tar([reg("mytorch/nn/linear.py")]), tmp_path / "job", layout=HW1P1_LAYOUT)
    assert handin.notes == ["Your handin has no models/ folder."]


def test_digest_depends_on_content_only(tmp_path):
    a = unpack_handin(make_tar(VALID), tmp_path / "a", layout=HW1P1_LAYOUT)
    b = unpack_handin(gzip.compress(make_tar(VALID)), tmp_path / "b", layout=HW1P1_LAYOUT)
    c = unpack_handin(make_tar([reg("models/mlp.py", b"x = 2\n"), VALID[1]]), tmp_path / "c", layout=HW1P1_LAYOUT)
    assert a.digest == b.digest != c.digest


# ---------------------------------------------------------------------------------------------
# Extended headers: tarfile reads a PAX or GNU long-name header into memory whole


def _gzip_tar_with_extended_header(kind: bytes, size: int) -> bytes:
    """A gzip tar whose first header announces a SIZE-byte extended header, then a valid member;
    compressed while streaming, so the test itself never holds SIZE bytes."""
    header = tarfile.TarInfo("././@LongLink" if kind != tarfile.XHDTYPE else "./PaxHeaders/x")
    header.type, header.size = kind, size
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)  # gzip framing
    parts = [packer.compress(header.tobuf(tarfile.GNU_FORMAT if kind != tarfile.XHDTYPE else tarfile.USTAR_FORMAT))]
    record = b"9 a=bcd\n" if kind == tarfile.XHDTYPE else b"a" * 8
    chunk = record * ((1 << 20) // len(record))
    for _ in range(size // len(chunk)):
        parts.append(packer.compress(chunk))
    parts.append(packer.compress(b"\0" * (-size % 512)))
    parts.append(packer.compress(make_tar(VALID)))
    return b"".join(parts) + packer.flush()


@pytest.mark.parametrize("kind", [tarfile.XHDTYPE, tarfile.GNUTYPE_LONGNAME], ids=["pax", "gnu-longname"])
def test_huge_pax_header_refused_while_streaming(tmp_path, kind):
    data = _gzip_tar_with_extended_header(kind, 200 << 20)
    assert len(data) < 2 << 20  # a small upload
    tracemalloc.start()
    try:
        message = refuse(data, tmp_path, "unsafe_member")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "extended" in message and "KiB" in message
    assert peak < 16 << 20, f"unpacking held {peak >> 20} MiB"


def test_endless_run_of_extended_headers_is_refused(tmp_path):
    # Each header chains to the next inside tarfile (recursively): a long run must stop early.
    headers = b"".join(_raw_extended_header(i) for i in range(5000))
    refuse(headers + make_tar(VALID), tmp_path, "unsafe_member")


def _raw_extended_header(index: int) -> bytes:
    field = f" comment={index}\n"
    length = len(field) + 1
    while len(str(length)) + len(field) != length:  # the length counts its own digits
        length += 1
    body = f"{length}{field}".encode()
    info = tarfile.TarInfo(f"./PaxHeaders/{index}")
    info.type, info.size = tarfile.XHDTYPE, len(body)
    return info.tobuf(tarfile.USTAR_FORMAT) + body + b"\0" * (-len(body) % 512)


def test_ordinary_pax_and_gnu_long_names_still_unpack(tmp_path):
    long_dir = "mytorch/" + "d" * 120 + "/"
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        job = tmp_path / str(fmt)
        handin = unpack_handin(make_tar([*VALID, reg(long_dir + "x.py")], fmt=fmt), job, LIMITS, layout=HW1P1_LAYOUT)
        assert (handin.root / long_dir / "x.py").is_file()
