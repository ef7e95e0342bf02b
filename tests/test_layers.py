"""Layers: gradients against central differences, forward values against closed forms, and the
layer contract (initialisation, shared parameters, accumulating grads, skipped work).

Gradient checks run in float64 on every array module (``xp``: NumPy, the strict CuPy stand-in,
and CuPy where a GPU is present) with gradcheck's default tolerance, relative error < 1e-7.
"""

import math
import re

import numpy as np
import pytest

from minigan import backend, batchnorm, layers, tricks
from minigan.conv import Conv2D, ConvTranspose2D
from minigan.gradcheck import check_layer

# --- one helper per kind of check -------------------------------------------------------------


def away_from_kink(x, margin=1e-3):
    """x with every |entry| >= margin: a central difference with h = 1e-5 then never straddles
    the kink of (Leaky)ReLU at 0, where the derivative is undefined."""
    xp = backend.xp
    return xp.where(xp.abs(x) < margin, xp.where(x < 0, -margin, margin), x)


def check_layer_grad(layer, x):
    """dx and every parameter gradient of layer agree with central differences (< 1e-7)."""
    errors = check_layer(layer, x, rng=backend.default_rng(1))  # raises on a wrong gradient
    assert set(errors) == {"x", *layer.params}
    assert max(errors.values()) < 1e-7
    return errors


def check_forward(layer, host_x, reference):
    """layer.forward agrees, entry by entry, with ``reference``: a function of one Python float
    written independently with ``math`` (float64, relative 1e-13)."""
    out = backend.to_host(layer.forward(backend.to_device(host_x)))
    expected = np.vectorize(reference, otypes=[np.float64])(host_x)
    np.testing.assert_allclose(out, expected, rtol=1e-13, atol=1e-300)


def standard_normal(shape, seed=0, scale=1.0):
    return scale * backend.default_rng(seed).standard_normal(shape)


# --- gradient checks, one per layer -----------------------------------------------------------


def test_dense_grad(xp):
    layer = layers.Dense(4, 3, rng=backend.default_rng(0), dtype="float64")
    check_layer_grad(layer, standard_normal((5, 4)))


@pytest.mark.parametrize("slope", [0.01, 0.2, 0.5])
def test_leaky_relu_grad(xp, slope):
    check_layer_grad(layers.LeakyReLU(slope), away_from_kink(standard_normal((6, 7))))


def test_relu_grad(xp):
    check_layer_grad(layers.ReLU(), away_from_kink(standard_normal((6, 7))))


def test_tanh_grad(xp):
    check_layer_grad(layers.Tanh(), standard_normal((6, 7), scale=2.0))


def test_sigmoid_grad(xp):
    check_layer_grad(layers.Sigmoid(), standard_normal((6, 7), scale=3.0))


def test_sequential_grad(xp):
    rng = backend.default_rng(0)
    net = layers.Sequential(
        layers.Dense(6, 8, rng=rng, dtype="float64"), layers.LeakyReLU(0.2),
        layers.Dense(8, 5, rng=rng, dtype="float64"), layers.Tanh(),
        layers.Dense(5, 3, rng=rng, dtype="float64"),
    )
    errors = check_layer_grad(net, standard_normal((4, 6)))
    assert set(errors) == {"x", "0.W", "0.b", "2.W", "2.b", "4.W", "4.b"}


# --- forward values against closed forms ------------------------------------------------------


def test_dense_forward_is_x_at_w_plus_b():
    layer = layers.Dense(3, 2, rng=backend.default_rng(0), dtype="float64")
    x = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    W, b = layer.params["W"], layer.params["b"]
    expected = [[sum(x[n, i] * W[i, j] for i in range(3)) + b[j] for j in range(2)]
                for n in range(2)]
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-14)


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.2])
def test_leaky_relu_forward(slope):
    x = np.array([[-3.0, -1e-3, 0.0, 1e-3, 2.5]])
    check_forward(layers.LeakyReLU(slope), x, lambda v: v if v > 0 else slope * v)


def test_leaky_relu_default_slope_is_the_dcgan_papers_not_torchs():
    """LeakyReLU() means 0.2, the DCGAN paper's slope and every minigan model's default; torch's
    nn.LeakyReLU() means 0.01. Every caller in minigan passes its slope, so only this test
    would notice the default drifting to torch's."""
    x = np.array([[-3.0, -1e-3, 0.0, 1e-3, 2.5]])
    check_forward(layers.LeakyReLU(), x, lambda v: v if v > 0 else 0.2 * v)


