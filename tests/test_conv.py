"""The DCGAN's layers: Conv2D, ConvTranspose2D, BatchNorm, Dropout, Flatten, Reshape.

Gradient checks in float64 on every array module (``xp``: NumPy, the strict CuPy stand-in, CuPy
where present), with a non-uniform upstream gradient; hypothesis properties over shapes,
strides, padding and output_padding (output sizes counted independently of the layer's formula,
the adjoint identity, finiteness); the layer contract (param_grads, train/eval, buffers).
PyTorch parity lives in tests/test_conv_parity.py.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigan import backend, layers
from minigan.batchnorm import BatchNorm, frozen_running_stats
from minigan.conv import Conv2D, ConvTranspose2D
from minigan.im2col import col2im, im2col, products_by_offset
from minigan.gradcheck import check_layer

# --- one helper per kind of check -------------------------------------------------------------


def check_layer_grad(layer, x):
    """dx and every parameter gradient of layer agree with central differences (< 1e-7), with a
    random normal (non-uniform) dout."""
    errors = check_layer(layer, x, rng=backend.default_rng(1))  # raises on a wrong gradient
    assert set(errors) == {"x", *layer.params}
    assert max(errors.values()) < 1e-7
    return errors


def normal(shape, seed=0, scale=1.0, shift=0.0):
    return scale * backend.default_rng(seed).standard_normal(shape) + shift


def rng(seed=0):
    return backend.default_rng(seed)


class WithMask(layers.Layer):
    """A Dropout whose mask is fixed, so that a gradient check's repeated forwards agree."""

    def __init__(self, dropout, mask):
        super().__init__()
        self.dropout, self.mask = dropout, mask

    def __repr__(self):
        return f"WithMask({self.dropout!r})"

    def forward(self, x):
        return self.dropout.forward(x, mask=self.mask)

    def backward(self, dout):
        return self.dropout.backward(dout)


class ModeSwitchedBeforeBackward(layers.Layer):
    """A BatchNorm whose forward runs in one mode and whose backward is called after a switch
    to the other: dx is the derivative of the forward that ran, whose mode the cache records,
    whatever ``training`` says by the time backward is called."""

    def __init__(self, norm, forward_training):
        super().__init__()
        self.norm, self.forward_training = norm, forward_training
        self.params, self.grads = norm.params, norm.grads  # the checker nudges norm's arrays

    def __repr__(self):
        return f"ModeSwitchedBeforeBackward({self.norm!r}, {self.forward_training})"

    def forward(self, x):
        out = self.norm.train(self.forward_training).forward(x)
        self.norm.train(not self.forward_training)
        return out

    def backward(self, dout, param_grads=True, input_grad=True):
        return self.norm.backward(dout, param_grads, input_grad)


# --- gradient checks --------------------------------------------------------------------------

CONV_CASES = [  # (C_in, C_out, k, stride, padding, H, W): tiny, non-square, every geometry kind
    (2, 3, 3, 1, 1, 5, 4),
    (1, 2, 5, 2, 2, 7, 6),  # the DCGAN's geometry
    (3, 2, 2, 3, 0, 7, 5),  # stride > k: gaps between windows
    (2, 2, 1, 1, 0, 3, 4),  # 1x1
]


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_grad(xp, case):
    c_in, c_out, k, s, p, h, w = case
    layer = Conv2D(c_in, c_out, k, stride=s, padding=p, rng=rng(), dtype="float64")
    check_layer_grad(layer, normal((2, c_in, h, w)))


CONVT_CASES = [  # (C_in, C_out, k, stride, padding, output_padding, H, W)
    (2, 3, 3, 1, 1, 0, 3, 4),
    (2, 1, 5, 2, 2, 1, 3, 4),  # the DCGAN's geometry
    (3, 2, 2, 3, 0, 2, 3, 2),  # stride > k
    (2, 2, 4, 2, 3, 1, 4, 3),  # padding larger than stride
]


