"""Optimizers against their formulas, on a fixed quadratic with gradients set by hand.

    f(p) = 0.5 * sum(a * (p - c)**2),    grad = a * (p - c)

The references are plain-Python loops over floats, written from the update rules in PyTorch's
documentation (torch.optim.SGD, torch.optim.Adam) and Kingma & Ba, not from minigan's code.
Everything is float64 and must agree to a relative 1e-12 over 100 steps.
"""

import math
import tracemalloc

import numpy as np
import pytest

from minigan import backend, layers, optim
from minigan.layers import Param

STEPS = 100


def quadratic(size=6, seed=0):
    """Curvatures a in [0.5, 2], minimum c, start p0 (float64 host arrays)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 2.0, size), rng.standard_normal(size), 3 * rng.standard_normal(size)


def run_minigan(make_opt, a, c, p0, steps=STEPS):
    """Every iterate p_1 .. p_steps of a minigan optimizer on the quadratic."""
    p = Param("p", p0.copy(), np.zeros_like(p0))
    opt = make_opt([p])
    iterates = []
    for _ in range(steps):
        p.grad[...] = a * (p.data - c)  # the gradient, set by hand
        opt.step()
        iterates.append(p.data.copy())
    return np.array(iterates)


def assert_close(actual, expected, rtol=1e-12):
    """Largest deviation relative to the largest entry (the gradcheck measure), per iterate."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    for t, (x, y) in enumerate(zip(actual, expected), start=1):
        err = np.abs(x - y).max() / np.abs(y).max()
        assert err < rtol, f"step {t}: relative error {err:.2e} (>= {rtol:.0e})"


# --- independent references: plain Python floats, one parameter entry at a time -----------------


def sgd_reference(a, c, p0, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                  nesterov=False, steps=STEPS):
    """torch.optim.SGD's documented algorithm, scalar by scalar."""
    iterates = []
    theta = [float(v) for v in p0]
    buf = [None] * len(theta)
    for _ in range(steps):
        for i in range(len(theta)):
            g = float(a[i]) * (theta[i] - float(c[i]))
            if weight_decay != 0:
                g = g + weight_decay * theta[i]
            if momentum != 0:
                if buf[i] is None:  # t = 1
                    buf[i] = g
                else:
                    buf[i] = momentum * buf[i] + (1 - dampening) * g
                g = g + momentum * buf[i] if nesterov else buf[i]
            theta[i] = theta[i] - lr * g
        iterates.append(list(theta))
    return iterates


def adam_reference(a, c, p0, lr, beta1, beta2, eps, weight_decay=0.0, steps=STEPS):
    """Kingma & Ba's Algorithm 1, with eps added to sqrt(v_hat) as torch.optim.Adam does."""
    iterates = []
    theta = [float(v) for v in p0]
    m, v = [0.0] * len(theta), [0.0] * len(theta)
    for t in range(1, steps + 1):
        for i in range(len(theta)):
            g = float(a[i]) * (theta[i] - float(c[i])) + weight_decay * theta[i]
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            m_hat = m[i] / (1 - beta1**t)
            v_hat = v[i] / (1 - beta2**t)
            theta[i] = theta[i] - lr * m_hat / (math.sqrt(v_hat) + eps)
        iterates.append(list(theta))
    return iterates


# --- trajectories -----------------------------------------------------------------------------


def test_sgd_matches_the_closed_form():
    a, c, p0 = quadratic()
    lr = 0.01
    iterates = run_minigan(lambda params: optim.SGD(params, lr=lr), a, c, p0)
    t = np.arange(1, STEPS + 1)[:, None]
    assert_close(iterates, c + (1 - lr * a) ** t * (p0 - c))  # p_t - c = (1 - lr a)^t (p0 - c)
    assert np.abs(iterates[-1] - c).max() > 0.1 * np.abs(p0 - c).max()  # still on its way


