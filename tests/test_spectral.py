"""Spectral normalization (minigan/spectral.py): its backward against central differences with
u, v held fixed, and forward, sigma, u, v and every gradient against
torch.nn.utils.parametrizations.spectral_norm from the same u, v, all in float64.

The measure is tests/test_parity.py's: the largest difference over the largest reference entry.
Central differences: h = 1e-5, tolerance 1e-7 (measured 2e-11 to 3e-11). torch: 1e-10 over
four training steps, the weights moving between them (measured 2e-16 to 2e-14).
A power step changes u, so every finite-difference check runs in evaluation mode (no power
step: sigma = u^T W v with the stored u, v, the function whose gradient backward computes),
after one training forward has set u and v.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigan import backend, checkpoint, optim, spectral
from minigan.conv import Conv2D
from minigan.gan import make_dcgan_discriminator, make_discriminator
from minigan.gradcheck import check_layer, numerical_gradient
from minigan.layers import Dense, Flatten, LeakyReLU, Reshape, Sequential, Tanh
from minigan.losses import bce_with_logits
from minigan.spectral import SpectralNorm

TOL64 = 1e-10
TORCH_REASON = ("compares with torch.nn.utils.parametrizations.spectral_norm; install the "
                "reference extra: pip install -e '.[reference]'")


def need_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    torch.set_num_threads(1)  # tiny tensors on a shared 2-core machine
    return torch


def rel_error(ours, theirs):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, f"shape {ours.shape}, reference {theirs.shape}"
    scale = float(np.abs(theirs).max())
    return float(np.abs(ours - theirs).max()) / (scale if scale > 0 else 1.0)


def normal(shape, seed):
    return backend.to_device(np.random.default_rng(seed).standard_normal(shape))


def sn_dense(n_in, n_out, seed=0, dtype="float64"):
    return SpectralNorm(Dense(n_in, n_out, rng=backend.default_rng(seed), dtype=dtype),
                        backend.default_rng(seed + 100))


def sn_conv(c_in, c_out, k, stride=1, padding=0, seed=0, dtype="float64"):
    conv = Conv2D(c_in, c_out, k, stride, padding, rng=backend.default_rng(seed), dtype=dtype)
    return SpectralNorm(conv, backend.default_rng(seed + 100))


DENSE_CASES = [(5, 3), (3, 7), (4, 4), (1, 6), (6, 1)]  # (in, out); a square one: W vs W.T
CONV_CASES = [(2, 3, 3, 1, 1, 6), (1, 4, 5, 2, 2, 8), (3, 3, 2, 2, 0, 5)]  # (C_in, C_out, k,
# stride, padding, H)


def dense_and_input(case, seed=0):
    n_in, n_out = case
    return sn_dense(n_in, n_out, seed), normal((4, n_in), seed + 1)


def conv_and_input(case, seed=0):
    c_in, c_out, k, stride, padding, h = case
    return sn_conv(c_in, c_out, k, stride, padding, seed), normal((3, c_in, h, h), seed + 1)


# --- the backward, u and v fixed, against central differences ---------------------------------


def check_fixed_uv(layer, x):
    """dx, dW, db against central differences of the evaluation-mode forward."""
    layer.train().forward(x)  # one power step: u, v as training leaves them
    errors = check_layer(layer.eval(), x)
    assert set(errors) == {"x", "W", "b"}
    return errors


@pytest.mark.parametrize("case", DENSE_CASES)
def test_dense_backward_matches_central_differences(xp, case):
    check_fixed_uv(*dense_and_input(case))


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_backward_matches_central_differences(xp, case):
    check_fixed_uv(*conv_and_input(case))


def away_from_zero(x):
    """|x| >= 0.5: where x is tiny (hypothesis drew x = -4e-5 for a Dense(1, 2)), W's share of
    the output is too, and its central difference drowns in the round-off of b's share."""
    return x + 0.5 * np.sign(x)