@pytest.mark.parametrize("case", CONVT_CASES, ids=str)
def test_conv_transpose2d_grad(xp, case):
    c_in, c_out, k, s, p, op, h, w = case
    layer = ConvTranspose2D(c_in, c_out, k, stride=s, padding=p, output_padding=op, rng=rng(),
                            dtype="float64")
    check_layer_grad(layer, normal((2, c_in, h, w)))


def batchnorm(c, seed=0):
    """A BatchNorm with gamma and beta away from 1 and 0, so that wrong uses of them show."""
    layer = BatchNorm(c, dtype="float64")
    layer.params["gamma"][...] = normal((c,), seed, 0.5, 1.0)
    layer.params["beta"][...] = normal((c,), seed + 1)
    return layer


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 3, 2)], ids=str)
def test_batchnorm_grad_training(xp, shape):
    # shifted and scaled input: the mean and variance the layer removes are far from 0 and 1
    check_layer_grad(batchnorm(shape[1]), normal(shape, 2, scale=3.0, shift=1.5))


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 3, 2)], ids=str)
def test_batchnorm_grad_eval(xp, shape):
    layer = batchnorm(shape[1])
    layer.running_mean[...] = normal((shape[1],), 3)
    layer.running_var[...] = normal((shape[1],), 4) ** 2 + 0.5
    check_layer_grad(layer.eval(), normal(shape, 2, scale=3.0))


@pytest.mark.parametrize("forward_training", [True, False], ids=["train-then-eval",
                                                               "eval-then-train"])
def test_batchnorm_backward_follows_the_mode_of_its_forward(xp, forward_training):
    layer = batchnorm(3)
    layer.running_mean[...] = normal((3,), 3)
    layer.running_var[...] = normal((3,), 4) ** 2 + 0.5
    check_layer_grad(ModeSwitchedBeforeBackward(layer, forward_training),
                     normal((2, 3, 3, 2), 2, scale=3.0, shift=1.5))


def test_batchnorm_dx_is_not_trivial_with_uniform_dout():
    """Why the checks use a random dout: with dout = 1 everywhere, dx is 0 up to rounding (the
    normalised output's sum per channel does not depend on x), so it would check nothing."""
    layer = batchnorm(3)
    x = normal((4, 3, 2, 2), 2, scale=3.0)
    layer.forward(x)
    assert np.abs(layer.backward(np.ones_like(x))).max() < 1e-14
    layer.forward(x)
    assert np.abs(layer.backward(normal(x.shape, 5))).max() > 0.1


def test_dropout_grad(xp):
    x = normal((3, 4, 2, 2), 2)
    mask = backend.default_rng(3).random(x.shape) < 0.6  # a drawn 0/1 mask
    check_layer_grad(WithMask(layers.Dropout(0.4), mask), x)


def test_dropout_grad_eval(xp):
    """Evaluation mode is the identity, so dx = dout, unscaled: the latent search of
    minigan/anomaly.py backpropagates through D in evaluation mode."""
    check_layer_grad(layers.Dropout(0.4).eval(), normal((3, 4, 2, 2), 2))


def test_flatten_and_reshape_grad(xp):
    check_layer_grad(layers.Flatten(), normal((2, 3, 2, 2)))
    check_layer_grad(layers.Reshape((3, 2, 2)), normal((2, 12)))


def test_dcgan_shaped_sequential_grad(xp):
    """A small G-like and D-like stack: every parameter of every layer through Sequential."""
    r = rng(4)
    G = layers.Sequential(
        layers.Dense(3, 2 * 3 * 3, rng=r, dtype="float64"), layers.Reshape((2, 3, 3)),
        batchnorm(2), layers.Tanh(),
        ConvTranspose2D(2, 2, 3, stride=2, padding=1, output_padding=1, rng=r, dtype="float64"),
        layers.Tanh(), layers.Flatten())
    errors = check_layer_grad(G, normal((3, 3), 5))
    assert {"0.W", "2.gamma", "4.W", "4.b"} <= set(errors)
    D = layers.Sequential(
        layers.Reshape((1, 5, 5)), Conv2D(1, 2, 3, stride=2, padding=1, rng=r, dtype="float64"),
        layers.Tanh(), batchnorm(2), layers.Flatten(), layers.Dense(18, 1, rng=r, dtype="float64"))
    check_layer_grad(D, normal((3, 25), 6))


