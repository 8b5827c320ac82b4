"""Transposed convolution as the handout builds it: upsample by the factor (zeros inserted), then
a stride-1 convolution without padding. Output width k(W - 1) + 1 - K + 1; this equals PyTorch's
conv_transpose with stride k, padding K - 1 and the kernel flipped with in/out channels exchanged."""
from mytorch.nn.Conv1d import Conv1d_stride1
from mytorch.nn.Conv2d import Conv2d_stride1
from mytorch.nn.resampling import Upsample1d, Upsample2d


class ConvTranspose1d:
    def __init__(self, in_channels, out_channels, kernel_size, upsampling_factor,
                 weight_init_fn=None, bias_init_fn=None):
        self.upsampling_factor = upsampling_factor
        self.upsample1d = Upsample1d(upsampling_factor)
        self.conv1d_stride1 = Conv1d_stride1(in_channels, out_channels, kernel_size,
                                             weight_init_fn, bias_init_fn)

    def forward(self, A):
        return self.conv1d_stride1.forward(self.upsample1d.forward(A))

    def backward(self, dLdZ):
        return self.upsample1d.backward(self.conv1d_stride1.backward(dLdZ))


class ConvTranspose2d:
    def __init__(self, in_channels, out_channels, kernel_size, upsampling_factor,
                 weight_init_fn=None, bias_init_fn=None):
        self.upsampling_factor = upsampling_factor
        self.upsample2d = Upsample2d(upsampling_factor)
        self.conv2d_stride1 = Conv2d_stride1(in_channels, out_channels, kernel_size,
                                             weight_init_fn, bias_init_fn)

    def forward(self, A):
        return self.conv2d_stride1.forward(self.upsample2d.forward(A))

    def backward(self, dLdZ):
        return self.upsample2d.backward(self.conv2d_stride1.backward(dLdZ))
