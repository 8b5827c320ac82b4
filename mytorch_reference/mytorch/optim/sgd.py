"""SGD with optional momentum (HW1P1 writeup, section 9)."""
import numpy as np


class SGD:
    def __init__(self, model, lr=0.1, momentum=0):
        self.l = model.layers
        self.L = len(model.layers)
        self.lr = lr
        self.mu = momentum
        self.v_W = [np.zeros(self.l[i].W.shape, dtype="f") for i in range(self.L)]
        self.v_b = [np.zeros(self.l[i].b.shape, dtype="f") for i in range(self.L)]

    def step(self):
        for i in range(self.L):
            layer = self.l[i]
            if self.mu == 0:
                layer.W = layer.W - self.lr * layer.dLdW
                layer.b = layer.b - self.lr * layer.dLdb
            else:
                # v = mu v + grad; param -= lr v
                self.v_W[i] = self.mu * self.v_W[i] + layer.dLdW
                self.v_b[i] = self.mu * self.v_b[i] + layer.dLdb
                layer.W = layer.W - self.lr * self.v_W[i]
                layer.b = layer.b - self.lr * self.v_b[i]
