"""The gradient penalties (minigan/penalties.py): their parameter gradients against central
differences of the penalty itself, and value and gradients against PyTorch's autograd with
create_graph=True, all in float64.

One measure for a set of gradients: the largest difference over the largest reference entry
among *all* of D's gradients (the biases' true gradient is zero, so a per-array measure would
divide round-off by zero). Central differences: h = 1e-5, tolerance 1e-7 (measured 6e-12 for
R1, 8e-11 for WGAN-GP). Autograd: tolerance 1e-10 (measured 1e-16 to 8e-16, the MNIST-wide D
included, and 0 to 4e-16 on the penalty's value). A spectrally normalised D (minigan/spectral.py):
central differences in evaluation mode, u and v fixed (measured 1.2e-10 for R1, 1.6e-10 for
WGAN-GP); autograd through torch's spectral_norm from the same u, v (measured 3e-16 to 6e-16 on
the gradients, 1e-16 on u and v after the power step, 0 to 6e-16 on the value).
"""

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from minigan import backend, penalties, spectral
from minigan.batchnorm import BatchNorm
from minigan.gan import make_dcgan_discriminator, make_discriminator
from minigan.gradcheck import numerical_gradient
from minigan.layers import Dense, Dropout, LeakyReLU, ReLU, Sequential, Tanh
from minigan.tricks import InstanceNoise

SEED = 7  # the interpolation weights' generator, reseeded for every evaluation


def make_D(in_dim=6, hidden=(8, 5), seed=0, **tricks):
    return make_discriminator(in_dim, hidden, rng=backend.default_rng(seed), dtype="float64",
                              **tricks)


def batch(n=4, in_dim=6, seed=1):
    return backend.to_device(np.random.default_rng(seed).standard_normal((n, in_dim)))


def r1(D, real, fake, weight):
    return penalties.r1(D, real, weight)


def gp(D, real, fake, weight):
    return penalties.gradient_penalty(D, real, fake, weight, backend.default_rng(SEED))


PENALTIES = {"r1": r1, "gradient_penalty": gp}


def reseed(D):
    """Dropout and InstanceNoise draw the same masks and noise at every evaluation."""
    for layer in D.layers:
        if isinstance(layer, (Dropout, InstanceNoise)):
            layer.rng = backend.default_rng(3)


def kink_margin(D, x):
    """The smallest |input| of any LeakyReLU on x: a nudge of h = 1e-5 in W moves an input by
    about h * |x|, so with a margin far above that no slope flips during the differences."""
    margin = math.inf
    for layer in D.layers:
        if isinstance(layer, LeakyReLU):
            margin = min(margin, float(backend.xp.abs(x).min()))
        x = layer.forward(x)
    return margin


def penalty_and_grads(D, penalty, real, fake, weight):
    """The penalty's value and the gradients it adds into D's grads (from zero)."""
    reseed(D)
    D.zero_grad()
    value = penalty(D, real, fake, weight)
    return value, {k: g.copy() for k, g in D.grads.items()}


def joint_error(ours, theirs):
    """max over D's arrays of |ours - theirs|, over the largest |theirs| among all of them."""
    xp = backend.xp
    scale = max(float(xp.abs(t).max()) for t in theirs.values())
    return max(float(xp.abs(ours[k] - theirs[k]).max()) for k in theirs) / scale


def check_penalty_grads(D, penalty, real, fake, weight, tol=1e-7):
    """The gradient a penalty adds into D's grads against central differences of its value."""
    _, analytic = penalty_and_grads(D, penalty, real, fake, weight)

    def value():
        reseed(D)
        return penalty(D, real, fake, weight)

    numeric = {k: numerical_gradient(value, p, 1.0) for k, p in D.params.items()}
    err = joint_error(analytic, numeric)
    assert err < tol, f"relative error {err:.2e} against central differences, tol {tol:.0e}"
    return err


# --- central differences ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PENALTIES))
def test_penalty_grad_matches_central_differences(xp, name):
    """On NumPy and on the strict CuPy stand-in (whose arrays refuse to mix with NumPy's)."""
    D, real, fake = make_D(), batch(seed=1), batch(seed=2)
    assert kink_margin(D, real) > 1e-3 and kink_margin(D, fake) > 1e-3
    check_penalty_grads(D, PENALTIES[name], real, fake, 10.0)