# --- forward values against a direct sum --------------------------------------------------------


def direct_conv2d(x, W, b, stride, padding):
    """The convolution's definition, written with loops: out[n, o, i, j] = b[o] +
    sum_{c, di, dj} W[o, c, di, dj] * x_pad[n, c, i*s + di, j*s + dj]."""
    n, c, h, w = x.shape
    o, _, k, _ = W.shape
    xp_ = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    h_out = len(range(0, h + 2 * padding - k + 1, stride))
    w_out = len(range(0, w + 2 * padding - k + 1, stride))
    out = np.zeros((n, o, h_out, w_out))
    for i in range(h_out):
        for j in range(w_out):
            patch = xp_[:, :, i * stride:i * stride + k, j * stride:j * stride + k]
            out[:, :, i, j] = np.einsum("nckl,ockl->no", patch, W) + b
    return out


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_forward_is_the_direct_sum(case):
    c_in, c_out, k, s, p, h, w = case
    layer = Conv2D(c_in, c_out, k, stride=s, padding=p, rng=rng(), dtype="float64")
    x = normal((2, c_in, h, w))
    expected = direct_conv2d(x, layer.params["W"], layer.params["b"], s, p)
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)


def test_conv_transpose_paints_each_pixel_a_strided_patch():
    """One input pixel of value 1 paints W's k x k kernel onto the output, stride pixels from
    where its neighbour would: what makes ConvTranspose2D upsample."""
    layer = ConvTranspose2D(1, 1, 3, stride=2, rng=rng(), dtype="float64")
    layer.params["b"][...] = 0
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 2] = 1.0  # row 1, column 2 -> the patch starts at (2, 4)
    out = layer.forward(x)
    assert out.shape == (1, 1, 7, 7)
    expected = np.zeros((7, 7))
    expected[2:5, 4:7] = layer.params["W"][0, 0]
    np.testing.assert_array_equal(out[0, 0], expected)


def test_im2col_and_col2im_are_adjoint():
    x = normal((2, 3, 7, 6), 1)
    cols = im2col(x, 3, 2, 3, 2)
    y = normal(cols.shape, 2)
    lhs = float((cols * y).sum())
    rhs = float((x * col2im(y, x.shape, 3, 2, 3, 2)).sum())
    assert abs(lhs - rhs) < 1e-12 * abs(lhs) + 1e-12


def test_im2col_refuses_windows_past_the_edge():
    """as_strided does not check bounds: without im2col's own check, one window too many would
    read memory outside x instead of raising."""
    x = normal((2, 3, 7, 6), 1)
    im2col(x, 3, 2, 3, 2)  # the last windows end at row 2*2 + 3 = 7 and column 1*2 + 3 = 5
    for h_out, w_out in ((4, 2), (3, 3)):  # row 3*2 + 3 = 9 > 7; column 2*2 + 3 = 7 > 6
        with pytest.raises(ValueError, match="need a padded input of at least"):
            im2col(x, 3, 2, h_out, w_out)


# --- hypothesis properties ------------------------------------------------------------------------


@st.composite
def conv_geometry(draw):
    """(N, C_in, C_out, k, stride, padding, H, W) with at least one output pixel each way."""
    k = draw(st.integers(1, 4))
    s = draw(st.integers(1, 3))
    p = draw(st.integers(0, 2))
    lo = max(1, k - 2 * p)
    h, w = draw(st.integers(lo, lo + 6)), draw(st.integers(lo, lo + 6))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3)),
            k, s, p, h, w)


