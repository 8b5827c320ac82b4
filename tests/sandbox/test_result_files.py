"""Result-channel tampering: every hostile result file is rejected with a clear error, never executed."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from grader.runner import write_arrays
from sandbox import ResultFileError, load_npz_safely, load_safetensors_bytes, read_text_safely


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


# The arrays a grading section writes back: the safetensors format, read with the library's parser.

def _safetensors(header: dict, payload: bytes) -> bytes:
    import json
    head = json.dumps(header).encode()
    return len(head).to_bytes(8, "little") + head + payload


def test_runner_arrays_round_trip_through_the_safetensors_reader(tmp_path):
    arrays = {"0/Z": np.arange(6.0).reshape(2, 3), "0/mask": np.array([True, False]),
              "1/n": np.array(3, dtype=np.int64), "1/f32": np.ones(2, dtype=np.float32),
              "2/fortran": np.asfortranarray(np.arange(4.0).reshape(2, 2)), "2/be": np.arange(2, dtype=">f8"),
              "2/long": np.array([1.5], dtype=np.longdouble)}
    write_arrays(str(tmp_path / "out.safetensors"), arrays)
    back = load_safetensors_bytes((tmp_path / "out.safetensors").read_bytes(), "out")
    assert back.keys() == arrays.keys()
    for key, value in arrays.items():
        assert back[key].shape == value.shape and np.array_equal(back[key], value), key
        assert back[key].flags.writeable


def test_complex_safetensors_array_is_refused():
    data = _safetensors({"x": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, bytes(8))
    with pytest.raises(ResultFileError, match="forbidden dtype"):
        load_safetensors_bytes(data, "out")


@pytest.mark.parametrize("damage", ["overlapping", "out_of_bounds", "shape_mismatch", "unknown_dtype",
                                    "huge_header", "truncated", "not_json"])
def test_damaged_safetensors_is_refused(damage):
    entry = {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}
    data = {
        "overlapping": _safetensors({"a": entry, "b": entry}, bytes(8)),
        "out_of_bounds": _safetensors({"a": entry | {"data_offsets": [0, 1 << 40]}}, bytes(8)),
        "shape_mismatch": _safetensors({"a": entry | {"shape": [1 << 20, 1 << 20]}}, bytes(8)),
        "unknown_dtype": _safetensors({"a": entry | {"dtype": "OBJECT"}}, bytes(8)),
        "huge_header": (1 << 40).to_bytes(8, "little") + b"{}",
        "truncated": b"\x10\0\0",
        "not_json": (16).to_bytes(8, "little") + b"import os;print(" + bytes(8),
    }[damage]
    with pytest.raises(ResultFileError, match="not a valid safetensors file"):
        load_safetensors_bytes(data, "out")


def test_too_many_safetensors_arrays_is_refused():
    header = {f"a{i}": {"dtype": "U8", "shape": [1], "data_offsets": [i, i + 1]} for i in range(40)}
    with pytest.raises(ResultFileError, match="over the limit"):
        load_safetensors_bytes(_safetensors(header, bytes(40)), "out", max_members=32)
