"""Pooling over square K x K windows of the last two axes.

The stride-1 pools slide by one (output H - K + 1); MaxPool2d and MeanPool2d are the stride-1 pool
followed by Downsample2d, which gives PyTorch's floor((H - K) / s) + 1. Max pooling sends each
output's gradient to the first maximum of its window in row-major order (PyTorch's choice);
windows overlap, so gradients add up.
"""
import numpy as np
from mytorch.nn.resampling import Downsample2d


def _shifted(A, K):
    """(k, l, A[:, :, k:k + H_out, l:l + W_out]) for every offset of a K x K window."""
    H_out, W_out = A.shape[2] - K + 1, A.shape[3] - K + 1
    for k in range(K):
        for l in range(K):
            yield k, l, A[:, :, k:k + H_out, l:l + W_out]


def _scatter(dLdZ, weights_by_offset, K, input_shape):
    """dLdA: each offset (k, l) of the window adds dLdZ * weight to the inputs it covers."""
    dLdA = np.zeros(input_shape, dtype=np.result_type(dLdZ, np.float64))
    H_out, W_out = dLdZ.shape[2:]
    for k in range(K):
        for l in range(K):
            dLdA[:, :, k:k + H_out, l:l + W_out] += dLdZ * weights_by_offset(k, l)
    return dLdA


class MaxPool2d_stride1:
    def __init__(self, kernel):
        self.kernel = kernel

    def forward(self, A):
        K = self.kernel
        self.input_shape = A.shape
        Z = offset = None
        for k, l, window in _shifted(A, K):
            if Z is None:
                Z, offset = window.copy(), np.zeros(window.shape, dtype=np.int64)
                continue
            better = window > Z   # strictly: a tie keeps the earlier offset (row-major first)
            np.copyto(Z, window, where=better)
            np.copyto(offset, k * A.shape[3] + l, where=better)
        # The input index each output came from, flat over the whole input.
        N, C, H, W = A.shape
        H_out, W_out = Z.shape[2:]
        base = (np.arange(N * C).reshape(N, C, 1, 1) * H * W + np.arange(H_out).reshape(1, 1, -1, 1) * W
                + np.arange(W_out).reshape(1, 1, 1, -1))
        self.source = base + offset
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
        self.input_shape = A.shape
        return sum(window for _, _, window in _shifted(A, K)) / (K * K)

    def backward(self, dLdZ):
        K = self.kernel
        return _scatter(dLdZ, lambda k, l: 1.0 / (K * K), K, self.input_shape)


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