@given(conv_geometry(), st.floats(1e-3, 1e3))
def test_conv2d_output_size_and_its_backward_in_any_geometry(geometry, scale):
    """The output size, and the backward checked without a second implementation: out - b is
    linear in x and in W, so for any dout, <dout, out - b> = <dx, x> = <dW, W> (Euler's rule
    for a function of degree 1), and db is dout summed over all but the channel axis."""
    n, c_in, c_out, k, s, p, h, w = geometry
    layer = Conv2D(c_in, c_out, k, stride=s, padding=p, rng=rng(), dtype="float64")
    x = normal((n, c_in, h, w), scale=scale)
    out = layer.forward(x)
    # the number of window positions, counted: 0, s, 2s, ... while the window fits
    assert out.shape == (n, c_out, len(range(0, h + 2 * p - k + 1, s)),
                         len(range(0, w + 2 * p - k + 1, s)))
    assert np.isfinite(out).all()
    dout = normal(out.shape, 1, scale)
    layer.zero_grad()
    dx = layer.backward(dout)
    assert np.isfinite(dx).all() and dx.shape == x.shape
    lhs = float((dout * (out - layer.params["b"].reshape(1, -1, 1, 1))).sum())
    size = float((np.abs(dout) * (np.abs(out) + np.abs(layer.params["b"]).max())).sum()) + 1
    assert abs(lhs - float((dx * x).sum())) <= 1e-12 * size
    assert abs(lhs - float((layer.grads["W"] * layer.params["W"]).sum())) <= 1e-12 * size
    np.testing.assert_allclose(layer.grads["b"], dout.sum(axis=(0, 2, 3)), rtol=1e-12, atol=1e-12)


@given(conv_geometry(), st.data())
def test_conv_transpose_is_the_adjoint_of_conv(geometry, data):
    """<conv(x), y> = <x, convT(y)> with the same W and no bias, for any geometry: the
    transposed convolution is the convolution's adjoint. output_padding picks, among the input
    sizes that conv maps to y's size, the one of x."""
    n, c_in, c_out, k, s, p, h, _ = geometry
    w = h + s * data.draw(st.integers(0, 2))  # W - H a multiple of s: one output_padding fits both
    conv = Conv2D(c_in, c_out, k, stride=s, padding=p, rng=rng(), dtype="float64")
    op = (h + 2 * p - k) % s  # the rows of x the last window does not reach
    convT = ConvTranspose2D(c_out, c_in, k, stride=s, padding=p, output_padding=op,
                            dtype="float64")
    convT.params["W"][...] = conv.params["W"]  # (C_out, C_in, k, k): convT's (in, out, k, k)
    conv.params["b"][...] = 0
    convT.params["b"][...] = 0
    x = normal((n, c_in, h, w), 1)
    y = normal(conv.output_shape(x.shape), 2)
    xT = convT.forward(y)
    assert xT.shape == x.shape
    lhs, rhs = float((conv.forward(x) * y).sum()), float((x * xT).sum())
    assert abs(lhs - rhs) <= 1e-12 * (np.abs(x).sum() * np.abs(xT).max() + 1)


@given(conv_geometry(), st.data())
def test_conv_transpose_output_size(geometry, data):
    """convT's output is an input size that Conv2D of the same geometry maps back to y's size,
    output_padding rows larger than the smallest such size."""
    n, c_in, c_out, k, s, p, h, w = geometry
    op = data.draw(st.integers(0, s - 1))
    if (h - 1) * s - 2 * p + k + op < 1 or (w - 1) * s - 2 * p + k + op < 1:
        return  # padding eats the whole output: the layer refuses (tested below)
    convT = ConvTranspose2D(c_in, c_out, k, stride=s, padding=p, output_padding=op, rng=rng(),
                            dtype="float64")
    out = convT.forward(normal((n, c_in, h, w)))
    conv = Conv2D(c_out, c_in, k, stride=s, padding=p, dtype="float64")
    assert conv.output_shape(out.shape) == (n, c_in, h, w)
    # the smallest size, counted by trying sizes, that conv maps to m pixels (with padding it
    # can be formally 0 or less: output_padding then brings the output up to at least 1)
    smallest = [min(size for size in range(-2 * p, 60)
                    if len(range(0, size + 2 * p - k + 1, s)) == m) for m in (h, w)]
    assert out.shape[2:] == (smallest[0] + op, smallest[1] + op)
    assert np.isfinite(out).all()


@given(st.integers(2, 5), st.integers(1, 4), st.sampled_from([(), (1, 1), (2, 3)]),
       st.floats(1e-3, 1e3), st.floats(-1e3, 1e3))
