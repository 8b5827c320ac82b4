"""1-d convolution (cross-correlation, as in PyTorch), no dilation, no groups.

Conv1d_stride1: Z[n, o, i] = sum_{c, k} A[n, c, i + k] W[o, c, k] + b[o], output width W - K + 1.
Backward: dLdb[o] = sum_{n, i} dLdZ[n, o, i]; dLdW[o, c, k] = sum_{n, i} dLdZ[n, o, i] A[n, c, i + k];
dLdA is dLdZ padded by K - 1 on both sides, cross-correlated with W flipped along k (in and out
channels exchanged). Conv1d = zero-padding, Conv1d_stride1, then Downsample1d by the stride.
"""
import numpy as np
from mytorch.nn.resampling import Downsample1d


def _correlate(A, W):
    """sum_{c, k} A[n, i + k, c] W[o, c, k] for channels-last A (N, W_in, C): one matrix product per
    kernel offset, each over every position at once."""
    K = W.shape[2]
    W_out = A.shape[1] - K + 1
    Z = np.zeros((A.shape[0], W_out, W.shape[0]), dtype=np.result_type(A, W))
    for k in range(K):
        Z += A[:, k:k + W_out, :] @ W[:, :, k].T
    return Z


class Conv1d_stride1:
    def __init__(self, in_channels, out_channels, kernel_size, weight_init_fn=None, bias_init_fn=None):
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        if weight_init_fn is None:
            self.W = np.random.normal(0, 1.0, (out_channels, in_channels, kernel_size))
        else:
            self.W = weight_init_fn(out_channels, in_channels, kernel_size)
        self.b = np.zeros(out_channels) if bias_init_fn is None else bias_init_fn(out_channels)
        self.dLdW = np.zeros(self.W.shape)
        self.dLdb = np.zeros(self.b.shape)

    def forward(self, A):
        self.A = A
        return _correlate(A.transpose(0, 2, 1), self.W).transpose(0, 2, 1) + self.b[None, :, None]

    def backward(self, dLdZ):
        K = self.kernel_size
        A, grad = self.A.transpose(0, 2, 1), dLdZ.transpose(0, 2, 1)   # channels last
        rows = grad.reshape(-1, grad.shape[2])
        self.dLdW = np.empty(self.W.shape, dtype=np.result_type(A, dLdZ))
        for k in range(K):
            self.dLdW[:, :, k] = rows.T @ A[:, k:k + grad.shape[1], :].reshape(-1, A.shape[2])
        self.dLdb = dLdZ.sum(axis=(0, 2))
        padded = np.pad(grad, ((0, 0), (K - 1, K - 1), (0, 0)))
        return _correlate(padded, self.W[:, :, ::-1].transpose(1, 0, 2)).transpose(0, 2, 1)


class Conv1d:
    def __init__(self, in_channels, out_channels, kernel_size, stride, padding=0,
                 weight_init_fn=None, bias_init_fn=None):
        self.stride = stride
        self.pad = padding
        self.conv1d_stride1 = Conv1d_stride1(in_channels, out_channels, kernel_size,
                                             weight_init_fn, bias_init_fn)
        self.downsample1d = Downsample1d(stride)

    def forward(self, A):
        p = self.pad
        padded = np.pad(A, ((0, 0), (0, 0), (p, p)))
        return self.downsample1d.forward(self.conv1d_stride1.forward(padded))

    def backward(self, dLdZ):
        dLdA = self.conv1d_stride1.backward(self.downsample1d.backward(dLdZ))
        p = self.pad
        return dLdA[:, :, p:dLdA.shape[2] - p]
