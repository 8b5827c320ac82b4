"""Result-channel tampering: every hostile result file is rejected with a clear error, never executed."""

from __future__ import annotations

import os

import numpy as np
import pytest

from grader.runner import write_arrays
from sandbox import ResultFileError, load_safetensors_bytes, read_result_file


def test_symlink_to_root_only_file_is_refused(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("root only")
    secret.chmod(0o600)
    (tmp_path / "outputs.safetensors").symlink_to(secret)
    with pytest.raises(ResultFileError, match="not a regular file"):
        read_result_file(tmp_path / "outputs.safetensors", 1000)


def test_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "report.json")
    with pytest.raises(ResultFileError, match="not a regular file"):
        read_result_file(tmp_path / "report.json", 1000)


def test_file_over_size_cap_missing_and_garbage_are_refused(tmp_path):
    (tmp_path / "big.safetensors").write_bytes(b"\0" * 4096)
    with pytest.raises(ResultFileError, match="larger than"):
        read_result_file(tmp_path / "big.safetensors", 1024)
    with pytest.raises(ResultFileError, match="not a valid safetensors file"):
        load_safetensors_bytes(read_result_file(tmp_path / "big.safetensors", 1 << 20), "big.safetensors")
    with pytest.raises(ResultFileError, match="was not written"):
        read_result_file(tmp_path / "missing.safetensors", 1000)


def test_sandbox_planted_symlink_and_fifo_are_refused(runner, tmp_path):
    secret = tmp_path / "root-only"
    secret.write_text("host secret")
    secret.chmod(0o600)
    result = runner.run("""
        import os, sys
        os.symlink(sys.argv[1], "/out/outputs.safetensors")
        os.mkfifo("/out/report.json")
    """, args=[str(secret)])
    assert result.outcome == "ok", result
    for name in ("outputs.safetensors", "report.json"):
        with pytest.raises(ResultFileError, match="not a regular file"):
            read_result_file(runner.out / name, 1000)


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
