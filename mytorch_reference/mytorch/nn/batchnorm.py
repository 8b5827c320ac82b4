"""BatchNorm1d (HW1P1 writeup, section 10): biased batch variance, eps 1e-8."""
import numpy as np


class BatchNorm1d:
    def __init__(self, num_features, alpha=0.9):
        self.alpha = alpha
        self.eps = 1e-8

        self.BW = np.ones((1, num_features))
        self.Bb = np.zeros((1, num_features))
        self.dLdBW = np.zeros((1, num_features))
        self.dLdBb = np.zeros((1, num_features))

        self.running_M = np.zeros((1, num_features))
        self.running_V = np.ones((1, num_features))

    def forward(self, Z, eval=False):
        """Training mode normalises with batch statistics and updates the running ones;
        eval mode normalises with the running statistics and changes nothing."""
        if eval:
            NZ = (Z - self.running_M) / np.sqrt(self.running_V + self.eps)
            return self.BW * NZ + self.Bb

        self.Z = Z
        self.N = Z.shape[0]
        self.M = np.mean(Z, axis=0, keepdims=True)
        self.V = np.mean((Z - self.M) ** 2, axis=0, keepdims=True)
        self.NZ = (Z - self.M) / np.sqrt(self.V + self.eps)
        self.BZ = self.BW * self.NZ + self.Bb

        self.running_M = self.alpha * self.running_M + (1 - self.alpha) * self.M
        self.running_V = self.alpha * self.running_V + (1 - self.alpha) * self.V
        return self.BZ

    def backward(self, dLdBZ):
        Z, M, V, N, eps = self.Z, self.M, self.V, self.N, self.eps
        self.dLdBW = np.sum(dLdBZ * self.NZ, axis=0, keepdims=True)
        self.dLdBb = np.sum(dLdBZ, axis=0, keepdims=True)

        dLdNZ = dLdBZ * self.BW
        dLdV = -0.5 * np.sum(dLdNZ * (Z - M) * (V + eps) ** -1.5, axis=0, keepdims=True)
        dLdM = (-np.sum(dLdNZ * (V + eps) ** -0.5, axis=0, keepdims=True)
                - (2 / N) * dLdV * np.sum(Z - M, axis=0, keepdims=True))
        return dLdNZ * (V + eps) ** -0.5 + dLdV * (2 / N) * (Z - M) + dLdM / N
