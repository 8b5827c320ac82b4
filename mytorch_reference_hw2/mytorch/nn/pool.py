"""Pooling over square K x K windows of the last two axes.

The stride-1 pools slide by one (output H - K + 1); MaxPool2d and MeanPool2d are the stride-1 pool
followed by Downsample2d, which gives PyTorch's floor((H - K) / s) + 1. Max pooling sends each
output's gradient to the first maximum of its window in row-major order (PyTorch's choice);
windows overlap, so gradients add up. Both pools work separably (along the width, then the height),
2K passes over the input rather than K * K.
"""
import numpy as np
from mytorch.nn.resampling import Downsample2d


def _running_max(A, K, axis):
    """Max over K consecutive entries along AXIS (output length n - K + 1) and the offset 0..K-1 of
    the first maximum: a later offset wins only when strictly greater."""
    n = A.shape[axis] - K + 1
    window = [slice(None)] * A.ndim

    def shifted(k):
        window[axis] = slice(k, k + n)
        return A[tuple(window)]

    best = shifted(0).copy()
    offset = np.zeros(best.shape, dtype=np.int64)
    for k in range(1, K):
        candidate = shifted(k)
        better = candidate > best
        np.copyto(best, candidate, where=better)
        np.copyto(offset, k, where=better)
    return best, offset


def _box_sum(A, K, axis):
    """Sum over K consecutive entries along AXIS (output length n - K + 1)."""
    total = np.cumsum(A, axis=axis)
    zero = np.zeros_like(np.take(total, [0], axis=axis))
    total = np.concatenate([zero, total], axis=axis)
    n = A.shape[axis] - K + 1
    return np.take(total, np.arange(K, K + n), axis=axis) - np.take(total, np.arange(n), axis=axis)


def _spread(dLdZ, K, axis):
    """The transpose of `_box_sum`: each entry adds its value to the K inputs of its window."""
    shape = list(dLdZ.shape)
    shape[axis] += K - 1
    out = np.zeros(shape, dtype=np.result_type(dLdZ, np.float64))
    index = [slice(None)] * dLdZ.ndim
    for k in range(K):
        index[axis] = slice(k, k + dLdZ.shape[axis])
        out[tuple(index)] += dLdZ
    return out


class MaxPool2d_stride1:
    def __init__(self, kernel):
        self.kernel = kernel

    def forward(self, A):
        # Separably: along the width first, then the height, so ties go to the first maximum in
        # row-major order (the smallest row offset, then the smallest column offset in it).
        K = self.kernel
        self.input_shape = N, C, H, W = A.shape
        rows, col = _running_max(A, K, axis=3)          # (N, C, H, W_out)
        Z, row = _running_max(rows, K, axis=2)          # (N, C, H_out, W_out)
        H_out, W_out = Z.shape[2:]
        i = np.arange(H_out).reshape(1, 1, -1, 1) + row
        j = np.arange(W_out).reshape(1, 1, 1, -1) + np.take_along_axis(col, i, axis=2)
        # The input index each output came from, flat over the whole input.
        self.source = np.arange(N * C).reshape(N, C, 1, 1) * H * W + i * W + j
        return Z

    def backward(self, dLdZ):
        size = int(np.prod(self.input_shape))
        dLdA = np.bincount(self.source.ravel(), weights=dLdZ.ravel(), minlength=size)
        return dLdA.reshape(self.input_shape)


class MeanPool2d_stride1:
    def __init__(self, kernel):
        self.kernel = kernel

    def forward(self, A):
        K = self.kernel
        return _box_sum(_box_sum(A, K, axis=3), K, axis=2) / (K * K)

    def backward(self, dLdZ):
        K = self.kernel
        return _spread(_spread(dLdZ, K, axis=2), K, axis=3) / (K * K)


class MaxPool2d:
    def __init__(self, kernel, stride):
        self.kernel = kernel
        self.stride = stride
        self.maxpool2d_stride1 = MaxPool2d_stride1(kernel)
        self.downsample2d = Downsample2d(stride)

    def forward(self, A):
        return self.downsample2d.forward(self.maxpool2d_stride1.forward(A))

    def backward(self, dLdZ):
        return self.maxpool2d_stride1.backward(self.downsample2d.backward(dLdZ))


class MeanPool2d:
    def __init__(self, kernel, stride):
        self.kernel = kernel
        self.stride = stride
        self.meanpool2d_stride1 = MeanPool2d_stride1(kernel)
        self.downsample2d = Downsample2d(stride)

    def forward(self, A):
        return self.downsample2d.forward(self.meanpool2d_stride1.forward(A))

    def backward(self, dLdZ):
        return self.meanpool2d_stride1.backward(self.downsample2d.backward(dLdZ))
