"""Result-channel tampering: every hostile result file is rejected with a clear error, never executed."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sandbox import ResultFileError, load_npz_safely, read_text_safely


def test_valid_npz_loads(tmp_path):
    np.savez_compressed(tmp_path / "r.npz", a=np.arange(6.0).reshape(2, 3), b=np.array([True, False]),
                        c=np.array([7], dtype=np.uint8), d=np.asfortranarray(np.ones((2, 2), dtype=np.int16)))
    arrays = load_npz_safely(tmp_path / "r.npz")
    assert arrays["a"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert arrays["b"].dtype == bool and arrays["c"][0] == 7 and arrays["d"].sum() == 4


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128, np.clongdouble])
def test_complex_array_is_refused(tmp_path, dtype):
    # Compared as floats, the imaginary part would silently be dropped.
    np.savez(tmp_path / "r.npz", x=np.array([1 + 2j], dtype=dtype))
    with pytest.raises(ResultFileError, match="forbidden dtype"):
        load_npz_safely(tmp_path / "r.npz")


def test_symlink_to_root_only_file_is_refused(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("root only")
    secret.chmod(0o600)
    (tmp_path / "result.npz").symlink_to(secret)
    with pytest.raises(ResultFileError, match="not a regular file"):
        load_npz_safely(tmp_path / "result.npz")
    with pytest.raises(ResultFileError, match="not a regular file"):
        read_text_safely(tmp_path / "result.npz", 1000)


def test_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "result.npz")
    with pytest.raises(ResultFileError, match="not a regular file"):
        load_npz_safely(tmp_path / "result.npz")


def test_pickled_object_array_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    np.savez(tmp_path / "r.npz", x=np.array([Payload()], dtype=object))
    with pytest.raises(ResultFileError, match="forbidden dtype"):
        load_npz_safely(tmp_path / "r.npz")
    assert not marker.exists()


def test_structured_dtype_is_refused(tmp_path):
    np.savez(tmp_path / "r.npz", x=np.zeros(2, dtype=[("a", "i4"), ("b", "f8")]))
    with pytest.raises(ResultFileError, match="forbidden dtype"):
        load_npz_safely(tmp_path / "r.npz")


def _npz_with_member(path: Path, name: str, data: bytes, compression=zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", compression) as zf:
        zf.writestr(name, data)


def test_header_claiming_a_huge_shape_is_refused_before_allocating(tmp_path):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (10**11,)})
    _npz_with_member(tmp_path / "r.npz", "x.npy", buf.getvalue() + b"\0" * 64)
    with pytest.raises(ResultFileError, match="over the"):
        load_npz_safely(tmp_path / "r.npz")


def test_payload_longer_than_header_is_refused(tmp_path):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (2,)})
    _npz_with_member(tmp_path / "r.npz", "x.npy", buf.getvalue() + b"\0" * 64)
    with pytest.raises(ResultFileError, match="more bytes than its header"):
        load_npz_safely(tmp_path / "r.npz")


def test_deflate_bomb_is_cut_off(tmp_path):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": (1 << 20,)})
    with zipfile.ZipFile(tmp_path / "r.npz", "w", zipfile.ZIP_DEFLATED) as zf, \
            zf.open("x.npy", "w", force_zip64=True) as member:
        member.write(buf.getvalue())
        for _ in range(256):  # 256 MiB of zeros, about 256 KB compressed
            member.write(bytes(1 << 20))
    assert (tmp_path / "r.npz").stat().st_size < 1 << 20
    with pytest.raises(ResultFileError, match="more bytes than its header"):
        load_npz_safely(tmp_path / "r.npz", max_array_bytes=8 << 20)


def test_too_many_members_is_refused(tmp_path):
    np.savez(tmp_path / "r.npz", **{f"a{i}": np.zeros(1) for i in range(40)})
    with pytest.raises(ResultFileError, match="members, over the limit"):
        load_npz_safely(tmp_path / "r.npz", max_members=32)


def test_file_over_size_cap_and_garbage_are_refused(tmp_path):
    (tmp_path / "big.npz").write_bytes(b"\0" * 4096)
    with pytest.raises(ResultFileError, match="larger than"):
        load_npz_safely(tmp_path / "big.npz", max_file_bytes=1024)
    with pytest.raises(ResultFileError, match="not a valid .npz"):
        load_npz_safely(tmp_path / "big.npz")
    with pytest.raises(ResultFileError, match="was not written"):
        load_npz_safely(tmp_path / "missing.npz")


def test_read_text_safely(tmp_path):
    (tmp_path / "report.json").write_text('{"ok": true}')
    assert read_text_safely(tmp_path / "report.json", 100) == '{"ok": true}'
    with pytest.raises(ResultFileError, match="larger than"):
        read_text_safely(tmp_path / "report.json", 5)


def test_sandbox_planted_symlink_and_fifo_are_refused(runner, tmp_path):
    secret = tmp_path / "root-only"
    secret.write_text("host secret")
    secret.chmod(0o600)
    result = runner.run("""
        import os, sys
        os.symlink(sys.argv[1], "/out/result.npz")
        os.mkfifo("/out/report.json")
    """, args=[str(secret)])
    assert result.outcome == "ok", result
    with pytest.raises(ResultFileError, match="not a regular file"):
        load_npz_safely(runner.out / "result.npz")
    with pytest.raises(ResultFileError, match="not a regular file"):
        read_text_safely(runner.out / "report.json", 1000)