@pytest.mark.parametrize("tricks", [dict(dropout=0.3), dict(instance_noise=True),
                                    dict(dropout=0.5, instance_noise=True)],
                         ids=["dropout", "instance noise", "both"])
@pytest.mark.parametrize("name", sorted(PENALTIES))
def test_penalty_grad_through_the_tricks_that_sit_in_d(name, tricks):
    D = make_D(**tricks)
    for layer in D.layers:
        if isinstance(layer, InstanceNoise):
            layer.std = 0.5
    check_penalty_grads(D, PENALTIES[name], batch(seed=1), batch(seed=2), 1.0)


def test_relu_d_gradcheck():
    """ReLU (slope 0) is a LeakyReLU: the same double backward, a 0/1 mask."""
    rng = backend.default_rng(4)
    D = Sequential(Dense(5, 7, rng=rng, dtype="float64"), ReLU(),
                   Dense(7, 1, rng=rng, dtype="float64"))
    for name in PENALTIES:
        check_penalty_grads(D, PENALTIES[name], batch(6, 5, 1), batch(6, 5, 2), 2.0)


@given(hidden=st.lists(st.integers(1, 9), min_size=1, max_size=3),
       n=st.integers(1, 6), in_dim=st.integers(1, 6),
       weight=st.floats(1e-3, 1e3), name=st.sampled_from(sorted(PENALTIES)),
       seed=st.integers(0, 2**16))
def test_penalty_properties(hidden, n, in_dim, weight, name, seed):
    """Any widths, batch sizes and weights: a finite penalty, finite gradients, and agreement
    with central differences where no slope sits within 1e-4 of its kink."""
    D = make_D(in_dim, tuple(hidden), seed)
    real, fake = batch(n, in_dim, seed + 1), batch(n, in_dim, seed + 2)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value, grads = penalty_and_grads(D, PENALTIES[name], real, fake, weight)
    assert np.isfinite(value) and value >= 0
    assert all(np.isfinite(g).all() for g in grads.values())
    x_hat = D.layers[0].cache  # what the last penalty evaluated D at
    assume(kink_margin(D, x_hat) > 1e-4)
    if name == "gradient_penalty":
        # ||g_i|| has a kink at g_i = 0 and curves like 1 / ||g_i|| near it, so the central
        # difference's h^2 error grows there: seed 609 drew ||g|| = 1.2e-3 and missed by 3e-7 at
        # h = 1e-5 (1e-4 at 3e-5, 1e-6 at 3e-9, as h^2), while autograd agreed to 5e-17. Above
        # 1e-2 the worst of 400 draws was 1e-8.
        g = penalties.backward_of_ones(D, x_hat)[0]
        assume(float(backend.xp.sqrt((g * g).sum(axis=1)).min()) > 1e-2)
    check_penalty_grads(D, PENALTIES[name], real, fake, weight)


# --- PyTorch's autograd with create_graph=True ------------------------------------------------


def torch_penalty(D, name, real, fake, weight):
    """The penalty of a functional torch twin of D (minigan's own arrays as leaves), through
    torch.autograd.grad(..., create_graph=True): its value and every parameter's gradient."""
    torch = pytest.importorskip("torch", reason="compares with PyTorch's autograd; install the "
                                "reference extra: pip install -e '.[reference]'")
    F = torch.nn.functional
    params = {k: torch.tensor(v, requires_grad=True) for k, v in D.params.items()}
    if name == "r1":
        x = torch.tensor(real, requires_grad=True)
    else:  # the same eps as minigan's: the same generator, seed and call
        eps = torch.from_numpy(np.random.default_rng(SEED).random((len(real), 1)))
        x = (eps * torch.tensor(real) + (1 - eps) * torch.tensor(fake)).requires_grad_(True)
    h = x
    for i, layer in enumerate(D.layers):
        h = h @ params[f"{i}.W"] + params[f"{i}.b"] if layer.params else F.leaky_relu(
            h, layer.negative_slope)
    (g,) = torch.autograd.grad(h.sum(), x, create_graph=True)  # (N, in): row i is dD(x_i)/dx_i
    if name == "r1":
        value = weight / 2 * (g * g).sum(dim=1).mean()
    else:
        value = weight * ((torch.linalg.vector_norm(g, dim=1) - 1) ** 2).mean()
    value.backward()
    grads = {k: (p.grad if p.grad is not None else torch.zeros_like(p)).numpy()
             for k, p in params.items()}
    return float(value.detach()), grads


