"""What a student reads: failing value checks name the quantity and show where and by how much;
exceptions show a traceback of the student's own files only; missing classes, methods, wrong
signatures and import errors each give one clear sentence; NaN never passes."""
import json
import re

import numpy as np
import pytest
from catalogue import ACT, BN, LINEAR, LOSS, MLP, SGD, build_handin, tar_bytes

from grader.compare import MAX_OFF_INDICES, SHAPE_WHY, compare, format_check
from grader.grade import NOT_IMPORTED, grade
from grader.plan import Check
from grader.result import TestResult as GradedTest
from grader.suites.hw1p1 import SUITE as HW1P1

# Two handins, each with bugs in several sections that do not interact, graded once per module.
EXCEPTIONS_HANDIN = (
    (LINEAR, "        dLdA = dLdZ @ self.W\n", "        dLdA = dLdZ @ self.W.T\n"),        # ValueError
    (ACT, "class Sigmoid:", "class Sigmod:"),                                              # missing class
    (ACT, "    def forward(self, Z):\n        self.A = Z\n", "    def forward(self, Z):\n        self.A = Z * np.nan\n"),
    (ACT, "self.A = 2.0 * _sigmoid(2.0 * np.asarray(Z, dtype=np.float64)) - 1.0", "self.A = np.tanh(Z)"),
    (ACT, "    def __init__(self, beta=1.0):\n        self.beta = beta\n\n    def forward(self, Z):\n"
          "        self.Z = Z\n",
          "    def forward(self, Z, beta):\n        self.beta = beta\n        self.Z = Z\n"),      # signature
    (ACT, "shifted = Z - np.max(Z, axis=1, keepdims=True)  # avoids overflow for large inputs", "shifted = Z"),
    (LOSS, "return np.sum(se) / (self.N * self.C)", "return np.sum(se) / (self.N * self.C) / 0.0"),  # inf
    (SGD, "    def step(self):", "    def steps(self):"),                                  # missing method
    (BN, "def forward(self, Z, eval=False):", "def forward(self, Z, eval=False)"),          # syntax error
)
VALUES_HANDIN = (
    (LINEAR, "return A @ self.W.T + self.Ones @ self.b.T", "return A @ self.W.T"),       # values
    (LINEAR, "self.dLdb = dLdZ.T @ self.Ones", "self.dLdb = np.sum(dLdZ, axis=0)"),       # shape
    (ACT, "import numpy as np\nfrom scipy.special import erf",
          "import numpy as np\nimport helpers\nfrom scipy.special import erf"),          # import error
    (LOSS, "return (self.softmax - self.Y) / self.N", "return self.softmax - self.Y"),
    (SGD, "                layer.b = layer.b - self.lr * layer.dLdb\n", ""),
)


@pytest.fixture(scope="module")
def exceptions_result(tmp_path_factory, executor):
    root = build_handin(tmp_path_factory.mktemp("exc") / "src", EXCEPTIONS_HANDIN)
    return grade(tar_bytes(root), executor, suite=HW1P1)


@pytest.fixture(scope="module")
def values_result(tmp_path_factory, executor):
    root = build_handin(tmp_path_factory.mktemp("val") / "src", VALUES_HANDIN)
    (root / BN).unlink()
    return grade(tar_bytes(root), executor, suite=HW1P1)


def message(result, section: str, test: str) -> str:
    s = next(s for s in result.sections if s.name == section)
    t = next(t for t in s.tests if t.name == test)
    assert not t.passed and t.message, (section, test, t)
    return t.message


def assert_sentence(text: str) -> None:
    assert text and "\n" not in text and text.endswith("."), text
    assert "Traceback" not in text, text


# ---------------------------------------------------------------------------------------------
# Value and shape checks


