"""Convolutions by hand: Conv2D as one matrix product, ConvTranspose2D as its adjoint.

Layout NCHW and PyTorch's parameter shapes, so weights copy straight across to torch:

- ``Conv2D``: x (N, C_in, H, W) -> out (N, C_out, H_out, W_out); W (C_out, C_in, k, k), b (C_out,)
  with ``H_out = (H + 2 * padding - k) // stride + 1``.
- ``ConvTranspose2D``: x (N, C_in, H, W) -> out (N, C_out, H_out, W_out); W (C_in, C_out, k, k),
  b (C_out,) with ``H_out = (H - 1) * stride - 2 * padding + k + output_padding``.

The convolution gathers every k x k window of the padded input into one column of a matrix
(:func:`im2col`, one copy through a strided view) and multiplies it by the flattened weights. Its
input gradient scatters the columns back, adding where windows overlap (:func:`col2im`). The
transposed convolution is the same pair run the other way: its forward is the convolution's input
gradient, its backward is the convolution's forward. Derivations: lessons/12_convolutions.md.

Shapes are NCHW, as in torch; *memory* is batch-last. The images a convolution returns (and the
input gradient it passes back) are transposed views of a (C, H, W, N) array, with the batch the
fastest-moving axis. Nothing outside this file needs to know: a view has the (N, C, H, W) shape
and the same numbers, and elementwise layers keep their input's memory order. It pays twice:
im2col's copy moves runs of N contiguous numbers instead of single ones, and BatchNorm's
per-channel sums read one contiguous block per channel; and nothing is copied back to NCHW order.
col2im alone works in (H, W, N, C) memory, where its adds are fastest, and its result is copied
to batch-last once. Why each choice: benchmarks/bench_layouts.py; what the step gained:
BENCHMARKS.md ("The DCGAN step").
"""

import math

from minigan import backend
from minigan.layers import Layer


def conv_output_size(size, kernel_size, stride, padding):
    """H_out of a convolution: ``(H + 2 * padding - k) // stride + 1``."""
    return (size + 2 * padding - kernel_size) // stride + 1


def conv_transpose_output_size(size, kernel_size, stride, padding, output_padding):
    """H_out of a transposed convolution: ``(H - 1) * stride - 2 * padding + k + output_padding``."""
    return (size - 1) * stride - 2 * padding + kernel_size + output_padding


def pad_images(x, padding):
    """x (N, C, H, W) with ``padding`` zeros on every side: (N, C, H + 2p, W + 2p), batch-last
    in memory (a view of a (C, Hp, Wp, N) array). The array itself when padding is 0."""
    if padding == 0:
        return x
    n, c, h, w = x.shape
    out = backend.xp.zeros((c, h + 2 * padding, w + 2 * padding, n), dtype=x.dtype)
    out = out.transpose(3, 0, 1, 2)  # (N, C, Hp, Wp), a view
    out[:, :, padding:padding + h, padding:padding + w] = x
    return out


def batch_last_copy(x):
    """x (N, C, H, W) copied into fresh contiguous batch-last memory: a view of (C, H, W, N)."""
    n, c, h, w = x.shape
    out = backend.xp.empty((c, h, w, n), dtype=x.dtype).transpose(3, 0, 1, 2)
    out[...] = x
    return out