SGD_SETTINGS = {
    "plain": dict(lr=0.05),
    "weight decay": dict(lr=0.05, weight_decay=0.1),
    "momentum": dict(lr=0.01, momentum=0.9),
    "dampening": dict(lr=0.01, momentum=0.9, dampening=0.3),
    "nesterov": dict(lr=0.01, momentum=0.9, nesterov=True),
    "nesterov + weight decay": dict(lr=0.01, momentum=0.8, nesterov=True, weight_decay=0.05),
}


@pytest.mark.parametrize("setting", sorted(SGD_SETTINGS))
def test_sgd_matches_torch_rule(setting):
    kwargs = SGD_SETTINGS[setting]
    a, c, p0 = quadratic(seed=1)
    iterates = run_minigan(lambda params: optim.SGD(params, **kwargs), a, c, p0)
    assert_close(iterates, sgd_reference(a, c, p0, **kwargs))


ADAM_SETTINGS = {
    "default": dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8),
    "gan betas": dict(lr=0.02, betas=(0.5, 0.999), eps=1e-8),
    "weight decay": dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1),
    # eps as large as sqrt(v): where eps goes (after the bias correction of v) shows up.
    "large eps": dict(lr=0.01, betas=(0.8, 0.99), eps=0.5),
}


@pytest.mark.parametrize("setting", sorted(ADAM_SETTINGS))
def test_adam_matches_kingma_ba_with_torch_eps(setting):
    kwargs = ADAM_SETTINGS[setting]
    a, c, p0 = quadratic(seed=2)
    iterates = run_minigan(lambda params: optim.Adam(params, **kwargs), a, c, p0)
    lr, (beta1, beta2), eps = kwargs["lr"], kwargs["betas"], kwargs["eps"]
    assert_close(iterates, adam_reference(a, c, p0, lr, beta1, beta2, eps,
                                          kwargs.get("weight_decay", 0.0)))


def run_split(make_opt, a, c, p0, steps=STEPS):
    """run_minigan with the quadratic's entries in two parameters of one optimizer, (2,) and
    (2, 2): every iterate, flattened back into one vector."""
    parts = [Param("p", p0[:2].copy(), np.zeros(2)), Param("q", p0[2:].reshape(2, 2).copy(),
                                                           np.zeros((2, 2)))]
    curvature, minimum = (a[:2], a[2:].reshape(2, 2)), (c[:2], c[2:].reshape(2, 2))
    opt = make_opt(parts)
    iterates = []
    for _ in range(steps):
        for p, a_p, c_p in zip(parts, curvature, minimum):
            p.grad[...] = a_p * (p.data - c_p)
        opt.step()
        iterates.append(np.concatenate([p.data.ravel() for p in parts]))
    return np.array(iterates)


@pytest.mark.parametrize("which", ["sgd", "adam", "rmsprop"])
def test_two_parameters_each_follow_the_rule(which):
    """The references update every entry alike, whichever parameter holds it: one step counter
    for the whole step (a t advanced per parameter would give the second one SGD's dampened
    update at its first step, or Adam's bias correction of step 2), and each parameter its own
    state."""
    a, c, p0 = quadratic(size=6, seed=5)
    if which == "sgd":
        kwargs = SGD_SETTINGS["dampening"]
        iterates = run_split(lambda params: optim.SGD(params, **kwargs), a, c, p0)
        expected = sgd_reference(a, c, p0, **kwargs)
    elif which == "adam":
        kwargs = ADAM_SETTINGS["gan betas"]
        iterates = run_split(lambda params: optim.Adam(params, **kwargs), a, c, p0)
        expected = adam_reference(a, c, p0, kwargs["lr"], *kwargs["betas"], kwargs["eps"])
    else:
        kwargs = RMSPROP_SETTINGS["all"]
        iterates = run_split(lambda params: optim.RMSprop(params, **kwargs), a, c, p0)
        expected = rmsprop_reference(a, c, p0, **kwargs)
    assert_close(iterates, expected)