def test_value_mismatch_names_the_quantity_and_locates_the_error(values_result):
    text = message(values_result, "Linear Layer", "handout case: Linear(2, 3)")
    first = text.splitlines()[0]
    # Z[0, 0] = (-4)(-2) + (-3)(-1) + b0 = 10 with b0 = -1; without the bias, 11.
    assert first == ("Z = Linear.forward(A): values differ. Largest absolute error 1 at index [0, 0] "
                     "(expected 10, got 11); 8 of 12 entries are off.")
    # A small array is shown in full, both sides.
    # (The second round's failing checks follow; only the first check's arrays are read here.)
    expected_part, got_part = text[text.index("expected:\n"):].split("got:\n")[:2]
    numbers = lambda part: [float(x) for x in re.findall(r"-?\d+\.?\d*", part)]
    assert numbers(expected_part)[:3] == [10.0, -3.0, -16.0]  # first row of the expected Z
    assert numbers(got_part)[:3] == [11.0, -3.0, -17.0]


def test_shape_mismatch_is_reported_exactly_and_says_why_it_matters(values_result):
    text = message(values_result, "Linear Layer", "handout case: Linear(2, 3)")
    assert ("Linear.dLdb after backward (debug=True): expected shape (3, 1), got (3,). A bias gradient of "
            "shape (out,) would turn the (out, 1) bias into (out, out) in the update b = b - lr·dLdb."
            in text.splitlines())


def test_large_arrays_get_no_excerpt(values_result):
    text = message(values_result, "Linear Layer", "random case: N=16, Linear(10, 6)")
    line = next(l for l in text.splitlines() if l.startswith("Z = Linear.forward(A)"))
    assert re.fullmatch(r"Z = Linear\.forward\(A\): values differ\. Largest absolute error [\d.e-]+ "
                        r"at index \[\d+, \d+\] \(expected [-\d.e]+, got [-\d.e]+\); \d+ of 96 entries are off\.",
                        line), line
    assert "expected:\n" not in text  # 16x6 arrays are too big to print


def test_scalar_check_accepts_the_loss_and_only_flags_the_gradient(values_result):
    text = message(values_result, "Loss", "handout case: CrossEntropyLoss")
    assert text.startswith("dLdA = CrossEntropyLoss.backward(): values differ.")
    assert "L = CrossEntropyLoss.forward" not in text


def test_sgd_message_names_the_parameter_and_step(values_result):
    text = message(values_result, "SGD", "handout case: plain SGD, two steps")
    assert text.startswith("layers[0].b after step 1 (lr=0.9, momentum=0): values differ.")
    assert "layers[0].W" not in text


def test_a_check_the_local_autograder_skips_says_so(values_result):
    """Plain SGD is printed but never scored by the official script; momentum is scored."""
    plain = message(values_result, "SGD", "handout case: plain SGD, two steps")
    assert plain.splitlines()[0].endswith("The local autograder does not check this value; the writeup "
                                          "specifies it."), plain
    # A value the local autograder does check says nothing of the kind.
    linear = message(values_result, "Linear Layer", "handout case: Linear(2, 3)").splitlines()
    assert linear[0].startswith("Z = Linear.forward(A): values differ.") and "local autograder" not in linear[0]
    # The second round is this suite's own: its failing checks say the local autograder skips it.
    later = next(line for line in linear if "in a second round on the same object" in line)
    assert later.endswith("The local autograder does not check this value; the writeup specifies it."), later


# ---------------------------------------------------------------------------------------------
# NaN and inf never pass


def test_nan_output_fails_with_its_location(exceptions_result):
    text = message(exceptions_result, "Activation", "handout case: Identity")
    assert text.startswith("A = Identity.forward(Z) contains nan at index [0, 0] (expected -4).")


def test_softmax_overflow_nan_fails(exceptions_result):
    text = message(exceptions_result, "Activation", "handout case: Softmax on large inputs")
    assert "A = Softmax.forward(Z) contains nan" in text


def test_infinite_loss_fails(exceptions_result):
    text = message(exceptions_result, "Loss", "handout case: MSELoss")
    assert text.startswith("L = MSELoss.forward(A, Y) contains inf")


def check_text(check: Check, expected, got) -> str | None:
    """compare()'s outcome as the student reads it, None when it passes."""
    outcome, _ = compare(check, np.asarray(expected), None if got is None else np.asarray(got), None)
    return None if outcome.passed else format_check(outcome)


