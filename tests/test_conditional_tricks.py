"""--recipe improved and D's tricks on the conditional GANs (minigan/conditional.py, the MLP):
minibatch std, packing, instance noise and dropout with a label.

Float64 central differences of every new D shape (each variant packed, with the minibatch std,
dropout and instance noise), the packed projection head and AC-GAN's packed class head against
loops written beside them, instance noise reaching the image and never the label, 20 whole
improved steps of each variant against the PyTorch twin (reference/torch_conditional.py), every
new path on the strict CuPy stand-in bit for bit with NumPy, and train_mnist.py: the recipe's
settings in a conditional run, a resume bit-exact, and what is refused (exit 2, nothing written).
"""

import json
from types import SimpleNamespace

import numpy as np
import pytest

import strict_xp
import train_mnist
from clitest import assert_clean_error, call, snapshot
from minigan import backend, checkpoint, gan, gradcheck, models, optim, tricks
from minigan.conditional import NUM_CLASSES, one_hot
from minigan.data import load_mnist, to_model_input
from minigan.layers import walk
from minigan.losses import bce_with_logits, softmax_cross_entropy
from test_conditional import SMALL_RUN, VARIANTS, away_from_kink
from test_tricks import Reseeded

TRICKS = {  # name -> D's tricks as models.build reads them
    "improved": dict(pack=2, minibatch_std=1),
    "pack 3": dict(pack=3),
    "all": dict(pack=2, minibatch_std=1, d_dropout=0.3, instance_noise=0.2),
}


def cfg_with(variant, dtype="float64", latent_dim=5, g_hidden=(7, 6), d_hidden=(8, 6), **tricks_):
    cfg = SimpleNamespace(model="mlp", conditional=variant, latent_dim=latent_dim,
                          g_hidden=g_hidden, d_hidden=d_hidden, slope=0.2, dtype=dtype, pack=1,
                          minibatch_std=0, d_dropout=0.0, instance_noise=0.0)
    cfg.__dict__.update(tricks_)
    return cfg


def set_noise(D, std):
    tricks.set_instance_noise(D, std)
    return D


# ---- gradient checks and the forward by hand -------------------------------------------------


