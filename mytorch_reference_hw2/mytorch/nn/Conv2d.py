"""2-d convolution (cross-correlation, as in PyTorch) with square kernels, no dilation, no groups.

Conv2d_stride1: Z[n, o, i, j] = sum_{c, k, l} A[n, c, i + k, j + l] W[o, c, k, l] + b[o]. Backward as
in 1-d over both axes: dLdW correlates A with dLdZ, dLdA correlates dLdZ padded by K - 1 on every
side with W flipped along both kernel axes. Conv2d = zero-padding, Conv2d_stride1, Downsample2d.
"""
import numpy as np
from mytorch.nn.resampling import Downsample2d
from numpy.lib.stride_tricks import sliding_window_view


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
        K = self.kernel_size
        windows = sliding_window_view(A, (K, K), axis=(2, 3))  # (N, C_in, H_out, W_out, K, K)
        return np.einsum("ncijkl,ockl->noij", windows, self.W, optimize=True) + self.b[None, :, None, None]

    def backward(self, dLdZ):
        K = self.kernel_size
        windows = sliding_window_view(self.A, (K, K), axis=(2, 3))
        self.dLdW = np.einsum("noij,ncijkl->ockl", dLdZ, windows, optimize=True)
        self.dLdb = dLdZ.sum(axis=(0, 2, 3))
        padded = np.pad(dLdZ, ((0, 0), (0, 0), (K - 1, K - 1), (K - 1, K - 1)))
        grad_windows = sliding_window_view(padded, (K, K), axis=(2, 3))  # (N, C_out, H_in, W_in, K, K)
        return np.einsum("noijkl,ockl->ncij", grad_windows, self.W[:, :, ::-1, ::-1], optimize=True)


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