@pytest.mark.parametrize("hidden", [(8, 5), (16,), (32, 16, 8)])
@pytest.mark.parametrize("name", sorted(PENALTIES))
def test_penalty_matches_autograd(name, hidden):
    D, real, fake = make_D(10, hidden, seed=5), batch(12, 10, 6), batch(12, 10, 7)
    value, grads = penalty_and_grads(D, PENALTIES[name], real, fake, 10.0)
    expected, expected_grads = torch_penalty(D, name, real, fake, 10.0)
    assert abs(float(value) - expected) <= 1e-10 * expected
    err = joint_error(grads, expected_grads)
    assert err < 1e-10, f"{name}: relative error {err:.2e} against autograd"


@pytest.mark.parametrize("name", sorted(PENALTIES))
def test_penalty_matches_autograd_at_mnist_width(name):
    """minigan's default D, 784 -> 1024 -> 512 -> 256 -> 1, on 8 samples."""
    D = make_discriminator(rng=backend.default_rng(0), dtype="float64")
    real, fake = batch(8, 784, 1), np.tanh(batch(8, 784, 2))
    value, grads = penalty_and_grads(D, PENALTIES[name], real, fake, 10.0)
    expected, expected_grads = torch_penalty(D, name, real, fake, 10.0)
    assert abs(float(value) - expected) <= 1e-10 * expected
    assert joint_error(grads, expected_grads) < 1e-10


def dead_relu_D():
    """ReLU D whose hidden units are all off where sum(x) < 5: D is flat there, g = 0."""
    D = Sequential(Dense(3, 4, dtype="float64"), ReLU(), Dense(4, 1, dtype="float64"))
    D.params["0.W"][...] = 1.0
    D.params["0.b"][...] = -5.0
    D.params["2.W"][...] = np.array([[1.0], [-2.0], [0.5], [3.0]])
    return D


def test_gradient_penalty_at_zero_gradient_norm():
    """Rows where D is flat (g_i = 0, ||g_i|| = 0): the penalty is lam per such row, over N, and
    the gradient stays finite (no 0/0), the same as autograd's (torch masks the norm's backward
    at 0 too). Real and fake are equal, so x_hat is them whatever eps is."""
    D = dead_relu_D()
    x = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [3.0, 2.0, 4.0], [-1.0, 0.5, 2.0]])
    # not even a warning of a division by zero:
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value, grads = penalty_and_grads(D, gp, x, x, 10.0)
    # By hand: every hidden unit's input is sum(x) - 5. Rows 0, 1, 3 sum to 0, 3 and 1.5: all
    # four units off, g = 0, ||g|| = 0. Row 2 sums to 9: all on, so g = 0.W @ 2.W, each input's
    # weight 1 times 1 - 2 + 0.5 + 3 = 2.5: g = (2.5, 2.5, 2.5), ||g|| = 2.5 sqrt(3) = 4.33013.
    # The penalty: 10 * (3 * (0 - 1)^2 + (2.5 sqrt(3) - 1)^2) / 4
    #            = 10 * (3 + 19.75 - 5 sqrt(3)) / 4 = 56.875 - 12.5 sqrt(3) = 35.2243649...
    g = penalties.backward_of_ones(D, x)[0]
    np.testing.assert_array_equal(g, [[0, 0, 0], [0, 0, 0], [2.5, 2.5, 2.5], [0, 0, 0]])
    assert math.isclose(float(value), 56.875 - 12.5 * math.sqrt(3), rel_tol=1e-14)
    assert abs(float(value) - 35.2243649) < 1e-7
    assert all(np.isfinite(g).all() for g in grads.values()) and grads["2.W"].any()
    expected, expected_grads = torch_penalty(D, "gradient_penalty", x, x, 10.0)
    assert abs(float(value) - expected) <= 1e-12 * expected
    assert joint_error(grads, expected_grads) < 1e-10


def test_gradient_penalty_when_d_is_flat_everywhere():
    D = make_D()
    D.params["4.W"][...] = 0.0  # the last Dense reads nothing: g = 0 on every row
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value, grads = penalty_and_grads(D, gp, batch(seed=1), batch(seed=2), 10.0)
    assert float(value) == 10.0 and not any(g.any() for g in grads.values())