@pytest.mark.parametrize("name", list(TRICKS))
@pytest.mark.parametrize("variant", VARIANTS)
def test_tricked_conditional_discriminator_gradients(variant, name):
    """dx and every parameter's gradient of D(x, y) with the tricks, float64, labels with
    repeats (6 samples: 3 packs of 2, or 2 of 3)."""
    D = set_noise(models.build_discriminator(cfg_with(variant, **TRICKS[name]),
                                             backend.default_rng(0), data_dim=5), 0.2)
    labels = np.array([4, 4, 0, 9, 4, 0])
    x = away_from_kink(backend.default_rng(1).standard_normal((6, 5)))
    m = TRICKS[name]["pack"]
    width = 1 + m * NUM_CLASSES if variant == "acgan" else 1
    assert D.forward(x, labels).shape == (6 // m, width)
    errors = gradcheck.check_layer(Reseeded(D, labels), x, rng=backend.default_rng(2))
    assert set(errors) == {"x", *D.params} and max(errors.values()) < 1e-7


@pytest.mark.parametrize("m", [1, 2, 3])
def test_packed_acgan_with_its_losses_gradient(m):
    """AC-GAN's packed D with BCE on each pack's logit plus the class cross-entropy of every
    member: the gradient of that sum with respect to x, by central differences."""
    D = models.build_discriminator(cfg_with("acgan", pack=m, minibatch_std=1),
                                   backend.default_rng(0), data_dim=5)
    labels = np.array([2, 7, 2, 0, 5, 5])
    x = away_from_kink(backend.default_rng(1).standard_normal((6, 5)))

    def loss(x):
        out = D.forward(x, labels)
        value, dout = gan.conditional_d_loss(D, out, labels, lambda t: bce_with_logits(t, 1.0))
        return value, D.backward(dout)

    assert gradcheck.check_loss(loss, x) < 1e-7


def test_packed_acgan_class_loss_reads_each_members_ten_columns():
    """The class loss of a packed AC-GAN D, by hand: member i of pack j is scored by columns
    1 + 10 i .. 10 + 10 i of row j, against its own label."""
    D = models.build_discriminator(cfg_with("acgan", pack=2), backend.default_rng(0), data_dim=5)
    labels = np.array([3, 8, 8, 1])
    out = np.random.default_rng(0).standard_normal((2, 21))
    value, _ = gan.conditional_d_loss(D, out, labels, lambda t: (0.0 * t.sum(), 0 * t))
    by_hand = np.mean([float(softmax_cross_entropy(
        out[j:j + 1, 1 + 10 * i:11 + 10 * i], labels[2 * j + i:2 * j + i + 1])[0])
        for j in range(2) for i in range(2)])
    assert float(value) == pytest.approx(by_hand, rel=1e-14)


@pytest.mark.parametrize("m", [2, 3])
def test_packed_projection_head_by_hand(m):
    """out_j = psi(h_j) + sum over the pack's members i of E[i * 10 + y_(j m + i)] . h_j, and
    the table's gradient dE[i * 10 + c] = sum over packs j whose member i has label c of
    dout_j h_j: a loop beside the vectorised code."""
    D = models.build_discriminator(cfg_with("projection", pack=m), backend.default_rng(0),
                                   data_dim=5)
    n = 4 * m
    labels = np.random.default_rng(m).integers(0, 3, n)  # few classes: repeats within packs
    x = np.random.default_rng(1).standard_normal((n, 5))
    dout = np.random.default_rng(2).standard_normal((4, 1))
    D.zero_grad()
    out = D.forward(x, labels)
    D.backward(dout)
    h = D.phi.forward(x)
    W, b, E = D.params["psi.W"], D.params["psi.b"], D.params["embed.W"]
    assert E.shape == (m * NUM_CLASSES, h.shape[1])
    dE = np.zeros_like(E)
    for j in range(4):
        expected = float(h[j] @ W[:, 0] + b[0])
        for i in range(m):
            row = i * NUM_CLASSES + labels[j * m + i]
            expected += sum(E[row, k] * h[j, k] for k in range(h.shape[1]))
            dE[row] += dout[j, 0] * h[j]
        assert float(out[j, 0]) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(D.grads["embed.W"], dE, rtol=1e-12, atol=1e-14)


def test_concat_instance_noise_blurs_the_image_and_not_the_label():
    """concat's D with instance noise: net sees [x + std * eps, onehot(y)], eps replayed from
    the same generator; dx is the image's columns of net's input gradient."""
    D = set_noise(models.build_discriminator(cfg_with("concat", instance_noise=0.5),
                                             backend.default_rng(0), data_dim=5), 0.5)
    labels = np.array([1, 1, 6])
    x = np.random.default_rng(1).standard_normal((3, 5))
    D.noise.rng = np.random.default_rng(9)
    out = D.forward(x, labels)
    noisy = x + 0.5 * np.random.default_rng(9).standard_normal((3, 5))
    joined = np.concatenate([noisy, one_hot(labels, dtype="float64")], axis=1)
    assert np.array_equal(out, D.net.forward(joined))
    assert not any(isinstance(layer, tricks.InstanceNoise) for layer in walk(D.net))
    D.eval()  # evaluation mode: no noise
    assert np.array_equal(D.forward(x, labels), D.net.forward(
        np.concatenate([x, one_hot(labels, dtype="float64")], axis=1)))


def test_default_conditional_ds_are_built_as_before():
    """No trick asked: the same layers and the same initial weights as a config without the
    tricks' fields (a run from before this change)."""
    for variant in VARIANTS:
        old = SimpleNamespace(model="mlp", conditional=variant, latent_dim=5, g_hidden=(7, 6),
                              d_hidden=(8, 6), slope=0.2, dtype="float64")
        G0, D0 = models.build(old, backend.default_rng(0), data_dim=5)
        G1, D1 = models.build(cfg_with(variant), backend.default_rng(0), data_dim=5)
        assert repr(D0) == repr(D1)
        for key in D0.params:
            assert np.array_equal(D0.params[key], D1.params[key]), key


# ---- parity with the PyTorch twin: 20 improved steps of each variant --------------------------

TOL = 1e-10


@pytest.mark.parametrize("variant", VARIANTS)
def test_improved_recipe_parity(variant, request):
    """20 steps of --recipe improved (pack 2, minibatch std, real target 0.8, EMA 0.999) on
    MNIST's labelled test images, minigan against its twin fed the same batches and draws:
    L_D, L_G, D(x), D(G(z)) of every step, and every array of G, D and G's average at the end."""
    pytest.importorskip("torch", reason="the parity tests compare minigan with PyTorch; "
                        "install the reference extra: pip install -e '.[reference]'")
    from reference.torch_conditional import TorchConditionalGAN
    from test_conditional_parity import replay_draws, twin_state
    from test_parity import assert_parity, host

    request.getfixturevalue("one_torch_thread")  # tests/conftest.py, restored even on a failure
    images, labels = load_mnist("test")
    images, labels = to_model_input(images, dtype="float64"), labels.astype(np.int64)
    n, steps = 64, 20
    cfg = cfg_with(variant, latent_dim=16, g_hidden=(32, 64), d_hidden=(64, 32), pack=2,
                   minibatch_std=1)
    G, D = models.build(cfg, backend.default_rng(0))
    average = tricks.EMA(G, 0.999)
    twin = TorchConditionalGAN.from_minigan(G, D, lr=2e-4, betas=(0.5, 0.999), ema=0.999)
    opt_G, opt_D = (optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999)) for net in (G, D))
    rng, rng_twin = np.random.default_rng(1), np.random.default_rng(1)
    ours, theirs = [], []
    for s in range(steps):
        real = [(images[n * s:n * (s + 1)], labels[n * s:n * (s + 1)])]
        metrics = gan.train_step(G, D, opt_G, opt_D, iter(real).__next__, rng, latent_dim=16,
                                 real_target=0.8, conditional=variant)
        average.update()
        metrics_t = twin.train_step(real, replay_draws(rng_twin, 1, n, 16), real_target=0.8)
        ours.append(list(metrics.read().values()))
        theirs.append(list(metrics_t.read().values()))
    ours, theirs = np.array(ours), np.array(theirs)
    for j, metric in enumerate(("L_D", "L_G", "D(x)", "D(G(z))")):
        assert_parity(metric, ours[:, j], theirs[:, j], TOL)
    for name, net, net_t in (("G", G, twin.G), ("D", D, twin.D), ("G_ema", average.net,
                                                                  twin.G_ema)):
        state, theirs_state = {**net.params, **net.buffers}, twin_state(net_t)
        assert sorted(state) == sorted(theirs_state)
        for key, value in state.items():
            assert_parity(f"{name} {key}", value, theirs_state[key], TOL)
    assert np.abs(ours[-1] - ours[0]).max() > 1e-6  # the players moved
    assert D.forward(images[:8], labels[:8]).shape[0] == 4  # packed: one row per 2 samples
    assert not np.array_equal(host(twin.G_ema.net[0].weight), host(twin.G.net[0].weight))


