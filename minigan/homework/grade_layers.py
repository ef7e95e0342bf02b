"""Parts 2-6: the layers (Dense, LeakyReLU, Tanh, sigmoid and Sigmoid, Sequential.backward).

``grade_layer`` runs every layer part's checks, in the order of ``minigan.homework.grader``.
What is fair about the cache: the grader changes no array it handed to forward before the
backward of that forward (minigan's Dense keeps a reference to x, not a copy, and so may yours).
The gradient check alone nudges x in place, entry by entry, and runs forward again after each
nudge (``minigan.gradcheck.numerical_gradient``): each forward caches the x it sees, as a
training step's does. The grader checks that backward leaves what forward cached as it was
(the x it was given, the out it returned: the caller still holds both), that backward can run
twice after one forward, and that two instances of a layer do not share one cache (the cache
lives on ``self``).
"""

import numpy as np

from minigan import layers as mg_layers
from minigan.gradcheck import GradientCheckError, check_layer
from minigan.homework.checks import (EXTREMES, TOL, Failed, diagnose_all, float_trouble,
                                     reference_copy, rel, require, same)
from minigan.homework.learner import LearnerError


def unchanged(now, before):
    """The array holds the numbers it held when ``before`` was copied from it (nan = nan)."""
    return np.array_equal(now, before, equal_nan=True)


def layer_run(run, layer, x, dout, **kw):
    """forward then backward on a fresh zero_grad; (out, dx, {grad name: copy}). forward must
    leave x as it was, and backward the copy of dout it gets, the x forward was given and the
    out it returned, which forward may have cached: the caller still holds them all (R1's
    douts, the next layer's input, ours)."""
    name = type(layer).__name__
    run(f"{name}.zero_grad()", layer.zero_grad)
    seen = x.copy()
    out = run(f"{name}.forward", layer.forward, x)
    require(unchanged(x, seen), "x unchanged",
            f"{name}.forward changed the x it was given: compute out in a new array "
            "(xp.tanh(x), not xp.tanh(x, out=x) or x *= ...); the caller still holds x")
    numbers = isinstance(out, np.ndarray) and np.issubdtype(out.dtype, np.number)
    returned = out.copy() if numbers else None  # anything else fails the shapes check
    given = dout.copy()
    dx = run(f"{name}.backward", layer.backward, given, **kw)
    require(unchanged(given, dout), "dout unchanged",
            f"{name}.backward changed the dout it was given: compute dx in a new array, "
            "dx = dout * ..., not dout *= ...; the caller still holds dout")
    require(returned is None or unchanged(out, returned), "out unchanged",
            f"{name}.backward changed the out its forward returned (forward cached it): read "
            "the cache, never write into it; compute in new arrays, dout * (1 - o * o), not "
            "o *= o; the caller still holds out (the next layer's input)")
    require(unchanged(x, seen), "x unchanged",
            f"{name}.backward changed the x forward was given (forward cached it): read the "
            "cache, never write into it; compute in new arrays, xp.where(x > 0, 1.0, slope), "
            "not x[x > 0] = 1 or xp.sign(x, out=x); the caller still holds x")
    return out, dx, {k: np.array(g, copy=True) for k, g in layer.grads.items()}


def check_shapes(name, x, out, dx, grads, out_shape, params, wrong_shapes=None):
    """wrong_shapes: {("out" or "dx", a shape a classic mistake returns): its hint}."""
    wrong = wrong_shapes or {}
    require(np.shape(out) == out_shape, "shapes",
            f"{name}.forward returned shape {np.shape(out)}, expected {out_shape}",
            [h for h in [wrong.get(("out", np.shape(out)))] if h])
    hints = ["transpose"] if np.shape(dx) == x.shape[::-1] else []
    hints += [h for h in [wrong.get(("dx", np.shape(dx)))] if h]
    require(np.shape(dx) == x.shape, "shapes",
            f"{name}.backward returned dx of shape {np.shape(dx)}, expected x's {x.shape}", hints)
    for k, g in grads.items():
        want = np.shape(params[k])
        hints = ["transpose"] if np.shape(g) == want[::-1] and len(want) == 2 else []
        require(np.shape(g) == want, "shapes",
                f"{name}: grads[{k!r}] has shape {np.shape(g)}, expected {want}", hints)


