"""Gradient checking itself: it must catch wrong backward passes and say which gradient is wrong.

A gradient checker that passes everything is worse than none, so each test here feeds it
something deliberately broken, or a function whose derivative is known in closed form.
"""

import re

import numpy as np
import pytest

from minigan import backend, layers, losses
from minigan.gradcheck import (
    GradientCheckError, check_layer, check_loss, compare, numerical_gradient, rel_error,
)

# --- deliberately wrong layers ----------------------------------------------------------------


class DenseWrongScale(layers.Dense):
    """dW off by 1%: the kind of slip a reader makes copying a formula."""

    def backward(self, dout, param_grads=True, input_grad=True):
        dW_before = self.grads["W"].copy()
        dx = super().backward(dout, param_grads, input_grad)
        self.grads["W"] += 0.01 * (self.grads["W"] - dW_before)
        return dx


class DenseTransposedInputGrad(layers.Dense):
    """dx = dout @ W instead of dout @ W.T: same shape on a square layer, wrong values."""

    def backward(self, dout, param_grads=True, input_grad=True):
        super().backward(dout, param_grads, input_grad=False)
        return dout @ self.params["W"]


class DenseMeanBias(layers.Dense):
    """db = mean over the batch instead of the sum."""

    def backward(self, dout, param_grads=True, input_grad=True):
        dx = super().backward(dout, param_grads, input_grad)
        self.grads["b"] -= dout.sum(axis=0) - dout.mean(axis=0)
        return dx


class DenseBiasSummedOverTheWrongAxis(layers.Dense):
    """db = dout.sum(axis=1) instead of axis=0. On a layer as wide as the batch the shapes
    agree, and with dout = 1 everywhere so do the values: only a non-uniform dout shows it."""

    def backward(self, dout, param_grads=True, input_grad=True):
        dx = super().backward(dout, param_grads, input_grad)
        self.grads["b"] += dout.sum(axis=1) - dout.sum(axis=0)
        return dx


class TanhWrongDerivative(layers.Tanh):
    """dx = dout * (1 - out) instead of dout * (1 - out**2)."""

    def backward(self, dout):
        return dout * (1 - self._cached(dout))


def reported_error(message):
    """The relative error a GradientCheckError message reports, as a float."""
    return float(re.search(r"relative error ([0-9.e+-]+) > tol", message).group(1))


def expect_caught(layer, x, name):
    """check_layer must raise, naming gradient ``name``; returns the reported relative error."""
    with pytest.raises(GradientCheckError) as info:
        check_layer(layer, x, rng=backend.default_rng(1))
    message = str(info.value)
    assert message.startswith(f"{layer!r}: gradient {name} is wrong"), message
    assert f"worst entry {name}[" in message
    return reported_error(message)


def float64_input(shape, seed=0):
    return backend.default_rng(seed).standard_normal(shape)


def test_catches_a_one_percent_error_in_dW(xp):
    layer = DenseWrongScale(4, 3, rng=backend.default_rng(0), dtype="float64")
    err = expect_caught(layer, float64_input((5, 4)), "W")
    assert abs(err - 0.01 / 1.01) < 1e-4  # analytic = 1.01 * true: |0.01 g| / |1.01 g|


def test_catches_a_transposed_input_gradient(xp):
    layer = DenseTransposedInputGrad(4, 4, rng=backend.default_rng(0), dtype="float64")
    assert expect_caught(layer, float64_input((5, 4)), "x") > 0.1


def test_catches_a_mean_for_a_sum(xp):
    layer = DenseMeanBias(4, 3, rng=backend.default_rng(0), dtype="float64")
    err = expect_caught(layer, float64_input((5, 4)), "b")
    assert abs(err - 0.8) < 1e-6  # analytic = true / 5: off by 4/5 of the largest entry


