"""Pooling over square K x K windows of the last two axes.

The stride-1 pools slide by one (output H - K + 1); MaxPool2d and MeanPool2d are the stride-1 pool
followed by Downsample2d, which gives PyTorch's floor((H - K) / s) + 1. Max pooling sends each
output's gradient to the first maximum of its window in row-major order (PyTorch's choice);
windows overlap, so gradients add up.
"""
import numpy as np
from mytorch.nn.resampling import Downsample2d
from numpy.lib.stride_tricks import sliding_window_view


def _windows(A, K):
    return sliding_window_view(A, (K, K), axis=(2, 3))  # (N, C, H_out, W_out, K, K)


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
        flat = _windows(A, K).reshape(*A.shape[:2], A.shape[2] - K + 1, A.shape[3] - K + 1, K * K)
        self.argmax = flat.argmax(axis=-1)
        return flat.max(axis=-1)

    def backward(self, dLdZ):
        K = self.kernel
        return _scatter(dLdZ, lambda k, l: self.argmax == k * K + l, K, self.input_shape)


class MeanPool2d_stride1:
    def __init__(self, kernel):
        self.kernel = kernel

    def forward(self, A):
        self.input_shape = A.shape
        return _windows(A, self.kernel).mean(axis=(-2, -1))

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