def test_relu_forward():
    """ReLU is LeakyReLU with slope 0: a slope of its own would pass the gradient check (the
    backward agrees with any slope), and only the values show it."""
    x = np.array([[-3.0, -1e-3, 0.0, 1e-3, 2.5]])
    check_forward(layers.ReLU(), x, lambda v: max(v, 0.0))


def test_tanh_and_sigmoid_forward():
    x = np.linspace(-30.0, 30.0, 61).reshape(1, -1)
    check_forward(layers.Tanh(), x, math.tanh)
    check_forward(layers.Sigmoid(), x, lambda v: 1.0 / (1.0 + math.exp(-v)))


def test_leaky_relu_at_zero_takes_the_slope_branch():
    layer = layers.LeakyReLU(0.2)
    layer.forward(np.zeros((1, 3)))
    dx = layer.backward(np.array([[1.0, -2.0, 5.0]]))
    assert np.array_equal(dx, [[0.2, -0.4, 1.0]])  # as PyTorch: x > 0 ? dout : slope * dout


# --- initialisation ---------------------------------------------------------------------------


def test_dense_init_matches_torch_linear_distribution():
    """W, b ~ U(-1/sqrt(in), 1/sqrt(in)), fan-in being in_features (not out_features)."""
    layer = layers.Dense(256, 16, rng=backend.default_rng(0))
    bound = 1 / math.sqrt(256)
    W, b = layer.params["W"], layer.params["b"]
    assert W.shape == (256, 16) and b.shape == (16,)
    for name, a, closeness in (("W", W, 0.99), ("b", b, 0.7)):
        assert a.min() >= -bound and a.max() <= bound, name
        assert a.min() < -closeness * bound and a.max() > closeness * bound, name
    assert abs(W.std() - bound / math.sqrt(3)) < 0.03 * bound / math.sqrt(3)  # uniform's std
    assert abs(W.mean()) < 0.02 * bound


def test_dense_init_spread_equals_torch_linear():
    torch = pytest.importorskip("torch", reason="compares with torch.nn.Linear; needs PyTorch")
    torch.manual_seed(0)
    linear = torch.nn.Linear(256, 16)
    W_torch = linear.weight.detach().numpy()  # (out, in)
    W = layers.Dense(256, 16, rng=backend.default_rng(0)).params["W"]
    assert abs(np.abs(W).max() - np.abs(W_torch).max()) < 0.01 / 16
    assert abs(W.std() - W_torch.std()) < 0.03 * W_torch.std()


def test_dense_dtypes():
    layer = layers.Dense(3, 2, rng=backend.default_rng(0))
    for a in (*layer.params.values(), *layer.grads.values()):
        assert a.dtype == np.float32
    layer64 = layers.Dense(3, 2, rng=backend.default_rng(0), dtype="float64")
    for a in (*layer64.params.values(), *layer64.grads.values()):
        assert a.dtype == np.float64
    # The float32 weights are the float64 draws rounded: same seed, same numbers.
    assert np.array_equal(layer.params["W"], layer64.params["W"].astype(np.float32))


def test_dense_init_is_seeded_on_every_module(xp):
    a = layers.Dense(5, 4, rng=backend.default_rng(3))
    b = layers.Dense(5, 4, rng=backend.default_rng(3))
    c = layers.Dense(5, 4, rng=backend.default_rng(4))
    assert isinstance(a.params["W"], xp.ndarray)
    assert np.array_equal(backend.to_host(a.params["W"]), backend.to_host(b.params["W"]))
    assert not np.array_equal(backend.to_host(a.params["W"]), backend.to_host(c.params["W"]))


# --- the layer contract -----------------------------------------------------------------------


def three_layer_net():
    rng = backend.default_rng(0)
    return layers.Sequential(
        layers.Dense(4, 6, rng=rng, dtype="float64"), layers.LeakyReLU(0.2),
        layers.Dense(6, 2, rng=rng, dtype="float64"), layers.Tanh(),
    )


