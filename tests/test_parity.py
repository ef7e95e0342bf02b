"""Parity with PyTorch: minigan computes what PyTorch computes, at every level.

Layers against autograd, losses against ``nn.BCELoss`` / ``nn.BCEWithLogitsLoss``, optimizers
against ``torch.optim`` over 200 steps, and the whole GAN against its PyTorch twin
(reference/torch_gan.py) over 50 alternating steps from the same weights, batches and noise.

One measure, :func:`rel_error`: the largest difference over the largest reference entry.
float64 is where exactness shows: 1e-10 for one pass, 1e-12 after 200 optimizer steps, 1e-9
after 50 GAN steps (what is measured is ~1e-15 to 1e-13). float32 is held to 1e-6 for optimizers
and 1e-4 for the GAN, which a float64 computation would meet too: that nothing is computed in the
wrong precision, the dtype of every array a step computes shows (tests/precision.py). At full
width a float32 GAN run is kept to 2 steps and measured in norm, for the reason given in
test_gan_parity_default_widths_float32.
"""

import re

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="the parity tests compare minigan with PyTorch; install the reference extra: "
    "pip install -e '.[reference]'"
)

from minigan import backend, layers, losses, optim  # noqa: E402
from minigan.gan import (  # noqa: E402
    discriminator_step,
    generator_step,
    make_discriminator,
    make_generator,
    sample_noise,
    train_step,
)
from precision import assert_computes_in  # noqa: E402
from reference import compare  # noqa: E402
from reference.torch_gan import TorchGAN, load_minigan_weights, twin_of  # noqa: E402
from reference.torch_gan import make_discriminator as torch_discriminator  # noqa: E402
from reference.torch_gan import make_generator as torch_generator  # noqa: E402

TOL64 = 1e-10  # one forward/backward pass in float64: what rounding alone leaves is ~1e-15

# --- one helper per kind of check -------------------------------------------------------------


def host(a):
    """A NumPy array from a minigan (NumPy) array, a tensor (detached) or a Python number."""
    return a.detach().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def rel_error(ours, theirs, floor=0.0):
    """``max|ours - theirs| / max(max|theirs|, floor)``: one number per array.

    Measured against the reference's largest entry, so an entry that is almost zero (where only
    rounding is left) cannot dominate, while a wrong formula still shows at order 1. ``floor``
    is the scale below which a difference is rounding, used where a value is a difference of
    much larger terms (said where it is used).
    """
    ours, theirs = host(ours), host(theirs)
    assert ours.shape == theirs.shape, f"shape {ours.shape}, PyTorch has {theirs.shape}"
    assert np.isfinite(ours).all(), "minigan produced inf or NaN"
    scale = max(float(np.abs(theirs).max()), floor)
    diff = float(np.abs(ours - theirs).max())
    return diff / scale if scale > 0 else diff


def assert_parity(name, ours, theirs, tol, floor=0.0):
    err = rel_error(ours, theirs, floor)
    assert err < tol, f"{name}: relative error {err:.2e} against PyTorch, tolerance {tol:.0e}"
    return err


def torch_params(twin):
    """``{"<i>.W": (in, out) array, "<i>.b": (out,) array}`` of a torch twin, minigan's keys."""
    out = {}
    for i, module in enumerate(twin):
        if isinstance(module, torch.nn.Linear):
            out[f"{i}.W"] = host(module.weight).T
            out[f"{i}.b"] = host(module.bias)
    return out