def layer_hints(got_dx, got_grads, ref_dx, ref_grads, dout, N, params, variants=None):
    """Diagnose dx and each gradient against a layer's classic mistakes; variants: {"dx" or a
    grad name: {hint: array}}, more mistakes of a layer's own."""
    variants = variants or {}
    elementwise = dout.shape == ref_dx.shape
    extra = {"derivative": dout if elementwise else None,
             "no_dout": ref_dx / dout if elementwise else None}  # dout is never 0: normal draws
    if "W" in params and params["W"].ndim == 2 and params["W"].shape[0] == params["W"].shape[1]:
        extra["transpose"] = dout @ params["W"]
    names = diagnose_all(got_dx, ref_dx, {**extra, **variants.get("dx", {})}, ks=(N,))
    for k, g in got_grads.items():
        t = {"transpose": ref_grads[k].T} if ref_grads[k].ndim == 2 else {}
        names += diagnose_all(g, ref_grads[k], {**t, **(variants or {}).get(k, {})}, ks=(N,))
    return sorted(set(names))


def grade_layer(run, make, make_ref, x, square=None, variants=None, square_hint="transpose",
                wrong_shapes=None):
    """Grade one layer class: make() builds the learner's (float64), make_ref() minigan's.

    square: (make, make_ref, x) of a square layer, on which a mistake that crashes on x's
    shapes runs, and shows as ``square_hint``; variants(ref, dout): {"out", "dx" or a grad
    name: {hint: what that mistake gives}}, from minigan's layer after its backward of dout;
    wrong_shapes: {("out" or "dx", shape): hint}, the shapes a classic mistake returns."""
    rng = np.random.default_rng(2)
    layer = make()
    name = type(layer).__name__
    params = {k: np.array(p) for k, p in layer.params.items()}
    ref = reference_copy(make_ref(), layer)
    ref_out = ref.forward(x)
    dout = rng.standard_normal(ref_out.shape)
    ref_dx = ref.backward(dout)
    ref_grads = {k: g.copy() for k, g in ref.grads.items()}
    extra = variants(ref, dout) if variants else {}
    out_variants = extra.get("out", {})

    try:
        out, dx, grads = layer_run(run, layer, x.copy(), dout)
    except LearnerError as e:
        if square is not None:  # a missing transpose fails in matmul unless the shapes agree
            hints = square_diagnosis(run, *square, variants, square_hint)
            if hints:
                raise Failed("your code raised", f"{e}\n  at {e.where}", hints, e.error) from None
        raise
    check_shapes(name, x, out, dx, grads, ref_out.shape, layer.params, wrong_shapes)

    try:
        run(f"gradient check of {name}", check_layer, layer, x.copy(), dout)
    except GradientCheckError as e:
        out, dx, grads = layer_run(run, layer, x.copy(), dout)
        raise Failed("gradient check", str(e), sorted(set(
            diagnose_all(out, ref_out, out_variants)
            + layer_hints(dx, grads, ref_dx, ref_grads, dout, x.shape[0], params, extra))))

    out, dx, grads = layer_run(run, layer, x.copy(), dout)
    require(same(out, ref_out, TOL), "agreement", f"{name}.forward differs from minigan's "
            f"(relative error {rel(out, ref_out):.1e})", diagnose_all(out, ref_out, out_variants))
    for what, got, want in [("dx", dx, ref_dx)] + [(f"grads[{k!r}]", grads[k], ref_grads[k])
                                                    for k in grads]:
        require(same(got, want, TOL), "agreement",
                f"{name}.backward: {what} differs from minigan's (relative error "
                f"{rel(got, want):.1e})",
                layer_hints(dx, grads, ref_dx, ref_grads, dout, x.shape[0], params, extra))

    # backward adds into the very same arrays, and can run twice after one forward
    arrays = dict(layer.grads)
    run(f"{name}.zero_grad()", layer.zero_grad)
    run(f"{name}.forward", layer.forward, x.copy())
    dx1 = run(f"{name}.backward", layer.backward, dout)
    dx2 = run(f"{name}.backward (a second time)", layer.backward, dout)
    for k in arrays:
        require(layer.grads[k] is arrays[k], "backward adds into grads",
                f"{name}.backward replaced grads[{k!r}] with a new array", ["assign"])
        once = same(layer.grads[k], ref_grads[k], TOL)  # the second call overwrote the first
        require(same(layer.grads[k], 2 * ref_grads[k], TOL), "backward adds into grads",
                f"{name}: two backward calls after one forward should leave twice the "
                f"gradient in grads[{k!r}]", ["assign"] if once else [])
    require(same(dx2, dx1, 1e-12) and same(dx1, ref_dx, TOL), "the cache",
            f"{name}.backward gave a different dx the second time: backward must not change "
            "what forward cached")
    other = make()  # a second instance: its forward must not disturb the first one's cache
    run(f"{name}.forward", layer.forward, x.copy())
    run(f"{name}.forward", other.forward, rng.standard_normal(x.shape))
    dx3 = run(f"{name}.backward", layer.backward, dout)
    require(same(dx3, ref_dx, TOL), "the cache",
            f"{name}: another {name}'s forward changed this one's backward: keep the cache "
            "on self")

    big = x * 1e4 / np.abs(x).max()
    out, kinds = run.float_errors(f"{name}.forward(+-1e4)", layer.forward, big)
    trouble = float_trouble(kinds, out)
    require(not trouble, "inputs of +-1e4", f"{name}.forward on inputs of +-1e4: {trouble}",
            ["overflow"] if "overflow" in kinds else [])
    ref_big = reference_copy(make_ref(), layer).forward(big)
    require(same(out, ref_big, TOL), "inputs of +-1e4",
            f"{name}.forward on inputs of +-1e4 differs from minigan's")
    if layer.params:  # Dense and Sequential take the two switches
        grade_switches(run, layer, x, dout, ref_dx, ref_grads)
    return layer


