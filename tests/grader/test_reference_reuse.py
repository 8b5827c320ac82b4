"""The trusted reference run: its modules are imported once per process and kept out of
sys.modules between runs; the runner's inputs are loaded once per sandbox and come back exactly."""

import json
import sys
import types

import numpy as np
import pytest

from grader import runner
from grader.grade import reference_for
from grader.plan import pack_arrays, serialize, write_job
from grader.suites import hw1p1

REFERENCE = reference_for(hw1p1.SUITE)


def _plans():
    plans, inputs = serialize(hw1p1.build_suite("reference-reuse"))
    plans["package"] = hw1p1.SUITE.package_plan()
    return plans, inputs


def test_reference_modules_are_imported_once_and_give_the_same_outputs():
    plans, inputs = _plans()
    first = REFERENCE.outputs(plans, inputs)
    linear = REFERENCE._modules["mytorch.nn.linear"]
    second = REFERENCE.outputs(plans, inputs)
    assert REFERENCE._modules["mytorch.nn.linear"] is linear   # not recompiled on the second grade
    for a, b in zip(first, second):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_reference_run_leaves_other_mytorch_modules_in_place():
    """A `mytorch` that was in sys.modules before (e.g. a test's own) is back afterwards, and the
    reference's modules are not visible outside its run."""
    plans, inputs = _plans()
    foreign = types.ModuleType("mytorch")
    sys.modules["mytorch"] = foreign
    try:
        REFERENCE.outputs(plans, inputs)
        assert sys.modules["mytorch"] is foreign
        assert not [n for n in sys.modules if n.startswith("mytorch.") or n.split(".")[0] == "models"]
    finally:
        del sys.modules["mytorch"]


def test_signature_mismatch_is_reported_on_every_call_with_the_cached_signature():
    class Layer:
        def forward(self, A):
            return A

    run = runner.TestRun({})
    run.vars["m"], run.labels["m"] = Layer(), "Layer"
    for _ in range(2):
        try:
            run.step({"op": "call", "var": "m", "method": "forward", "args": [1, 2]})
        except runner.StudentError as exc:
            assert str(exc) == "Layer.forward cannot be called as Layer.forward(…, …): its signature is Layer.forward(A)."
        else:
            raise AssertionError("a call with too many arguments was accepted")


def test_section_processes_start_with_the_job_already_loaded(tmp_path):
    # A batch sandbox's init calls `setup` once; every section process forked from it then reads
    # neither file again (parsing them per section was most of a section's cost).
    plans, inputs = _plans()
    write_job(tmp_path, plans, inputs)
    job = [str(tmp_path / "plans.json"), str(tmp_path / "inputs.bin")]
    runner.setup(job)
    (tmp_path / "plans.json").unlink()
    (tmp_path / "inputs.bin").unlink()
    out = tmp_path / "out"
    out.mkdir()
    try:
        assert runner.main([*job, REFERENCE.root, str(out), "2"]) == 0
    finally:
        runner._jobs.clear()
    from sandbox import load_safetensors_bytes
    arrays = load_safetensors_bytes((out / "outputs.safetensors").read_bytes(), "outputs")
    assert arrays and all(key.split("/")[0].isdigit() for key in arrays)


def test_input_arrays_come_back_exactly_from_the_packed_blob():
    arrays = {"f64": np.arange(6.0).reshape(2, 3), "f32": np.ones((1, 4), dtype=np.float32) / 3,
              "bool": np.array([True, False]), "int": np.array(7, dtype=np.int16),
              "empty": np.zeros((0, 5)), "fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
              "big_endian": np.arange(3, dtype=">i4")}
    index, blob = pack_arrays(arrays)
    back = runner.unpack_arrays(json.loads(json.dumps(index)), blob)
    assert back.keys() == arrays.keys()
    for key, value in arrays.items():
        assert back[key].dtype == value.dtype and back[key].shape == value.shape, key
        assert np.array_equal(back[key], value), key


def test_a_written_job_maps_back_exactly_and_read_only(tmp_path):
    """write_job streams the arrays (uncopied) and load_job maps the file read-only: the values come
    back exactly, and code under test cannot write them, in place or through the mapping."""
    arrays = {"f64": np.arange(6.0).reshape(2, 3), "empty": np.zeros((0, 5)), "int": np.array(7, dtype=np.int16),
              "fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)), "big_endian": np.arange(3, dtype=">i4")}
    write_job(tmp_path, {"sections": []}, arrays)
    try:
        _, back = runner.load_job(str(tmp_path / "plans.json"), str(tmp_path / "inputs.bin"))
        for key, value in arrays.items():
            assert back[key].dtype == value.dtype and np.array_equal(back[key], value), key
        with pytest.raises(ValueError, match="read-only"):
            back["f64"][0, 0] = 1.0
        with pytest.raises(ValueError):
            back["f64"].flags.writeable = True
    finally:
        runner._jobs.clear()