def test_adam_first_step_is_lr_times_sign():
    """Bias correction starts at t = 1: the first step is lr * g / (|g| + eps), any betas."""
    g = np.array([1e-3, -2.0, 0.5, 0.0, 1e-7, 300.0])
    p0 = np.linspace(-1.0, 1.0, g.size)
    p = Param("p", p0.copy(), g.copy())
    opt = optim.Adam([p], lr=0.1, betas=(0.5, 0.999), eps=1e-6)
    assert opt.t == 0
    opt.step()
    assert opt.t == 1
    np.testing.assert_allclose(p0 - p.data, 0.1 * g / (np.abs(g) + 1e-6), rtol=1e-12, atol=0)


def test_step_updates_the_parameter_arrays_in_place():
    data, grad = np.ones(4), np.full(4, 0.5)
    for opt in (optim.SGD([Param("w", data, grad)], lr=0.1, momentum=0.9),
                optim.Adam([Param("w", data, grad)], lr=0.1)):
        before = data.copy()
        opt.step()
        assert opt.params[0].data is data and not np.array_equal(data, before)


def adam_plain(p, grads, lr, betas, eps, weight_decay):
    """Adam's rule on whole arrays, one new array per operation, in torch's order of operations
    (m by lerp, the bias corrections folded into two scalars): the same bits as minigan's."""
    (beta1, beta2), m, v = betas, np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = g + weight_decay * p
        m = m + (1 - beta1) * (g - m)
        v = v * beta2 + (1 - beta2) * (g * g)
        denom = np.sqrt(v) / math.sqrt(1 - beta2**t) + eps  # sqrt(v_hat) + eps
        p = p - (m / denom) * (lr / (1 - beta1**t))  # lr * m_hat / denom
    return p, m, v


def test_adam_on_a_large_parameter_is_bit_equal_to_the_plain_rule():
    """On a parameter of 77,357 entries (the other tests use 6), over several steps with weight
    decay, minigan's in-place Adam gives bit for bit what the plain rule gives; a different bias
    correction, or an update that missed some rows, changes the bits."""
    shape = (301, 257)
    rng = np.random.default_rng(0)
    W0 = rng.standard_normal(shape)
    grads = [rng.standard_normal(shape) for _ in range(5)]
    kwargs = dict(lr=1e-2, betas=(0.5, 0.999), eps=1e-8, weight_decay=0.01)
    W = Param("W", W0.copy(), np.zeros(shape))
    opt = optim.Adam([W], **kwargs)
    for g in grads:
        W.grad[...] = g
        opt.step()
    W_plain, m_plain, v_plain = adam_plain(W0, grads, **kwargs)
    assert not np.array_equal(W.data, W0)
    assert np.array_equal(W.data, W_plain)
    assert np.array_equal(opt.m[0], m_plain) and np.array_equal(opt.v[0], v_plain)


# --- no temporaries ---------------------------------------------------------------------------


@pytest.mark.parametrize("make_opt", [
    lambda ps: optim.SGD(ps, lr=0.1),
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-4),
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4),
    lambda ps: optim.Adam(ps, lr=1e-3, weight_decay=1e-4),
], ids=["sgd", "sgd-momentum", "sgd-nesterov", "adam"])
def test_step_allocates_no_parameter_sized_arrays(make_opt):
    """The optimizers promise in-place updates: 10 steps on two 1M-entry parameters (8 MB each)
    may not allocate even 1% of one parameter's size."""
    rng = np.random.default_rng(0)
    params = [Param(name, rng.standard_normal(1_000_000), rng.standard_normal(1_000_000))
              for name in ("W", "b")]
    opt = make_opt(params)  # state and scratch arrays are allocated here, once
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        for _ in range(10):
            opt.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - start < 0.01 * params[0].data.nbytes, f"step() allocated {peak - start} bytes"


# --- state ------------------------------------------------------------------------------------