def check_layer_parity(layer, x, dout):
    """forward, dx and every parameter gradient of a minigan layer (or Sequential) against
    autograd through its torch twin (reference.torch_gan.twin_of), float64, < 1e-10."""
    seq = layer if isinstance(layer, layers.Sequential) else layers.Sequential(layer)
    twin = twin_of(seq)  # same layers, same weights
    layer.zero_grad()
    out = layer.forward(x)
    dx = layer.backward(dout)

    x_t = torch.tensor(x, requires_grad=True)
    out_t = twin(x_t)
    out_t.backward(torch.from_numpy(dout))  # the vector-Jacobian product with dout

    assert_parity("out", out, out_t, TOL64)
    assert_parity("dx", dx, x_t.grad, TOL64)
    for key in seq.grads:  # "0.W", "0.b", ...
        i, name = key.split(".")
        module = twin[int(i)]
        theirs = module.weight.grad.T if name == "W" else module.bias.grad  # W is (in, out)
        assert_parity(f"grad {key}", seq.grads[key], theirs, TOL64)


def normal(shape, seed, scale=1.0):
    return scale * np.random.default_rng(seed).standard_normal(shape)


def with_zeros(x, seed):
    """x with a few entries set to exactly 0, where (Leaky)ReLU's two branches meet: minigan
    takes the slope branch there, as PyTorch does."""
    x = x.copy()
    mask = np.random.default_rng(seed).random(x.shape) < 0.2
    x[mask] = 0.0
    return x


# --- layers ---------------------------------------------------------------------------------

DENSE_SHAPES = [(1, 1, 1), (5, 4, 3), (3, 13, 29), (7, 784, 1), (64, 100, 256)]  # (N, in, out)
ACTIVATION_SHAPES = [(1, 1), (5, 4), (64, 256), (3, 784), (2, 3, 4)]  # any shape


@pytest.mark.parametrize("shape", DENSE_SHAPES, ids=str)
def test_dense_parity(shape):
    n, d_in, d_out = shape
    layer = layers.Dense(d_in, d_out, rng=backend.default_rng(n + d_in), dtype="float64")
    check_layer_parity(layer, normal((n, d_in), 1), normal((n, d_out), 2))


ACTIVATIONS = {
    "LeakyReLU(0.01)": lambda: layers.LeakyReLU(0.01),
    "LeakyReLU(0.2)": lambda: layers.LeakyReLU(0.2),
    "LeakyReLU(0.5)": lambda: layers.LeakyReLU(0.5),
    "ReLU": layers.ReLU,
    "Tanh": layers.Tanh,
    "Sigmoid": layers.Sigmoid,
}


@pytest.mark.parametrize("shape", ACTIVATION_SHAPES, ids=str)
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_parity(name, shape):
    x = with_zeros(normal(shape, 3, scale=3.0), 4)
    check_layer_parity(ACTIVATIONS[name](), x, normal(shape, 5))


@pytest.mark.parametrize("name", ["Tanh", "Sigmoid"])
def test_saturating_activation_parity_at_extremes(name):
    # tanh and sigmoid round to exactly +-1 / 0 / 1 out here, and the gradient to exactly 0;
    # the stable sigmoid must not overflow at -1e4 where the naive form's exp(1e4) would.
    x = np.array([[-1e4, -100.0, -30.0, -5.0, 0.0, 5.0, 30.0, 100.0, 1e4]])
    check_layer_parity(ACTIVATIONS[name](), x, normal(x.shape, 6))


SEQUENTIALS = {
    "generator": lambda rng: make_generator(8, (16, 32), 12, rng=rng, dtype="float64"),
    "discriminator": lambda rng: make_discriminator(12, (32, 16), rng=rng, dtype="float64"),
    "relu-sigmoid": lambda rng: layers.Sequential(
        layers.Dense(6, 9, rng=rng, dtype="float64"), layers.ReLU(),
        layers.Dense(9, 4, rng=rng, dtype="float64"), layers.Sigmoid()),
    "tanh-leaky": lambda rng: layers.Sequential(
        layers.Dense(5, 7, rng=rng, dtype="float64"), layers.Tanh(),
        layers.Dense(7, 7, rng=rng, dtype="float64"), layers.LeakyReLU(0.01),
        layers.Dense(7, 3, rng=rng, dtype="float64")),
    "default generator": lambda rng: make_generator(rng=rng, dtype="float64"),
}


