"""Reference solution of HW2P1 (CNNs), in the handout's layout: `mytorch/` (resampling, the
convolutions, pooling, flatten, and the HW1P1 activation, linear and loss files the models use)
and `models/` (the scanning MLPs and the CNN). Written from the math; checked against PyTorch in
tests/reference/test_hw2_against_torch.py. Files import each other as `mytorch.nn.X`, the way the
grader's runner resolves them, never through the __init__.py files."""