def grade_switches(run, layer, x, dout, ref_dx, ref_grads):
    """param_grads=False leaves grads untouched; input_grad=False returns None."""
    name = type(layer).__name__
    run(f"{name}.forward", layer.forward, x.copy())
    for g in layer.grads.values():
        g.fill(7.0)
    dx = run(f"{name}.backward(dout, param_grads=False)", layer.backward, dout,
             param_grads=False)
    require(all(np.all(g == 7.0) for g in layer.grads.values()), "param_grads=False",
            f"{name}.backward(dout, param_grads=False) changed grads: it must leave them "
            "untouched")
    require(same(dx, ref_dx, TOL), "param_grads=False",
            f"{name}.backward(dout, param_grads=False) returned a wrong dx")
    run(f"{name}.zero_grad()", layer.zero_grad)
    dx = run(f"{name}.backward(dout, input_grad=False)", layer.backward, dout, input_grad=False)
    require(dx is None, "input_grad=False",
            f"{name}.backward(dout, input_grad=False) must return None")
    for k, g in layer.grads.items():
        require(same(g, ref_grads[k], TOL), "input_grad=False",
                f"{name}.backward(dout, input_grad=False) left a wrong grads[{k!r}]")


def square_diagnosis(run, make, make_ref, x, variants=None, hint="transpose"):
    """On a square Dense (in == out), a missing transpose runs: recognise its numbers."""
    try:
        grade_layer(run, make, make_ref, x, variants=variants)
    except Failed as f:
        return [h for h in f.hints if h == hint]
    except LearnerError:
        return []
    return []


def away_from_zero(rng, shape, scale=2.0):
    """Normal inputs nudged at least 0.1 away from 0, LeakyReLU's kink."""
    x = rng.normal(0, scale, shape)
    return np.where(np.abs(x) < 0.1, np.sign(x) * 0.1 + x, x)  # no entry near a kink


def grade_dense(run, learner_layers):
    rng = np.random.default_rng(3)

    def dense(d_in, d_out):
        def make():
            return run("Dense(...)", learner_layers.Dense, d_in, d_out, np.random.default_rng(4),
                       "float64")

        def make_ref():
            return mg_layers.Dense(d_in, d_out, rng=np.random.default_rng(5), dtype="float64")
        return make, make_ref

    square = (*dense(4, 4), rng.standard_normal((3, 4)))
    grade_layer(run, *dense(5, 3), rng.standard_normal((4, 5)), square=square)


def grade_activation(run, make, make_ref, variants=None):
    rng = np.random.default_rng(6)
    grade_layer(run, make, make_ref, away_from_zero(rng, (4, 6)), variants=variants)


