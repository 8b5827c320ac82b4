"""Which classic-mistake hints (grader/compare.py) each buggy catalogue handin must show, and no
other: a hint anywhere else would be a wrong accusation. Correct handins must show none."""

from __future__ import annotations

# bug name (catalogue.py, catalogue_real.py, bonus_catalogue.py, hw2p1_catalogue.py) -> mistakes
EXPECTED = {
    # catalogue.py
    "linear_Z_transposed": {"transposed"},
    "linear_s23_divides_by_N": {"divided"},
    "mse_backward_missing_2": {"divided"},          # a factor 2 missing
    "mse_s23_half_sse": {"divided"},
    "mse_sum_instead_of_mean": {"multiplied"},
    "ce_backward_not_divided_by_N": {"multiplied"},
    "ce_sum_instead_of_mean": {"multiplied"},
    "ce_mean_over_all_entries": {"divided"},        # divides by N * C, C times too large
    "mse_sizes_from_the_first_call": {"multiplied"},   # divides by the first call's (smaller) size
    "bn_swapped_running_weights": {"factor"},       # alpha / (1 - alpha)
    "mlp4_debug_dLdA_wrong_order": {"swapped"},
    "bn_parameter_gradients_swapped": {"swapped"},
    # catalogue_real.py
    "real_bn_parameter_gradients_swapped": {"swapped"},
    # bonus_catalogue.py
    "dropout_scales_by_p": {"factor"},
    "dropout_no_scaling": {"factor"},
    "dropout_eval_scales_by_keep_probability": {"factor"},   # 1 - p
    # hw2p1_catalogue.py
    "conv1d_dLdW_averaged_over_batch": {"divided"},
    "conv2d_dLdb_mean_over_positions": {"divided"},
    "meanpool_backward_not_divided": {"multiplied"},
    "meanpool_backward_divided_by_K": {"multiplied"},      # divides by K, K times too small
    "cnn_backward_uses_mean_loss_gradient": {"divided"},
}


def mistakes(result) -> set[str]:
    return {str(c.mistake) for s in result.sections for t in s.tests for c in t.checks if c.mistake}


def assert_hints(result, name: str) -> None:
    """RESULT (of the catalogue handin NAME) shows exactly the declared mistakes, only on failing checks."""
    assert mistakes(result) == EXPECTED.get(name, set()), (name, mistakes(result))
    for section in result.sections:
        for test in section.tests:
            for check in test.checks:
                assert not (check.passed and (check.hint or check.mistake)), (name, check)
