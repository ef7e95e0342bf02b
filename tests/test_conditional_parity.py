"""The conditional GANs against their PyTorch twin (reference/torch_conditional.py), float64.

Layer by layer: the embedding against ``nn.Embedding`` (repeated labels), softmax
cross-entropy against ``F.cross_entropy``, and each conditional D's output, dx and every
parameter's gradient against autograd through its twin. Whole steps: 20 steps of
minigan.gan.train_step for each variant (MLP; the 2014 game, and hinge, least squares, WGAN with
clipping, hinge with spectral norm under torch's spectral_norm), and 20 for each DCGAN variant,
next to the twin fed the same real batches and MNIST labels and the same noise and fake labels,
which the twin gets by replaying a second generator seeded alike in train_step's order (z, then
the labels, for each D step; then G's), so the test pins that order too. Compared with
test_parity's rel_error: L_D, L_G, mean D(x), mean D(G(z)) of every step, and every parameter and
BatchNorm statistic of G and D at the end, to 1e-10, except the DCGAN's biases that feed a
BatchNorm and those BatchNorms' running means (1e-8; said where). The DCGAN is its design with few
channels (DCGAN_CHANNELS). Measured (seed 0): the MLP's sequences within 9e-16 and parameters within
1e-14; the DCGAN's sequences within 2.6e-15, its other parameters and statistics within 2.5e-14, and
the biases that feed a BatchNorm (and those BatchNorms' running means) within 3.9e-10 (with the
paper's channels: 5e-13, 7.4e-12 and 1.4e-9).
"""

import functools

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="the parity tests compare minigan with PyTorch; install the reference extra: "
    "pip install -e '.[reference]'"
)

from minigan import backend, gan, losses, models, optim, tricks  # noqa: E402
from minigan.conditional import Embedding  # noqa: E402
from minigan.data import load_mnist, to_model_input  # noqa: E402
from minigan.gan import sample_noise, train_step  # noqa: E402
from reference import torch_conditional  # noqa: E402
from reference.torch_conditional import TorchConditionalGAN, conditional_twin  # noqa: E402
from test_parity import assert_parity, host  # noqa: E402
from test_conditional import VARIANTS, tiny_cfg  # noqa: E402

import torch.nn.functional as F  # noqa: E402

TOL = 1e-10


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def mnist_labelled():
    """MNIST's test split: images (10000, 784) float64 in [-1, 1], labels (10000,) int64."""
    images, labels = load_mnist("test")
    return to_model_input(images, dtype="float64"), labels.astype(np.int64)


# ---- the new layer and loss ---------------------------------------------------------------


@pytest.mark.parametrize("n,classes,dim", [(1, 1, 1), (6, 10, 4), (64, 10, 256), (33, 3, 7)])
def test_embedding_parity(n, classes, dim):
    """forward and the gradient of the table (duplicates add) against nn.Embedding."""
    rng = np.random.default_rng(n + classes)
    labels = rng.integers(0, classes, n)
    dout = rng.standard_normal((n, dim))
    layer = Embedding(classes, dim, rng=backend.default_rng(0), dtype="float64")
    layer.zero_grad()
    out = layer.forward(labels)
    layer.backward(dout)
    twin = torch_conditional.embedding_twin(layer)
    out_t = twin(torch.from_numpy(labels))
    out_t.backward(torch.from_numpy(dout))
    assert_parity("out", out, out_t, TOL)
    assert_parity("dW", layer.grads["W"], twin.weight.grad, TOL)


@pytest.mark.parametrize("classes", [2, 10, 37])
def test_softmax_cross_entropy_parity_with_repeated_labels(classes):
    rng = np.random.default_rng(classes)
    logits = rng.standard_normal((50, classes)) * 4
    labels = rng.integers(0, min(classes, 3), 50)  # few classes: many repeats
    loss, grad = losses.softmax_cross_entropy(logits, labels)
    x = torch.tensor(logits, requires_grad=True)
    loss_t = F.cross_entropy(x, torch.from_numpy(labels))
    loss_t.backward()
    assert_parity("loss", loss, loss_t, TOL)
    assert_parity("grad", grad, x.grad, TOL)


