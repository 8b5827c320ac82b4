"""AdamW (HW1P1 Bonus): Adam with decoupled weight decay, as torch.optim.AdamW.

Each step first shrinks every parameter (W and b) by (1 - lr weight_decay), then applies the
Adam update (see adam.py) computed from the gradients alone.
"""
# ruff: noqa: N999 (the handout names this file adamW.py)
from mytorch.optim.adam import Adam


class AdamW(Adam):
    def __init__(self, model, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
        super().__init__(model, lr, beta1, beta2, eps)
        self.weight_decay = weight_decay

    def step(self):
        for layer in self.l:
            layer.W = layer.W * (1 - self.lr * self.weight_decay)
            layer.b = layer.b * (1 - self.lr * self.weight_decay)
        super().step()