def test_batchnorm_normalises_each_channel(n, c, spatial, scale, shift):
    layer = BatchNorm(c, dtype="float64")
    x = normal((n, c, *spatial), 3, scale, shift)
    out = layer.forward(x)
    axes = (0, *range(2, out.ndim))
    var = x.var(axis=axes)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out.mean(axis=axes), 0, atol=1e-9)
    # the variance becomes var / (var + eps): 1 unless var is comparable to eps
    np.testing.assert_allclose(out.var(axis=axes), var / (var + layer.eps), rtol=1e-6)
    assert np.isfinite(layer.backward(normal(out.shape, 4))).all()


@given(st.floats(0.0, 1.0), st.sampled_from([(4, 5), (2, 3, 4, 4)]))
def test_dropout_keeps_or_scales_every_entry(p, shape):
    layer = layers.Dropout(p, rng=rng(5))
    x = normal(shape, 6)
    out = layer.forward(x)
    kept = out != 0
    if p < 1:
        np.testing.assert_allclose(out[kept], x[kept] / (1 - p), rtol=1e-15)
    else:
        assert not kept.any()
    np.testing.assert_array_equal(layer.backward(np.ones(shape)) != 0, kept)
    assert np.array_equal(layer.eval().forward(x), x)  # evaluation mode: identity


def test_dropout_drops_the_expected_fraction():
    layer = layers.Dropout(0.3, rng=rng(7))
    out = layer.forward(np.ones((200, 100)))
    dropped = float((out == 0).mean())
    assert abs(dropped - 0.3) < 0.01  # 20,000 draws: the standard error is 0.003


@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.integers(1, 3))
def test_flatten_and_reshape_round_trip(shape, n):
    x = normal((n, *shape))
    flat = layers.Flatten().forward(x)
    assert flat.shape == (n, math.prod(shape))
    back = layers.Reshape(shape)
    assert np.array_equal(back.forward(flat), x)
    assert np.array_equal(back.backward(x), flat)


def test_products_by_offset_is_the_one_product_and_col2im_takes_either_layout():
    c_a, c_out, k, h, w, n = 3, 4, 3, 2, 3, 5
    a = normal((c_a, h * w * n))  # an image matrix, columns (i, j, n)
    W = normal((c_a, c_out, k, k), seed=1)  # a ConvTranspose2D's weight
    by_offset = products_by_offset(W, a.T, h, w, n)
    one = W.reshape(c_a, -1).T @ a  # (C_out*k*k, H*W*N), rows (c, u, v)
    assert by_offset.shape == (c_out, k, k, h, w, n)
    np.testing.assert_allclose(by_offset.reshape(one.shape), one, rtol=1e-12, atol=1e-12)
    # col2im reads the offset-major view and the plain matrix alike: the same adds, same order
    pad_shape = (n, c_out, (h - 1) * 2 + k, (w - 1) * 2 + k)
    assert np.array_equal(col2im(by_offset, pad_shape, k, 2, h, w),
                          col2im(by_offset.reshape(one.shape), pad_shape, k, 2, h, w))


def batch_last(x):
    """x (N, C, H, W) as a view of a contiguous (C, H, W, N) array: the memory order minigan's
    convolutions hand on (minigan/im2col.py)."""
    return np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)


def is_batch_last(a):
    return a.transpose(1, 2, 3, 0).flags.c_contiguous


@pytest.mark.parametrize("make, shape", [
    (lambda: Conv2D(3, 4, 5, stride=2, padding=2, rng=rng(1), dtype="float64"), (5, 3, 8, 6)),
    (lambda: ConvTranspose2D(3, 4, 5, stride=2, padding=2, output_padding=1, rng=rng(1),
                             dtype="float64"), (5, 3, 4, 3)),
])
def test_convolutions_hand_on_batch_last_memory_and_layout_changes_no_result(make, shape):
    x = normal(shape, seed=2)
    layer = make()
    out = layer.forward(x)  # from an NCHW-contiguous x
    dout = normal(out.shape, seed=3)
    dx = layer.backward(dout)
    grads = {name: g.copy() for name, g in layer.grads.items()}
    assert is_batch_last(out) and is_batch_last(dx)  # no copy back to NCHW order
    layer.zero_grad()
    out_bl = layer.forward(batch_last(x))  # the same numbers, batch-last in memory
    dx_bl = layer.backward(batch_last(dout))
    assert np.array_equal(out_bl, out) and np.array_equal(dx_bl, dx)
    for name, g in layer.grads.items():  # a sum over the batch may add in another order
        np.testing.assert_allclose(g, grads[name], rtol=1e-13, atol=0, err_msg=name)