# ---- each conditional D, one forward and backward ----------------------------------------


def twin_state(net):
    """minigan's keys ({**params, **buffers}) for a twin of a conditional network."""
    if isinstance(net, torch_conditional.ProjectionD):
        psi = {f"psi.{k[2:]}": v for k, v in seq_state([net.psi]).items()}
        return {**seq_state(net.phi, "phi."), **psi, "embed.W": host(net.embed.weight)}
    return seq_state(net.net)


def seq_state(seq, prefix=""):
    """A twin Sequential's state under minigan's keys; a Linear under torch's spectral_norm
    gives its trained weight (parametrizations.weight.original) and u, v."""
    out = {}
    for i, m in enumerate(seq):
        key = f"{prefix}{i}."
        if isinstance(m, torch.nn.Linear) and torch.nn.utils.parametrize.is_parametrized(m):
            norm = m.parametrizations.weight
            out[key + "W"], out[key + "b"] = host(norm.original).T, host(m.bias)
            out[key + "u"], out[key + "v"] = host(norm[0]._u), host(norm[0]._v)
        elif isinstance(m, torch.nn.Linear):
            out[key + "W"], out[key + "b"] = host(m.weight).T, host(m.bias)
        elif isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            out[key + "W"], out[key + "b"] = host(m.weight), host(m.bias)
        elif isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            out[key + "gamma"], out[key + "beta"] = host(m.weight), host(m.bias)
            out[key + "running_mean"] = host(m.running_mean)
            out[key + "running_var"] = host(m.running_var)
    return out


def twin_grads(net):
    """The twin's parameter gradients under minigan's keys."""
    grads = {}
    for name, p in net.named_parameters():
        *path, kind = name.split(".")
        path = [part for part in path if part != "net"]
        if path[-1] in ("psi", "embed"):
            key = {"weight": "W", "bias": "b"}[kind]
            grads[f"{path[-1]}.{key}"] = host(p.grad).T if path[-1] == "psi" else host(p.grad)
            continue
        module = dict(net.named_modules())[".".join(name.split(".")[:-1])]
        key = {"weight": "gamma", "bias": "beta"} if isinstance(
            module, torch.nn.modules.batchnorm._BatchNorm) else {"weight": "W", "bias": "b"}
        g = host(p.grad)
        grads[".".join([*path, key[kind]])] = g.T if isinstance(module, torch.nn.Linear) else g
    return grads


