"""The HW2P1 CNN: Conv1d layers each followed by its activation, then Flatten and one Linear, trained
with a criterion whose backward() gives the gradient of the summed loss."""
from mytorch.flatten import Flatten
from mytorch.nn.Conv1d import Conv1d
from mytorch.nn.linear import Linear


class CNN:
    def __init__(self, input_width, num_input_channels, num_channels, kernel_sizes, strides,
                 num_linear_neurons, activations, conv_weight_init_fn, bias_init_fn,
                 linear_weight_init_fn, criterion, lr):
        self.train_mode = True
        self.nlayers = len(num_channels)
        self.activations = activations
        self.criterion = criterion
        self.lr = lr
        channels = [num_input_channels, *num_channels]
        self.convolutional_layers = [
            Conv1d(channels[i], channels[i + 1], kernel_sizes[i], strides[i],
                   weight_init_fn=conv_weight_init_fn, bias_init_fn=bias_init_fn)
            for i in range(self.nlayers)]
        width = input_width
        for kernel, stride in zip(kernel_sizes, strides, strict=True):
            width = (width - kernel) // stride + 1
        self.flatten = Flatten()
        self.linear_layer = Linear(num_channels[-1] * width, num_linear_neurons)

    def forward(self, A):
        Z = A
        for conv, activation in zip(self.convolutional_layers, self.activations, strict=True):
            Z = activation.forward(conv.forward(Z))
        self.Z = self.linear_layer.forward(self.flatten.forward(Z))
        return self.Z

    def backward(self, labels):
        self.loss = self.criterion.forward(self.Z, labels).sum()
        grad = self.linear_layer.backward(self.criterion.backward())
        grad = self.flatten.backward(grad)
        for conv, activation in zip(self.convolutional_layers[::-1], self.activations[::-1], strict=True):
            grad = conv.backward(activation.backward(grad))
        return grad

    def zero_grads(self):
        for conv in self.convolutional_layers:
            conv.conv1d_stride1.dLdW.fill(0.0)
            conv.conv1d_stride1.dLdb.fill(0.0)
        self.linear_layer.dLdW.fill(0.0)
        self.linear_layer.dLdb.fill(0.0)

    def step(self):
        for conv in self.convolutional_layers:
            layer = conv.conv1d_stride1
            layer.W = layer.W - self.lr * layer.dLdW
            layer.b = layer.b - self.lr * layer.dLdb
        self.linear_layer.W = self.linear_layer.W - self.lr * self.linear_layer.dLdW
        self.linear_layer.b = self.linear_layer.b - self.lr * self.linear_layer.dLdb

    def train(self):
        self.train_mode = True

    def eval(self):
        self.train_mode = False
