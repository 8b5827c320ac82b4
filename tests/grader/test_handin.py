"""Unpacking a handin safely, and the one-sentence reasons given when it cannot be graded."""
import bz2
import collections
import gzip
import io
import lzma
import os
import random
import stat
import tarfile
import tracemalloc
import uuid
import zipfile
import zlib
from pathlib import Path

import pytest
from catalogue import build_handin, tar_bytes, zip_bytes
from hostile import TAR_KINDS, ZIP_METHODS, measure, tar_bomb, zip_bomb

from grader.decompress import LZMA_DICT_LIMIT, MAX_RATIO, OUTPUT_CHUNK, RATIO_FLOOR
from grader.handin import HandinError, UnpackLimits, check_handin, read_handin_files, unpack_handin
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
    assert "times its compressed size" in message   # the ratio cap stops it long before the MiB caps
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


# ---------------------------------------------------------------------------------------------
# Decompression bombs (issue 18, item 1): a 3 KiB bzip2 tar unpacked to 3 GiB in tarfile's
# reader, at upload, in the worker and on every source page view. Each compression the unpacker
# reads is fed to its decompressor a chunk at a time and counted while it streams (grader/decompress.py):
# what reading a bomb costs is measured in a fresh process (peak RSS, bytes decompressed).

BOMB_MIB = 64
# Above the process's peak before the call (the upload itself already read): bzip2's ~3.6 MiB
# block, one 64 KiB output chunk, the 1 MiB + 100x the bytes read that may be decompressed.
BOMB_RSS_BOUND = 16 << 20


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bombs")
    built = {f"tar.{kind}": tar_bomb(kind, BOMB_MIB << 20) for kind in TAR_KINDS}
    built |= {f"zip.{method}": zip_bomb(method, BOMB_MIB << 20) for method in ZIP_METHODS}
    built["tar.bz2-skipped-member"] = tar_bomb("bz2", BOMB_MIB << 20, "mytorch/nn/__pycache__/x.cpython-311.pyc")
    paths = {}
    for name, data in built.items():
        paths[name] = folder / name
        paths[name].write_bytes(data)
    return paths


def assert_bomb_cost_bounded(path: Path, cost: dict) -> None:
    size = path.stat().st_size
    assert cost["outcome"] == "too_large", cost
    assert cost["fed"] <= size, cost
    # the stated bound: at most 1 MiB + 100x what was read, at most the stream cap, one chunk over
    assert cost["decompressed"] <= min(RATIO_FLOOR + MAX_RATIO * cost["fed"], LIMITS.stream_bytes) + OUTPUT_CHUNK, cost
    assert cost["rss_growth"] <= BOMB_RSS_BOUND, f"{cost['rss_growth'] >> 20} MiB above the baseline"


@pytest.mark.parametrize("bomb", [*(f"tar.{k}" for k in TAR_KINDS), *(f"zip.{m}" for m in ZIP_METHODS),
                                  "tar.bz2-skipped-member"])
def test_decompression_bomb_costs_the_upload_check_little(bombs, bomb):
    """tar.bz2 was the 3 KiB -> 3 GiB bomb; zip's bzip2 and lzma members were unbounded in zipfile
    too; a bomb in a skipped __pycache__ entry was decompressed whole and never counted."""
    path = bombs[bomb]
    assert path.stat().st_size < 300 << 10 and BOMB_MIB << 20 > 400 * path.stat().st_size
    assert_bomb_cost_bounded(path, measure(path, "check"))


@pytest.mark.parametrize("bomb", ["tar.bz2", "zip.bzip2", "tar.bz2-skipped-member"])
def test_decompression_bomb_costs_the_workers_unpack_little(bombs, bomb):
    assert_bomb_cost_bounded(bombs[bomb], measure(bombs[bomb], "unpack"))


def test_bz2_bomb_is_refused_with_a_sentence_and_writes_little(tmp_path, bombs):
    message = refuse(bombs["tar.bz2"].read_bytes(), tmp_path, "too_large")
    assert "times its compressed size" in message
    assert sum(p.stat().st_size for p in (tmp_path / "job").rglob("*") if p.is_file()) <= RATIO_FLOOR + OUTPUT_CHUNK