# ---- the strict CuPy stand-in -----------------------------------------------------------------


def tricked_steps(module, variant, name, steps=2):
    """Two conditional steps with D's tricks (instance noise at std 0.1) from seed 0 on the
    given array module; every array of G, D and the EMA, and the metrics, on the host."""
    backend.use("cpu") if module is np else backend.use_module(module, "strict")
    rng = backend.default_rng(0)
    G, D = models.build(cfg_with(variant, latent_dim=4, **TRICKS[name]), rng, data_dim=6)
    set_noise(D, 0.1)
    average = tricks.EMA(G, 0.9)
    opt_G, opt_D = (optim.Adam(net.parameters(), lr=1e-3) for net in (G, D))
    host_rng = np.random.default_rng(1)
    X = backend.to_device(host_rng.uniform(-1, 1, (6 * steps, 6)))
    Y = backend.to_device(host_rng.integers(0, 10, 6 * steps))
    reader = iter([(X[6 * i:6 * (i + 1)], Y[6 * i:6 * (i + 1)]) for i in range(steps)])
    for _ in range(steps):
        metrics = gan.train_step(G, D, opt_G, opt_D, reader.__next__, rng, latent_dim=4,
                                 real_target=0.8, conditional=variant)
        average.update()
    arrays = {f"{who}/{key}": backend.to_host(a) for who, net in
              (("G", G), ("D", D), ("G_ema", average.net)) for key, a in net.params.items()}
    return arrays, metrics.read()