def im2col(x_pad, kernel_size, stride, h_out, w_out):
    """Every k x k window of x_pad (N, C, Hp, Wp) as one column: cols (C * k * k, N * H_out * W_out).

    Column ``(i, j, n)`` holds ``x_pad[n, :, i*s : i*s + k, j*s : j*s + k]`` flattened in
    (C, k, k) order, the order of a flattened weight ``W[o]``; so ``W.reshape(C_out, -1) @ cols``
    is the whole convolution. The windows are first a strided *view* of x_pad (no copy:
    overlapping windows share memory), laid out (C, k, k, H_out, W_out, N); the one reshape
    below is the only copy. The batch is the last axis so that the product with the weights
    comes out batch-last in memory. x_pad may have any memory order; batch-last
    (:func:`pad_images`'s) makes the copy read N contiguous numbers at a time: 5.5 ms -> 1.4-1.7
    ms on the DCGAN's conv2 (64 -> 128 channels, 14 x 14, batch 64).
    """
    xp = backend.xp
    n, c = x_pad.shape[:2]
    k, s = kernel_size, stride
    sn, sc, sh, sw = x_pad.strides  # in bytes
    windows = xp.lib.stride_tricks.as_strided(
        x_pad, shape=(c, k, k, h_out, w_out, n), strides=(sc, sh, sw, sh * s, sw * s, sn))
    return windows.reshape(c * k * k, h_out * w_out * n)  # the one copy


def col2im(cols, x_pad_shape, kernel_size, stride, h_out, w_out):
    """The adjoint of :func:`im2col`: add every column of cols back onto the window it came from.

    cols (C * k * k, H_out * W_out * N), or the same numbers as a (C, k, k, H_out, W_out, N)
    array -> (N, C, Hp, Wp). Windows overlap when stride < k, so the values are *added* (a
    scatter-add): one vectorised add per kernel offset (k * k of them), none per image or per
    pixel. Fast when each offset's block, (H_out, W_out, N, C), is contiguous in memory, as
    :func:`products_by_offset` lays them out.
    """
    xp = backend.xp
    n, c, hp, wp = x_pad_shape
    k, s = kernel_size, stride
    cols = cols.reshape(c, k, k, h_out, w_out, n)
    # Accumulate in (Hp, Wp, N, C) memory: the slice each add writes is then made of runs of
    # N * C contiguous numbers (4,096 on the DCGAN), where (C, Hp, Wp, N) memory gives runs of
    # N (64). NumPy's add on a strided target is ~3x slower than on contiguous memory unless
    # the runs are thousands long: about 4x faster for D's conv2 (benchmarks/bench_layouts.py,
    # part 2: 4.1 -> 0.9 ms and 5.5 -> 1.4 ms in two runs).
    out = xp.zeros((hp, wp, n, c), dtype=cols.dtype)
    for di in range(k):
        for dj in range(k):
            # the pixels kernel offset (di, dj) touched: rows di, di+s, ..., columns dj, dj+s, ...
            out[di:di + s * h_out:s, dj:dj + s * w_out:s] += cols[:, di, dj].transpose(1, 2, 3, 0)
    return out.transpose(2, 3, 0, 1)  # (N, C, Hp, Wp), a view


def products_by_offset(W, a_rows, h, w, n):
    """``W_flat.T @ a``, W_flat = W.reshape(W.shape[0], -1), one kernel offset at a time, laid
    out for :func:`col2im`.

    W: (C_a, C_o, k, k), a Conv2D's weight (C_a = C_out, C_o = C_in) or a ConvTranspose2D's
    (C_a = C_in, C_o = C_out); a_rows: (H*W*N, C_a), the transposed image matrix, rows (i, j, n).
    Returns the (C_o, k, k, H, W, N) column array as a view of (k, k, H, W, N, C_o) memory: the
    rows of W_flat.T @ a that belong to offset (u, v) are ``W[:, :, u, v].T @ a``, and each such
    block, (H, W, N, C_o), lands contiguous, which is what col2im's adds want. One batched
    product: its k*k matrix products together cost what the single product would
    (benchmarks/bench_layouts.py).
    """
    c_a, c_o, k = W.shape[:3]
    W_offsets = W.transpose(2, 3, 0, 1).reshape(k * k, c_a, c_o)  # W[:, :, u, v] by offset
    blocks = a_rows @ W_offsets  # (k*k, H*W*N, C_o)
    return blocks.reshape(k, k, h, w, n, c_o).transpose(5, 0, 1, 2, 3, 4)


