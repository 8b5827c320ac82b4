from mytorch.optim.sgd import SGD

__all__ = ["SGD"]