@pytest.mark.parametrize("model", ["mlp", "dcgan"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_discriminator_parity(variant, model):
    """D(x, y), dx and every parameter's gradient (the embedding's included) against autograd."""
    data_dim = 784 if model == "dcgan" else 12
    D = models.build_discriminator(tiny_cfg(variant, model=model), backend.default_rng(0),
                                   data_dim=data_dim)
    twin = conditional_twin(D)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (9, data_dim))
    labels = np.array([3, 3, 3, 0, 9, 1, 3, 0, 5])
    out = D.forward(x, labels)
    dout = rng.standard_normal(out.shape)
    D.zero_grad()
    dx = D.backward(dout)
    x_t = torch.tensor(x, requires_grad=True)
    out_t = twin(x_t, torch.from_numpy(labels))
    out_t.backward(torch.from_numpy(dout))
    assert_parity("out", out, out_t, TOL)
    assert_parity("dx", dx, x_t.grad, TOL)
    theirs = twin_grads(twin)
    assert sorted(theirs) == sorted(D.grads)
    for key, g in D.grads.items():
        # floor 1, as tests/test_conv_parity.py: a bias that feeds a BatchNorm has a gradient of
        # exactly 0 in exact arithmetic; both sides hold rounding (~1e-17) there
        assert_parity(f"grad {key}", g, theirs[key], TOL, floor=1.0)


# ---- whole steps ------------------------------------------------------------------------

GAMES = {  # name -> (variant, model, train_step's game, k, steps, batch size, options)
    "concat": ("concat", "mlp", {}, 1, 20, 64),
    "projection": ("projection", "mlp", {}, 1, 20, 64),
    "acgan": ("acgan", "mlp", {}, 1, 20, 64),
    "projection hinge k=2": ("projection", "mlp", dict(loss="hinge"), 2, 20, 64),
    "acgan lsgan": ("acgan", "mlp", dict(loss="lsgan"), 1, 20, 64),
    "concat wgan clip": ("concat", "mlp", dict(loss="wgan", clip=0.01), 2, 20, 64),
    "concat dcgan": ("concat", "dcgan", {}, 1, 20, 16),
    "projection dcgan": ("projection", "dcgan", {}, 1, 20, 16),
    "acgan dcgan": ("acgan", "dcgan", {}, 1, 20, 16),
    # SN-GAN's recipe with each D: hinge, spectral norm (the projection's embedding unnormalised)
    "projection hinge sn": ("projection", "mlp", dict(loss="hinge"), 1, 20, 64,
                            dict(spectral_norm=1)),
    "concat hinge sn": ("concat", "mlp", dict(loss="hinge"), 1, 20, 64, dict(spectral_norm=1)),
    "acgan hinge sn": ("acgan", "mlp", dict(loss="hinge"), 1, 20, 64, dict(spectral_norm=1)),
    # G's average (--ema) on a G with BatchNorm: weights averaged, running statistics copied
    "acgan dcgan ema": ("acgan", "dcgan", {}, 1, 20, 16, dict(ema=0.999)),
}


# A bias that feeds a BatchNorm (the DCGAN's) has a gradient of exactly 0 in exact arithmetic:
# BatchNorm subtracts every per-channel constant. Both sides hold the rounding of a sum that
# cancels (~1e-17), which Adam divides by its own root mean square, so the two copies of such a
# bias, and the running mean of the BatchNorm it feeds, drift apart faster than anything that
# matters: measured over the 20 DCGAN steps, up to 3.8e-10 (AC-GAN's G 5.running_mean; 1.4e-9
# with the paper's channels), while every other parameter and statistic stays within 2.5e-14
# and every loss within 2.6e-15 (7.4e-12 and 5e-13 with the paper's channels). Nothing
# downstream sees them (the BatchNorm removes them), so they get 1e-8 and the rest TOL.
BIAS_BEFORE_BATCHNORM_TOL = 1e-8


def beside_batchnorm(key, state):
    """Is key ("4.b", "phi.4.b", "5.running_mean") a bias that feeds a BatchNorm, or that
    BatchNorm's running mean? Layer i feeds a BatchNorm when state has i+1's running mean."""
    head, _, what = key.rpartition(".")
    prefix, _, index = head.rpartition(".")
    if not index.isdigit():
        return False
    if what == "running_mean":
        return f"{prefix}.{int(index) - 1}.b".lstrip(".") in state
    return what == "b" and f"{prefix}.{int(index) + 1}.running_mean".lstrip(".") in state


# The DCGAN's games run on its design with few channels, as tests/test_conv_parity.py's tiny
# DCGAN (G's (6, 4), D's (4, 6)): every layer of the real one, in about a twelfth of the time
# (the paper's channels, 128, 64 and 64, 128, took 40 s for the four games; measured back to
# back with pytest --durations on the 2-core machine, 2026-12-02).
DCGAN_CHANNELS = {"make_dcgan_generator": (6, 4), "make_dcgan_discriminator": (4, 6)}


def few_channels(monkeypatch):
    """models.build's DCGAN G and D with DCGAN_CHANNELS (models.build has no setting for them:
    the command line trains the paper's widths)."""
    for name, channels in DCGAN_CHANNELS.items():
        monkeypatch.setattr(gan, name, functools.partial(getattr(gan, name), channels=channels))


def replay_draws(rng, k, n, latent_dim):
    """What conditional_train_step draws from rng in one step, in its order: (z, labels) for
    each D step, then G's."""
    return [(sample_noise(rng, n, latent_dim, "float64"), rng.integers(0, 10, size=n))
            for _ in range(k + 1)]


@pytest.mark.parametrize("name", list(GAMES))
def test_conditional_gan_parity(mnist_labelled, name, monkeypatch):
    variant, model, game, k, steps, n, *options = GAMES[name]
    options = options[0] if options else {}
    if model == "dcgan":
        few_channels(monkeypatch)
    images, labels = mnist_labelled
    cfg = tiny_cfg(variant, model=model, latent_dim=16)
    cfg.g_hidden, cfg.d_hidden = (32, 64), (64, 32)
    cfg.spectral_norm = options.get("spectral_norm", 0)
    G, D = models.build(cfg, backend.default_rng(0))
    ema = options.get("ema", 0.0)
    average = tricks.EMA(G, ema) if ema else None
    twin = TorchConditionalGAN.from_minigan(G, D, lr=2e-4, betas=(0.5, 0.999), ema=ema, **game)
    opt_G, opt_D = (optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999)) for net in (G, D))
    rng, rng_twin = np.random.default_rng(1), np.random.default_rng(1)
    batches = iter((images[n * i:n * (i + 1)], labels[n * i:n * (i + 1)])
                   for i in range(steps * k))
    ours, theirs = [], []
    for _ in range(steps):
        reals = [next(batches) for _ in range(k)]
        metrics = train_step(G, D, opt_G, opt_D, iter(reals).__next__, rng, k=k, latent_dim=16,
                             conditional=variant, **game)
        if average:
            average.update()
        metrics_t = twin.train_step(reals, replay_draws(rng_twin, k, n, 16))
        ours.append([float(v) for v in metrics.read().values()])
        theirs.append([float(v) for v in metrics_t.read().values()])
    ours, theirs = np.array(ours), np.array(theirs)
    for j, metric in enumerate(("L_D", "L_G", "D(x)", "D(G(z))")):
        assert_parity(metric, ours[:, j], theirs[:, j], TOL)
    nets = [("G", G, twin.G), ("D", D, twin.D)]
    if average:  # every array of G's average, BatchNorm's running statistics included
        nets.append(("G_ema", average.net, twin.G_ema))
    for net_name, net, net_t in nets:
        state, theirs_state = {**net.params, **net.buffers}, twin_state(net_t)
        assert sorted(state) == sorted(theirs_state)
        for key, value in state.items():
            tol = BIAS_BEFORE_BATCHNORM_TOL if beside_batchnorm(key, state) else TOL
            assert_parity(f"{net_name} {key}", value, theirs_state[key], tol)
    assert np.abs(ours[-1] - ours[0]).max() > 1e-6  # the players moved
    if average and average.net.buffers:  # the statistics G's average draws with moved too
        key = next(k for k in average.net.buffers if k.endswith("running_mean"))
        assert np.abs(average.net.buffers[key]).max() > 1e-3
    if variant == "acgan":  # the class loss is there: L_D is well above the BCE part alone
        assert ours[:, 0].min() > 2.0


def test_the_twin_trains_standalone(tmp_path):
    """python -m reference.torch_conditional: a short run writes its digit-per-row grid."""
    from PIL import Image

    torch_conditional.main(["--conditional", "projection", "--limit", "128", "--batch-size",
                            "32", "--epochs", "1", "--out", str(tmp_path)])
    grid = Image.open(tmp_path / "samples_epoch_001.png")
    assert grid.size == (2 * (10 * 30 + 2), 2 * (10 * 30 + 2))  # 10 x 10 tiles
