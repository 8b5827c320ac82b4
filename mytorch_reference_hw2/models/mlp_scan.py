"""The scanning MLPs of HW2P1 as CNNs, for a (N, 24, W) input.

The MLP reads 8 consecutive time steps of 24 channels, flattened time-major (input index t * 24 + c),
through 192 -> 8 -> 16 -> 4 with ReLUs between. An MLP weight matrix w (inputs, outputs) becomes a
kernel by w.T -> (out, K, C_in) -> (out, C_in, K).

Simple scanning: the whole MLP is one window of 8 steps moved by 4: Conv1d(24, 8, 8, 4), then two
1x1 convolutions. Distributed scanning: the first layer's 8 neurons are 4 copies of 2 neurons that
each see 2 steps, the second layer's 16 are 2 copies of 8 that each see 2 first-layer groups, the
last layer's 4 see 2 second-layer groups: Conv1d(24, 2, 2, 2), Conv1d(2, 8, 2, 2), Conv1d(8, 4, 2, 1),
with the shared block taken from the top-left of each MLP weight matrix.
"""
from mytorch.flatten import Flatten
from mytorch.nn.activation import ReLU
from mytorch.nn.Conv1d import Conv1d


def _kernel(w, out_channels, kernel_size, in_channels):
    return w.T.reshape(out_channels, kernel_size, in_channels).transpose(0, 2, 1)


class CNN_SimpleScanningMLP:
    def __init__(self):
        self.conv1 = Conv1d(24, 8, 8, 4)
        self.conv2 = Conv1d(8, 16, 1, 1)
        self.conv3 = Conv1d(16, 4, 1, 1)
        self.layers = [self.conv1, ReLU(), self.conv2, ReLU(), self.conv3, Flatten()]

    def init_weights(self, weights):
        w1, w2, w3 = weights[0], weights[1], weights[2]
        self.conv1.conv1d_stride1.W = _kernel(w1, 8, 8, 24)
        self.conv2.conv1d_stride1.W = _kernel(w2, 16, 1, 8)
        self.conv3.conv1d_stride1.W = _kernel(w3, 4, 1, 16)

    def forward(self, A):
        Z = A
        for layer in self.layers:
            Z = layer.forward(Z)
        return Z

    def backward(self, dLdZ):
        dLdA = dLdZ
        for layer in self.layers[::-1]:
            dLdA = layer.backward(dLdA)
        return dLdA


class CNN_DistributedScanningMLP:
    def __init__(self):
        self.conv1 = Conv1d(24, 2, 2, 2)
        self.conv2 = Conv1d(2, 8, 2, 2)
        self.conv3 = Conv1d(8, 4, 2, 1)
        self.layers = [self.conv1, ReLU(), self.conv2, ReLU(), self.conv3, Flatten()]

    def __call__(self, A):
        return self.forward(A)

    def init_weights(self, weights):
        w1, w2, w3 = weights[0], weights[1], weights[2]
        self.conv1.conv1d_stride1.W = _kernel(w1[:48, :2], 2, 2, 24)
        self.conv2.conv1d_stride1.W = _kernel(w2[:4, :8], 8, 2, 2)
        self.conv3.conv1d_stride1.W = _kernel(w3[:16, :4], 4, 2, 8)

    def forward(self, A):
        Z = A
        for layer in self.layers:
            Z = layer.forward(Z)
        return Z

    def backward(self, dLdZ):
        dLdA = dLdZ
        for layer in self.layers[::-1]:
            dLdA = layer.backward(dLdA)
        return dLdA
