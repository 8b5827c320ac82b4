from mytorch.nn.activation import GELU, Identity, ReLU, Sigmoid, Softmax, Swish, Tanh
from mytorch.nn.batchnorm import BatchNorm1d
from mytorch.nn.linear import Linear
from mytorch.nn.loss import CrossEntropyLoss, MSELoss

__all__ = ["Identity", "Sigmoid", "Tanh", "ReLU", "GELU", "Swish", "Softmax",
           "BatchNorm1d", "Linear", "MSELoss", "CrossEntropyLoss"]
