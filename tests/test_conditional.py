"""Conditional GANs (minigan/conditional.py, the conditional steps of minigan/gan.py): float64
gradient checks of every new piece, hypothesis tests of the embedding's scatter-add and of
softmax cross-entropy, every conditional path on the strict CuPy stand-in bit for bit with
NumPy, and a conditional run of train_mnist.py that resumes bit-exact and samples.

Expected values come from elsewhere: central differences (minigan/gradcheck.py), a Python loop
written beside the vectorised code (the scatter-add, one-hot rows), math.log / math.exp
(softmax cross-entropy), or the same step on NumPy (the strict stand-in).
"""

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import train_mnist
from minigan import backend, checkpoint, conditional, gan, models, optim, rundir, settings
from minigan.conditional import (AuxiliaryClassifierDiscriminator, ConcatDiscriminator,
                                 ConditionalGenerator, Embedding, ProjectionDiscriminator,
                                 one_hot)
from minigan.gradcheck import check_layer, check_loss, compare, numerical_gradient
from minigan.losses import softmax_cross_entropy

VARIANTS = ("concat", "projection", "acgan")
SMALL_RUN = ["--limit", "192", "--batch-size", "32", "--g-hidden", "32,64", "--d-hidden",
             "64,32", "--latent-dim", "16", "--log-every", "2"]


def tiny_cfg(variant, model="mlp", dtype="float64", latent_dim=5):
    """A network config small enough for central differences (data_dim chosen by the caller)."""
    return SimpleNamespace(model=model, conditional=variant, latent_dim=latent_dim,
                           g_hidden=(7, 6), d_hidden=(8, 6), slope=0.2, dtype=dtype)


class WithLabels:
    """A conditional network with its second input fixed, as check_layer wants: forward(x)."""

    def __init__(self, net, labels):
        self.net, self.labels = net, labels
        self.params, self.grads = net.params, net.grads

    def __repr__(self):
        return repr(self.net)

    def zero_grad(self):
        self.net.zero_grad()

    def forward(self, x):
        return self.net.forward(x, self.labels)

    def backward(self, dout):
        return self.net.backward(dout)


def away_from_kink(x, margin=1e-3):
    return np.where(np.abs(x) < margin, np.where(x < 0, -margin, margin), x)


def assert_grads_ok(errors, names):
    assert set(errors) == {"x", *names}
    assert max(errors.values()) < 1e-7


# ---- one_hot and the embedding -------------------------------------------------------------


def test_one_hot_rows(xp):
    labels = xp.asarray([3, 0, 3, 9])
    out = backend.to_host(one_hot(labels, 10, "float64"))
    expected = np.zeros((4, 10))
    for i, c in enumerate([3, 0, 3, 9]):  # by hand
        expected[i, c] = 1.0
    assert out.dtype == np.float64 and np.array_equal(out, expected)


@given(n=st.integers(1, 40), classes=st.integers(1, 12), dim=st.integers(1, 9),
       seed=st.integers(0, 2**32 - 1))
