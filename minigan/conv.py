"""Convolutions by hand: Conv2D as one matrix product, ConvTranspose2D as its adjoint.

Layout NCHW and PyTorch's parameter shapes, so weights copy straight across to torch:

- ``Conv2D``: x (N, C_in, H, W) -> out (N, C_out, H_out, W_out); W (C_out, C_in, k, k), b (C_out,)
  with ``H_out = (H + 2 * padding - k) // stride + 1``.
- ``ConvTranspose2D``: x (N, C_in, H, W) -> out (N, C_out, H_out, W_out); W (C_in, C_out, k, k),
  b (C_out,) with ``H_out = (H - 1) * stride - 2 * padding + k + output_padding``.

The convolution gathers every k x k window of the padded input into one column of a matrix
(``cols = im2col(x_pad)``) and multiplies it by the flattened weights. Its input gradient
scatters the columns back, adding where windows overlap (``col2im``). The transposed convolution
is the same pair run the other way: its forward is the convolution's input gradient, its
backward is the convolution's forward. Derivations: lessons/12_convolutions.md. im2col, col2im
and the memory layout they share (images batch-last in memory, behind NCHW shapes) live in
minigan/im2col.py, which says why.
"""

import math

from minigan import backend
from minigan.im2col import (as_images, as_matrix, col2im, im2col, pad_images,
                            products_by_offset, unpad)
from minigan.layers import Layer


def conv_output_size(size, kernel_size, stride, padding):
    """H_out of a convolution: ``(H + 2 * padding - k) // stride + 1``."""
    return (size + 2 * padding - kernel_size) // stride + 1


def conv_transpose_output_size(size, kernel_size, stride, padding, output_padding):
    """H_out of a transposed convolution:
    ``(H - 1) * stride - 2 * padding + kernel_size + output_padding``."""
    return (size - 1) * stride - 2 * padding + kernel_size + output_padding


def _init_params(layer, W_shape, fan_in, rng, dtype):
    """W (W_shape) and b (C_out,) uniform in +-1/sqrt(fan_in), as torch initialises its
    convolutions, drawn from rng in that order; their grads zero."""
    xp = backend.xp
    rng = backend.default_rng(None) if rng is None else rng
    bound = 1.0 / math.sqrt(fan_in)
    layer.params["W"] = rng.uniform(-bound, bound, W_shape).astype(dtype)
    layer.params["b"] = rng.uniform(-bound, bound, (layer.out_channels,)).astype(dtype)
    layer.grads["W"] = xp.zeros_like(layer.params["W"])
    layer.grads["b"] = xp.zeros_like(layer.params["b"])


def _check_geometry(who, kernel_size, stride, padding, output_padding=0):
    if kernel_size < 1 or stride < 1 or padding < 0:
        raise ValueError(f"{who}: need kernel_size >= 1, stride >= 1 and padding >= 0, got "
                         f"kernel_size={kernel_size}, stride={stride}, padding={padding}")
    if not 0 <= output_padding < stride:
        raise ValueError(f"{who}: output_padding must be in [0, stride), got "
                         f"output_padding={output_padding} with stride={stride} (as in PyTorch)")


def _check_input(layer, x, channels):
    backend.check_array(x, f"{layer!r}.forward")
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{layer!r}.forward: expected x of shape (N, {channels}, H, W), "
                         f"received {x.shape}")