@pytest.mark.parametrize("name", list(SEQUENTIALS))
def test_sequential_parity(name):
    seq = SEQUENTIALS[name](backend.default_rng(7))
    d_in = seq[0].in_features
    x = normal((6, d_in), 8)
    check_layer_parity(seq, x, normal(seq.forward(x).shape, 9))


# --- losses ---------------------------------------------------------------------------------

TARGETS = {  # name -> a function of the input's shape: a scalar target or an array of targets
    "1": lambda shape: 1.0,
    "0": lambda shape: 0.0,
    "0.9": lambda shape: 0.9,  # one-sided label smoothing
    "random": lambda shape: np.random.default_rng(10).random(shape),
}
SATURATED_LOGITS = np.array([[30.0], [-30.0], [100.0], [-100.0], [1e4], [-1e4]])  # (6, 1)
LOGITS = {
    "normal": normal((64, 1), 11, scale=3.0),
    "saturated": SATURATED_LOGITS,
    "mixed": np.concatenate([normal((10, 1), 12), SATURATED_LOGITS]),
}
# Every probability, 0 and 1 exactly included (torch clamps each log at -100 there).
PROBS = {
    "uniform": np.random.default_rng(13).random((64, 1)),
    "extreme": np.array([[0.0], [1.0], [1e-20], [1e-300], [1 - 1e-16], [0.5]]),
    "mixed": np.concatenate([np.random.default_rng(14).random((10, 1)), [[0.0], [1.0]]]),
}


def torch_targets(t, like):
    return torch.full_like(like, t) if np.isscalar(t) else torch.from_numpy(t)


def check_loss_parity(fn, torch_fn, x, value_floor=0.0, grad_tol=TOL64):
    """Value and gradient of a minigan loss ``fn(x) -> (loss, dL/dx)`` against ``torch_fn`` of a
    tensor, through autograd (float64, < 1e-10).

    The gradient's floor is 1/n: each entry is (sigmoid(x) - t) / n or alike, a difference of
    numbers up to 1 scaled by 1/n, so its rounding is ~1e-16/n however small the entry is.
    """
    loss, grad = fn(x)
    x_t = torch.tensor(x, requires_grad=True)
    loss_t = torch_fn(x_t)
    loss_t.backward()
    assert_parity("loss", loss, loss_t, TOL64, floor=value_floor)
    assert_parity("grad", grad, x_t.grad, grad_tol, floor=1.0 / x.size)


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("case", list(LOGITS))
def test_bce_with_logits_parity(case, target):
    x = LOGITS[case]
    t = TARGETS[target](x.shape)
    # The loss (1 - t) x + softplus(-x) cancels terms as large as |x| (x = -30, t = 0 gives
    # -30 + 30.000000000000092): its rounding is relative to max|x|, not to the tiny result.
    # minigan writes it as torch does, and today the two round alike (measured 2e-16), but one
    # ulp of 30 elsewhere would be 4% of that 9.2e-14 loss; the floor allows a few such ulps.
    check_loss_parity(lambda x: losses.bce_with_logits(x, t),
                      lambda x_t: torch.nn.BCEWithLogitsLoss()(x_t, torch_targets(t, x_t)),
                      x, value_floor=float(np.abs(x).max()) * 1e-5)


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("case", list(PROBS))
def test_bce_parity(case, target):
    p = PROBS[case]
    t = TARGETS[target](p.shape)
    # Where p (1 - p) < 1e-12 both divide by a floor instead, but torch's floor is the float32
    # constant 1e-12f = 9.99999996e-13 (ATen's Loss.cpp: `constexpr float EPSILON = 1e-12`) and
    # minigan's the float64 1e-12: those gradient entries (~1e12 / n) differ by 4e-9 relative.
    clamped = bool((p * (1 - p) < 1e-12).any())
    with np.errstate(divide="ignore"):  # log(0) = -inf before the clamp at -100, as in torch
        check_loss_parity(lambda p: losses.bce(p, t),
                          lambda p_t: torch.nn.BCELoss()(p_t, torch_targets(t, p_t)), p,
                          grad_tol=1e-8 if clamped else TOL64)


