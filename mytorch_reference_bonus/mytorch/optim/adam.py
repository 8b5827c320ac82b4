"""Adam (HW1P1 Bonus): moment estimates with bias correction, over the model's layers.

    m = beta1 m + (1 - beta1) g          v = beta2 v + (1 - beta2) g^2
    m_hat = m / (1 - beta1^t)            v_hat = v / (1 - beta2^t)
    param = param - lr m_hat / (sqrt(v_hat) + eps)
for param, g in (W, dLdW) and (b, dLdb) of every layer in `model.layers`.
"""
import numpy as np


class Adam:
    def __init__(self, model, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        self.l = model.layers
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.lr = lr
        self.t = 0
        self.m_W = [np.zeros_like(layer.W, dtype=np.float64) for layer in self.l]
        self.v_W = [np.zeros_like(layer.W, dtype=np.float64) for layer in self.l]
        self.m_b = [np.zeros_like(layer.b, dtype=np.float64) for layer in self.l]
        self.v_b = [np.zeros_like(layer.b, dtype=np.float64) for layer in self.l]

    def _update(self, param, grad, m, v):
        m[...] = self.beta1 * m + (1 - self.beta1) * grad
        v[...] = self.beta2 * v + (1 - self.beta2) * grad * grad
        m_hat = m / (1 - self.beta1 ** self.t)
        v_hat = v / (1 - self.beta2 ** self.t)
        return param - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def step(self):
        self.t += 1
        for i, layer in enumerate(self.l):
            layer.W = self._update(layer.W, layer.dLdW, self.m_W[i], self.v_W[i])
            layer.b = self._update(layer.b, layer.dLdb, self.m_b[i], self.v_b[i])