def _init_uniform(rng, bound, shape, dtype):
    return rng.uniform(-bound, bound, shape).astype(dtype)


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
    Forward:  ``out_flat = W_flat @ cols + b``, cols = im2col(x) (C_in*k*k, N*H_out*W_out),
    W_flat = W.reshape(C_out, -1), out_flat = out as (C_out, N*H_out*W_out).
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
        xp = backend.xp
        rng = backend.default_rng(None) if rng is None else rng
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        bound = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)  # fan_in = C_in * k * k
        self.params["W"] = _init_uniform(rng, bound, (out_channels, in_channels, kernel_size,
                                                      kernel_size), dtype)
        self.params["b"] = _init_uniform(rng, bound, (out_channels,), dtype)
        self.grads["W"] = xp.zeros_like(self.params["W"])
        self.grads["b"] = xp.zeros_like(self.params["b"])

    def __repr__(self):
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"{self.kernel_size}, stride={self.stride}, padding={self.padding})")

    def output_shape(self, x_shape):
        n, _, h, w = x_shape
        k, s, p = self.kernel_size, self.stride, self.padding
        return n, self.out_channels, conv_output_size(h, k, s, p), conv_output_size(w, k, s, p)

    def forward(self, x):
        _check_input(self, x, self.in_channels)
        n, c_out, h_out, w_out = self.output_shape(x.shape)
        if h_out < 1 or w_out < 1:
            raise ValueError(f"{self!r}.forward: input {x.shape} is smaller than the kernel")
        x_pad = pad_images(x, self.padding)
        cols = im2col(x_pad, self.kernel_size, self.stride, h_out, w_out)  # (C_in*k*k, Ho*Wo*N)
        W_flat = self.params["W"].reshape(c_out, -1)  # (C_out, C_in*k*k), a view
        out = W_flat @ cols  # (C_out, Ho*Wo*N): the whole convolution in one product
        out += self.params["b"].reshape(-1, 1)  # in place: no second (C_out, Ho*Wo*N) array
        self.cache = (cols, x_pad.shape, x.shape)  # overwritten by the next forward
        # columns are (i, j, n): the product is already (C_out, H_out, W_out, N) in memory,
        # batch-last; handed on as an NCHW view, no copy (see the top of this file)
        return out.reshape(c_out, h_out, w_out, n).transpose(3, 0, 1, 2)

    def backward(self, dout, param_grads=True, input_grad=True):
        """dout: (N, C_out, H_out, W_out) -> dx: (N, C_in, H, W). Adds into grads["W"], grads["b"].

        ``param_grads=False`` leaves ``grads`` untouched; ``input_grad=False`` returns None.
        """
        if self.cache is None:
            raise ValueError(f"{self!r}: backward called before forward (nothing cached)")
        cols, x_pad_shape, x_shape = self.cache
        expected = self.output_shape(x_shape)
        if dout.shape != expected:
            raise ValueError(f"{self!r}.backward: expected dout of shape {expected}, "
                             f"received {dout.shape}")
        n, c_out, h_out, w_out = expected
        # (C_out, Ho*Wo*N): a view when dout is batch-last in memory, else one copy
        dout_flat = dout.transpose(1, 2, 3, 0).reshape(c_out, -1)
        if param_grads:
            self.grads["W"] += (dout_flat @ cols.T).reshape(self.params["W"].shape)
            self.grads["b"] += dout_flat.sum(axis=1)
        if not input_grad:
            return None
        # W_flat.T @ dout_flat, (C_in*k*k, Ho*Wo*N), by kernel offset (see products_by_offset)
        dcols = products_by_offset(self.params["W"], dout_flat.T, h_out, w_out, n)
        dx_pad = col2im(dcols, x_pad_shape, self.kernel_size, self.stride, h_out, w_out)
        p, (h, w) = self.padding, x_shape[2:]
        # the padding's gradient is dropped. The cut-out is a strided view of col2im's
        # (H, W, N, C) memory; one copy to contiguous batch-last memory, where the layers below
        # (BatchNorm, LeakyReLU) run fastest (benchmarks/bench_layouts.py, part 3)
        return batch_last_copy(dx_pad[:, :, p:p + h, p:p + w])