@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_softmax_cross_entropy_parity(scale):
    x = normal((64, 10), 15, scale=scale)
    y = np.random.default_rng(16).integers(0, 10, 64)
    check_loss_parity(lambda x: losses.softmax_cross_entropy(x, y),
                      lambda x_t: torch.nn.CrossEntropyLoss()(x_t, torch.from_numpy(y)), x,
                      value_floor=scale * 1e-12)


GENERATOR_LOSSES = {  # minigan's loss -> the same loss built from nn.BCEWithLogitsLoss
    "nonsaturating": (losses.generator_loss_nonsaturating,  # mean(-log D(G(z)))
                      lambda x: torch.nn.BCEWithLogitsLoss()(x, torch.ones_like(x))),
    "minimax": (losses.generator_loss_minimax,  # mean(log(1 - D(G(z))))
                lambda x: -torch.nn.BCEWithLogitsLoss()(x, torch.zeros_like(x))),
}


@pytest.mark.parametrize("case", list(LOGITS))
@pytest.mark.parametrize("name", list(GENERATOR_LOSSES))
def test_generator_loss_parity(name, case):
    fn, torch_fn = GENERATOR_LOSSES[name]
    x = LOGITS[case]
    # the same cancellation as in bce_with_logits (minimax at x = -1e4: softplus(-1e4) = 0)
    check_loss_parity(fn, torch_fn, x, value_floor=float(np.abs(x).max()) * 1e-5)


# --- optimizers -----------------------------------------------------------------------------