def test_catches_a_sum_over_the_wrong_axis(xp):
    """check_layer's own dout is random: with dout = 1 everywhere this slip would pass."""
    layer = DenseBiasSummedOverTheWrongAxis(4, 3, rng=backend.default_rng(0), dtype="float64")
    assert expect_caught(layer, float64_input((3, 4)), "b") > 0.1


def test_check_layer_zeroes_stale_grads_first(xp):
    """Grads left by an earlier backward (a layer that already trained) are not added to the
    analytic gradient: check_layer starts from zero_grad, so the check still passes."""
    layer = layers.Dense(4, 3, rng=backend.default_rng(0), dtype="float64")
    x = float64_input((5, 4))
    layer.forward(x)
    layer.backward(backend.xp.ones((5, 3)))  # stale grads: x.T @ 1 and 5 for every b
    assert float(backend.xp.abs(layer.grads["b"] - 5.0).max()) == 0.0
    errors = check_layer(layer, x, rng=backend.default_rng(1))
    assert max(errors.values()) < 1e-7


def test_check_layer_takes_x_in_any_memory_order_and_leaves_it_alone(xp):
    """x may be a non-contiguous view (a .T, a convolution's batch-last output): check_layer
    nudges its own contiguous copy, and the caller's x comes back exactly as it was."""
    x = float64_input((4, 5)).T  # (5, 4), not C-contiguous
    assert not x.flags.c_contiguous
    x_before = backend.to_host(x).copy()
    layer = layers.Dense(4, 3, rng=backend.default_rng(0), dtype="float64")
    errors = check_layer(layer, x, rng=backend.default_rng(1))
    assert max(errors.values()) < 1e-7
    assert np.array_equal(backend.to_host(x), x_before)


def test_catches_a_wrong_activation_derivative(xp):
    assert expect_caught(TanhWrongDerivative(), float64_input((3, 4)), "x") > 0.01


def test_catches_a_wrong_loss_gradient(xp):
    def bce_without_mean(logits, targets):  # the gradient forgets the 1/n of the mean
        loss, grad = losses.bce_with_logits(logits, targets)
        return loss, grad * logits.size

    x = float64_input((4, 2))
    assert check_loss(losses.bce_with_logits, x, 1.0) < 1e-7
    with pytest.raises(GradientCheckError, match=r"bce_without_mean: gradient x is wrong"):
        check_loss(bce_without_mean, x, 1.0)


def test_float32_is_refused_with_a_hint(xp):
    layer = layers.Dense(4, 3, rng=backend.default_rng(0))  # float32 by default
    with pytest.raises(TypeError, match="need float64.*dtype='float64'"):
        check_layer(layer, float64_input((5, 4)))
    layer64 = layers.Dense(4, 3, rng=backend.default_rng(0), dtype="float64")
    with pytest.raises(TypeError, match="gradient check of x: got float32, need float64"):
        check_layer(layer64, float64_input((5, 4)).astype("float32"))
    with pytest.raises(TypeError, match="need float64"):
        check_loss(losses.bce_with_logits, float64_input((5, 1)).astype("float32"), 1.0)


def test_compare_names_shape_mismatches_and_nan():
    with pytest.raises(GradientCheckError, match=r"W has shape \(3, 2\), expected \(2, 3\)"):
        compare("W", np.zeros((3, 2)), np.zeros((2, 3)), 1e-7)
    with pytest.raises(GradientCheckError, match="gradient b is wrong"):
        compare("b", np.array([1.0, np.nan]), np.array([1.0, 2.0]), 1e-7)
    assert compare("b", np.array([1.0, 2.0]), np.array([1.0, 2.0]), 1e-7) == 0.0


def test_compare_reports_the_worst_entry(xp):
    """The message names the entry with the largest difference, by its (row, column) index,
    and both values there: here [1, 0] (off by 0.5), not [0, 2] (off by 0.1)."""
    numeric = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    analytic = numeric.copy()
    analytic[0, 2] += 0.1
    analytic[1, 0] += 0.5
    with pytest.raises(GradientCheckError) as info:
        compare("W", backend.to_device(analytic), backend.to_device(numeric), 1e-7)
    message = str(info.value)
    assert reported_error(message) == pytest.approx(0.5 / 6.0, rel=1e-2)  # printed to 3 digits
    assert message.endswith("worst entry W[1, 0]: analytic 4.5, numerical 4"), message


