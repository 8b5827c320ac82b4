"""Flatten: (N, C, W) -> (N, C * W), channel-major (row-major reshape); backward restores the shape."""


class Flatten:
    def forward(self, A):
        self.input_shape = A.shape
        return A.reshape(A.shape[0], -1)

    def backward(self, dLdZ):
        return dLdZ.reshape(self.input_shape)