def grade_leaky(run, learner_layers):
    for slope in (0.2, 0.01):  # minigan's and torch's: a slope written as a number shows
        grade_activation(run, lambda: run(f"LeakyReLU({slope})", learner_layers.LeakyReLU, slope),
                         lambda: mg_layers.LeakyReLU(slope), relu_derivative)


def relu_derivative(ref, dout):
    """ReLU's derivative written for LeakyReLU's: dx = 0 where x < 0 (minigan's LeakyReLU
    caches the local slope, 1 where x > 0)."""
    return {"dx": {"leaky_slope": np.where(ref.cache == 1.0, dout, 0.0)}}


def grade_tanh(run, learner_layers):
    grade_activation(run, lambda: run("Tanh()", learner_layers.Tanh), mg_layers.Tanh)


def grade_sigmoid(run, learner_layers):
    rng = np.random.default_rng(7)
    x = rng.normal(0, 3, (5, 4))
    s = run("sigmoid(x)", learner_layers.sigmoid, x)
    require(np.shape(s) == x.shape, "shapes", f"sigmoid(x) has shape {np.shape(s)}, "
            f"expected {x.shape}")
    require(same(s, mg_layers.sigmoid(x), TOL), "agreement", "sigmoid(x) differs from "
            "minigan's", diagnose_all(s, mg_layers.sigmoid(x)))
    s, kinds = run.float_errors("sigmoid(+-1e4)", learner_layers.sigmoid, EXTREMES)
    trouble = float_trouble(kinds, s)
    require(not trouble, "inputs of +-1e4", f"sigmoid on inputs of +-1e4: {trouble}",
            ["overflow"] if "overflow" in kinds else [])
    grade_activation(run, lambda: run("Sigmoid()", learner_layers.Sigmoid), mg_layers.Sigmoid)


def as_learner_class(cls, ref_cls):
    """A subclass of the learner's ``cls`` whose forward and backward are minigan's: the layers
    of part 6, correct whatever parts 2-5 hold, and instances of the learner's classes."""
    return type(cls.__name__, (cls,), {"forward": ref_cls.forward, "backward": ref_cls.backward})


def grade_sequential(run, learner_layers):
    rng = np.random.default_rng(8)
    Sequential = learner_layers.Sequential  # graded: the layers below are correct
    Dense = as_learner_class(learner_layers.Dense, mg_layers.Dense)
    LeakyReLU = as_learner_class(learner_layers.LeakyReLU, mg_layers.LeakyReLU)
    Tanh = as_learner_class(learner_layers.Tanh, mg_layers.Tanh)

    def make():
        r = np.random.default_rng(9)
        inner = run("Sequential(...)", Sequential, Dense(3, 2, r, "float64"), Tanh())
        return run("Sequential(...)", Sequential, Dense(5, 4, r, "float64"), LeakyReLU(0.2),
                   Dense(4, 3, r, "float64"), inner)

    def make_ref():
        r = np.random.default_rng(10)
        return mg_layers.Sequential(
            mg_layers.Dense(5, 4, r, "float64"), mg_layers.LeakyReLU(0.2),
            mg_layers.Dense(4, 3, r, "float64"),
            mg_layers.Sequential(mg_layers.Dense(3, 2, r, "float64"), mg_layers.Tanh()))

    x = away_from_zero(rng, (6, 5))
    net = grade_layer(run, make, make_ref, x)
    # input_grad=False with an activation first: still None, and the Dense's grads right
    first = run("Sequential(...)", Sequential, LeakyReLU(0.2),
                Dense(5, 2, np.random.default_rng(11), "float64"))
    ref = reference_copy(mg_layers.Sequential(mg_layers.LeakyReLU(0.2),
                                              mg_layers.Dense(5, 2, dtype="float64")),
                         first)
    dout = rng.standard_normal((6, 2))
    ref.forward(x)
    ref.backward(dout)
    out, dx, grads = layer_run(run, first, x, dout, input_grad=False)
    require(dx is None, "input_grad=False", "Sequential(LeakyReLU, Dense).backward(dout, "
            "input_grad=False) must return None")
    for k in grads:
        require(same(grads[k], ref.grads[k], TOL), "input_grad=False",
                f"Sequential(LeakyReLU, Dense).backward(dout, input_grad=False) left a wrong "
                f"grads[{k!r}]")
    return net