# --- the measures -----------------------------------------------------------------------------


@pytest.mark.parametrize("x, y, expected", [
    ([1.0, 2.0], [1.0, 2.0], 0.0),
    ([1.0, 2.0], [1.0, 2.2], 0.2 / 2.2),  # against the largest entry of either
    ([3.0, -4.0], [-3.0, 4.0], 2.0),  # a sign error is of order 1
    ([0.0, 0.0], [0.0, 0.0], 0.0),  # all zeros: no 0/0
    ([0.0, 0.0], [0.0, 1e-3], 1.0),
    ([2.0, 0.0], [1.0, 0.0], 0.5),  # symmetric: the larger of the two sets the scale
    ([1e-9, 1.0], [2e-9, 1.0], 1e-9),  # a near-zero entry does not dominate
])
def test_rel_error(xp, x, y, expected):
    x, y = backend.to_device(np.array(x)), backend.to_device(np.array(y))
    err = rel_error(x, y)
    assert isinstance(err, float)
    assert abs(err - expected) <= 1e-15 * max(1.0, expected)
    assert rel_error(y, x) == err


def test_numerical_gradient_of_a_cube(xp):
    """sum(dout * x**3) has gradient 3 x**2 dout; central differences err by h**2 * dout."""
    x = float64_input((3, 4))
    dout = float64_input((3, 4), seed=1)
    x_before = backend.to_host(x).copy()
    grad = numerical_gradient(lambda: x**3, x, dout)
    assert np.array_equal(backend.to_host(x), x_before)  # every nudge undone exactly
    expected = 3 * x_before**2 * backend.to_host(dout)
    assert rel_error(grad, backend.to_device(expected)) < 1e-9
    ones = numerical_gradient(lambda: backend.xp.sum(x**3), x, 1.0)  # scalar output
    assert rel_error(ones, backend.to_device(3 * x_before**2)) < 1e-9


def test_numerical_gradient_of_a_view_of_x(xp):
    """f may return a view of x (Flatten's output is one): the output at x + h must be kept
    before x moves to x - h. sum(dout * x.T) is linear, with gradient dout.T exactly."""
    x = float64_input((3, 4))
    dout = float64_input((4, 3), seed=1)
    grad = numerical_gradient(lambda: x.T, x, dout)
    assert rel_error(grad, dout.T) < 1e-9


def test_check_loss_error_is_the_central_differences_h_squared(xp):
    """For sum(x**3), whose gradient is 3 x**2, the central difference is exactly
    ((x + h)**3 - (x - h)**3) / (2h) = 3 x**2 + h**2 (expand the cubes): so check_loss reports
    h**2 / max(3 x**2 + h**2) for the h it is given, down to rounding."""
    def cube(x):
        return backend.xp.sum(x**3), 3 * x**2

    x = float64_input((3, 4))
    largest = 3 * float(backend.xp.max(x * x)) + 1e-4
    err = check_loss(cube, x, h=1e-2, tol=1.0)
    assert abs(err - 1e-4 / largest) < 1e-6 * (1e-4 / largest)
    assert check_loss(cube, x) < 1e-9  # h = 1e-5: h**2 = 1e-10 of an entry of order 1


def test_numerical_gradient_refuses_a_non_contiguous_x(xp):
    """A .T view cannot be nudged through reshape(-1) (that is a copy): say so, rather than
    return a gradient of zeros that then fails the check for no visible reason."""
    x = float64_input((4, 3)).T  # (3, 4), a non-contiguous view
    with pytest.raises(ValueError, match=r"x of shape \(3, 4\) is not C-contiguous"):
        numerical_gradient(lambda: x**3, x, 1.0)
