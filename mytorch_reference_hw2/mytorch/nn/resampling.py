"""Resampling along the last axis (1d) or the last two axes (2d).

Upsampling by k inserts k - 1 zeros between neighbours: width W becomes k(W - 1) + 1.
Downsampling by k keeps every k-th entry starting at 0: width W becomes ceil(W / k); backward puts
the gradient back at those entries (the input width is remembered, since it is not recoverable
from the output when k does not divide it) and zeros everywhere else.
"""
import numpy as np


def _upsample(A, k, axes):
    shape = list(A.shape)
    for axis in axes:
        shape[axis] = k * (shape[axis] - 1) + 1
    Z = np.zeros(shape, dtype=A.dtype)
    Z[_every(k, A.ndim, axes)] = A
    return Z


def _every(k, ndim, axes):
    index = [slice(None)] * ndim
    for axis in axes:
        index[axis] = slice(None, None, k)
    return tuple(index)


class Upsample1d:
    def __init__(self, upsampling_factor):
        self.upsampling_factor = upsampling_factor

    def forward(self, A):
        return _upsample(A, self.upsampling_factor, (-1,))

    def backward(self, dLdZ):
        return dLdZ[_every(self.upsampling_factor, dLdZ.ndim, (-1,))]


class Downsample1d:
    def __init__(self, downsampling_factor):
        self.downsampling_factor = downsampling_factor

    def forward(self, A):
        self.input_shape = A.shape
        return A[_every(self.downsampling_factor, A.ndim, (-1,))]

    def backward(self, dLdZ):
        dLdA = np.zeros(self.input_shape, dtype=dLdZ.dtype)
        dLdA[_every(self.downsampling_factor, dLdZ.ndim, (-1,))] = dLdZ
        return dLdA


class Upsample2d:
    def __init__(self, upsampling_factor):
        self.upsampling_factor = upsampling_factor

    def forward(self, A):
        return _upsample(A, self.upsampling_factor, (-2, -1))

    def backward(self, dLdZ):
        return dLdZ[_every(self.upsampling_factor, dLdZ.ndim, (-2, -1))]


class Downsample2d:
    def __init__(self, downsampling_factor):
        self.downsampling_factor = downsampling_factor

    def forward(self, A):
        self.input_shape = A.shape
        return A[_every(self.downsampling_factor, A.ndim, (-2, -1))]

    def backward(self, dLdZ):
        dLdA = np.zeros(self.input_shape, dtype=dLdZ.dtype)
        dLdA[_every(self.downsampling_factor, dLdZ.ndim, (-2, -1))] = dLdZ
        return dLdA
