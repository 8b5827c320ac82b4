"""Dropout (HW1P1 Bonus), "inverted" as in torch.nn.Dropout.

In training, each entry is zeroed with probability p and the survivors are scaled by 1/(1 - p),
so the expected output equals the input; the mask is drawn anew on every forward call and kept
for backward. In evaluation (train=False) the layer is the identity.
"""
import numpy as np


class Dropout:
    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x, train=True):
        if not train:
            return x
        self.mask = np.random.binomial(1, 1 - self.p, size=x.shape)
        return x * self.mask / (1 - self.p)

    def backward(self, delta):
        # The derivative of x * mask / (1 - p): the same mask, the same scale.
        return delta * self.mask / (1 - self.p)
