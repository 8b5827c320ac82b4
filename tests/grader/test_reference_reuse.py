"""The trusted reference run: its modules are imported once per process and kept out of
sys.modules between runs, and the runner reads only its own section's inputs."""

import sys
import types

import numpy as np

from grader import runner
from grader.grade import reference_for
from grader.plan import serialize
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


def test_runner_reads_only_its_sections_inputs(tmp_path):
    plans, inputs = _plans()
    np.savez(tmp_path / "inputs.npz", **inputs)
    seen = {}
    real = runner.run_section

    def spy(section, section_inputs, root, package):
        seen.update(section_inputs)
        return real(section, section_inputs, root, package)

    runner.run_section = spy
    try:
        import json
        (tmp_path / "plans.json").write_text(json.dumps(plans))
        out = tmp_path / "out"
        out.mkdir()
        runner.main([str(tmp_path / "plans.json"), str(tmp_path / "inputs.npz"),
                     REFERENCE.root, str(out), "2"])
    finally:
        runner.run_section = real
    assert seen and all(key.startswith("2.") for key in seen)
    assert len(seen) == sum(key.startswith("2.") for key in inputs)