OPTIMIZERS = {  # name -> (minigan class, torch class, keyword arguments both accept)
    "SGD": (optim.SGD, torch.optim.SGD, dict(lr=0.05)),
    "SGD momentum": (optim.SGD, torch.optim.SGD, dict(lr=0.01, momentum=0.9)),
    "SGD nesterov": (optim.SGD, torch.optim.SGD, dict(lr=0.01, momentum=0.9, nesterov=True)),
    "SGD weight decay": (optim.SGD, torch.optim.SGD, dict(lr=0.05, weight_decay=0.1)),
    "SGD dampening": (optim.SGD, torch.optim.SGD, dict(lr=0.01, momentum=0.9, dampening=0.3)),
    "SGD all": (optim.SGD, torch.optim.SGD,
                dict(lr=0.01, momentum=0.8, nesterov=True, weight_decay=0.05)),
    "Adam": (optim.Adam, torch.optim.Adam, dict(lr=1e-3)),
    "Adam gan": (optim.Adam, torch.optim.Adam, dict(lr=2e-4, betas=(0.5, 0.999))),
    "Adam weight decay": (optim.Adam, torch.optim.Adam, dict(lr=1e-3, weight_decay=0.1)),
    "Adam large eps": (optim.Adam, torch.optim.Adam,
                       dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-3, weight_decay=0.01)),
    "RMSprop": (optim.RMSprop, torch.optim.RMSprop, dict(lr=0.01)),
    "RMSprop momentum": (optim.RMSprop, torch.optim.RMSprop, dict(lr=0.002, momentum=0.9)),
    "RMSprop centered": (optim.RMSprop, torch.optim.RMSprop, dict(lr=0.005, centered=True)),
    "RMSprop all": (optim.RMSprop, torch.optim.RMSprop,
                    dict(lr=0.002, alpha=0.9, eps=1e-3, weight_decay=0.1, momentum=0.5,
                         centered=True)),
}
OPTIM_TOL = {"float64": 1e-12, "float32": 1e-6}
PARAM_SHAPES = [(7, 5), (5,), (3, 4, 2)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_parity(name, dtype):
    """200 steps on one random gradient sequence, fed to both: the same parameters."""
    ours_cls, torch_cls, kwargs = OPTIMIZERS[name]
    rng = np.random.default_rng(15)
    start = [rng.standard_normal(s).astype(dtype) for s in PARAM_SHAPES]
    ours = [layers.Param(f"p{i}", p.copy(), np.zeros_like(p)) for i, p in enumerate(start)]
    theirs = [torch.tensor(p, requires_grad=True) for p in start]
    opt, opt_t = ours_cls(ours, **kwargs), torch_cls(theirs, **kwargs)
    for _ in range(200):
        scale = np.exp(rng.standard_normal())  # gradients of every size, step to step
        for p, p_t in zip(ours, theirs):
            g = (scale * rng.standard_normal(p.data.shape)).astype(dtype)
            p.grad[...] = g
            p_t.grad = torch.from_numpy(g.copy())
        opt.step()
        opt_t.step()
    for p, p_t in zip(ours, theirs):
        assert_parity(p.name, p.data, p_t, OPTIM_TOL[dtype])


# --- the whole GAN --------------------------------------------------------------------------

SMALL = dict(latent_dim=16, g_hidden=(32, 64), d_hidden=(64, 32))  # widths; images stay 784
DEFAULT = dict(latent_dim=100, g_hidden=(256, 512, 1024), d_hidden=(1024, 512, 256))


def make_gan(widths, dtype, seed):
    rng = backend.default_rng(seed)
    G = make_generator(widths["latent_dim"], widths["g_hidden"], rng=rng, dtype=dtype)
    D = make_discriminator(784, widths["d_hidden"], rng=rng, dtype=dtype)
    return G, D


def train_twins(images, widths, dtype, steps, k, gen_loss, real_target, seed=0):
    """minigan and its twin from one initialisation, fed the same batches and noise.

    Returns (G, D, twin, ours, theirs); ours and theirs are (number of D and G steps, 3)
    arrays of the losses and D's mean outputs, one row per D step and one per G step.
    """
    G, D = make_gan(widths, dtype, seed)
    twin = TorchGAN.from_minigan(G, D, gen_loss=gen_loss)  # copies G's and D's weights
    opt_G = optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_D = optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    noise = backend.default_rng(seed + 1)
    x = images.astype(dtype)
    ours, theirs, batch = [], [], 0
    for _ in range(steps):
        for _ in range(k):
            real = x[64 * batch:64 * (batch + 1)]  # (64, 784)
            batch += 1
            z = sample_noise(noise, 64, widths["latent_dim"], dtype)
            ours.append([float(v) for v in discriminator_step(G, D, opt_D, real, z, real_target)])
            theirs.append([float(v) for v in twin.d_step(real, z, real_target)])
        z = sample_noise(noise, 64, widths["latent_dim"], dtype)
        ours.append([float(generator_step(G, D, opt_G, z, gen_loss)), 0, 0])
        theirs.append([float(twin.g_step(z)), 0, 0])
    return G, D, twin, np.array(ours), np.array(theirs)


GAN_TOL = {"float64": 1e-9, "float32": 1e-4}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("gen_loss", ["nonsaturating", "minimax"])
@pytest.mark.parametrize("k", [1, 2])
def test_gan_parity_50_steps(mnist_f64, k, gen_loss, dtype):
    """50 alternating steps at small widths: every loss on the way and the final weights."""
    real_target = 0.9 if gen_loss == "minimax" else 1.0  # label smoothing in half the runs
    G, D, twin, ours, theirs = train_twins(mnist_f64, SMALL, dtype, 50, k, gen_loss, real_target)
    tol = GAN_TOL[dtype]
    assert_parity("losses and D outputs", ours, theirs, tol)
    for name, net, net_t in (("G", G, twin.G), ("D", D, twin.D)):
        for key, value in torch_params(net_t).items():
            assert_parity(f"{name} {key}", net.params[key], value, tol)
    # 1e-4 cannot tell float32 arithmetic from float64: the arrays' dtypes can
    assert_computes_in(np.dtype(dtype), G, D, sample_noise(backend.default_rng(9), 8,
                                                           SMALL["latent_dim"], dtype))


def test_gan_parity_default_widths_float64(mnist_f64):
    """The default networks (1.5M weights each), 10 steps in float64, label smoothing on."""
    G, D, twin, ours, theirs = train_twins(mnist_f64, DEFAULT, "float64", 10, 1, "nonsaturating",
                                           0.9)
    assert_parity("losses and D outputs", ours, theirs, 1e-9)
    for name, net, net_t in (("G", G, twin.G), ("D", D, twin.D)):
        for key, value in torch_params(net_t).items():
            assert_parity(f"{name} {key}", net.params[key], value, 1e-9)


def test_gan_parity_default_widths_float32(mnist_f64):
    """The default recipe in float32, 2 steps: losses to 1e-6, each weight tensor to 1e-4 in norm.

    Why so short, and why in norm: the two sides round differently from the first matrix product
    (the kernels sum in different orders, ~1e-7), and training amplifies that. Adam's first steps
    move each weight by about lr * g / (|g| + eps), so an entry whose gradient is near eps = 1e-8,
    where float32 rounding is a sizeable part of it, moves by a visibly different amount on the
    two sides: after one step single entries differ by up to 1e-4 of the tensor's largest (that
    is float32, not a bug). A pre-activation within rounding of 0 takes the other LeakyReLU
    branch on one side, and within ~20 steps such events grow into visibly different
    trajectories, just as PyTorch in float32 drifts from PyTorch in float64 from the same start.
    Exactness over many steps is float64's to show: test_gan_parity_default_widths_float64, and
    `python -m reference.compare` (500 steps within about 1e-10). Measured over 12 seeds after 2 steps:
    losses <= 9e-8, norm error <= 3e-6.
    """
    G, D, twin, ours, theirs = train_twins(mnist_f64, DEFAULT, "float32", 2, 1, "nonsaturating",
                                           1.0)
    assert_parity("losses and D outputs", ours, theirs, 1e-6)
    for name, net, net_t in (("G", G, twin.G), ("D", D, twin.D)):
        for key, value in torch_params(net_t).items():
            err = np.linalg.norm(net.params[key] - value) / np.linalg.norm(value)
            assert err < 1e-4, f"{name} {key}: relative error in norm {err:.2e} > 1e-4"


def test_train_step_matches_twin_train_step(mnist_f64):
    """minigan.gan.train_step itself (noise drawn inside, k = 2) against the twin fed the noise
    of an identically seeded generator, drawn in train_step's order: one z per D step, one for G."""
    G, D = make_gan(SMALL, "float64", 0)
    twin = TorchGAN.from_minigan(G, D, gen_loss="minimax")
    opt_G = optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_D = optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    rng, rng_twin = backend.default_rng(3), backend.default_rng(3)
    batches = iter(mnist_f64[i:i + 64] for i in range(0, 64 * 20, 64))
    for _ in range(10):
        reals = [next(batches), next(batches)]
        ours = train_step(G, D, opt_G, opt_D, iter(reals).__next__, rng, k=2,
                          gen_loss="minimax", real_target=0.9, latent_dim=16)
        zs = [sample_noise(rng_twin, 64, 16, "float64") for _ in range(3)]
        theirs = twin.train_step(reals, zs, real_target=0.9)
        for field in ("d_loss", "g_loss", "d_real", "d_fake"):
            assert_parity(field, getattr(ours, field), getattr(theirs, field), 1e-9)


def test_twin_generator_step_leaves_discriminator_alone():
    """In the twin's G step, backward fills D's .grad but D's weights and Adam state stay."""
    torch.manual_seed(0)  # nn.Linear's initialisation and the inputs below
    twin = TorchGAN(torch_generator(8, (16,), 12), torch_discriminator(12, (16,)))
    twin.d_step(torch.randn(4, 12), torch.randn(4, 8))  # so that opt_D has state to keep
    before = [p.detach().clone() for p in twin.D.parameters()]
    state = [s["exp_avg"].clone() for s in twin.opt_D.state.values()]
    twin.g_step(torch.randn(4, 8))
    assert all(torch.equal(a, p) for a, p in zip(before, twin.D.parameters()))
    assert all(torch.equal(a, s["exp_avg"]) for a, s in zip(state, twin.opt_D.state.values()))
    assert any(p.grad.abs().sum() > 0 for p in twin.D.parameters())  # written, but never used


# --- loading weights ------------------------------------------------------------------------


def test_load_minigan_weights_transposes():
    G, _ = make_gan(SMALL, "float32", 0)
    G_t = torch_generator(16, (32, 64), 784)
    load_minigan_weights(G_t, G)
    for i in (0, 2, 4):
        assert G_t[i].weight.shape == (G[i].out_features, G[i].in_features)  # (out, in)
        assert np.array_equal(host(G_t[i].weight), G[i].params["W"].T)
        assert np.array_equal(host(G_t[i].bias), G[i].params["b"])
    z = sample_noise(backend.default_rng(1), 5, 16)
    assert_parity("G(z)", G.forward(z), G_t(torch.from_numpy(z)), 1e-5)  # float32 rounding


@pytest.mark.parametrize("which", ["G", "D"])
def test_default_mlp_loads_into_the_reference_builders(which):
    """The MLP twins above are made by twin_of, which mirrors minigan's own layer list: a wrong
    slope or a lost activation in minigan.gan's builders would be copied into the twin and pass.
    reference/torch_gan.py's builders are written from the architecture; minigan's default G and
    D load into them (load_minigan_weights refuses another width, slope or layer) and compute the
    same function in float64."""
    rng = backend.default_rng(0)
    if which == "G":
        net, net_t = make_generator(rng=rng, dtype="float64"), torch_generator(dtype="float64")
        x = sample_noise(rng, 8, 100, "float64")
    else:
        net, net_t = make_discriminator(rng=rng, dtype="float64"), torch_discriminator(
            dtype="float64")
        x = rng.uniform(-1, 1, (8, 784))
    load_minigan_weights(net_t, net)
    assert_parity(which, net.forward(x), net_t(torch.from_numpy(x)), 1e-12)


@pytest.mark.parametrize("torch_net", [
    lambda: torch_generator(16, (32, 48), 784),  # a different width
    lambda: torch_generator(16, (32, 64), 784, slope=0.1),  # a different slope
    lambda: torch_generator(16, (32, 64, 64), 784),  # one layer more
    lambda: torch_discriminator(784, (64, 32)),  # the other network
])
def test_load_minigan_weights_rejects_other_architectures(torch_net):
    G, _ = make_gan(SMALL, "float32", 0)
    with pytest.raises(ValueError, match="architectures differ") as error:
        load_minigan_weights(torch_net(), G)
    # the message lists both, layer by layer
    assert "Linear(16, 32), LeakyReLU(0.2), Linear(32, 64)" in str(error.value)


# --- the side-by-side script ----------------------------------------------------------------


def test_compare_script_losses_agree(tmp_path, capsys):
    png = tmp_path / "losses.png"
    history = compare.main(["--steps", "4", "--every", "2", "--limit", "256",
                            "--out", str(png)])
    assert png.is_file() and png.stat().st_size > 0
    rows = [line for line in capsys.readouterr().out.splitlines()
            if re.match(r"\s*\d+ \|", line)]
    assert len(rows) == 2  # steps 2 and 4
    for row in rows:
        d_ours, d_theirs, _, g_ours, g_theirs, _ = map(float, re.findall(r"[-\d.e+]+", row)[1:])
        assert abs(d_ours - d_theirs) <= 1e-7 * abs(d_theirs)  # the table prints 8 decimals
        assert abs(g_ours - g_theirs) <= 1e-7 * abs(g_theirs)
    assert_parity("D loss", np.array(history["minigan_d_loss"]),
                  np.array(history["torch_d_loss"]), 1e-9)
