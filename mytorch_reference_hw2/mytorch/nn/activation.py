"""Activations (HW1P1 writeup, section 6), as the HW2P1 models use them. backward returns dLdA * dA/dZ."""
import numpy as np


def _sigmoid(Z):
    # Split by sign so neither branch exponentiates a large positive number.
    Z = np.asarray(Z, dtype=np.float64)
    out = np.empty_like(Z)
    pos = Z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-Z[pos]))
    ez = np.exp(Z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


class Identity:
    def forward(self, Z):
        self.A = Z
        return self.A

    def backward(self, dLdA):
        dAdZ = np.ones(self.A.shape, dtype="f")
        return dLdA * dAdZ


class Sigmoid:
    def forward(self, Z):
        self.A = _sigmoid(Z)
        return self.A

    def backward(self, dLdA):
        return dLdA * (self.A - self.A * self.A)


class Tanh:
    def forward(self, Z):
        # tanh(z) = 2*sigmoid(2z) - 1: no np.tanh (the writeup forbids it) and no overflow.
        self.A = 2.0 * _sigmoid(2.0 * np.asarray(Z, dtype=np.float64)) - 1.0
        return self.A

    def backward(self, dLdA):
        return dLdA * (1.0 - self.A * self.A)


class ReLU:
    def forward(self, Z):
        self.A = np.maximum(0, Z)
        return self.A

    def backward(self, dLdA):
        # The derivative at exactly 0 is taken to be 0.
        return dLdA * (self.A > 0)


class GELU:
    """Exact GELU: A = Z * Phi(Z), Phi the standard normal CDF (via erf)."""

    def forward(self, Z):
        from scipy.special import erf  # only here: HW2P1's models never use GELU, and scipy is slow to import

        self.Z = Z
        self.A = 0.5 * Z * (1.0 + erf(Z / np.sqrt(2.0)))
        return self.A

    def backward(self, dLdA):
        from scipy.special import erf

        Z = self.Z
        cdf = 0.5 * (1.0 + erf(Z / np.sqrt(2.0)))
        pdf = np.exp(-0.5 * Z * Z) / np.sqrt(2.0 * np.pi)
        return dLdA * (cdf + Z * pdf)


class Swish:
    """Swish: A = Z * sigmoid(beta Z), with a learnable beta whose gradient is dLdbeta."""

    def __init__(self, beta=1.0):
        self.beta = beta

    def forward(self, Z):
        self.Z = Z
        self.sig = _sigmoid(self.beta * Z)
        self.A = Z * self.sig
        return self.A

    def backward(self, dLdA):
        Z, s, beta = self.Z, self.sig, self.beta
        dAdZ = s + beta * Z * s * (1.0 - s)
        self.dLdbeta = np.sum(dLdA * Z * Z * s * (1.0 - s))
        return dLdA * dAdZ


class Softmax:
    """Row-wise softmax over the C columns of an (N, C) input."""

    def forward(self, Z):
        shifted = Z - np.max(Z, axis=1, keepdims=True)  # avoids overflow for large inputs
        e = np.exp(shifted)
        self.A = e / np.sum(e, axis=1, keepdims=True)
        return self.A

    def backward(self, dLdA):
        # Per row, dLdZ = dLdA @ (diag(a) - a a^T) = a * (dLdA - <dLdA, a>).
        A = self.A
        return A * (dLdA - np.sum(dLdA * A, axis=1, keepdims=True))