def check_with_floor(layer, x, tol=1e-7):
    """check_layer in evaluation mode, with W's error measured against the size of the terms of
    dW = (G - <G, W_eff> u v^T) / sigma, |G| / sigma, not only against their difference.

    Where W has rank 1 (one row or one column), the power step makes u v^T = W_eff exactly, and
    dW is the part of G / sigma orthogonal to W_eff, which can be a small fraction of the terms
    it is the difference of: their round-off then weighs more against dW than against them.
    """
    layer.eval()
    x, dout = x.copy(), normal(layer.forward(x).shape, 3)
    layer.zero_grad()
    layer.forward(x)
    analytic = {"x": layer.backward(dout), "W": layer.grads["W"].copy(),
                "b": layer.grads["b"].copy()}
    floor = {"x": 0.0, "W": float(np.abs(layer.inner.grads["W"]).max() / layer.cache), "b": 0.0}
    for name, a in (("x", x), ("W", layer.params["W"]), ("b", layer.params["b"])):
        numeric = numerical_gradient(lambda: layer.forward(x), a, dout)
        scale = max(float(np.abs(numeric).max()), floor[name], 1e-300)
        err = float(np.abs(analytic[name] - numeric).max()) / scale
        assert err < tol, f"{layer!r}: d{name} relative error {err:.2e}, tol {tol:.0e}"