class ConvTranspose2D(Layer):
    """2-D transposed convolution: the adjoint of a Conv2D whose weight is W.

    x: (N, C_in, H, W) -> out: (N, C_out, H_out, W_out); W: (C_in, C_out, k, k), b: (C_out,)
    (PyTorch's ConvTranspose2d shapes). Forward is Conv2D's input gradient:
    ``out = col2im(W_flat.T @ x_flat) + b`` with x_flat = x as (C_in, N*H*W) and
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
        xp = backend.xp
        rng = backend.default_rng(None) if rng is None else rng
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.output_padding = output_padding
        bound = 1.0 / math.sqrt(out_channels * kernel_size * kernel_size)  # torch's fan_in
        self.params["W"] = _init_uniform(rng, bound, (in_channels, out_channels, kernel_size,
                                                      kernel_size), dtype)
        self.params["b"] = _init_uniform(rng, bound, (out_channels,), dtype)
        self.grads["W"] = xp.zeros_like(self.params["W"])
        self.grads["b"] = xp.zeros_like(self.params["b"])

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
        _check_input(self, x, self.in_channels)
        n, c_out, h_out, w_out = self.output_shape(x.shape)
        if h_out < 1 or w_out < 1:
            raise ValueError(f"{self!r}.forward: input {x.shape} gives an empty output")
        h, w = x.shape[2:]
        p = self.padding
        # (C_in, H*W*N): a view when x is batch-last in memory, else one copy
        x_flat = x.transpose(1, 2, 3, 0).reshape(self.in_channels, -1)
        # W_flat.T @ x_flat, (C_out*k*k, H*W*N), by kernel offset (see products_by_offset)
        cols = products_by_offset(self.params["W"], x_flat.T, h, w, n)
        # the padded output the patches are painted on: output_padding extra rows/cols at the end
        out_pad_shape = (n, c_out, h_out + 2 * p, w_out + 2 * p)
        out = col2im(cols, out_pad_shape, self.kernel_size, self.stride, h, w)
        out = out[:, :, p:p + h_out, p:p + w_out]  # drop the padding (N, C_out, H_out, W_out)
        self.cache = (x_flat, x.shape)  # overwritten by the next forward
        out = batch_last_copy(out)  # from col2im's (H, W, N, C) memory to batch-last
        out += self.params["b"].reshape(1, -1, 1, 1)
        return out

    def backward(self, dout, param_grads=True, input_grad=True):
        """dout: (N, C_out, H_out, W_out) -> dx: (N, C_in, H, W). Adds into grads["W"], grads["b"].

        ``param_grads=False`` leaves ``grads`` untouched; ``input_grad=False`` returns None.
        """
        if self.cache is None:
            raise ValueError(f"{self!r}: backward called before forward (nothing cached)")
        x_flat, x_shape = self.cache
        expected = self.output_shape(x_shape)
        if dout.shape != expected:
            raise ValueError(f"{self!r}.backward: expected dout of shape {expected}, "
                             f"received {dout.shape}")
        n, _, h, w = x_shape
        dout_pad = pad_images(dout, self.padding)  # output_padding's rows are already in dout
        cols = im2col(dout_pad, self.kernel_size, self.stride, h, w)  # (C_out*k*k, H*W*N)
        W_flat = self.params["W"].reshape(self.in_channels, -1)  # (C_in, C_out*k*k)
        if param_grads:
            self.grads["W"] += (x_flat @ cols.T).reshape(self.params["W"].shape)
            self.grads["b"] += dout.sum(axis=(0, 2, 3))
        if not input_grad:
            return None
        dx_flat = W_flat @ cols  # (C_in, H*W*N): a convolution of dout with W
        return dx_flat.reshape(self.in_channels, h, w, n).transpose(3, 0, 1, 2)