class Conv2D(Layer):
    """2-D convolution (cross-correlation, as in PyTorch) by im2col and one matrix product.

    x: (N, C_in, H, W) -> out: (N, C_out, H_out, W_out); W: (C_out, C_in, k, k), b: (C_out,).
    Forward:  ``out_flat = W_flat @ cols + b``, cols = im2col(x_pad) (C_in*k*k, H_out*W_out*N),
    W_flat = W.reshape(C_out, -1), out_flat = out as (C_out, H_out*W_out*N) (the batch last).
    Backward: ``dW_flat = dout_flat @ cols.T``, ``db = dout.sum((0, 2, 3))``,
    ``dx = col2im(W_flat.T @ dout_flat)``, that product taken by kernel offset
    (:func:`products_by_offset`).

    Initialised like torch.nn.Conv2d: W and b uniform in +-1/sqrt(fan_in), fan_in = C_in * k * k.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, rng=None,
                 dtype="float32"):
        super().__init__()
        _check_geometry(f"Conv2D({in_channels}, {out_channels}, {kernel_size})", kernel_size,
                        stride, padding)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        k = kernel_size
        _init_params(self, (out_channels, in_channels, k, k), in_channels * k * k, rng, dtype)

    def __repr__(self):
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"{self.kernel_size}, stride={self.stride}, padding={self.padding})")

    def output_shape(self, x_shape):
        n, _, h, w = x_shape
        k, s, p = self.kernel_size, self.stride, self.padding
        return n, self.out_channels, conv_output_size(h, k, s, p), conv_output_size(w, k, s, p)

    def forward(self, x):
        """x: (N, C_in, H, W) -> out: (N, C_out, H_out, W_out), ``out_flat = W_flat @ cols + b``."""
        _check_input(self, x, self.in_channels)
        n, c_out, h_out, w_out = self.output_shape(x.shape)
        if h_out < 1 or w_out < 1:
            raise ValueError(f"{self!r}.forward: input {x.shape} is smaller than the kernel")
        x_pad = pad_images(x, self.padding)
        cols = im2col(x_pad, self.kernel_size, self.stride, h_out, w_out)  # (C_in*k*k, Ho*Wo*N)
        W_flat = self.params["W"].reshape(c_out, -1)  # (C_out, C_in*k*k), a view
        out = W_flat @ cols + self.params["b"].reshape(-1, 1)  # (C_out, Ho*Wo*N): one product
        self.cache = (cols, x_pad.shape, x.shape)  # overwritten by the next forward
        return as_images(out, n, h_out, w_out)  # (N, C_out, H_out, W_out), a view

    def backward(self, dout, param_grads=True, input_grad=True):
        """dout: (N, C_out, H_out, W_out) -> dx: (N, C_in, H, W). Adds into grads["W"], grads["b"].

        ``param_grads=False`` leaves ``grads`` untouched; ``input_grad=False`` returns None.
        """
        cols, x_pad_shape, x_shape = self._cached(dout, lambda cache: self.output_shape(cache[2]))
        n, _, h_out, w_out = dout.shape
        dout_flat = as_matrix(dout)  # (C_out, Ho*Wo*N)
        if param_grads:
            self.grads["W"] += (dout_flat @ cols.T).reshape(self.params["W"].shape)
            self.grads["b"] += dout_flat.sum(axis=1)
        if not input_grad:
            return None
        # dcols = W_flat.T @ dout_flat, (C_in*k*k, Ho*Wo*N), taken by kernel offset for col2im
        dcols = products_by_offset(self.params["W"], dout_flat.T, h_out, w_out, n)
        dx_pad = col2im(dcols, x_pad_shape, self.kernel_size, self.stride, h_out, w_out)
        return unpad(dx_pad, self.padding)  # the padding's gradient is dropped


class ConvTranspose2D(Layer):
    """2-D transposed convolution: the adjoint of a Conv2D whose weight is W.

    x: (N, C_in, H, W) -> out: (N, C_out, H_out, W_out); W: (C_in, C_out, k, k), b: (C_out,)
    (PyTorch's ConvTranspose2d shapes). Forward is Conv2D's input gradient:
    ``out = col2im(W_flat.T @ x_flat) + b`` with x_flat = x as (C_in, H*W*N) and
    W_flat = W.reshape(C_in, -1), the product taken by kernel offset (:func:`products_by_offset`).
    Backward is Conv2D's forward: ``cols = im2col(dout)``,
    ``dx_flat = W_flat @ cols``, ``dW_flat = x_flat @ cols.T``, ``db = dout.sum((0, 2, 3))``.
    Each input pixel paints a k x k patch of the output, ``stride`` pixels from its neighbour's:
    that is how it upsamples.

    Initialised like torch.nn.ConvTranspose2d: W and b uniform in +-1/sqrt(fan_in), where torch
    takes fan_in from W's second axis: fan_in = C_out * k * k.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, rng=None, dtype="float32"):
        super().__init__()
        _check_geometry(f"ConvTranspose2D({in_channels}, {out_channels}, {kernel_size})",
                        kernel_size, stride, padding, output_padding)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.output_padding = output_padding
        k = kernel_size  # torch's fan_in: from W's second axis, C_out * k * k
        _init_params(self, (in_channels, out_channels, k, k), out_channels * k * k, rng, dtype)

    def __repr__(self):
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"{self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"output_padding={self.output_padding})")

    def output_shape(self, x_shape):
        n, _, h, w = x_shape
        geometry = (self.kernel_size, self.stride, self.padding, self.output_padding)
        return (n, self.out_channels, conv_transpose_output_size(h, *geometry),
                conv_transpose_output_size(w, *geometry))

    def forward(self, x):
        """x: (N, C_in, H, W) -> out: (N, C_out, H_out, W_out),
        ``out = col2im(W_flat.T @ x_flat) + b``."""
        _check_input(self, x, self.in_channels)
        n, c_out, h_out, w_out = self.output_shape(x.shape)
        if h_out < 1 or w_out < 1:
            raise ValueError(f"{self!r}.forward: input {x.shape} gives an empty output")
        h, w = x.shape[2:]
        p = self.padding
        x_flat = as_matrix(x)  # (C_in, H*W*N)
        # cols = W_flat.T @ x_flat, (C_out*k*k, H*W*N), taken by kernel offset for col2im
        cols = products_by_offset(self.params["W"], x_flat.T, h, w, n)
        # the padded output the patches are painted on: output_padding extra rows/cols at the end
        out_pad_shape = (n, c_out, h_out + 2 * p, w_out + 2 * p)
        out = col2im(cols, out_pad_shape, self.kernel_size, self.stride, h, w)
        self.cache = (x_flat, x.shape)  # overwritten by the next forward
        out = unpad(out, p)  # (N, C_out, H_out, W_out), a fresh array
        out += self.params["b"].reshape(1, -1, 1, 1)  # in place: 1.05x (bench_levers.py conv)
        return out

    def backward(self, dout, param_grads=True, input_grad=True):
        """dout: (N, C_out, H_out, W_out) -> dx: (N, C_in, H, W). Adds into grads["W"], grads["b"].

        ``param_grads=False`` leaves ``grads`` untouched; ``input_grad=False`` returns None.
        """
        x_flat, x_shape = self._cached(dout, lambda cache: self.output_shape(cache[1]))
        n, _, h, w = x_shape
        dout_pad = pad_images(dout, self.padding)  # output_padding's rows are already in dout
        cols = im2col(dout_pad, self.kernel_size, self.stride, h, w)  # (C_out*k*k, H*W*N)
        if param_grads:
            self.grads["W"] += (x_flat @ cols.T).reshape(self.params["W"].shape)
            self.grads["b"] += dout.sum(axis=(0, 2, 3))
        if not input_grad:
            return None
        W_flat = self.params["W"].reshape(self.in_channels, -1)  # (C_in, C_out*k*k)
        dx_flat = W_flat @ cols  # (C_in, H*W*N): a convolution of dout with W
        return as_images(dx_flat, n, h, w)