def test_flatten_gives_dx_the_memory_order_of_its_input():
    x = normal((4, 3, 2, 5))
    dout = normal((4, 30), seed=1)
    for x_in in (x, batch_last(x)):
        layer = layers.Flatten()
        assert np.array_equal(layer.forward(x_in), x.reshape(4, 30))  # C, H, W order either way
        dx = layer.backward(dout)
        assert np.array_equal(dx, dout.reshape(x.shape))
        assert is_batch_last(dx) == is_batch_last(x_in)
        assert dx.flags.c_contiguous == x_in.flags.c_contiguous


# --- bad inputs --------------------------------------------------------------------------------


@pytest.mark.parametrize("make, match", [
    (lambda: Conv2D(2, 3, 0), "kernel_size >= 1"),
    (lambda: Conv2D(2, 3, 3, stride=0), "stride >= 1"),
    (lambda: ConvTranspose2D(2, 3, 3, stride=2, output_padding=2), "output_padding"),
    (lambda: layers.Dropout(1.5), "p must be in"),
])
def test_bad_geometry_is_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_wrong_input_shapes_are_refused():
    with pytest.raises(ValueError, match=r"expected x of shape \(N, 2, H, W\)"):
        Conv2D(2, 3, 3).forward(np.zeros((1, 3, 5, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="smaller than the kernel"):
        Conv2D(2, 3, 5).forward(np.zeros((1, 2, 3, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="more than one value per channel"):
        BatchNorm(2).forward(np.zeros((1, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="cannot reshape"):
        layers.Reshape((2, 3)).forward(np.zeros((1, 5)))
    conv = Conv2D(1, 1, 3)
    conv.forward(np.zeros((1, 1, 5, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="expected dout of shape"):
        conv.backward(np.zeros((1, 1, 5, 5), dtype=np.float32))


# --- initialisation --------------------------------------------------------------------------


@pytest.mark.parametrize("make, fan_in", [
    (lambda: Conv2D(8, 16, 5, rng=rng(0)), 8 * 25),  # torch: fan_in = C_in * k * k
    (lambda: ConvTranspose2D(16, 8, 5, rng=rng(0)), 8 * 25),  # torch: W.shape[1] * k * k
])
def test_conv_init_matches_torch_bounds(make, fan_in):
    layer = make()
    bound = 1 / math.sqrt(fan_in)
    for name in ("W", "b"):
        a = layer.params[name]
        assert a.dtype == np.float32
        assert np.abs(a).max() <= bound
        # uniform on [-bound, bound]: the largest of >= 8 draws is near the bound
        assert np.abs(a).max() > 0.5 * bound
    assert layer.params["W"].std() == pytest.approx(bound / math.sqrt(3), rel=0.05)


def test_same_seed_same_weights_and_explicit_dtype():
    a, b = Conv2D(2, 3, 3, rng=rng(9), dtype="float64"), Conv2D(2, 3, 3, rng=rng(9),
                                                                 dtype="float64")
    assert a.params["W"].dtype == np.float64
    assert np.array_equal(a.params["W"], b.params["W"])


# --- the layer contract: param_grads, train/eval, buffers ----------------------------------------


class LearnersDense(layers.Dense):
    """A learner's layer with parameters whose backward forgot param_grads."""

    def backward(self, dout):
        return super().backward(dout)


class LearnersActivation(layers.Layer):
    """A learner's activation with the plain backward(dout): fine, it has no parameters."""

    def forward(self, x):
        self.cache = x
        return 2 * x

    def backward(self, dout):
        return 2 * dout


def test_sequential_refuses_a_layer_with_params_that_ignores_param_grads():
    with pytest.raises(TypeError, match=r"layer 1, .* owns parameters \['W', 'b'\] but its "
                                        r"backward takes no param_grads keyword"):
        layers.Sequential(layers.ReLU(), LearnersDense(2, 3))


def test_sequential_accepts_plain_activations_and_leaves_grads_alone():
    r = rng(1)
    net = layers.Sequential(layers.Dense(3, 4, rng=r, dtype="float64"), LearnersActivation(),
                            layers.Tanh(), layers.Dense(4, 2, rng=r, dtype="float64"))
    x = normal((5, 3))
    net.zero_grad()
    net.forward(x)
    dx = net.backward(normal((5, 2), 1), param_grads=False)
    assert dx.shape == (5, 3)
    assert all(not g.any() for g in net.grads.values())


@pytest.mark.parametrize("layer", [
    Conv2D(2, 2, 3, padding=1, dtype="float64"),
    ConvTranspose2D(2, 2, 3, padding=1, dtype="float64"),
    BatchNorm(2, dtype="float64"),
], ids=repr)
def test_param_grads_false_leaves_grads_and_input_grad_false_returns_none(layer):
    x = normal((2, 2, 4, 4))
    out = layer.forward(x)
    dout = normal(out.shape, 1)
    dx = layer.backward(dout, param_grads=False)
    assert all(not g.any() for g in layer.grads.values())
    assert layer.backward(dout, input_grad=False) is None
    only = {k: g.copy() for k, g in layer.grads.items()}
    assert all(g.any() for g in only.values())
    layer.zero_grad()
    assert np.array_equal(layer.backward(dout), dx)
    for k, g in layer.grads.items():  # the same gradients as a full backward's
        assert np.array_equal(g, only[k]), k


def test_train_and_eval_reach_nested_layers():
    inner = layers.Sequential(BatchNorm(2), layers.Dropout(0.5))
    net = layers.Sequential(layers.Dense(2, 2), inner)
    assert net.eval() is net
    assert not any(layer.training for layer in layers.walk(net))
    net.train()
    assert all(layer.training for layer in layers.walk(net))


def test_batchnorm_running_statistics_follow_torchs_rule():
    """running = 0.9 * running + 0.1 * batch statistic, the variance unbiased (n - 1), written
    out here with NumPy's own mean and var(ddof=1)."""
    layer = BatchNorm(3, dtype="float64")
    x1, x2 = normal((4, 3, 2, 2), 1, 2.0, 1.0), normal((4, 3, 2, 2), 2, 0.5, -1.0)
    layer.forward(x1)
    layer.forward(x2)
    mean = [x.mean(axis=(0, 2, 3)) for x in (x1, x2)]
    var = [x.var(axis=(0, 2, 3), ddof=1) for x in (x1, x2)]
    np.testing.assert_allclose(layer.running_mean, 0.9 * 0.1 * mean[0] + 0.1 * mean[1],
                               rtol=1e-14)
    np.testing.assert_allclose(layer.running_var,
                               0.9 * (0.9 + 0.1 * var[0]) + 0.1 * var[1], rtol=1e-14)
    before, before_var = layer.running_mean.copy(), layer.running_var.copy()
    with frozen_running_stats(layers.Sequential(layer)):
        layer.forward(x1)
    assert np.array_equal(layer.running_mean, before) and layer.update_running_stats
    assert np.array_equal(layer.running_var, before_var)
    out = layer.eval().forward(x1)  # evaluation: the running statistics, not the batch's
    expected = (x1 - layer.running_mean.reshape(1, 3, 1, 1)) / np.sqrt(
        layer.running_var.reshape(1, 3, 1, 1) + 1e-5)
    np.testing.assert_allclose(out, expected, rtol=1e-13)


def test_sequential_collects_buffers_and_batch_statistics():
    net = layers.Sequential(layers.Dense(2, 3), BatchNorm(3))
    assert set(net.buffers) == {"1.running_mean", "1.running_var"}
    assert net.buffers["1.running_mean"] is net[1].running_mean
    assert net.uses_batch_statistics
    assert not layers.Sequential(layers.Dense(2, 3), layers.Dropout()).uses_batch_statistics