def check_power_step(layer, seed):
    """From stored u, v set to random unit vectors (far from the singular pair, so that the
    order of the updates shows), a training forward must leave, with W_mat the (out, in * k * k)
    matrix written out by hand (w_mat, below):

        u = W_mat v0 / ||W_mat v0||,  v = W_mat^T u / ||W_mat^T u||   (u first, then v; torch)
        sigma = u^T W_mat v = ||W_mat^T u||   (as v is W_mat^T u over its norm)

    Updating v first would give sigma = ||W_mat v|| instead, and skipping v's update a v that
    is not W_mat^T u's direction: both off by far more than 1e-12 for most shapes. Returns the
    forward's output."""
    u0, v0 = unit(layer.buffers["u"].shape, seed), unit(layer.buffers["v"].shape, seed + 1)
    layer.buffers["u"][...], layer.buffers["v"][...] = u0, v0
    W_mat = w_mat(layer)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = layer.train().forward(x_for(layer, seed))
    u, v, sigma = layer.buffers["u"], layer.buffers["v"], float(layer.cache)
    by_hand = power_steps(W_mat, u0, v0, 1)  # u from v0, then v from the new u
    np.testing.assert_allclose(u, by_hand[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(v, by_hand[1], rtol=0, atol=1e-12)
    assert abs(sigma / float(u @ W_mat @ v) - 1) < 1e-12
    assert abs(sigma / np.linalg.norm(W_mat.T @ u) - 1) < 1e-12
    assert float(layer.sigma()) == sigma  # the backward's sigma is the forward's
    return out


def x_for(layer, seed):
    """An input batch for a Dense (3 rows) or a Conv2D (2 images 4 x 4), |x| >= 0.5."""
    inner = layer.inner
    shape = (3, inner.in_features) if isinstance(inner, Dense) else (2, inner.in_channels, 4, 4)
    return away_from_zero(normal(shape, seed + 2))


@given(n_in=st.integers(1, 7), n_out=st.integers(1, 7), n=st.integers(1, 5),
       seed=st.integers(0, 2**16))
def test_dense_properties(n_in, n_out, n, seed):
    """Any shape: finite, the power step and sigma as written out in check_power_step, and the
    backward right."""
    layer = sn_dense(n_in, n_out, seed)
    out = check_power_step(layer, seed)
    assert np.isfinite(out).all()
    check_with_floor(layer, away_from_zero(normal((n, n_in), seed + 1)))


@given(c_in=st.integers(1, 3), c_out=st.integers(1, 4), k=st.integers(1, 3),
       stride=st.integers(1, 2), padding=st.integers(0, 1), seed=st.integers(0, 2**16))
def test_conv_properties(c_in, c_out, k, stride, padding, seed):
    layer = sn_conv(c_in, c_out, k, stride, padding, seed)
    out = check_power_step(layer, seed)
    assert np.isfinite(out).all()
    check_with_floor(layer, away_from_zero(normal((2, c_in, 4, 4), seed + 1)))


# --- what the forward computes -----------------------------------------------------------------


def test_eval_mode_takes_no_power_step(xp):
    layer, x = dense_and_input((5, 3))
    layer.eval()
    u, v = layer.buffers["u"].copy(), layer.buffers["v"].copy()
    for _ in range(3):
        out = layer.forward(x)
    assert xp.array_equal(layer.buffers["u"], u) and xp.array_equal(layer.buffers["v"], v)
    W = layer.params["W"]
    sigma = u @ (W.T @ v)  # u^T W_mat v, W_mat = W.T
    assert float(xp.max(xp.abs(out - (x @ (W / sigma) + layer.params["b"])))) < 1e-14
    layer.train().forward(x)  # and training mode does take one
    assert not xp.array_equal(layer.buffers["u"], u)


# The power method by hand (Miyato et al. 2018, Algorithm 1), without torch: the training
# forward's step, and the 15 steps of the initialisation.


def w_mat(layer):
    """torch's (out, in * k * k) matrix of a wrapper's trained W, written out here: Dense's
    (in, out) W transposed, Conv2D's (C_out, C_in, k, k) W with one filter a row."""
    W = layer.params["W"]
    return W.T if isinstance(layer.inner, Dense) else W.reshape(W.shape[0], -1)


def power_steps(W_mat, u, v, steps):
    """Algorithm 1's step: u <- W v / ||W v||, then v <- W^T u / ||W^T u|| with the new u."""
    for _ in range(steps):
        u = W_mat @ v / np.linalg.norm(W_mat @ v)
        v = W_mat.T @ u / np.linalg.norm(W_mat.T @ u)
    return u, v


def unit(shape, seed):
    a = np.random.default_rng(seed).standard_normal(shape)
    return a / np.linalg.norm(a)


def test_normalize_floors_the_norm_at_eps():
    """torch's F.normalize, a / max(||a||, eps): a zero vector stays zero (not 0 / 0), and one
    shorter than eps is divided by eps."""
    with np.errstate(divide="raise", invalid="raise"):
        np.testing.assert_array_equal(spectral.normalize(np.zeros(3), 1e-12), np.zeros(3))
    np.testing.assert_allclose(spectral.normalize(np.array([3e-13, 4e-13]), 1e-12), [0.3, 0.4],
                               rtol=1e-15)
    np.testing.assert_allclose(spectral.normalize(np.array([3.0, 4.0]), 1e-12), [0.6, 0.8],
                               rtol=1e-15)


@pytest.mark.parametrize("make", [lambda: dense_and_input((5, 3)),
                                  lambda: conv_and_input(CONV_CASES[0])], ids=["dense", "conv"])
def test_training_forward_is_one_power_step_then_w_over_sigma(make):
    """From stored u, v set to random unit vectors (far from the singular pair, so that the
    step moves them), a training forward leaves the u, v of one step by hand, keeps
    sigma = u^T W_mat v of the new u, v for the backward, and computes with W / sigma."""
    layer, x = make()
    layer.buffers["u"][...] = unit(layer.buffers["u"].shape, 9)
    layer.buffers["v"][...] = unit(layer.buffers["v"].shape, 10)
    u, v = power_steps(w_mat(layer), layer.buffers["u"], layer.buffers["v"], 1)
    sigma = u @ w_mat(layer) @ v
    out = layer.train().forward(x)
    assert rel_error(layer.buffers["u"], u) < 1e-12 and rel_error(layer.buffers["v"], v) < 1e-12
    assert abs(float(layer.cache) / sigma - 1) < 1e-12
    W_eff = layer.params["W"] / sigma
    assert rel_error(layer.inner.params["W"], W_eff) < 1e-12  # what the inner layer computes with
    if isinstance(layer.inner, Dense):
        assert rel_error(out, x @ W_eff + layer.params["b"]) < 1e-12


@pytest.mark.parametrize("conv", [False, True], ids=["dense", "conv"])
def test_two_power_iterations_are_two_steps_by_hand(conv):
    """n_power_iterations=2: a training forward takes two power steps (Algorithm 1's, by hand,
    from random unit u, v), one step fewer or more leaves other u, v; the initialisation's 15
    steps are the same as with one iteration a forward."""
    def make(n):
        inner = (Conv2D(2, 3, 3, rng=backend.default_rng(0), dtype="float64") if conv
                 else Dense(5, 3, rng=backend.default_rng(0), dtype="float64"))
        return SpectralNorm(inner, backend.default_rng(100), n_power_iterations=n)

    layer, once = make(2), make(1)
    for key in ("u", "v"):
        np.testing.assert_array_equal(layer.buffers[key], once.buffers[key])
        layer.buffers[key][...] = unit(layer.buffers[key].shape, 11 + len(key))
    u0, v0 = layer.buffers["u"].copy(), layer.buffers["v"].copy()
    W_mat = w_mat(layer)
    u, v = power_steps(W_mat, u0, v0, 2)
    one_step = power_steps(W_mat, u0, v0, 1)
    assert np.abs(u - one_step[0]).max() > 1e-3  # the second step moves u: a test that can fail
    x = normal((3, 2, 5, 5) if conv else (4, 5), 1)
    out = layer.train().forward(x)
    assert rel_error(layer.buffers["u"], u) < 1e-12 and rel_error(layer.buffers["v"], v) < 1e-12
    sigma = u @ W_mat @ v
    assert abs(float(layer.cache) / sigma - 1) < 1e-12
    if not conv:
        assert rel_error(out, x @ (layer.params["W"] / sigma) + layer.params["b"]) < 1e-12


@pytest.mark.parametrize("conv", [False, True], ids=["dense", "conv"])
def test_initial_u_v_are_15_power_steps_from_normalised_draws(conv):
    """u ~ N(0, 1) drawn first, then v, each normalised, then 15 power steps by hand. W gets
    singular values 1, 0.95, 0.9, so that a step shrinks the distance to the top pair by only
    0.95^2 and after 15 steps the start still shows (0.95^30 = 0.2)."""
    rng = np.random.default_rng(4)
    inner = (Conv2D(2, 3, 3, rng=backend.default_rng(0), dtype="float64") if conv
             else Dense(5, 3, rng=backend.default_rng(0), dtype="float64"))
    n_out, n_in = 3, inner.params["W"].size // 3
    left = np.linalg.qr(rng.standard_normal((n_out, n_out)))[0]
    right = np.linalg.qr(rng.standard_normal((n_in, n_out)))[0]  # orthonormal columns
    W_mat = left @ np.diag([1.0, 0.95, 0.9]) @ right.T  # (out, in * k * k)
    inner.params["W"][...] = W_mat.reshape(3, 2, 3, 3) if conv else W_mat.T
    layer = SpectralNorm(inner, backend.default_rng(100))
    draws = np.random.default_rng(100)
    u0, v0 = draws.standard_normal(n_out), draws.standard_normal(n_in)
    u, v = power_steps(W_mat, u0 / np.linalg.norm(u0), v0 / np.linalg.norm(v0), 15)
    assert rel_error(layer.buffers["u"], u) < 1e-12 and rel_error(layer.buffers["v"], v) < 1e-12


@pytest.mark.parametrize("make", [lambda: sn_dense(7, 5), lambda: sn_conv(3, 4, 3)],
                         ids=["dense", "conv"])
def test_w_eff_has_unit_spectral_norm_after_enough_steps(make):
    """The power method converges to the top singular pair: sigma -> sigma_max(W), and W_eff's
    largest singular value -> 1 (measured within 3e-16 of it after 200 steps)."""
    layer = make()
    x = normal((2, 7) if isinstance(layer.inner, Dense) else (2, 3, 5, 5), 1)
    W_mat = spectral.as_matrix(layer.params["W"], layer.inner)
    s = np.linalg.svd(W_mat)[1]
    assert s[0] > 1.2 * s[1]  # a gap: the error shrinks by (s[1] / s[0])^2 a step
    for _ in range(200):
        layer.forward(x)
    W_eff = spectral.as_matrix(layer.inner.params["W"], layer.inner)
    assert abs(np.linalg.svd(W_eff)[1][0] - 1) < 1e-10
    assert abs(float(layer.sigma()) / s[0] - 1) < 1e-10


def test_params_stay_the_trained_w(xp):
    """Forward writes W_eff into the inner layer's own array; the wrapper's W (the one
    optimizers and checkpoints see) keeps its values, and D's params dict holds it."""
    D = make_discriminator(6, (5,), rng=backend.default_rng(0), dtype="float64")
    W = D.params["0.W"].copy()
    SN = spectral.apply(D, backend.default_rng(1))
    assert SN.params["0.W"] is D.params["0.W"] and sorted(SN.params) == sorted(D.params)
    SN.forward(normal((3, 6), 2))
    assert xp.array_equal(SN.params["0.W"], W)
    assert not xp.array_equal(SN[0].inner.params["W"], W)  # W / sigma


def test_param_grads_false_leaves_grads(xp):
    layer, x = conv_and_input(CONV_CASES[0])
    out = layer.forward(x)
    layer.zero_grad()
    dx = layer.backward(xp.ones_like(out), param_grads=False)
    assert dx.shape == x.shape and not any(bool(g.any()) for g in layer.grads.values())
    assert layer.backward(xp.ones_like(out), input_grad=False) is None
    assert bool(layer.grads["W"].any())


def test_backward_adds_into_grads(xp):
    layer, x = dense_and_input((5, 3))
    out = layer.forward(x)
    layer.zero_grad()
    layer.backward(xp.ones_like(out))
    once = layer.grads["W"].copy()
    layer.backward(xp.ones_like(out))  # the same forward: twice the gradient
    assert float(xp.max(xp.abs(layer.grads["W"] - 2 * once))) <= 1e-15 * float(
        xp.max(xp.abs(once)))


def test_apply_wraps_dense_and_conv_in_order():
    """DCGAN's D: both Conv2D and the Dense wrapped, nothing else; one seed, one set of u, v;
    W as the unwrapped D drew it."""
    def plain():
        return make_dcgan_discriminator((2, 3), rng=backend.default_rng(0), dtype="float64")

    def build():
        D = plain()
        return D, spectral.apply(D, backend.default_rng(5))

    D, SN = build()
    wrapped = [i for i, layer in enumerate(SN.layers) if isinstance(layer, SpectralNorm)]
    assert wrapped == [1, 4, 8] and isinstance(SN[8].inner, Dense)
    assert sorted(SN.buffers) == sorted([*D.buffers, "1.u", "1.v", "4.u", "4.v", "8.u", "8.v"])
    _, again = build()
    for key in SN.buffers:
        np.testing.assert_array_equal(SN.buffers[key], again.buffers[key])
    # the first Conv2D draws first: alone with a fresh generator, it gets the same u, v
    first = SpectralNorm(plain()[1], backend.default_rng(5))
    np.testing.assert_array_equal(first.buffers["u"], SN.buffers["1.u"])
    np.testing.assert_array_equal(first.buffers["v"], SN.buffers["1.v"])
    assert SN.buffers["1.u"].shape == (2,) and SN.buffers["4.v"].shape == (2 * 25,)


def test_apply_on_the_dcgan_d_runs_forward_and_backward(xp):
    D = make_dcgan_discriminator((2, 3), rng=backend.default_rng(0), dtype="float32")
    SN = spectral.apply(D, backend.default_rng(5))
    x = backend.to_device(np.random.default_rng(1).standard_normal((4, 784)), "float32")
    out = SN.forward(x)
    dx = SN.backward(xp.ones_like(out))
    assert out.shape == (4, 1) and dx.shape == x.shape and bool(xp.isfinite(dx).all())
    assert all(bool(g.any()) for k, g in SN.grads.items() if k.endswith("W"))
    assert all(SN.buffers[k].dtype == xp.float32 for k in ("1.u", "8.v"))


def test_a_float32_layer_starts_from_the_float64_draws():
    """u, v are drawn in float64 and cast: float32 and float64 D from one seed start alike
    (up to float32's rounding over the 15 power steps; measured 1e-7)."""
    ours, ref = sn_dense(6, 4, dtype="float32"), sn_dense(6, 4, dtype="float64")
    for key in ("u", "v"):
        assert ours.buffers[key].dtype == np.float32
        assert rel_error(ours.buffers[key], ref.buffers[key]) < 1e-5


def test_refusals():
    with pytest.raises(TypeError, match="wraps a Dense or a Conv2D"):
        SpectralNorm(Tanh(), backend.default_rng(0))
    with pytest.raises(ValueError, match="at least 1"):
        SpectralNorm(Dense(2, 2), backend.default_rng(0), n_power_iterations=0)
    with pytest.raises(TypeError, match="expected a Sequential"):
        spectral.apply(Dense(2, 2), backend.default_rng(0))
    with pytest.raises(ValueError, match="backward called before forward"):
        sn_dense(2, 2).backward(np.ones((1, 2)))


# --- the checkpoint keeps u and v: resume is bit-exact -----------------------------------------


def train(D, opt, steps, seed):
    """steps of D on BCE against fixed targets, batches from seed; D's outputs, as copies."""
    data = np.random.default_rng(seed)
    outs = []
    for _ in range(steps):
        x = backend.to_device(data.standard_normal((8, 6)), "float32")
        D.zero_grad()
        logits = D.forward(x)
        _, dlogits = bce_with_logits(logits, 1.0)
        D.backward(dlogits, input_grad=False)
        opt.step()
        outs.append(backend.to_host(logits).copy())
    return outs


def sn_d(seed):
    D = make_discriminator(6, (7, 5), rng=backend.default_rng(seed), dtype="float32")
    D = spectral.apply(D, backend.default_rng(seed + 1))
    return D, optim.Adam(D.parameters(), lr=0.05)


def test_checkpoint_round_trip_resumes_bit_exact(tmp_path):
    D, opt = sn_d(0)
    train(D, opt, 3, seed=1)
    arrays = {**checkpoint.network_arrays("D", D), **checkpoint.optimizer_arrays("opt_D", opt)}
    assert {"D/0.u", "D/0.v", "D/2.u", "D/4.v"} <= set(arrays)
    checkpoint.save(tmp_path / "c.npz", arrays, {"t": opt.t})
    straight = train(D, opt, 4, seed=2)  # the run that was never interrupted

    resumed, opt2 = sn_d(9)  # other weights and other u, v until the restore
    saved, meta = checkpoint.load(tmp_path / "c.npz")
    checkpoint.restore_network("D", resumed, saved)
    checkpoint.restore_optimizer("opt_D", opt2, saved, meta["t"])
    for ours, theirs in zip(train(resumed, opt2, 4, seed=2), straight):
        np.testing.assert_array_equal(ours, theirs)
    for key, a in {**D.params, **D.buffers}.items():
        np.testing.assert_array_equal(resumed.params.get(key, resumed.buffers.get(key)), a)


def test_checkpoint_without_u_is_refused():
    D, _ = sn_d(0)
    plain = make_discriminator(6, (7, 5), rng=backend.default_rng(0), dtype="float32")
    with pytest.raises(checkpoint.CheckpointError, match="architecture differs"):
        checkpoint.restore_network("D", D, checkpoint.network_arrays("D", plain))


# --- torch.nn.utils.parametrizations.spectral_norm ---------------------------------------------


def torch_module(layer):
    """The torch twin of one minigan layer; a SpectralNorm's with its W, b, u and v."""
    torch = need_torch()
    nn = torch.nn
    if isinstance(layer, LeakyReLU):
        return nn.LeakyReLU(layer.negative_slope)
    if isinstance(layer, Flatten):
        return nn.Flatten()
    if isinstance(layer, Reshape):
        return nn.Unflatten(1, layer.shape)
    inner, W = layer.inner, backend.to_host(layer.params["W"])
    if isinstance(inner, Dense):
        module, W = nn.Linear(inner.in_features, inner.out_features, dtype=torch.float64), W.T
    else:
        module = nn.Conv2d(inner.in_channels, inner.out_channels, inner.kernel_size,
                           inner.stride, inner.padding, dtype=torch.float64)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(np.ascontiguousarray(W)))
        module.bias.copy_(torch.from_numpy(backend.to_host(layer.params["b"])))
    module = torch.nn.utils.parametrizations.spectral_norm(module)  # draws its own u, v ...
    norm = module.parametrizations.weight[0]
    with torch.no_grad():  # ... which we replace with ours
        norm._u.copy_(torch.from_numpy(backend.to_host(layer.buffers["u"])))
        norm._v.copy_(torch.from_numpy(backend.to_host(layer.buffers["v"])))
    return module


def torch_state(module):
    """(W as minigan holds it, its gradient, sigma, u, v) of a spectral_norm'd torch module."""
    torch = need_torch()
    p = module.parametrizations.weight
    W, norm = p.original.detach(), p[0]
    with torch.no_grad():
        sigma = norm._u @ (norm._reshape_weight_to_matrix(W) @ norm._v)
    grad = p.original.grad
    if isinstance(module, torch.nn.Linear):
        W, grad = W.T, grad.T
    return W.numpy(), grad.numpy(), float(sigma), norm._u.numpy(), norm._v.numpy()


def check_steps(layer, module, x, dout, steps=4, lr=0.3):
    """steps training forwards and backwards on both sides, with an SGD step on W in between
    so that the power method follows a moving W; the largest error seen."""
    torch = need_torch()
    worst = 0.0
    for _ in range(steps):
        layer.zero_grad()
        out = layer.forward(x)
        dx = layer.backward(dout)
        x_t = torch.tensor(x, requires_grad=True)
        module.zero_grad()
        out_t = module(x_t)
        out_t.backward(torch.from_numpy(dout))
        W_t, dW_t, sigma_t, u_t, v_t = torch_state(module)
        errors = {"out": rel_error(out, out_t.detach()), "dx": rel_error(dx, x_t.grad),
                  "dW": rel_error(layer.grads["W"], dW_t),
                  "db": rel_error(layer.grads["b"], module.bias.grad),
                  "sigma": abs(float(layer.cache) / sigma_t - 1),
                  "u": rel_error(layer.buffers["u"], u_t), "v": rel_error(layer.buffers["v"], v_t)}
        bad = {k: e for k, e in errors.items() if not e < TOL64}
        assert not bad, f"against torch: {bad}"
        worst = max(worst, *errors.values())
        layer.params["W"] -= lr * layer.grads["W"]
        original = module.parametrizations.weight.original
        with torch.no_grad():
            original -= lr * original.grad
        assert rel_error(layer.params["W"], torch_state(module)[0]) < TOL64
    return worst


@pytest.mark.parametrize("case", DENSE_CASES)
def test_dense_matches_torch_spectral_norm(case):
    layer, x = dense_and_input(case)
    check_steps(layer, torch_module(layer), x, normal((4, case[1]), 2))


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_matches_torch_spectral_norm(case):
    layer, x = conv_and_input(case)
    dout = normal(layer.inner.output_shape(x.shape), 2)
    check_steps(layer, torch_module(layer), x, dout)


@pytest.mark.parametrize("make", [lambda: sn_dense(5, 3), lambda: sn_conv(2, 3, 3)],
                         ids=["dense", "conv"])
def test_initialisation_is_torchs(make):
    """u, v: normalised N(0, 1) draws from rng (u first, in float64), then torch's 15 steps."""
    torch = need_torch()
    layer = make()
    rng = backend.default_rng(100)  # the seed the helpers give the wrapper
    u0, v0 = (rng.standard_normal(n) for n in (layer.buffers["u"].size, layer.buffers["v"].size))
    module = torch_module(layer)
    norm = module.parametrizations.weight[0]
    with torch.no_grad():
        norm._u.copy_(torch.from_numpy(u0 / np.linalg.norm(u0)))
        norm._v.copy_(torch.from_numpy(v0 / np.linalg.norm(v0)))
        W_mat = norm._reshape_weight_to_matrix(module.parametrizations.weight.original)
    norm._power_method(W_mat, 15)
    assert rel_error(layer.buffers["u"], norm._u) < TOL64
    assert rel_error(layer.buffers["v"], norm._v) < TOL64


@pytest.mark.parametrize("conv", [False, True], ids=["mlp", "conv"])
def test_whole_sn_d_matches_torch(conv):
    """make_discriminator then spectral.apply (and a small convolutional D) against the same
    stack of spectral_norm'd torch modules: output, dx, every gradient, u and v, three steps."""
    torch = need_torch()
    rng = backend.default_rng(3)
    if conv:
        D = Sequential(Reshape((1, 6, 6)), Conv2D(1, 3, 3, 2, 1, rng=rng, dtype="float64"),
                       LeakyReLU(0.2), Flatten(), Dense(27, 1, rng=rng, dtype="float64"))
    else:
        D = make_discriminator(10, (8, 5), rng=rng, dtype="float64")
    D = spectral.apply(D, backend.default_rng(4))
    twin = torch.nn.Sequential(*(torch_module(layer) for layer in D.layers))
    x, dout = normal((6, D[0].inner.in_features if not conv else 36), 5), normal((6, 1), 6)
    for _ in range(3):
        D.zero_grad()
        out = D.forward(x)
        dx = D.backward(dout)
        x_t = torch.tensor(x, requires_grad=True)
        twin.zero_grad()
        out_t = twin(x_t)
        out_t.backward(torch.from_numpy(dout))
        assert rel_error(out, out_t.detach()) < TOL64 and rel_error(dx, x_t.grad) < TOL64
        for i, layer in enumerate(D.layers):
            if isinstance(layer, SpectralNorm):
                W_t, dW_t, _, u_t, v_t = torch_state(twin[i])
                assert rel_error(layer.grads["W"], dW_t) < TOL64
                assert rel_error(layer.grads["b"], twin[i].bias.grad) < TOL64
                assert rel_error(layer.buffers["u"], u_t) < TOL64
                assert rel_error(layer.buffers["v"], v_t) < TOL64
        for k, p in D.params.items():  # move the weights, both sides
            p -= 0.1 * D.grads[k]
        with torch.no_grad():
            for module in twin:
                if hasattr(module, "parametrizations"):
                    original = module.parametrizations.weight.original
                    original -= 0.1 * original.grad
                    module.bias -= 0.1 * module.bias.grad