def test_sequential_params_share_memory_with_the_layers():
    net = three_layer_net()
    assert list(net.params) == list(net.grads) == ["0.W", "0.b", "2.W", "2.b"]
    for i in (0, 2):
        for k in ("W", "b"):
            assert net.params[f"{i}.{k}"] is net[i].params[k]
            assert net.grads[f"{i}.{k}"] is net[i].grads[k]
    x = standard_normal((3, 4))
    before = net.forward(x).copy()
    net.params["2.b"] += 1.0  # an optimizer's in-place update reaches the layer
    assert not np.array_equal(net.forward(x), before)
    assert [p.name for p in net.parameters()] == ["0.W", "0.b", "2.W", "2.b"]
    assert all(p.data is net.params[p.name] and p.grad is net.grads[p.name]
               for p in net.parameters())


def grads_after_backward(net, x, dout, **kwargs):
    net.forward(x)
    dx = net.backward(dout, **kwargs)
    return dx, {k: g.copy() for k, g in net.grads.items()}


def test_zero_grad_clears_every_layer():
    net = three_layer_net()
    grads_after_backward(net, standard_normal((3, 4)), standard_normal((3, 2), seed=1))
    assert all(np.abs(g).max() > 0 for g in net.grads.values())
    net.zero_grad()
    assert all(not g.any() for g in net.grads.values())
    assert all(not g.any() for g in net[0].grads.values())


def test_backward_accumulates():
    net = three_layer_net()
    x, dout = standard_normal((3, 4)), standard_normal((3, 2), seed=1)
    _, once = grads_after_backward(net, x, dout)
    _, twice = grads_after_backward(net, x, dout)  # no zero_grad in between
    for k in once:
        assert np.array_equal(twice[k], 2 * once[k]), k


def test_param_grads_false_leaves_grads_untouched():
    net = three_layer_net()
    x, dout = standard_normal((3, 4)), standard_normal((3, 2), seed=1)
    dx_full, grads = grads_after_backward(net, x, dout)  # grads now nonzero
    dx, after = grads_after_backward(net, x, dout, param_grads=False)
    assert np.array_equal(dx, dx_full)
    for k in grads:
        assert np.array_equal(after[k], grads[k]), k
    dense = net[0]
    dense.forward(x)
    before = {k: g.copy() for k, g in dense.grads.items()}
    dense.backward(standard_normal((3, 6)), param_grads=False)
    assert all(np.array_equal(dense.grads[k], before[k]) for k in before)


def test_input_grad_false_returns_none_with_the_same_grads():
    net = three_layer_net()
    x, dout = standard_normal((3, 4)), standard_normal((3, 2), seed=1)
    _, grads = grads_after_backward(net, x, dout)
    net.zero_grad()
    dx, grads_no_dx = grads_after_backward(net, x, dout, input_grad=False)
    assert dx is None
    for k in grads:
        assert np.array_equal(grads_no_dx[k], grads[k]), k
    dense = layers.Dense(4, 2, rng=backend.default_rng(0))
    dense.forward(np.ones((3, 4), dtype=np.float32))
    assert dense.backward(np.ones((3, 2), dtype=np.float32), input_grad=False) is None
    assert np.array_equal(dense.grads["b"], [3.0, 3.0])


# --- extreme inputs ---------------------------------------------------------------------------