def test_embedding_scatter_adds_duplicate_labels(n, classes, dim, seed):
    """backward is a scatter-add: dW[c] = sum of the dout rows whose label is c, checked with a
    Python loop; labels drawn from few classes, so that most batches repeat some."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    layer = Embedding(classes, dim, rng=backend.default_rng(seed), dtype="float64")
    out = layer.forward(labels)
    assert np.array_equal(out, layer.params["W"][labels])  # a lookup, exactly
    dout = rng.standard_normal((n, dim))
    layer.zero_grad()
    assert layer.backward(dout) is None  # labels are not trained
    expected = np.zeros((classes, dim))
    for i in range(n):
        expected[labels[i]] += dout[i]
    np.testing.assert_allclose(layer.grads["W"], expected, rtol=1e-13, atol=1e-13)
    untouched = np.setdiff1d(np.arange(classes), labels)  # classes nobody asked for
    assert np.all(layer.grads["W"][untouched] == 0)


def test_embedding_gradient_matches_central_differences():
    labels = np.array([2, 0, 2, 2, 4, 1])  # class 2 three times, class 3 never
    layer = Embedding(5, 4, rng=backend.default_rng(0), dtype="float64")
    dout = backend.default_rng(1).standard_normal((6, 4))
    layer.zero_grad()
    layer.forward(labels)
    layer.backward(dout)
    numeric = numerical_gradient(lambda: layer.forward(labels), layer.params["W"], dout)
    assert compare("W", layer.grads["W"], numeric, 1e-7) < 1e-7


def test_embedding_on_every_array_module(xp):
    """The lookup and the scatter-add (one_hot(labels).T @ dout) on NumPy, on the strict
    stand-in (whose arrays refuse host arrays) and on CuPy where present, against a loop."""
    labels_host = np.array([1, 1, 0, 3, 1])
    dout_host = np.random.default_rng(0).standard_normal((5, 3))
    layer = Embedding(4, 3, rng=backend.default_rng(0), dtype="float64")
    W = backend.to_host(layer.params["W"])
    out = layer.forward(backend.to_device(labels_host))
    layer.backward(backend.to_device(dout_host))
    expected = np.zeros((4, 3))
    for i, c in enumerate(labels_host):
        expected[c] += dout_host[i]
    assert np.array_equal(backend.to_host(out), W[labels_host])
    np.testing.assert_allclose(backend.to_host(layer.grads["W"]), expected, rtol=1e-13)


def test_embedding_refuses_float_labels_and_wrong_shapes():
    layer = Embedding(3, 2, rng=backend.default_rng(0))
    with pytest.raises(ValueError, match="integer dtype"):
        layer.forward(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"received \(1, 2\)"):
        layer.forward(np.array([[0, 1]]))


def test_embedding_refuses_labels_outside_its_classes(xp):
    """W[-1] would be the last class's row, and CuPy wraps an index past the end around: both
    must raise, on every array module, and the first and last class must not."""
    layer = Embedding(3, 2, rng=backend.default_rng(0))
    for bad, seen in (([0, -1, 2], "from -1 to 2"), ([1, 3], "from 1 to 3")):
        with pytest.raises(ValueError, match=f"classes 0 to 2, received labels {seen}"):
            layer.forward(backend.to_device(np.array(bad)))
    out = layer.forward(backend.to_device(np.array([2, 0])))
    assert np.array_equal(backend.to_host(out), backend.to_host(layer.params["W"])[[2, 0]])


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_conditional_d_refuses_labels_outside_the_digits(variant):
    """A label of -1 or 10 would pick another class's row (projection), a row of zeros (concat:
    a D that sees no label) or a wrong class logit (AC-GAN's loss): each D refuses it before
    its net runs; 0 and 9 are digits."""
    D = models.build_discriminator(tiny_cfg(variant), backend.default_rng(0), data_dim=6)
    x = backend.default_rng(1).standard_normal((3, 6))
    for bad, seen in (([0, -1, 4], "from -1 to 4"), ([9, 10, 3], "from 3 to 10")):
        with pytest.raises(ValueError, match=f"classes 0 to 9, received labels {seen}"):
            D.forward(x, np.array(bad))
    assert D.forward(x, np.array([0, 9, 5])).shape[0] == 3


# ---- softmax cross-entropy (minigan/losses.py) ---------------------------------------------


def test_softmax_cross_entropy_gradient_matches_central_differences():
    logits = backend.default_rng(0).standard_normal((7, 10)) * 3
    labels = np.array([0, 9, 3, 3, 3, 5, 0])
    assert check_loss(softmax_cross_entropy, logits, labels) < 1e-7


@given(n=st.integers(1, 30), classes=st.integers(2, 12), scale=st.sampled_from([1e-3, 1, 30, 1e4]),
       seed=st.integers(0, 2**32 - 1))
def test_softmax_cross_entropy_against_math(n, classes, scale, seed):
    """The value against math.log of sums of math.exp (shifted by the row maximum, as one
    would by hand), finite for logits up to 1e4; the gradient's rows sum to 0, and each is
    (softmax - onehot) / N."""
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, classes)) * scale
    labels = rng.integers(0, classes, n)
    loss, grad = softmax_cross_entropy(logits, labels)
    expected, expected_grad = 0.0, np.zeros((n, classes))
    for i in range(n):
        m = max(logits[i])
        total = sum(math.exp(v - m) for v in logits[i])
        expected += (m + math.log(total) - logits[i, labels[i]]) / n
        for c in range(classes):
            expected_grad[i, c] = (math.exp(logits[i, c] - m) / total - (c == labels[i])) / n
    assert np.isfinite(float(loss)) and np.isfinite(grad).all()
    assert float(loss) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-15)


# ---- gradient checks of the conditional networks (float64, central differences) -----------


@pytest.mark.parametrize("variant", VARIANTS)
def test_mlp_discriminator_gradients(variant):
    """dx and every parameter's gradient of D(x, y), each variant on a tiny MLP, labels with
    repeats; the projection D's embedding included."""
    D = models.build_discriminator(tiny_cfg(variant), backend.default_rng(0), data_dim=6)
    labels = np.array([1, 4, 1, 9, 1])
    x = away_from_kink(backend.default_rng(1).standard_normal((5, 6)))
    errors = check_layer(WithLabels(D, labels), x, rng=backend.default_rng(2))
    assert_grads_ok(errors, D.params)
    if variant == "projection":
        assert "embed.W" in errors and "psi.W" in errors


def test_projection_head_is_psi_plus_the_embedded_class_times_the_features():
    """out = psi(h) + e_y . h, checked by hand on the trunk's own output."""
    D = models.build_discriminator(tiny_cfg("projection"), backend.default_rng(0), data_dim=6)
    labels = np.array([3, 3, 0])
    x = backend.default_rng(1).standard_normal((3, 6))
    out = D.forward(x, labels)
    h = D.phi.forward(x)
    W, b, E = D.params["psi.W"], D.params["psi.b"], D.params["embed.W"]
    for i in range(3):
        expected = float(h[i] @ W[:, 0] + b[0]) + sum(E[labels[i], j] * h[i, j]
                                                       for j in range(h.shape[1]))
        assert float(out[i, 0]) == pytest.approx(expected, rel=1e-13)


@given(n=st.integers(1, 24), classes=st.integers(1, 12), width=st.integers(1, 6),
       seed=st.integers(0, 2**32 - 1))
def test_projection_head_over_batch_sizes_and_class_counts(n, classes, width, seed):
    """ProjectionDiscriminator with any number of classes and repeated labels: the output
    against psi(h) + e_y . h written with a loop, and the embedding's gradient against the
    scatter by hand, dE[c] = sum over rows i of class c of dout_i * h_i."""
    from minigan.layers import Dense, LeakyReLU, Sequential

    rng = np.random.default_rng(seed)
    brng = backend.default_rng(seed)
    phi = Sequential(Dense(3, width, rng=brng, dtype="float64"), LeakyReLU(0.2))
    psi = Dense(width, 1, rng=brng, dtype="float64")
    D = ProjectionDiscriminator(phi, psi, Embedding(classes, width, rng=brng, dtype="float64"))
    x, labels = rng.standard_normal((n, 3)), rng.integers(0, classes, n)
    out = D.forward(x, labels)
    h = phi.forward(x)
    E = D.params["embed.W"]
    dout = rng.standard_normal((n, 1))
    D.zero_grad()
    D.forward(x, labels)
    D.backward(dout)
    dE = np.zeros((classes, width))
    for i in range(n):
        expected = float(h[i] @ psi.params["W"][:, 0] + psi.params["b"][0])
        expected += sum(E[labels[i], j] * h[i, j] for j in range(width))
        assert float(out[i, 0]) == pytest.approx(expected, rel=1e-12, abs=1e-12)
        dE[labels[i]] += dout[i, 0] * h[i]
    np.testing.assert_allclose(D.grads["embed.W"], dE, rtol=1e-12, atol=1e-14)


def test_acgan_discriminator_with_its_losses_gradient():
    """The two-headed D together with its loss, BCE on column 0 + softmax cross-entropy on
    columns 1..10: the gradient of that sum with respect to x, by central differences."""
    D = models.build_discriminator(tiny_cfg("acgan"), backend.default_rng(0), data_dim=6)
    labels = np.array([2, 7, 2, 0])
    x = away_from_kink(backend.default_rng(1).standard_normal((4, 6)))

    def loss(x):
        out = D.forward(x, labels)
        value, dout = gan.conditional_d_loss(D, out, labels,
                                             lambda logit: gan.bce_with_logits(logit, 1.0))
        return value, D.backward(dout)

    assert check_loss(loss, x) < 1e-7
    assert D.forward(x, labels).shape == (4, 11)


def test_dcgan_concat_discriminator_gradients():
    """The DCGAN's concat D: the label as 10 constant channels beside the image, narrow
    channels so that central differences stay quick; dx is the image channel's."""
    from minigan.gan import make_dcgan_discriminator

    net = make_dcgan_discriminator(channels=(2, 3), rng=backend.default_rng(0), dtype="float64",
                                   in_channels=11)
    D = ConcatDiscriminator(net, spatial=784)
    labels = np.array([5, 5, 1])
    x = backend.default_rng(1).standard_normal((3, 784)) * 0.5
    dout = backend.default_rng(2).standard_normal((3, 1))
    D.zero_grad()
    D.forward(x, labels)
    dx = D.backward(dout)
    assert dx.shape == (3, 784)
    numeric = numerical_gradient(lambda: D.forward(x, labels), x, dout)
    assert compare("x", dx, numeric, 1e-7) < 1e-7
    # the input by hand: the image in channel 0, channel 1 + c all ones where c is the label
    manual = np.zeros((3, 11, 28, 28))
    manual[:, 0] = x.reshape(3, 28, 28)
    for i, c in enumerate(labels):
        manual[i, 1 + c] = 1.0
    assert np.array_equal(D.forward(x, labels), net.forward(manual.reshape(3, -1)))


def test_generator_gradients_and_its_default_labels():
    cfg = tiny_cfg("projection")
    G = models.build_generator(cfg, backend.default_rng(0), data_dim=6)
    assert isinstance(G, ConditionalGenerator)
    y = one_hot(np.array([4, 0, 4]), dtype="float64")
    z = backend.default_rng(1).standard_normal((3, 5))
    errors = check_layer(WithLabels(G, y), z, rng=backend.default_rng(2))
    assert_grads_ok(errors, G.params)
    assert errors["x"] < 1e-7  # dz: the label's columns dropped
    # forward(z) without y asks for the digits 0, 1, ..., 9, 0, ...
    z = backend.default_rng(3).standard_normal((12, 5))
    expected = G.forward(z, one_hot(np.arange(12) % 10, dtype="float64"))
    assert np.array_equal(G.forward(z), expected)
    with pytest.raises(ValueError, match=r"\(12, 10\)"):
        G.forward(z, one_hot(np.arange(12) % 10)[:, :9])


def test_generator_is_the_unconditional_net_on_z_and_y_side_by_side():
    G = models.build_generator(tiny_cfg("concat"), backend.default_rng(0), data_dim=6)
    z = backend.default_rng(1).standard_normal((4, 5))
    y = one_hot(np.array([1, 2, 3, 4]), dtype="float64")
    y[0] = 0.25 * y[1] + 0.75 * y[2]  # a mixture, as interpolation asks
    assert np.array_equal(G.forward(z, y), G.net.forward(np.concatenate([z, y], axis=1)))


# ---- the steps: every path on the strict stand-in, bit for bit with NumPy ------------------


def one_step(variant, model, module, xp=None, k=1, loss="bce", spectral_norm=0):
    """One conditional train_step on the given array module, from seed 0; returns every array
    of G and D and the metrics, on the host."""
    backend.use("cpu") if module == "numpy" else backend.use_module(xp, "strict")
    cfg = tiny_cfg(variant, model=model, dtype="float64", latent_dim=4)
    cfg.spectral_norm = spectral_norm
    data_dim = 784 if model == "dcgan" else 6
    rng = backend.default_rng(0)
    G, D = models.build(cfg, rng, data_dim=data_dim)
    opt_G, opt_D = (optim.Adam(net.parameters(), lr=1e-3) for net in (G, D))
    host = np.random.default_rng(1)
    X = backend.to_device(host.uniform(-1, 1, (8 * k, data_dim)))
    Y = backend.to_device(host.integers(0, 10, 8 * k))
    reader = iter([(X[8 * i:8 * (i + 1)], Y[8 * i:8 * (i + 1)]) for i in range(k)])
    metrics = gan.train_step(G, D, opt_G, opt_D, reader.__next__, rng, k=k, latent_dim=4,
                             loss=loss, conditional=variant)
    arrays = {f"{name}/{key}": backend.to_host(a) for name, net in (("G", G), ("D", D))
              for key, a in {**net.params, **net.buffers}.items()}
    return arrays, metrics.read()


@pytest.mark.parametrize("model", ["mlp", "dcgan"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_one_step_on_the_strict_stand_in_matches_numpy(variant, model):
    import strict_xp

    a, metrics_a = one_step(variant, model, "numpy")
    b, metrics_b = one_step(variant, model, "strict", strict_xp)
    assert sorted(a) == sorted(b)
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    assert metrics_a == metrics_b
    assert all(np.isfinite(v) for v in metrics_a.values())


@pytest.mark.parametrize("variant,model", [("projection", "mlp"), ("concat", "dcgan"),
                                           ("acgan", "mlp")])
def test_hinge_spectral_norm_k2_step_on_the_strict_stand_in_matches_numpy(variant, model):
    """The other games and spectral norm take the conditional step too: hinge, k = 2."""
    import strict_xp

    a, metrics_a = one_step(variant, model, "numpy", k=2, loss="hinge", spectral_norm=1)
    b, metrics_b = one_step(variant, model, "strict", strict_xp, k=2, loss="hinge",
                            spectral_norm=1)
    assert any(key.endswith(".u") for key in a)  # under spectral norm
    assert metrics_a == metrics_b
    for key in a:
        assert np.array_equal(a[key], b[key]), key


def test_the_generator_step_leaves_d_alone():
    """conditional_generator_step reads D and changes nothing in it: its parameters, grads
    (param_grads=False) and BatchNorm running statistics (the DCGAN's)."""
    cfg = tiny_cfg("projection", model="dcgan", latent_dim=4)
    G, D = models.build(cfg, backend.default_rng(0))
    opt_G = optim.Adam(G.parameters(), lr=1e-3)
    before = {k: a.copy() for k, a in {**D.params, **D.grads, **D.buffers}.items()}
    z = backend.default_rng(1).standard_normal((6, 4))
    gan.conditional_generator_step(G, D, opt_G, z, np.array([0, 1, 2, 3, 4, 4]))
    after = {**D.params, **D.grads, **D.buffers}
    for key in before:
        assert np.array_equal(before[key], after[key]), key


def test_train_step_draws_noise_then_labels_from_the_run_generator(monkeypatch):
    """Each D step draws z, then the fake labels, uniform in 0..9; then G's z and labels."""
    cfg = tiny_cfg("acgan", latent_dim=4)
    G, D = models.build(cfg, backend.default_rng(0), data_dim=6)
    seen = []
    real_d_step = gan.conditional_discriminator_step

    def spy(G, D, opt_D, real, labels, z, fake_labels, *args):
        seen.append((z.copy(), fake_labels.copy()))
        return real_d_step(G, D, opt_D, real, labels, z, fake_labels, *args)

    opt_G, opt_D = (optim.Adam(net.parameters()) for net in (G, D))
    batches = iter([(np.zeros((9, 6)), np.zeros(9, dtype=np.int64))] * 2)
    monkeypatch.setattr(gan, "conditional_discriminator_step", spy)
    gan.train_step(G, D, opt_G, opt_D, batches.__next__, np.random.default_rng(5), k=2,
                   latent_dim=4, conditional="acgan")
    replay = np.random.default_rng(5)
    for z, labels in seen:
        assert np.array_equal(z, replay.standard_normal((9, 4)))
        assert np.array_equal(labels, replay.integers(0, 10, size=9))
    assert len(seen) == 2


def test_labels_are_uniform_over_the_digits():
    labels = conditional.sample_labels(np.random.default_rng(0), 100_000)
    counts = np.bincount(labels, minlength=10)
    assert labels.min() == 0 and labels.max() == 9
    assert np.abs(counts / 100_000 - 0.1).max() < 0.005  # 5 sigma of a binomial share is 0.0047


def test_digit_rows_put_one_digit_in_each_row_and_one_noise_vector_in_each_column():
    z, y, nrow = conditional.digit_rows(np.random.default_rng(0), 3, "float64")
    assert z.shape == (100, 3) and y.shape == (100, 10) and nrow == 10
    digits = y.argmax(axis=1).reshape(10, 10)
    assert np.array_equal(digits, np.repeat(np.arange(10), 10).reshape(10, 10))
    columns = z.reshape(10, 10, 3)
    assert np.array_equal(columns, np.broadcast_to(columns[0], (10, 10, 3)))
    assert np.unique(z[:10], axis=0).shape[0] == 10


# ---- train_mnist.py: a conditional run ---------------------------------------------------


def checkpoint_arrays(run_dir):
    return checkpoint.load(Path(run_dir) / "checkpoint.npz")


@pytest.mark.parametrize("variant,flags", [("concat", []), ("projection", []), ("acgan", []),
                                           ("projection", ["--model", "dcgan", "--ema", "0.9"])])
def test_conditional_run_resumes_bit_exact(tmp_path, variant, flags):
    """Two epochs straight, or one and then one more after --resume: every array equal, the
    rng state equal (the fake labels come from it, so a resumed run draws the same ones)."""
    straight = train_mnist.main([*SMALL_RUN, "--conditional", variant, *flags, "--epochs", "2",
                                 "--out", str(tmp_path / "straight")])
    first = train_mnist.main([*SMALL_RUN, "--conditional", variant, *flags, "--epochs", "1",
                              "--out", str(tmp_path / "split")])
    train_mnist.main(["--resume", str(first), "--epochs", "2"])
    (a, meta_a), (b, meta_b) = checkpoint_arrays(straight), checkpoint_arrays(first)
    assert sorted(a) == sorted(b)
    for name in a:
        assert np.array_equal(a[name], b[name]), f"{name} differs"
    assert meta_a["rng"] == meta_b["rng"] and meta_a["global_step"] == 12
    assert meta_a["config"]["conditional"] == variant
    assert a["fixed_z"].shape == (100, 16)  # ten rows of ten
    if variant == "projection":  # the embedding's width is D's feature width
        assert a["D/embed.W"].shape == (10, 6272 if flags else 32)
    if flags:
        assert "G_ema/0.W" in a


def test_conditional_run_folder_grid_and_sampling(tmp_path):
    from PIL import Image

    from minigan import sample

    run = train_mnist.main([*SMALL_RUN, "--conditional", "concat", "--epochs", "1",
                            "--eval-every", "1", "--eval-samples", "100",
                            "--out", str(tmp_path / "run")])
    assert json.loads((run / "config.json").read_text())["conditional"] == "concat"
    # scored during training through G.forward(z), which asks for every digit in turn
    assert np.isfinite(rundir.read_rows(run / "eval.csv")[0]["fd"])
    picture = Image.open(run / "samples_final.png")
    assert picture.size == (2 * (10 * 30 + 2), 2 * (10 * 30 + 2))  # 10 x 10 tiles of 28 + pad 2
    G, cfg = sample.load_generator(run)
    assert isinstance(G, ConditionalGenerator) and cfg.conditional == "concat"
    z = backend.default_rng(0).standard_normal((3, 16), dtype="float32")
    out = G.forward(z, one_hot(np.array([7, 7, 7])))
    assert out.shape == (3, 784) and np.abs(out).max() <= 1


def test_a_run_without_the_setting_loads_as_unconditional(tmp_path):
    run = train_mnist.main([*SMALL_RUN, "--epochs", "1", "--out", str(tmp_path / "run")])
    cfg = json.loads((run / "config.json").read_text())
    del cfg["conditional"]  # as a run from before the setting wrote it
    (run / "config.json").write_text(json.dumps(cfg))
    assert settings.saved_config(run).conditional == ""
    train_mnist.main(["--resume", str(run), "--epochs", "2"])
    arrays, meta = checkpoint_arrays(run)
    assert meta["global_step"] == 12 and arrays["G/0.W"].shape == (16, 32)


def test_conditional_networks_keep_the_layer_contract():
    """What optimizers, checkpoints and the EMA rely on: params and grads with the same keys
    and arrays of the same shapes, train/eval reaching every part."""
    from minigan.tricks import EMA

    for variant in VARIANTS:
        for model in ("mlp", "dcgan"):
            G, D = models.build(tiny_cfg(variant, model=model), backend.default_rng(0),
                                data_dim=784 if model == "dcgan" else 6)
            for net in (G, D):
                assert sorted(net.params) == sorted(net.grads)
                assert all(net.params[k].shape == net.grads[k].shape for k in net.params)
                net.eval()
                assert all(not layer.training for layer in net.layers)
                net.train()
            ema = EMA(G, 0.9)
            ema.update()
            assert sorted(ema.net.params) == sorted(G.params)
            # the copy's params are its own layers' arrays, so the average reaches the network
            assert ema.net.params["0.W"] is ema.net.net.layers[0].params["W"]
            assert ema.net.params["0.W"] is not G.params["0.W"]
            kind = {"concat": ConcatDiscriminator, "projection": ProjectionDiscriminator,
                    "acgan": AuxiliaryClassifierDiscriminator}[variant]
            assert isinstance(D, kind)
            if model == "dcgan":
                assert D.uses_batch_statistics
