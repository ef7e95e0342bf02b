"""Property tests (hypothesis) over batch sizes 1..64, widths 1..128, float32 and float64, and
extreme values: shapes come out right, nothing overflows or goes NaN, and misuse fails loudly
with a message that names the layer, the expected and the received shape.

Contents are drawn from a seeded NumPy generator (fast for arrays of thousands of entries);
hypothesis chooses the shapes, the dtype, the magnitude, the seed and a few exact extreme
entries, and shrinks any failure to the smallest of those.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigan import backend, layers, losses

batch_sizes = st.integers(1, 64)
widths = st.integers(1, 128)
dtypes = st.sampled_from([np.float32, np.float64])
# Within float32's range: 1e30 * 8192 entries still sums to a finite float32 (a loss's mean).
ACTIVATION_MAGNITUDES = [1e-30, 1e-3, 1.0, 30.0, 1e4, 1e30]
EXACT_EXTREMES = [0.0, -0.0, 1e-45, -1e-45, 88.7, -88.7, 710.0, -710.0, 1e4, -1e4, 1e30, -1e30]


@st.composite
def arrays(draw, shape, dtype, magnitudes=ACTIVATION_MAGNITUDES, extremes=EXACT_EXTREMES):
    """A normal array at a drawn magnitude, with up to 5 exact extremes at random places."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = (draw(st.sampled_from(magnitudes)) * rng.standard_normal(shape)).astype(dtype)
    flat = x.reshape(-1)
    for value in draw(st.lists(st.sampled_from(extremes), max_size=5)):
        flat[rng.integers(flat.size)] = value
    return x


def no_overflow():
    """Overflow, invalid operations (NaN) and division by zero raise; underflow to 0 is fine."""
    return np.errstate(over="raise", invalid="raise", divide="raise")


def assert_finite(a, what):
    assert np.all(np.isfinite(a)), f"{what} has non-finite entries"


ACTIVATIONS = {
    "LeakyReLU": lambda: layers.LeakyReLU(0.2),
    "ReLU": layers.ReLU,
    "Tanh": layers.Tanh,
    "Sigmoid": layers.Sigmoid,
}


# --- shapes and finiteness --------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@given(data=st.data(), n=batch_sizes, d=widths, dtype=dtypes)
def test_activation_keeps_shape_and_stays_finite(name, data, n, d, dtype):
    layer = ACTIVATIONS[name]()
    x = data.draw(arrays((n, d), dtype))
    dout = data.draw(arrays((n, d), dtype, magnitudes=[1.0, 1e4], extremes=[0.0]))
    with no_overflow():
        out = layer.forward(x)
        dx = layer.backward(dout)
    for what, a in (("out", out), ("dx", dx)):
        assert a.shape == (n, d) and a.dtype == dtype, what
        assert_finite(a, what)
    if name in ("Tanh", "Sigmoid"):
        assert out.min() >= (-1 if name == "Tanh" else 0) and out.max() <= 1


@given(data=st.data(), n=batch_sizes, d_in=widths, d_out=widths, dtype=dtypes)
def test_dense_shapes_and_finiteness(data, n, d_in, d_out, dtype):
    layer = layers.Dense(d_in, d_out, rng=backend.default_rng(0), dtype=dtype)
    x = data.draw(arrays((n, d_in), dtype, magnitudes=[1e-3, 1.0, 1e4],
                         extremes=[0.0, 1e4, -1e4]))
    dout = data.draw(arrays((n, d_out), dtype, magnitudes=[1.0, 1e4], extremes=[0.0]))
    with no_overflow():
        out = layer.forward(x)
        dx = layer.backward(dout)
    assert out.shape == (n, d_out) and dx.shape == (n, d_in)
    assert layer.grads["W"].shape == (d_in, d_out) and layer.grads["b"].shape == (d_out,)
    for what, a in (("out", out), ("dx", dx), ("dW", layer.grads["W"]), ("db", layer.grads["b"])):
        assert a.dtype == dtype, what
        assert_finite(a, what)


@given(data=st.data(), n=batch_sizes, d=widths, dtype=dtypes,
       target=st.sampled_from([0.0, 0.9, 1.0, "array"]))
