"""2-d convolution (cross-correlation, as in PyTorch) with square kernels, no dilation, no groups.

Conv2d_stride1: Z[n, o, i, j] = sum_{c, k, l} A[n, c, i + k, j + l] W[o, c, k, l] + b[o]. Backward as
in 1-d over both axes: dLdW correlates A with dLdZ, dLdA correlates dLdZ padded by K - 1 on every
side with W flipped along both kernel axes. Conv2d = zero-padding, Conv2d_stride1, Downsample2d.
Computed channels-last, one matrix product per kernel offset (the HW2P1 handout's cases reach
(2, 13, 66, 66) inputs: this keeps a grade's reference run short).
"""
import numpy as np
from mytorch.nn.resampling import Downsample2d


def _correlate(A, W):
    """sum_{c, k, l} A[n, i + k, j + l, c] W[o, c, k, l] for channels-last A (N, H, W, C): one
    matrix product per kernel offset, each over every position at once."""
    K = W.shape[2]
    H_out, W_out = A.shape[1] - K + 1, A.shape[2] - K + 1
    Z = np.zeros((A.shape[0], H_out, W_out, W.shape[0]), dtype=np.result_type(A, W))
    for k in range(K):
        for l in range(K):
            Z += A[:, k:k + H_out, l:l + W_out, :] @ W[:, :, k, l].T
    return Z


class Conv2d_stride1:
    def __init__(self, in_channels, out_channels, kernel_size, weight_init_fn=None, bias_init_fn=None):
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        if weight_init_fn is None:
            self.W = np.random.normal(0, 1.0, (out_channels, in_channels, kernel_size, kernel_size))
        else:
            self.W = weight_init_fn(out_channels, in_channels, kernel_size, kernel_size)
        self.b = np.zeros(out_channels) if bias_init_fn is None else bias_init_fn(out_channels)
        self.dLdW = np.zeros(self.W.shape)
        self.dLdb = np.zeros(self.b.shape)

    def forward(self, A):
        self.A = A
        Z = _correlate(A.transpose(0, 2, 3, 1), self.W) + self.b
        return Z.transpose(0, 3, 1, 2)

    def backward(self, dLdZ):
        K = self.kernel_size
        C_out, H_out, W_out = dLdZ.shape[1:]
        A = self.A.transpose(0, 2, 3, 1)
        grad = dLdZ.transpose(0, 2, 3, 1)
        rows = grad.reshape(-1, C_out)
        self.dLdW = np.empty(self.W.shape, dtype=np.result_type(A, dLdZ))
        for k in range(K):
            for l in range(K):
                self.dLdW[:, :, k, l] = rows.T @ A[:, k:k + H_out, l:l + W_out, :].reshape(-1, A.shape[3])
        self.dLdb = dLdZ.sum(axis=(0, 2, 3))
        padded = np.pad(grad, ((0, 0), (K - 1, K - 1), (K - 1, K - 1), (0, 0)))
        flipped = self.W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C_in, C_out, K, K)
        return _correlate(padded, flipped).transpose(0, 3, 1, 2)


class Conv2d:
    def __init__(self, in_channels, out_channels, kernel_size, stride, padding=0,
                 weight_init_fn=None, bias_init_fn=None):
        self.stride = stride
        self.pad = padding
        self.conv2d_stride1 = Conv2d_stride1(in_channels, out_channels, kernel_size,
                                             weight_init_fn, bias_init_fn)
        self.downsample2d = Downsample2d(stride)

    def forward(self, A):
        p = self.pad
        padded = np.pad(A, ((0, 0), (0, 0), (p, p), (p, p)))
        return self.downsample2d.forward(self.conv2d_stride1.forward(padded))

    def backward(self, dLdZ):
        dLdA = self.conv2d_stride1.backward(self.downsample2d.backward(dLdZ))
        p = self.pad
        return dLdA[:, :, p:dLdA.shape[2] - p, p:dLdA.shape[3] - p]