def _pbzip2(data: bytes, pieces: int) -> bytes:
    """DATA as several bzip2 streams back to back, as pbzip2 and lbzip2 write it."""
    step = -(-len(data) // pieces)
    return b"".join(bz2.compress(data[i:i + step]) for i in range(0, len(data), step))


def test_every_compression_unpacks_the_same_handin(tmp_path):
    """The bounded readers read what the stdlib writes: each tar compression (multi-stream too)
    and each zip method give the same graded files."""
    src = build_handin(tmp_path / "src")
    plain = tar_bytes(src)
    archives = {"tar": plain, "tar.gz": gzip.compress(plain), "tar.bz2": bz2.compress(plain),
                "tar.xz": lzma.compress(plain), "tar.bz2-multistream": _pbzip2(plain, 3),
                "tar.gz-multimember": gzip.compress(plain[:5000]) + gzip.compress(plain[5000:]),
                "tar.gz-trailing-zeros": gzip.compress(plain) + bytes(512)}
    for method in ZIP_METHODS.values():
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", method) as archive:
            for path in sorted(src.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(src).as_posix())
        archives[f"zip-{method}"] = buffer.getvalue()
    digests = {}
    for name, data in archives.items():
        check_handin(data, layout=HW1P1_LAYOUT)
        digests[name] = unpack_handin(data, tmp_path / name, layout=HW1P1_LAYOUT).digest
    assert len(set(digests.values())) == 1, digests


def test_stream_cap_counts_headers_and_skipped_entries(tmp_path):
    """Within the per-file caps but over the decompressed-stream cap: skipped noise is counted."""
    limits = UnpackLimits(stream_bytes=2 << 20)
    noise = [reg(f"mytorch/nn/__pycache__/m{i}.cpython-311.pyc", os.urandom(300 << 10)) for i in range(8)]
    message = refuse(gzip.compress(make_tar([*VALID, *noise])), tmp_path, "too_large", limits)
    assert "2 MiB" in message


def test_zip_member_with_a_wrong_checksum_is_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("models/mlp.py", "x = 1\n")
        archive.writestr("mytorch/nn/linear.py", "y = 2\n")
    data = buffer.getvalue().replace(b"y = 2\n", b"y = 3\n")
    message = refuse(data, tmp_path, "not_archive")
    assert "checksum" in message


def _xz_declaring_dictionary(log2_size: int) -> bytes:
    """A small valid xz stream whose block header declares an LZMA2 dictionary of 2**LOG2_SIZE
    bytes (the decoder sizes its memory from the header: building a real one would need GiBs)."""
    data = bytearray(lzma.compress(make_tar(VALID), preset=0))
    header = 12                                     # the stream header; the block header follows
    size = (data[header] + 1) * 4
    assert data[header + 2] == 0x21                 # one filter, LZMA2, one byte of properties
    data[header + 4] = (log2_size - 12) * 2         # LZMA2's dictionary byte: 2**(12 + n/2)
    crc = zlib.crc32(bytes(data[header:header + size - 4]))
    data[header + size - 4:header + size] = crc.to_bytes(4, "little")
    return bytes(data)


def test_xz_declaring_a_huge_dictionary_is_refused_before_decoding(tmp_path):
    assert check_handin(_xz_declaring_dictionary(20), layout=HW1P1_LAYOUT) is not None   # 1 MiB: fine
    message = refuse(_xz_declaring_dictionary(31), tmp_path, "too_large")   # 2 GiB
    assert f"{LZMA_DICT_LIMIT >> 20} MiB" in message


def test_zip_lzma_declaring_a_huge_dictionary_is_refused_before_decoding(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_LZMA) as archive:
        archive.writestr("models/mlp.py", "x = 1\n" * 50)
    data = bytearray(buffer.getvalue())
    props = 30 + len("models/mlp.py") + 4           # local header, name, lzma version and size
    assert data[props - 2:props] == b"\x05\x00"
    data[props + 1:props + 5] = (1 << 31).to_bytes(4, "little")
    message = refuse(bytes(data), tmp_path, "too_large")
    assert "dictionary" in message


# ---------------------------------------------------------------------------------------------
# Names the disk cannot create (issue 18, items 2 and 12): the check accepted them, the worker's
# unpack failed on them as a grader error (retried, never counted). The check refuses them first,
# with the same sentence as the unpack.


def raw_tar(*names: bytes, folder: bool = False) -> bytes:
    """A GNU tar of files (or folders) named by raw bytes, beside a valid handin."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as archive:
        for info, data in VALID:
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name in names:
            info = tarfile.TarInfo(name.decode("utf-8", "surrogateescape"))
            if folder:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.size = 6
                archive.addfile(info, io.BytesIO(b"x = 1\n"))
    return buffer.getvalue()


@pytest.mark.parametrize("members", [
    [reg("mytorch/nn"), *VALID],                                      # the file first
    [*VALID, reg("mytorch/nn")],                                      # the folder first
    [*VALID, (tarfile.TarInfo("models/mlp.py"), None)],               # a folder entry on a file (no data)
    [*VALID, reg("models/mlp.py/inner.py")],
], ids=["file-then-folder", "folder-then-file", "folder-entry-on-a-file", "file-under-a-file"])
def test_file_and_folder_with_the_same_name_is_refused(tmp_path, members):
    members = [(info, data) if data is not None or info.type != tarfile.REGTYPE
               else (_as_dir(info), None) for info, data in members]
    message = refuse(make_tar(members), tmp_path, "bad_name")
    assert "a file and a folder with the same name" in message


def _as_dir(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.type = tarfile.DIRTYPE
    return info


def test_zip_file_and_folder_with_the_same_name_is_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("models/mlp.py", "x = 1\n")
        archive.writestr("mytorch/nn/linear.py", "y = 2\n")
        archive.writestr("mytorch/nn/linear.py/", "")
    refuse(buffer.getvalue(), tmp_path, "bad_name")


@pytest.mark.parametrize("name, words", [
    (b"mytorch/" + b"n" * 256 + b".py", "longer than 255 bytes"),
    (b"mytorch/" + "\u00e9".encode() * 128 + b".py", "longer than 255 bytes"),   # 131 characters, 259 bytes
    (b"mytorch/" + b"/".join([b"d" * 200] * 6) + b"/x.py", "path longer than 1024 bytes"),
], ids=["name-over-name-max", "name-over-name-max-in-bytes", "path-over-path-max"])
def test_over_long_names_are_refused(tmp_path, name, words):
    message = refuse(raw_tar(name), tmp_path, "bad_name")
    assert words in message and "..." in message   # the name is shown cut short


def test_longest_allowed_name_unpacks(tmp_path):
    name = "mytorch/" + "n" * 252 + ".py"
    handin = unpack_handin(raw_tar(name.encode()), tmp_path / "job", layout=HW1P1_LAYOUT)
    assert (handin.root / name).is_file()


@pytest.mark.parametrize("folder", [False, True], ids=["file", "folder"])
def test_name_that_is_not_utf8_is_refused(tmp_path, folder):
    message = refuse(raw_tar(b"mytorch/nn/caf\xe9.py", folder=folder), tmp_path, "bad_name")
    assert "not UTF-8" in message and "caf\\xe9" in message


def test_zip_name_flagged_utf8_that_is_not_is_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("models/mlp.py", "x = 1\n")
        archive.writestr("mytorch/nn/caf\u00e9.py", "y = 2\n")    # stored as UTF-8, flag 0x800 set
    data = buffer.getvalue().replace("caf\u00e9".encode(), b"caf\xff\xfe")
    message = refuse(data, tmp_path, "bad_name")
    assert "not UTF-8" in message


@pytest.mark.parametrize("name", ["mytorch/nn/a\0b.py", "mytorch/nn/\0", "mytorch/nn/line\nar.py",
                                  "mytorch/nn/\x1b[31mred.py"], ids=["nul", "nul-only", "newline", "escape"])
def test_control_character_in_a_pax_name_is_refused(tmp_path, name):
    """Item 12: a NUL byte in a PAX path reached os.path.realpath in tarfile's filter: HTTP 500."""
    info, data = reg("mytorch/nn/x.py")
    info.pax_headers = {"path": name}   # the ustar name field would end at the NUL
    message = refuse(make_tar([*VALID, (info, data)]), tmp_path, "bad_name")
    assert "control character" in message


def _nasty_name(rng) -> str:
    fragments = ["models", "mytorch", "nn", "linear.py", "mlp.py", "x", "X", ".", "..", "", "a b",
                 "\u00e9", "e\u0301", "__pycache__", "._x", "PaxHeader", "n" * 255, "n" * 256,
                 "\u00e9" * 128, "caf\udce9", "a\0b", "new\nline", "tab\t", "\\", "back\\slash",
                 "d" * 200, "\u202e", "\U0001f600", "CON", "a:b", "*", "~"]
    parts = [rng.choice(fragments) for _ in range(rng.randint(1, 7))]
    if rng.random() < 0.5:
        parts.insert(0, rng.choice(["models", "mytorch"]))
    return "/".join(parts) + rng.choice(["", "", "/", "//"])


def _nasty_archive(rng) -> bytes:
    members = list(VALID) if rng.random() < 0.7 else []
    for _ in range(rng.randint(1, 6)):
        info = tarfile.TarInfo(_nasty_name(rng))
        if rng.random() < 0.3:
            info.type = tarfile.DIRTYPE
            members.append((info, None))
        else:
            members.append((info, b"x = 1\n"))
    rng.shuffle(members)
    fmt = rng.choice([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
    if rng.random() < 0.3:   # the same names in a zip (zipfile writes no surrogates or NULs)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for info, data in members:
                name = info.name.replace("\0", "").encode("utf-8", "replace").decode()
                if name:
                    archive.writestr(name + ("/" if data is None else ""), data or b"")
        return buffer.getvalue()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt, encoding="utf-8", errors="surrogateescape") as tar:
        for info, data in members:
            try:
                if data is None:
                    tar.addfile(info)
                else:
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
            except (ValueError, UnicodeError):   # a name the GNU format cannot hold: left out
                continue
    data = buffer.getvalue()
    return gzip.compress(data) if rng.random() < 0.3 else data


def _outcome(run, *args, **kwargs) -> tuple:
    try:
        return ("accepted", run(*args, **kwargs))
    except HandinError as exc:
        assert_sentence(exc.message)
        return (exc.code, exc.message)


def _unpacked(data: bytes, job: Path) -> tuple[list[str], list[tuple[str, int, bytes]]]:
    """The notes, and each graded file's path, size and first 8 bytes as written to disk."""
    handin = unpack_handin(data, job, LIMITS, layout=HW1P1_LAYOUT)
    files = [(p.relative_to(handin.root).as_posix(), p.stat().st_size, p.read_bytes()[:8])
             for p in sorted(handin.root.rglob("*")) if p.is_file()]
    return handin.notes, sorted(files)


def test_check_and_unpack_agree_on_a_corpus_of_nasty_archives(tmp_path):
    """Property: on any archive, the upload check and the worker's unpack give the same verdict
    (the same refusal, or the same notes), and the unpack fails only as a refusal; the source
    page's in-memory read refuses the same and lists the files the unpack wrote."""
    rng = random.Random(18)
    seen = collections.Counter()
    for i in range(400):
        data = _nasty_archive(rng)
        checked = _outcome(check_handin, data, LIMITS, layout=HW1P1_LAYOUT)
        unpacked = _outcome(_unpacked, data, tmp_path / str(i))
        listed = _outcome(read_handin_files, data, LIMITS, layout=HW1P1_LAYOUT, keep_bytes=8)
        if unpacked[0] == "accepted":
            notes, files = unpacked[1]
            assert checked == ("accepted", notes), (i, checked, notes)
            assert listed[0] == "accepted", (i, listed)
            assert [(f.path, f.size, f.head) for f in listed[1]] == files, (i, listed, files)
        else:
            assert checked == unpacked == listed, (i, checked, unpacked, listed)
        seen[checked[0]] += 1
    # the corpus exercises acceptance and the name refusals, not one verdict 400 times
    assert seen["accepted"] >= 20 and seen["bad_name"] >= 50 and seen["unsafe_member"] >= 20, seen


def test_zip_central_directory_of_tiny_entries_is_refused_before_parsing(tmp_path):
    """zipfile builds an object per central directory entry before the first is read: 30,000
    empty entries (1.7 MiB) cost 16 MiB that way; the entries are counted first."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(30000):
            archive.writestr(zipfile.ZipInfo(f"{i}"), b"")
    data = buffer.getvalue()
    tracemalloc.start()
    try:
        message = refuse(data, tmp_path, "too_many_members")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(LIMITS.members) in message
    assert peak < 2 << 20, f"refusing it held {peak >> 10} KiB"


def test_read_handin_files_keeps_only_the_head_of_each_graded_file(tmp_path):
    members = [*VALID, reg("mytorch/nn/big.py", b"#" * 5000), reg("notes.txt", b"ignored"),
               reg("mytorch/nn/__pycache__/x.cpython-311.pyc", b"\0" * 16)]
    files = read_handin_files(make_tar(members), layout=HW1P1_LAYOUT, keep_bytes=100)
    assert [(f.path, f.size, len(f.head)) for f in files] == [
        ("models/mlp.py", 6, 6), ("mytorch/nn/big.py", 5000, 100), ("mytorch/nn/linear.py", 6, 6)]


def test_directory_source_with_a_name_that_is_not_utf8_is_refused(tmp_path):
    """`grader grade FOLDER`: the digest and the pages need UTF-8 names, as from an archive."""
    src = build_handin(tmp_path / "src")
    (src / os.fsdecode(b"mytorch/nn/caf\xe9.py")).write_text("x = 1\n")
    message = refuse(src, tmp_path, "bad_name")
    assert "not UTF-8" in message