def test_losses_on_extreme_logits_stay_finite(data, n, d, dtype, target):
    x = data.draw(arrays((n, d), dtype))
    t = np.random.default_rng(n * d).random((n, d)).astype(dtype) if target == "array" else target
    with no_overflow():
        results = {
            "bce_with_logits": losses.bce_with_logits(x, t),
            "minimax": losses.generator_loss_minimax(x),
            "nonsaturating": losses.generator_loss_nonsaturating(x),
        }
    for what, (loss, grad) in results.items():
        assert np.ndim(loss) == 0 and grad.shape == (n, d), what
        assert loss.dtype == dtype and grad.dtype == dtype, what
        assert_finite(loss, f"{what} loss")
        assert_finite(grad, f"{what} grad")
        assert np.abs(grad).max() <= 1.0 / x.size * (1 + 1e-6), what  # |sigmoid - t| <= 1
    assert results["bce_with_logits"][0] >= 0 and results["nonsaturating"][0] >= 0
    assert results["minimax"][0] <= 0


@given(data=st.data(), n=batch_sizes, d=st.integers(1, 16), dtype=dtypes)
def test_sequential_gan_shapes(data, n, d, dtype):
    rng = backend.default_rng(0)
    net = layers.Sequential(
        layers.Dense(d, 8, rng=rng, dtype=dtype), layers.LeakyReLU(0.2),
        layers.Dense(8, 3, rng=rng, dtype=dtype), layers.Sigmoid(),
    )
    x = data.draw(arrays((n, d), dtype, magnitudes=[1.0, 1e4], extremes=[0.0, 1e4, -1e4]))
    with no_overflow():
        out = net.forward(x)
        dx = net.backward(np.ones_like(out))
    assert out.shape == (n, 3) and dx.shape == (n, d)
    assert_finite(out, "out")
    assert_finite(dx, "dx")


# --- misuse fails loudly ----------------------------------------------------------------------

ALL_LAYERS = {**ACTIVATIONS, "Dense": lambda: layers.Dense(7, 5, rng=backend.default_rng(0))}


@pytest.mark.parametrize("name", sorted(ALL_LAYERS))
def test_backward_before_forward_raises(name):
    layer = ALL_LAYERS[name]()
    with pytest.raises(ValueError, match="backward called before forward") as info:
        layer.backward(np.ones((2, 5), dtype=np.float32))
    assert str(info.value).startswith(repr(layer))


def shape_str(shape):
    return str(tuple(shape))


@given(n=batch_sizes, d_in=widths, d_out=widths,
       bad=st.one_of(
           st.tuples(st.integers(1, 64), st.integers(1, 200)),  # wrong width (filtered below)
           st.tuples(st.integers(1, 64)),  # 1-D
           st.tuples(st.integers(1, 8), st.integers(1, 8), st.integers(1, 8)),  # 3-D
       ))
def test_dense_forward_rejects_wrong_shapes(n, d_in, d_out, bad):
    layer = layers.Dense(d_in, d_out, rng=backend.default_rng(0))
    if len(bad) == 2 and bad[1] == d_in:
        bad = (bad[0], d_in + 1)
    with pytest.raises(ValueError) as info:
        layer.forward(np.zeros(bad, dtype=np.float32))
    message = str(info.value)
    assert f"Dense({d_in}, {d_out})" in message
    assert f"(N, {d_in})" in message and shape_str(bad) in message


@pytest.mark.parametrize("name", sorted(ALL_LAYERS))
@given(n=batch_sizes, extra=st.integers(1, 5), axis=st.sampled_from([0, 1, "ndim"]))
def test_backward_rejects_wrong_dout_shapes(name, n, extra, axis):
    layer = ALL_LAYERS[name]()
    out = layer.forward(np.ones((n, 7), dtype=np.float32))
    if axis == "ndim":
        bad = out.shape + (extra,)
    else:
        bad = tuple(s + extra if i == axis else s for i, s in enumerate(out.shape))
    with pytest.raises(ValueError) as info:
        layer.backward(np.ones(bad, dtype=np.float32))
    message = str(info.value)
    assert message.startswith(f"{layer!r}.backward"), message
    assert shape_str(out.shape) in message and shape_str(bad) in message