@pytest.mark.parametrize("name", ["all", "pack 3"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_tricked_steps_on_the_strict_stand_in_match_numpy(variant, name):
    a, metrics_a = tricked_steps(np, variant, name)
    b, metrics_b = tricked_steps(strict_xp, variant, name)
    assert sorted(a) == sorted(b)
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    assert metrics_a == metrics_b and all(np.isfinite(v) for v in metrics_a.values())


# ---- train_mnist.py ---------------------------------------------------------------------------


def test_conditional_recipe_improved_run_resumes_bit_exact(tmp_path, capsys):
    """A projection run with --recipe improved (and dropout, so that its masks come from the
    run's generator too): the recipe's settings in config.json, the packed table in the
    checkpoint; two epochs straight, or one and one more after --resume, every array equal;
    a resume that changes the packing is refused and writes nothing."""
    flags = [*SMALL_RUN, "--conditional", "projection", "--recipe", "improved", "--d-dropout",
             "0.2"]
    straight = train_mnist.main([*flags, "--epochs", "2", "--out", str(tmp_path / "straight")])
    first = train_mnist.main([*flags, "--epochs", "1", "--out", str(tmp_path / "split")])
    train_mnist.main(["--resume", str(first), "--epochs", "2"])
    cfg = json.loads((straight / "config.json").read_text())
    assert {k: cfg[k] for k in tricks.IMPROVED} == tricks.IMPROVED
    a, meta_a = checkpoint.load(straight / "checkpoint.npz")
    b, meta_b = checkpoint.load(first / "checkpoint.npz")
    assert a["D/embed.W"].shape == (2 * NUM_CLASSES, 33)  # 2 tables of 32 + the batch std
    assert sorted(a) == sorted(b) and any(k.startswith("G_ema/") for k in a)
    for key in a:
        assert np.array_equal(a[key], b[key]), f"{key} differs after resuming"
    assert meta_a["ema_t"] == meta_b["ema_t"]
    before = snapshot(tmp_path)
    result = call(train_mnist.cli, ["--resume", str(first), "--epochs", "3", "--pack", "4"], capsys)
    assert_clean_error(result, "--pack 4", "architecture")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("variant", ["concat", "acgan"])
def test_conditional_recipe_improved_trains(tmp_path, variant):
    run = train_mnist.main([*SMALL_RUN, "--conditional", variant, "--recipe", "improved",
                            "--instance-noise", "0.1", "--epochs", "1", "--out",
                            str(tmp_path / "run")])
    arrays, _ = checkpoint.load(run / "checkpoint.npz")
    first = {"concat": ("D/1.W", (2 * (784 + 10), 64)), "acgan": ("D/7.W", (33, 21))}[variant]
    assert arrays[first[0]].shape == first[1]
    assert all(np.isfinite(a).all() for a in arrays.values())


REFUSED = {  # name -> (flags, words the message must contain)
    "dcgan improved": (["--model", "dcgan", "--conditional", "projection", "--recipe",
                        "improved"], ["--recipe improved", "MLP", "--instance-noise"]),
    "dcgan pack": (["--model", "dcgan", "--conditional", "concat", "--pack", "2"],
                   ["--pack", "MLP", "--model dcgan"]),
    "dcgan minibatch std": (["--model", "dcgan", "--conditional", "acgan", "--minibatch-std",
                             "1"], ["--minibatch-std", "MLP"]),
    "pack and batch": (["--conditional", "acgan", "--pack", "5"],
                       ["--pack 5", "--batch-size", "32"]),
    "improved r1": (["--conditional", "projection", "--recipe", "improved", "--r1", "1"],
                    ["--r1", "--conditional projection", "not derived"]),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_what_a_conditional_run_with_tricks_refuses(name, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    flags, needles = REFUSED[name]
    before = snapshot(tmp_path)
    result = call(train_mnist.cli, [*SMALL_RUN, "--out", str(tmp_path / "run"), *flags], capsys)
    assert_clean_error(result, *needles)
    assert result.returncode == 2
    assert snapshot(tmp_path) == before and not (tmp_path / "run").exists()


@pytest.mark.parametrize("variant", ["concat", "projection"])
def test_dcgan_instance_noise_step_on_the_strict_stand_in_matches_numpy(variant, monkeypatch):
    """The conditional DCGAN takes instance noise (its only trick of D): on the image, for
    concat before the label's channels join."""
    from test_conditional import one_step

    plain, _ = one_step(variant, "dcgan", "numpy")
    real_build = models.build_conditional_discriminator

    def noisy_build(cfg, rng, data_dim=784):
        cfg.instance_noise = 0.1
        return set_noise(real_build(cfg, rng, data_dim), 0.1)

    monkeypatch.setattr(models, "build_conditional_discriminator", noisy_build)
    a, metrics_a = one_step(variant, "dcgan", "numpy")
    b, metrics_b = one_step(variant, "dcgan", "strict", strict_xp)
    assert metrics_a == metrics_b
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    assert any(not np.array_equal(a[key], plain[key]) for key in a)  # the noise changed D