@pytest.mark.parametrize("make_opt", [
    lambda ps: optim.SGD(ps, lr=0.01, momentum=0.9, nesterov=True),
    lambda ps: optim.Adam(ps, lr=0.01, betas=(0.5, 0.999)),
], ids=["sgd-momentum", "adam"])
def test_state_dict_round_trip_continues_bit_identically(xp, make_opt):
    host_a, host_c, p0 = quadratic(size=5, seed=3)
    a, c = backend.to_device(host_a), backend.to_device(host_c)

    def steps(p, opt, n):
        for _ in range(n):
            p.grad[...] = a * (p.data - c)
            opt.step()

    p = Param("p", backend.to_device(p0), xp.zeros_like(backend.to_device(p0)))
    opt = make_opt([p])
    steps(p, opt, 5)
    # A checkpoint copies what state_dict() hands out (its arrays are the optimizer's own) to
    # the host; loading must bring host arrays back to the device explicitly.
    saved_state = {k: v if k == "t" else backend.to_host(v).copy()
                   for k, v in opt.state_dict().items()}
    saved_p = backend.to_host(p.data).copy()
    steps(p, opt, 5)

    resumed = Param("p", backend.to_device(saved_p), xp.zeros_like(p.data))
    resumed_opt = make_opt([resumed])
    resumed_opt.load_state_dict(saved_state)
    assert resumed_opt.t == 5
    for k, v in saved_state.items():  # loading copies: the checkpoint is not tied to the optimizer
        if k != "t":
            v[...] = np.nan
    steps(resumed, resumed_opt, 5)
    assert np.array_equal(backend.to_host(resumed.data), backend.to_host(p.data))
    assert resumed_opt.t == opt.t == 10


def test_state_keeps_the_parameter_dtype():
    """float32 parameters get float32 state: no silent float64 on the GPU."""
    params = [Param("W", np.ones((3, 2), np.float32), np.ones((3, 2), np.float32))]
    for opt in (optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-4),
                optim.Adam(params, weight_decay=1e-4)):
        opt.step()
        assert params[0].data.dtype == np.float32
        for k, v in opt.state_dict().items():
            assert k == "t" or v.dtype == np.float32, k


def test_zero_grad_clears_every_gradient():
    params = [Param("W", np.ones((2, 2)), np.full((2, 2), 3.0)), Param("b", np.ones(2), np.ones(2))]
    opt = optim.SGD(params, lr=0.1)
    opt.zero_grad()
    assert all(not p.grad.any() for p in params)


def test_duplicate_parameter_names_are_refused():
    """state_dict keys are "<state>/<name>": two params named "W" would share one checkpoint slot."""
    rng = np.random.default_rng(0)
    first, second = layers.Dense(2, 2, rng=rng), layers.Dense(2, 2, rng=rng)
    with pytest.raises(ValueError, match="duplicate parameter names"):
        optim.Adam(first.parameters() + second.parameters())


def test_load_state_dict_rejects_a_wrong_shape():
    opt = optim.Adam([Param("W", np.zeros((2, 3)), np.zeros((2, 3)))])
    state = {"t": 3, "m/W": np.zeros((3, 2)), "v/W": np.zeros((2, 3))}
    with pytest.raises(ValueError, match=r"m/W: expected shape \(2, 3\), checkpoint has \(3, 2\)"):
        opt.load_state_dict(state)


@pytest.mark.parametrize("make_opt, message", [
    (lambda ps: optim.SGD(ps, lr=-0.1), "learning rate"),
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=-0.5), "momentum"),
    (lambda ps: optim.SGD(ps, lr=0.1, weight_decay=-1e-4), "weight_decay"),
    (lambda ps: optim.SGD(ps, lr=0.1, nesterov=True), "nesterov"),
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
    (lambda ps: optim.Adam(ps, lr=-1e-3), "learning rate"),
    (lambda ps: optim.Adam(ps, betas=(1.0, 0.999)), "betas"),
    (lambda ps: optim.Adam(ps, betas=(0.9, -0.1)), "betas"),
    (lambda ps: optim.Adam(ps, eps=-1e-8), "eps"),
    (lambda ps: optim.Adam(ps, weight_decay=-1e-4), "weight_decay"),
    (lambda ps: optim.Adam([]), "empty parameter list"),
    (lambda ps: optim.SGD([], lr=0.1), "empty parameter list"),
])
def test_invalid_hyperparameters_raise(make_opt, message):
    params = [Param("W", np.zeros(3), np.zeros(3))]
    with pytest.raises(ValueError, match=message):
        make_opt(params)