# --- what the penalties compute ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PENALTIES))
def test_norm_is_per_sample_over_all_inputs(name):
    """A batch's penalty is the mean of its rows' penalties, each row alone (a norm over the
    batch axis, or one over every entry, would not be)."""
    D, real, fake = make_D(), batch(5, seed=1), batch(5, seed=2)
    whole, grads = penalty_and_grads(D, PENALTIES[name], real, fake, 3.0)
    eps = np.random.default_rng(SEED).random((5, 1))  # each row alone, with the eps it got
    x_hat = real if name == "r1" else eps * real + (1 - eps) * fake
    # real = fake = the row: x_hat is the row whatever eps the penalty draws
    rows = [penalty_and_grads(D, PENALTIES[name], x, x, 3.0)
            for x in (x_hat[i:i + 1] for i in range(5))]
    assert math.isclose(float(whole), sum(float(v) for v, _ in rows) / 5, rel_tol=1e-13)
    for k in grads:
        np.testing.assert_allclose(grads[k], sum(g[k] for _, g in rows) / 5, rtol=1e-10,
                                   atol=1e-14)


def test_gradient_penalty_draws_one_eps_per_row_from_rng():
    D, real, fake = make_D(), batch(6, seed=1), batch(6, seed=2)
    penalties.gradient_penalty(D, real, fake, 1.0, backend.default_rng(11))
    x_hat = D.layers[0].cache  # the input the first Dense saw
    eps = (x_hat - fake) / (real - fake)  # (N, in): each row one number
    np.testing.assert_allclose(eps, eps[:, :1] * np.ones((1, 6)), rtol=1e-10)
    np.testing.assert_allclose(eps[:, 0], np.random.default_rng(11).random(6), rtol=1e-10)


def test_penalties_add_into_grads_and_leave_the_biases():
    """Into D's grads with +=, like backward: what was there stays; biases get exactly 0."""
    D, real = make_D(), batch()
    _, alone = penalty_and_grads(D, r1, real, real, 1.0)
    for g in D.grads.values():
        g[...] = 1.5
    penalties.r1(D, real, 1.0)
    for k, g in D.grads.items():
        np.testing.assert_array_equal(g, 1.5 + alone[k])
        assert k.endswith("W") or not alone[k].any()


def test_r1_is_half_gamma_times_the_mean_squared_norm():
    """A linear D (one Dense): g_i = W^T for every row, so R1 = gamma / 2 * ||W||^2 and its
    gradient is gamma * W; WGAN-GP = lam (||W|| - 1)^2, gradient 2 lam (||W|| - 1) W / ||W||."""
    D = Dense(4, 1, rng=backend.default_rng(0), dtype="float64")
    W = D.params["W"].copy()
    w = float(np.linalg.norm(W))
    value = penalties.r1(D, batch(3, 4), 6.0)
    assert math.isclose(float(value), 3.0 * w**2, rel_tol=1e-14)
    np.testing.assert_allclose(D.grads["W"], 6.0 * W, rtol=1e-14)
    D.zero_grad()
    value = penalties.gradient_penalty(D, batch(3, 4), batch(3, 4, 2), 2.0,
                                       backend.default_rng(0))
    assert math.isclose(float(value), 2.0 * (w - 1) ** 2, rel_tol=1e-14)
    np.testing.assert_allclose(D.grads["W"], 4.0 * (w - 1) * W / w, rtol=1e-13)


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("D, message", [
    (make_D(minibatch_std=True), "MinibatchStd couples the rows"),
    (make_D(12, pack=2), "Pack gives one output per m samples"),
    (Sequential(Dense(6, 4, dtype="float64"), BatchNorm(4, dtype="float64"),
                Dense(4, 1, dtype="float64")), "BatchNorm couples the rows"),
    (Sequential(Dense(6, 4, dtype="float64"), Tanh(), Dense(4, 1, dtype="float64")),
     "layer 1, Tanh.*not derived"),
    (make_dcgan_discriminator(dtype="float64"), "layer 0, Reshape"),
], ids=["minibatch std", "pack", "batchnorm", "tanh", "dcgan"])
def test_uncovered_layers_are_refused(D, message):
    for penalty in PENALTIES.values():
        with pytest.raises(ValueError, match=message):
            penalty(D, batch(4, 6), batch(4, 6, 2), 1.0)


def test_d_must_give_one_number_per_sample():
    D = Sequential(Dense(6, 2, dtype="float64"))
    with pytest.raises(ValueError, match=r"one number per sample, \(N, 1\) = \(4, 1\)"):
        penalties.r1(D, batch(), 1.0)


