"""Gradient checking: compare hand-written gradients with central differences.

For a function ``f`` with array output and an upstream gradient ``dout`` of the output's
shape, the vector-Jacobian product that backward computes is

    dL/dx[i] = sum(dout * df/dx[i]) ~= sum(dout * (f(x + h e_i) - f(x - h e_i))) / (2h)

Run checks in float64 with ``h = 1e-5``: the central difference is then accurate to about
1e-10, so a relative error above 1e-7 means the analytic gradient is wrong.
Derivation and exercises: lessons/03_gradient_checking.md.

    >>> from minigan import backend, layers
    >>> from minigan.gradcheck import check_layer
    >>> rng = backend.default_rng(0)
    >>> layer = layers.Dense(4, 3, rng=rng, dtype="float64")
    >>> errors = check_layer(layer, rng.standard_normal((5, 4)))
    >>> sorted(errors)
    ['W', 'b', 'x']
"""

import numpy

from minigan import backend


class GradientCheckError(AssertionError):
    """An analytic gradient disagrees with the numerical one; the message says which and how."""


def rel_error(x, y):
    """Largest difference relative to the gradient's scale, as a float:

        max|x - y| / max(max|x|, max|y|)

    Measured against the largest entry rather than entry by entry, so that an entry that is
    almost zero, where a central difference has only round-off left, does not dominate;
    a wrong formula still shows up at order 1. Zero when both are all zeros.
    """
    xp = backend.xp
    scale = max(float(xp.max(xp.abs(x))), float(xp.max(xp.abs(y))))
    diff = float(xp.max(xp.abs(x - y)))
    return diff / scale if scale > 0 else diff

def numerical_gradient(f, x, dout, h=1e-5):
    """Central-difference vector-Jacobian product ``sum(dout * df/dx)`` for every entry of x.

    f: a function of no arguments that reads x (modified in place here) and returns an array
    of dout's shape. x is restored after each nudge. Returns an array of x's shape.
    """
    xp = backend.xp
    _require_contiguous(x)
    f = _copying(f)
    grad = xp.zeros_like(x)
    flat_x, flat_grad = x.reshape(-1), grad.reshape(-1)  # views: writes reach x and grad
    for i in range(flat_x.size):
        old = flat_x[i].copy()
        flat_x[i] = old + h
        f_plus = f()
        flat_x[i] = old - h
        f_minus = f()
        flat_x[i] = old
        flat_grad[i] = xp.sum((f_plus - f_minus) * dout) / (2 * h)
    return grad


def _require_contiguous(x):
    """numerical_gradient nudges x through the view x.reshape(-1); for an x that is not
    C-contiguous (a .T view) that would be a copy, and the nudges would miss x."""
    if not x.flags.c_contiguous:
        raise ValueError(
            f"numerical_gradient: x of shape {x.shape} is not C-contiguous (a .T view?); "
            "nudge a contiguous array (x.copy()) and have f read that one"
        )


def _copying(f):
    """f, returning a copy of its output: f may return a view of x (Flatten's output is one),
    which the next nudge would move."""
    def copied():
        out = f()
        return out.copy() if hasattr(out, "copy") else out  # a Python float needs none
    return copied


def _require_float64(name, a):
    if a.dtype != backend.xp.float64:
        raise TypeError(
            f"gradient check of {name}: got {a.dtype}, need float64 (float32 rounding "
            "swamps a central difference); build the layer with dtype='float64'"
        )


def compare(name, analytic, numeric, tol, who=""):
    """Relative error of one gradient; raises GradientCheckError naming it if above tol."""
    xp = backend.xp
    if analytic.shape != numeric.shape:
        raise GradientCheckError(
            f"{who}gradient {name} has shape {analytic.shape}, expected {numeric.shape}"
        )
    err = rel_error(analytic, numeric)
    if not err < tol:  # also catches NaN
        diff = xp.abs(analytic - numeric).reshape(-1)
        worst = int(xp.argmax(diff))
        # worst is a host int, so unravel it on the host (cupy.unravel_index wants a device array)
        index = tuple(int(i) for i in numpy.unravel_index(worst, numeric.shape))
        raise GradientCheckError(
            f"{who}gradient {name} is wrong: relative error {err:.2e} > tol {tol:.0e}; "
            f"worst entry {name}[{', '.join(map(str, index))}]: analytic "
            f"{float(analytic.reshape(-1)[worst]):.6g}, numerical "
            f"{float(numeric.reshape(-1)[worst]):.6g}"
        )
    return err


def check_layer(layer, x, dout=None, h=1e-5, tol=1e-7, rng=None):
    """Check a layer's dx and every parameter gradient against central differences.

    layer: anything with forward/backward/params/grads (a Sequential too), float64.
    x: (N, ...) float64 input, nudged away from kinks by the caller.
    dout: upstream gradient of the output's shape; if None, standard normal drawn from rng
    (default: a generator seeded with 0).
    Returns ``{"x": err, "W": err, ...}``; raises GradientCheckError naming the first
    gradient whose relative error is not below tol.
    """
    _require_float64("x", x)
    for k, p in layer.params.items():
        _require_float64(k, p)
    x = x.copy()
    if dout is None:
        rng = backend.default_rng(0) if rng is None else rng
        dout = rng.standard_normal(layer.forward(x).shape)

    layer.zero_grad()
    layer.forward(x)
    analytic = {"x": layer.backward(dout)}
    analytic.update({k: g.copy() for k, g in layer.grads.items()})

    def f():
        return layer.forward(x)

    errors = {"x": compare("x", analytic["x"], numerical_gradient(f, x, dout, h), tol,
                           f"{layer!r}: ")}
    for k, p in layer.params.items():
        errors[k] = compare(k, analytic[k], numerical_gradient(f, p, dout, h), tol,
                            f"{layer!r}: ")
    return errors


def check_loss(loss_fn, x, *args, h=1e-5, tol=1e-7, name=None):
    """Check a loss returning ``(loss, grad)`` against central differences of its value.

    loss_fn(x, *args) -> (scalar loss, dL/dx of x's shape). Returns the relative error. name:
    what a failure's message calls the loss (default: loss_fn's own name).
    """
    _require_float64("x", x)
    x = x.copy()
    _, analytic = loss_fn(x, *args)
    numeric = numerical_gradient(lambda: loss_fn(x, *args)[0], x, 1.0, h)
    name = name or getattr(loss_fn, "__name__", loss_fn)
    return compare("x", analytic, numeric, tol, f"{name}: ")