# --- RMSprop ----------------------------------------------------------------------------------


def rmsprop_reference(a, c, p0, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                      centered=False, steps=STEPS):
    """torch.optim.RMSprop's documented algorithm, scalar by scalar."""
    iterates = []
    theta = [float(v) for v in p0]
    v, g_avg, buf = [0.0] * len(theta), [0.0] * len(theta), [0.0] * len(theta)
    for _ in range(steps):
        for i in range(len(theta)):
            g = float(a[i]) * (theta[i] - float(c[i])) + weight_decay * theta[i]
            v[i] = alpha * v[i] + (1 - alpha) * g * g
            denom_sq = v[i]
            if centered:
                g_avg[i] = alpha * g_avg[i] + (1 - alpha) * g
                denom_sq = v[i] - g_avg[i] ** 2
            step = g / (math.sqrt(denom_sq) + eps)
            if momentum > 0:
                buf[i] = momentum * buf[i] + step
                step = buf[i]
            theta[i] = theta[i] - lr * step
        iterates.append(list(theta))
    return iterates


RMSPROP_SETTINGS = {
    "default": dict(lr=0.01),
    "momentum": dict(lr=0.002, momentum=0.9),
    "centered": dict(lr=0.005, centered=True),
    "all": dict(lr=0.002, alpha=0.9, eps=1e-3, weight_decay=0.1, momentum=0.5, centered=True),
}


@pytest.mark.parametrize("setting", sorted(RMSPROP_SETTINGS))
def test_rmsprop_matches_torch_rule(setting):
    kwargs = RMSPROP_SETTINGS[setting]
    a, c, p0 = quadratic(seed=4)
    iterates = run_minigan(lambda params: optim.RMSprop(params, **kwargs), a, c, p0)
    assert_close(iterates, rmsprop_reference(a, c, p0, **kwargs))


def test_rmsprop_first_step_has_no_bias_correction():
    """v starts at 0 and is not corrected: the first step is lr * g / (sqrt(1 - alpha) |g| +
    eps), ten times Adam's lr * sign(g) for alpha = 0.99. A bias correction would give 1x."""
    g = np.array([1e-3, -2.0, 0.5, 300.0])
    p = Param("p", np.zeros(4), g.copy())
    optim.RMSprop([p], lr=0.1, alpha=0.99, eps=1e-6).step()
    np.testing.assert_allclose(-p.data, 0.1 * g / (0.1 * np.abs(g) + 1e-6), rtol=1e-12)


RMSPROP_MAKERS = {name: (lambda kw: lambda ps: optim.RMSprop(ps, **kw))(kw)
                  for name, kw in RMSPROP_SETTINGS.items()}


@pytest.mark.parametrize("name", sorted(RMSPROP_MAKERS))
def test_rmsprop_allocates_no_parameter_sized_arrays(name):
    test_step_allocates_no_parameter_sized_arrays(RMSPROP_MAKERS[name])


@pytest.mark.parametrize("name", sorted(RMSPROP_MAKERS))
def test_rmsprop_state_dict_round_trip_continues_bit_identically(xp, name):
    test_state_dict_round_trip_continues_bit_identically(xp, RMSPROP_MAKERS[name])


def test_rmsprop_state_dict_names_its_arrays():
    params = [Param("W", np.ones((3, 2)), np.ones((3, 2)))]
    assert sorted(optim.RMSprop(params).state_dict()) == ["t", "v/W"]
    assert sorted(optim.RMSprop(params, momentum=0.9, centered=True).state_dict()) == [
        "a/W", "b/W", "t", "v/W"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-1e-3), "learning rate"), (dict(alpha=1.5), "alpha"), (dict(alpha=-0.1), "alpha"),
    (dict(eps=-1e-8), "eps"), (dict(weight_decay=-1e-4), "weight_decay"),
    (dict(momentum=-0.9), "momentum"),
])
def test_rmsprop_invalid_hyperparameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        optim.RMSprop([Param("W", np.zeros(3), np.zeros(3))], **kwargs)