def test_gradient_penalty_refuses_mismatched_batches():
    with pytest.raises(ValueError, match="differ"):
        penalties.gradient_penalty(make_D(), batch(4), batch(5), 1.0, backend.default_rng(0))


# --- a spectrally normalised D (minigan/spectral.py) ------------------------------------------


def make_sn_D(in_dim=6, hidden=(8, 5), seed=0):
    return spectral.apply(make_D(in_dim, hidden, seed), backend.default_rng(seed + 50))


@pytest.mark.parametrize("name", sorted(PENALTIES))
def test_penalty_grad_on_spectral_norm_d_matches_central_differences(xp, name):
    """With u, v fixed: the penalty's own forward of D takes a power step in training mode,
    which would move sigma under the finite differences by more than the nudge; in evaluation
    mode (after one training forward has set u, v) no step is taken, and sigma = u^T W^T v is the
    function of W whose gradient the double backward computes."""
    D, real, fake = make_sn_D(), batch(seed=1), batch(seed=2)
    D.forward(real)
    D.eval()
    assert kink_margin(D, real) > 1e-3 and kink_margin(D, fake) > 1e-3
    check_penalty_grads(D, PENALTIES[name], real, fake, 10.0)


def torch_sn_penalty(D, name, real, fake, weight):
    """The penalty of a torch twin of the SN D (spectral_norm'd Linear layers with D's W, b, u
    and v; training mode, so its forward takes the same power step) through
    torch.autograd.grad(..., create_graph=True): value, every gradient as minigan holds it
    (W transposed), and every u, v after the forward."""
    torch = pytest.importorskip("torch", reason="compares with PyTorch's autograd; install the "
                                "reference extra: pip install -e '.[reference]'")
    from test_spectral import torch_module, torch_state

    twin = torch.nn.Sequential(*(torch_module(layer) for layer in D.layers))
    if name == "r1":
        x = torch.tensor(real, requires_grad=True)
    else:  # the same eps as minigan's: the same generator, seed and call
        eps = torch.from_numpy(np.random.default_rng(SEED).random((len(real), 1)))
        x = (eps * torch.tensor(real) + (1 - eps) * torch.tensor(fake)).requires_grad_(True)
    (g,) = torch.autograd.grad(twin(x).sum(), x, create_graph=True)
    if name == "r1":
        value = weight / 2 * (g * g).sum(dim=1).mean()
    else:
        value = weight * ((torch.linalg.vector_norm(g, dim=1) - 1) ** 2).mean()
    value.backward()
    grads, buffers = {}, {}
    for i, module in enumerate(twin):
        if hasattr(module, "parametrizations"):
            _, grads[f"{i}.W"], _, buffers[f"{i}.u"], buffers[f"{i}.v"] = torch_state(module)
            grads[f"{i}.b"] = np.zeros(module.bias.shape)  # not in the graph of g
    return float(value.detach()), grads, buffers


@pytest.mark.parametrize("hidden", [(8, 5), (16,)])
@pytest.mark.parametrize("name", sorted(PENALTIES))
def test_penalty_on_spectral_norm_d_matches_autograd(name, hidden):
    """Training mode on both sides: one power step in the penalty's forward, then the double
    backward with the new u, v fixed (torch's parametrization runs the step under no_grad)."""
    D, real, fake = make_sn_D(10, hidden, seed=5), batch(12, 10, 6), batch(12, 10, 7)
    before = {k: b.copy() for k, b in D.buffers.items()}
    expected, expected_grads, expected_buffers = torch_sn_penalty(D, name, real, fake, 10.0)
    value, grads = penalty_and_grads(D, PENALTIES[name], real, fake, 10.0)
    assert abs(float(value) - expected) <= 1e-10 * expected
    err = joint_error(grads, expected_grads)
    assert err < 1e-10, f"{name}: relative error {err:.2e} against autograd"
    assert joint_error(D.buffers, expected_buffers) < 1e-10
    assert not np.array_equal(D.buffers["0.u"], before["0.u"])  # a power step was taken


def test_spectral_norm_conv_is_refused():
    D = spectral.apply(make_dcgan_discriminator(dtype="float64"), backend.default_rng(0))
    D = Sequential(*D.layers[1:3])  # SpectralNorm(Conv2D), LeakyReLU
    with pytest.raises(ValueError, match=r"layer 0, SpectralNorm\(Conv2D.*not derived"):
        penalties.r1(D, np.ones((2, 1, 28, 28)), 1.0)