@pytest.mark.parametrize("kind", ["values", "scalar", "parameter"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_compare_never_accepts_non_finite_values(kind, bad):
    expected = np.array([1.0]) if kind == "scalar" else np.array([[1.0, 2.0], [3.0, 4.0]])
    got = expected.copy()
    got.flat[-1] = bad
    text = check_text(Check("x", "X", kind), expected, got)
    assert text and "contains" in text


def test_compare_rejects_nan_where_nan_is_expected():
    """Even matching NaNs fail: the reference never produces one, so a NaN is always a bug."""
    assert check_text(Check("x", "X"), [np.nan], [np.nan])


def test_compare_shape_rules():
    expected = np.zeros((3, 1))
    assert check_text(Check("x", "X"), expected, np.zeros(3)) == "X: expected shape (3, 1), got (3,). " + SHAPE_WHY["values"]
    assert check_text(Check("x", "X"), expected, np.zeros((1, 3))).startswith("X: expected shape (3, 1), got (1, 3).")
    assert check_text(Check("x", "X", "scalar"), np.float64(2.0), np.array([[2.0]])) is None
    assert "single number" in check_text(Check("x", "X", "scalar"), np.float64(2.0), np.array([2.0, 2.0]))


def test_compare_tolerance_accepts_float32_and_rejects_small_real_bugs():
    expected = np.array([123.456789, -0.5, 1e-6])
    assert check_text(Check("x", "X"), expected, expected.astype(np.float32)) is None
    # GELU's tanh approximation is off by about 2e-4 to 9e-4: a real bug.
    assert check_text(Check("x", "X"), np.array([-0.0852]), np.array([-0.0852 + 9e-4]))


# ---------------------------------------------------------------------------------------------
# The typed outcome of a check (what the web page renders from)


def test_failing_check_is_typed_with_excerpts_shapes_and_off_indices():
    expected = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    got = expected.copy()
    got[0, 1], got[1, 2] = 2.5, 9.0
    outcome, notes = compare(Check("x", "X"), expected, got, None)
    assert not outcome.passed and notes == []
    assert outcome.label == "X"
    assert outcome.expected == expected.tolist() and outcome.got == got.tolist()
    assert outcome.expected_shape == [2, 3] == outcome.got_shape
    assert outcome.worst_index == [1, 2]
    assert outcome.off_indices == [[0, 1], [1, 2]]
    assert outcome.message == ("X: values differ. Largest absolute error 3 at index [1, 2] "
                               "(expected 6, got 9); 2 of 6 entries are off.")
    assert "\n" not in outcome.message  # the arrays are typed fields, not text
    assert format_check(outcome).startswith(outcome.message + "\nexpected:\n")


def test_large_arrays_have_no_typed_excerpt_but_keep_their_indices():
    expected = np.zeros((10, 10))
    got = expected.copy()
    got[3, 4] = 1
    outcome, _ = compare(Check("x", "X"), expected, got, None)
    assert outcome.expected is None and outcome.got is None
    assert outcome.worst_index == [3, 4] and outcome.off_indices == [[3, 4]]
    assert format_check(outcome) == outcome.message


def test_off_indices_are_capped():
    outcome, _ = compare(Check("x", "X"), np.zeros((20, 20)), np.ones((20, 20)), None)
    assert len(outcome.off_indices) == MAX_OFF_INDICES
    assert "400 of 400 entries are off" in outcome.message


def test_shape_mismatch_is_typed():
    outcome, _ = compare(Check("x", "X"), np.zeros((3, 1)), np.zeros(3), None)
    assert (outcome.passed, outcome.expected_shape, outcome.got_shape) == (False, [3, 1], [3])
    assert outcome.expected is None and outcome.worst_index is None and outcome.off_indices == []


def test_non_finite_values_survive_json_as_strings():
    got = np.array([[1.0, np.nan], [np.inf, 4.0]])
    outcome, _ = compare(Check("x", "X"), np.array([[1.0, 2.0], [3.0, 4.0]]), got, None)
    assert outcome.worst_index == [0, 1] and outcome.off_indices == [[0, 1], [1, 0]]
    data = json.loads(GradedTest(name="t", passed=False, checks=[outcome]).model_dump_json())
    assert data["checks"][0]["got"] == [[1.0, "NaN"], ["Infinity", 4.0]]
    again = GradedTest.model_validate(data).checks[0]
    assert np.isnan(again.got[0][1]) and again.got[1][0] == np.inf


def test_passing_check_is_recorded_without_excerpts():
    outcome, notes = compare(Check("x", "X"), np.ones((2, 2)), np.ones((2, 2), dtype=np.float32), None)
    assert outcome.passed and notes == [] and outcome.message == ""
    assert outcome.expected is None and outcome.got is None and outcome.off_indices == []


def test_graded_tests_carry_typed_checks(values_result):
    section = next(s for s in values_result.sections if s.name == "Linear Layer")
    test = next(t for t in section.tests if t.name == "handout case: Linear(2, 3)")
    by_label = {c.label: c for c in test.checks}
    z = by_label["Z = Linear.forward(A)"]
    assert not z.passed and z.worst_index == [0, 0] and z.expected_shape == [4, 3]
    assert z.expected[0][:3] == [10.0, -3.0, -16.0] and z.got[0][:3] == [11.0, -3.0, -17.0]
    assert [0, 0] in z.off_indices and len(z.off_indices) == 8
    db = by_label["Linear.dLdb after backward (debug=True)"]
    assert (db.passed, db.expected_shape, db.got_shape) == (False, [3, 1], [3])
    assert by_label["W right after Linear(2, 3)"].passed
    # The summary message is still built from the same checks, in order.
    assert test.message == "\n".join(format_check(c) for c in test.checks if not c.passed)


# ---------------------------------------------------------------------------------------------
# Exceptions: a traceback of the student's own files


def _frames(text: str) -> list[str]:
    return re.findall(r'File "([^"]+)", line \d+', text)


def test_exception_shows_a_traceback_of_the_students_files_only(exceptions_result):
    text = message(exceptions_result, "Linear Layer", "handout case: Linear(2, 3)")
    assert text.startswith("Traceback (your code only):\n")
    assert _frames(text) == ["mytorch/nn/linear.py"]
    assert "    dLdA = dLdZ @ self.W.T" in text
    assert text.splitlines()[-1].startswith("ValueError: matmul")
    for banned in ("runner.py", "grader/", "importlib", "numpy/", "/tmp", "/handin", "site-packages"):
        assert banned not in text, banned


def test_traceback_through_the_model_shows_both_files(exceptions_result):
    text = message(exceptions_result, "MLP0", "random case: MLP0 with a batch of 4")
    assert _frames(text) == ["models/mlp.py", "mytorch/nn/linear.py"]
    assert "runner.py" not in text and "/tmp" not in text


# ---------------------------------------------------------------------------------------------
# One clear sentence each


def test_missing_class(exceptions_result):
    text = message(exceptions_result, "Activation", "handout case: Sigmoid")
    assert text == "mytorch/nn/activation.py defines no class Sigmoid."


def test_missing_method(exceptions_result):
    text = message(exceptions_result, "SGD", "handout case: plain SGD, two steps")
    assert text == "SGD has no method step()."


def test_wrong_signature_names_the_writeups_and_yours(exceptions_result):
    text = message(exceptions_result, "Activation", "handout case: Swish() on an integer input")
    assert_sentence(text)
    assert text == ("Swish.forward cannot be called as Swish.forward(…): the writeup's signature is "
                    "Swish.forward(Z), yours is Swish.forward(Z, beta).")


def test_forbidden_np_tanh(exceptions_result):
    text = message(exceptions_result, "Activation",
                   "Tanh.forward runs with np.tanh disabled (the writeup forbids np.tanh)")
    assert_sentence(text)
    assert "np.tanh" in text and "exponentials" in text


def _section(result, name):
    return next(s for s in result.sections if s.name == name)


def test_syntax_error_is_one_section_message_with_the_line_and_a_caret(exceptions_result):
    section = _section(exceptions_result, "Batch Norm")
    assert section.message == ("mytorch/nn/batchnorm.py has a syntax error on line 18: expected ':'.\n"
                               "    def forward(self, Z, eval=False)\n"
                               "                                    ^")
    # Each test only points to it: the error is not repeated per test.
    assert {t.message for t in section.tests} == {NOT_IMPORTED}
    assert {t.stopped for t in section.tests} == {"import"}
    assert all(not t.passed and not t.checks for t in section.tests)
    # ... and the section links the line (issue 20 item 3).
    assert section.location.model_dump() == {"path": "mytorch/nn/batchnorm.py", "line": 18}


def test_import_error_is_one_section_message_with_the_line_and_a_caret(values_result):
    for section, graded in [("Activation", "mytorch/nn/activation.py"), ("MLP0", "models/mlp.py")]:
        s = _section(values_result, section)
        assert s.message == (f"Importing {graded} failed: ModuleNotFoundError: No module named 'helpers' "
                             f"(in mytorch/nn/activation.py, line 3).\n"
                             f"    import helpers\n"
                             f"    ^^^^^^^^^^^^^^")
        assert {t.message for t in s.tests} == {NOT_IMPORTED}
        # the line that failed, in the file that has it (not the graded file that imported it)
        assert s.location.model_dump() == {"path": "mytorch/nn/activation.py", "line": 3}


def test_missing_file_is_said_once_for_the_section(values_result):
    section = _section(values_result, "Batch Norm")
    assert section.message == "mytorch/nn/batchnorm.py is missing from your handin."
    assert {t.message for t in section.tests} == {NOT_IMPORTED}
    assert section.location is None   # no line to show


def test_missing_files_are_listed_once_for_the_handin(values_result):
    """Issue 20 item 3: one note names every graded file the handin lacks."""
    listed = [n for n in values_result.notes if "graded file" in n]
    assert listed == ["Your handin lacks 1 graded file: mytorch/nn/batchnorm.py. Every section that needs one "
                      "scores 0; add them and submit again."], values_result.notes


# ---------------------------------------------------------------------------------------------
# Messages seen on real handins (issue 9, section 3), one handin with one such problem per section.

MESSAGES_HANDIN = (
    # Linear: a constructor without the writeup's debug parameter.
    (LINEAR, "def __init__(self, in_features, out_features, debug=False):",
             "def __init__(self, in_features, out_features):\n        debug = True"),
    # Activation: a Tanh that never calls np.tanh and is wrong (infinite at Z = 0).
    (ACT, "self.A = 2.0 * _sigmoid(2.0 * np.asarray(Z, dtype=np.float64)) - 1.0",
          "self.A = (np.exp(Z) + np.exp(-Z)) / (np.exp(Z) - np.exp(-Z))"),
    # MLP1: the skeleton's layers list left as None.
    (MLP, "self.layers = [Linear(2, 3), ReLU(), Linear(3, 2), ReLU()]", "self.layers = None"),
    # Loss: the skeleton's `raise NotImplemented` left in CrossEntropyLoss.backward; MSELoss.forward(A).
    (LOSS, "        return (self.softmax - self.Y) / self.N", "        raise NotImplemented"),
    (LOSS, "    def forward(self, A, Y):\n        self.A = A\n        self.Y = Y\n        self.N, self.C = A.shape\n"
           "        se = (A - Y) * (A - Y)",
           "    def forward(self, A):\n        Y = A\n        self.A = A\n        self.Y = Y\n"
           "        self.N, self.C = A.shape\n        se = (A - Y) * (A - Y)"),
    # SGD: a step that asks the layers for more than W, b, dLdW and dLdb.
    (SGD, "    def step(self):\n", "    def step(self):\n        self.l[0].backward\n"),
)


@pytest.fixture(scope="module")
def messages_result(tmp_path_factory, executor):
    root = build_handin(tmp_path_factory.mktemp("msg") / "src", MESSAGES_HANDIN)
    return grade(tar_bytes(root), executor, suite=HW1P1)


def test_a_wrong_tanh_fails_on_its_values_not_on_np_tanh(messages_result):
    activation = _section(messages_result, "Activation")
    failing = [t for t in activation.tests if not t.passed]
    assert failing and not any("np.tanh" in t.name or "np.tanh" in t.message for t in failing)
    assert next(t for t in activation.tests if "np.tanh disabled" in t.name).passed
    text = message(messages_result, "Activation", "handout case: Tanh")
    assert text.startswith("A = Tanh.forward(Z) contains inf at index [2, 0] (expected 0).")


def test_sgd_stand_ins_say_what_they_hold_and_what_was_asked(messages_result):
    text = message(messages_result, "SGD", "handout case: plain SGD, two steps")
    assert "SimpleNamespace" not in text
    assert text.splitlines()[-1] == (
        "AttributeError: model.layers[0] has no attribute 'backward': SGD is graded on a stand-in model "
        "whose layers are plain objects holding only W, b, dLdW and dLdb (so a bug in your Linear never "
        "costs SGD); step() should use only those.")
    assert "self.l[0].backward" in text  # the student's own line, from the traceback


def test_unimplemented_skeleton_says_so(messages_result):
    text = message(messages_result, "Loss", "handout case: CrossEntropyLoss")
    assert_sentence(text)
    assert re.fullmatch(r"CrossEntropyLoss\.backward in mytorch/nn/loss\.py is still the unimplemented "
                        r"skeleton: line \d+ raises NotImplemented\. Implement it as the writeup describes\.",
                        text), text
    assert "BaseException" not in text


def test_signature_errors_name_every_expected_parameter(messages_result):
    text = message(messages_result, "Linear Layer", "handout case: Linear(2, 3)")
    # The official script passes debug by name: the message says that is what the signature lacks.
    assert text == ("Linear cannot be called as Linear(…, …, debug=True), as the official script calls it: it "
                    "passes 'debug' by name, and your Linear(in_features, out_features) has no parameter of that "
                    "name (the writeup's signature is Linear(in_features, out_features, debug=False)).")
    text = message(messages_result, "Loss", "handout case: MSELoss")
    assert text == ("MSELoss.forward cannot be called as MSELoss.forward(…, …): the writeup's signature is "
                    "MSELoss.forward(A, Y), yours is MSELoss.forward(A).")


def test_layers_never_built(messages_result):
    text = message(messages_result, "MLP1", "random case: MLP1 with a batch of 4")
    assert text == ("MLP1.layers is None, so it has no item [0]: the list was never built "
                    "(build self.layers in MLP1.__init__). The grader reads the Linears at layers[0], [2], [4], "
                    "...: layers must interleave each Linear with its activation, [Linear, ReLU, Linear, ReLU, ...].")


def test_value_that_is_not_an_array(tmp_path, executor):
    root = build_handin(tmp_path / "src", (
        (LINEAR, "            self.dLdA = dLdA\n        return dLdA\n", "            self.dLdA = dLdA\n"),
        (MLP, "            self.Z0 = Z0\n            self.A1 = A1\n", "            self.Z0 = 'Z0'\n            self.A1 = A1\n"),
    ))
    result = grade(tar_bytes(root), executor, suite=HW1P1)
    text = message(result, "Linear Layer", "handout case: Linear(2, 3)")
    assert text.splitlines() == [
        "the value returned by Linear.backward(dLdZ) is None (NoneType), not a numeric array.",
        "the value returned by Linear.backward(dLdZ) in a second round on the same object (batch of 7) is None "
        "(NoneType), not a numeric array. The local autograder does not check this value; the writeup specifies it."]
    text = message(result, "MLP0", "random case: MLP0 with a batch of 4")
    assert "MLP0.Z0 after forward (debug=True) is 'Z0' (str), not a numeric array." in text.splitlines()