EXTREMES = [-np.inf, -1e4, -800.0, -100.0, -30.0, -1e-8, 0.0, 1e-8, 30.0, 100.0, 800.0, 1e4, np.inf]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_finite_and_exact_at_the_ends(dtype):
    x = np.array(EXTREMES, dtype=dtype)
    # Overflow, invalid and divide-by-zero raise; underflow (exp(-1e4) -> 0, the correct
    # rounding) stays ignored, as it is by NumPy's default.
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        layer = layers.Sigmoid()
        out = layer.forward(x)
        dx = layer.backward(np.ones_like(x))
    assert out.dtype == dtype and dx.dtype == dtype
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(dx))
    assert out[0] == 0.0 and out[1] == 0.0  # sigmoid(-inf), sigmoid(-1e4)
    assert out[-1] == 1.0 and out[-2] == 1.0  # sigmoid(inf), sigmoid(1e4)
    assert out[EXTREMES.index(0.0)] == 0.5
    assert dx[0] == 0.0 and dx[-1] == 0.0
    np.testing.assert_allclose(out[4], 1 / (1 + math.exp(30.0)), rtol=1e-6)  # no cancellation
    assert np.all(np.diff(out) >= 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_and_leaky_relu_at_extremes(dtype):
    x = np.array(EXTREMES, dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        tanh = layers.Tanh()
        out = tanh.forward(x)
        dx = tanh.backward(np.ones_like(x))
        leaky = layers.LeakyReLU(0.2)
        out_leaky = leaky.forward(x)
        dx_leaky = leaky.backward(np.ones_like(x))
    assert out[0] == -1.0 and out[-1] == 1.0 and np.all(np.isfinite(dx)) and dx[-1] == 0.0
    assert out_leaky[0] == -np.inf and out_leaky[-1] == np.inf  # the identity, up to the slope
    assert out_leaky[1] == dtype(-2e3) and dx_leaky[1] == dtype(0.2) and dx_leaky[-1] == 1.0


def test_sequential_switches_reach_every_layer():
    """input_grad=False returns None whatever the first layer is, and param_grads=False
    reaches the Dense layers inside a nested Sequential too."""
    rng = backend.default_rng(0)
    inner = layers.Sequential(layers.Dense(4, 6, rng=rng, dtype="float64"), layers.Tanh())
    net = layers.Sequential(layers.LeakyReLU(0.2), inner,
                            layers.Dense(6, 2, rng=rng, dtype="float64"))
    x, dout = standard_normal((3, 4)), standard_normal((3, 2), seed=1)
    net.forward(x)
    assert net.backward(dout, input_grad=False) is None
    grads = {k: g.copy() for k, g in inner.grads.items()}
    assert all(np.abs(g).max() > 0 for g in grads.values())
    net.forward(x)
    dx = net.backward(dout, param_grads=False)
    assert dx.shape == (3, 4)
    for k in grads:
        assert np.array_equal(inner.grads[k], grads[k]), f"inner {k} changed"
    net.forward(x)
    assert np.array_equal(net.backward(dout), dx)  # the dx of a full backward


# --- the one backward guard -------------------------------------------------------------------

IMAGES, ROWS = (2, 3, 5, 5), (4, 6)  # forward inputs: a batch of images, a batch of rows
EVERY_LAYER = {  # name: (a fresh layer, its input shape); the DCGAN's and the tricks' included
    "Dense": (lambda rng: layers.Dense(6, 3, rng=rng), ROWS),
    "LeakyReLU": (lambda rng: layers.LeakyReLU(0.2), ROWS),
    "Tanh": (lambda rng: layers.Tanh(), ROWS),
    "Sigmoid": (lambda rng: layers.Sigmoid(), ROWS),
    "BatchNorm": (lambda rng: batchnorm.BatchNorm(3), IMAGES),
    "Dropout": (lambda rng: layers.Dropout(0.5, rng=rng), ROWS),
    "Dropout, eval": (lambda rng: layers.Dropout(0.5, rng=rng).eval(), ROWS),
    "Flatten": (lambda rng: layers.Flatten(), IMAGES),
    "Reshape": (lambda rng: layers.Reshape((2, 3)), ROWS),
    "Conv2D": (lambda rng: Conv2D(3, 2, 3, stride=2, padding=1, rng=rng), IMAGES),
    "ConvTranspose2D": (lambda rng: ConvTranspose2D(3, 2, 3, stride=2, rng=rng), IMAGES),
    "MinibatchStd": (lambda rng: tricks.MinibatchStd(), ROWS),
    "Pack": (lambda rng: tricks.Pack(2), ROWS),
    "InstanceNoise": (lambda rng: tricks.InstanceNoise(0.1, rng=rng), ROWS),
}


@pytest.mark.parametrize("name", sorted(EVERY_LAYER))
def test_every_backward_checks_the_cache_and_the_shape_of_dout(name):
    """Layer._cached, the one guard: a backward before any forward, or a dout of another shape
    than forward's output, raises and names the layer and the expected shape."""
    make, x_shape = EVERY_LAYER[name]
    layer = make(backend.default_rng(0))
    with pytest.raises(ValueError, match="backward called before forward") as info:
        layer.backward(np.ones(x_shape))
    assert str(info.value).startswith(repr(layer))
    out = layer.forward(standard_normal(x_shape))
    wrong = np.ones((*out.shape[:-1], out.shape[-1] + 1))
    with pytest.raises(ValueError, match=re.escape(f"expected dout of shape {out.shape}")):
        layer.backward(wrong)
    assert layer.backward(np.ones_like(out)).shape == x_shape
