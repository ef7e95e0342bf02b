"""The tricks of --recipe improved (minigan/tricks.py): gradient checks of every hand-written
backward, their forward values against independent formulas, the D step's route, EMA's
arithmetic, and train_mnist.py / minigan.sample / minigan.toy with the recipe."""

import json
import os
import signal

import numpy as np
import pytest

import strict_xp
import train_mnist
from clitest import assert_clean_error, run_command
from minigan import (backend, checkpoint, gan, gradcheck, losses, models, optim, settings, toy,
                     tricks)
from minigan import sample as sample_cli
from minigan.layers import Dense, Dropout, Sequential, walk


def test_minibatch_std_forward_is_the_mean_feature_std():
    x = np.random.default_rng(0).standard_normal((7, 5))
    out = tricks.MinibatchStd(eps=1e-8).forward(x)
    assert out.shape == (7, 6)
    assert np.array_equal(out[:, :5], x)
    expected = np.mean(np.sqrt(np.var(x, axis=0) + 1e-8))  # NumPy's biased variance
    assert np.allclose(out[:, 5], expected, rtol=1e-14, atol=0)


def test_minibatch_std_sees_a_collapsed_batch():
    """The feature is what D needs to spot collapse: near 0 for identical rows."""
    layer = tricks.MinibatchStd()
    varied = np.random.default_rng(1).standard_normal((8, 4))
    same = np.repeat(varied[:1], 8, axis=0)
    assert layer.forward(same)[0, -1] < 1e-3 < 0.5 < layer.forward(varied)[0, -1]


@pytest.mark.parametrize("shape", [(2, 1), (5, 3), (16, 9)])
def test_minibatch_std_gradcheck(shape):
    rng = np.random.default_rng(shape[0])
    x = rng.standard_normal(shape)
    dout = rng.standard_normal((shape[0], shape[1] + 1))  # non-uniform, last column too
    errors = gradcheck.check_layer(tricks.MinibatchStd(), x, dout)
    assert errors["x"] < 1e-7


def test_minibatch_std_gradient_reaches_every_row_through_the_feature():
    """Only the appended column's gradient: dx is ds / (F N) * (x - mu) / sigma, with ds the
    column's sum (here N = 6 ones)."""
    x = np.random.default_rng(2).standard_normal((6, 3))
    layer = tricks.MinibatchStd(eps=0.0)
    layer.forward(x)
    dout = np.zeros((6, 4))
    dout[:, 3] = 1.0
    centered = x - x.mean(0)
    assert np.allclose(layer.backward(dout), 6 * centered / (3 * 6 * x.std(0)), rtol=1e-12)


def test_minibatch_std_rejects_a_single_row():
    with pytest.raises(ValueError, match="N >= 2"):
        tricks.MinibatchStd().forward(np.zeros((1, 4)))


def test_pack_puts_consecutive_samples_side_by_side():
    x = np.arange(24.0).reshape(6, 4)
    layer = tricks.Pack(2)
    out = layer.forward(x)
    assert np.array_equal(out, np.stack([np.concatenate([x[i], x[i + 1]])
                                         for i in (0, 2, 4)]))
    dout = np.random.default_rng(0).standard_normal(out.shape)
    assert np.array_equal(layer.backward(dout), dout.reshape(6, 4))
    with pytest.raises(ValueError, match="multiple of 4"):
        tricks.Pack(4).forward(x)


def test_instance_noise_adds_noise_of_its_std_and_passes_the_gradient():
    layer = tricks.InstanceNoise(std=0.3, rng=backend.default_rng(0))
    x = np.ones((400, 500))
    noise = layer.forward(x) - x
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 0.3) < 0.003  # 200,000 draws
    dout = np.random.default_rng(1).standard_normal(x.shape)
    assert layer.backward(dout) is dout  # the noise does not depend on x: dx = dout
    layer.eval()
    assert layer.forward(x) is x
    layer.train()
    layer.std = 0.0
    assert layer.forward(x) is x


def test_instance_noise_schedule_anneals_linearly_to_zero():
    assert tricks.instance_noise_std(0.2, 0, 100) == 0.2
    assert tricks.instance_noise_std(0.2, 25, 100) == pytest.approx(0.15, abs=1e-15)
    assert tricks.instance_noise_std(0.2, 100, 100) == 0.0
    assert tricks.instance_noise_std(0.2, 150, 100) == 0.0
    assert tricks.instance_noise_std(0.0, 10, 100) == 0.0


class Reseeded:
    """A network whose random layers (Dropout, InstanceNoise) draw the same numbers at every
    forward, so central differences see one fixed function. inputs: further arguments of
    net.forward held fixed (a conditional D's labels, tests/test_conditional_tricks.py)."""

    def __init__(self, net, *inputs):
        self.net, self.inputs, self.params, self.grads = net, inputs, net.params, net.grads

    def __repr__(self):
        return f"Reseeded({self.net!r})"

    def zero_grad(self):
        self.net.zero_grad()

    def forward(self, x):
        for layer in walk(self.net):
            if isinstance(layer, (Dropout, tricks.InstanceNoise)):
                layer.rng = backend.default_rng(7)
        return self.net.forward(x, *self.inputs)

    def backward(self, dout):
        return self.net.backward(dout)


@pytest.mark.parametrize("options", [
    dict(pack=2), dict(minibatch_std=True), dict(dropout=0.3), dict(instance_noise=True),
    dict(pack=2, minibatch_std=True, dropout=0.3, instance_noise=True),
])
def test_discriminator_with_tricks_gradcheck(options):
    """D's input gradient (what G learns from) and every parameter gradient, through the
    tricks, in float64 against central differences."""
    rng = backend.default_rng(3)
    D = gan.make_discriminator(6, (8, 5), rng=rng, dtype="float64", **options)
    for layer in walk(D):
        if isinstance(layer, tricks.InstanceNoise):
            layer.std = 0.2
    x = rng.uniform(-1, 1, (8, 6))
    errors = gradcheck.check_layer(Reseeded(D), x, rng=backend.default_rng(4))
    assert set(errors) == {"x", *D.params} and max(errors.values()) < 1e-7


def test_discriminator_layers_for_each_option():
    D = gan.make_discriminator(784, (16, 8), rng=backend.default_rng(0), pack=2,
                               minibatch_std=True, dropout=0.25, instance_noise=True)
    assert repr(D) == ("Sequential(InstanceNoise(std=0), Pack(2), Dense(1568, 16), "
                       "LeakyReLU(0.2), Dropout(0.25), Dense(16, 8), LeakyReLU(0.2), "
                       "Dropout(0.25), MinibatchStd(), Dense(9, 1))")
    assert D.uses_batch_statistics
    assert D.forward(np.zeros((6, 784), dtype=np.float32)).shape == (3, 1)
    plain = gan.make_discriminator(784, (16, 8), rng=backend.default_rng(0))
    assert not plain.uses_batch_statistics


@pytest.mark.parametrize("options", [dict(pack=2), dict(minibatch_std=True)])
def test_d_step_runs_real_and_fake_as_two_batches(options):
    """Packing and the minibatch std make one output depend on other rows: the D step must not
    mix real and fake rows in one batch."""
    rng = backend.default_rng(5)
    G = gan.make_generator(4, (8,), 6, rng=rng, dtype="float64")
    D = gan.make_discriminator(6, (8,), rng=rng, dtype="float64", **options)
    real = rng.uniform(-1, 1, (6, 6))
    z = rng.standard_normal((6, 4))
    fake = G.forward(z)
    separate = (losses.bce_with_logits(D.forward(real), 1.0)[0]
                + losses.bce_with_logits(D.forward(fake), 0.0)[0])
    d_loss, _, _ = gan.discriminator_step(G, D, optim.SGD(D.parameters(), lr=0.1), real, z)
    assert abs(float(d_loss) - float(separate)) < 1e-12


def test_generator_step_leaves_a_tricked_d_untouched():
    rng = backend.default_rng(6)
    G = gan.make_generator(4, (8,), 6, rng=rng, dtype="float64")
    D = gan.make_discriminator(6, (8, 5), rng=rng, dtype="float64", pack=2, minibatch_std=True,
                               dropout=0.3, instance_noise=True)
    opt_D = optim.Adam(D.parameters(), lr=1e-3)
    gan.discriminator_step(G, D, opt_D, rng.uniform(-1, 1, (8, 6)), rng.standard_normal((8, 4)))
    before = {k: v.copy() for k, v in {**D.params, **{"grad " + k: g for k, g in
                                                      D.grads.items()}}.items()}
    state = {k: v.copy() for k, v in opt_D.state_dict().items() if k != "t"}
    g_before = {k: v.copy() for k, v in G.params.items()}
    gan.generator_step(G, D, optim.Adam(G.parameters(), lr=1e-3), rng.standard_normal((8, 4)))
    after = {**D.params, **{"grad " + k: g for k, g in D.grads.items()}}
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert all(np.array_equal(v, opt_D.state_dict()[k]) for k, v in state.items())
    assert any(not np.array_equal(g_before[k], G.params[k]) for k in G.params)  # G moved


def test_ema_follows_its_formula():
    """Three updates of a 1 x 1 Dense, against the formula written out by hand."""
    net = Sequential(Dense(1, 1, rng=backend.default_rng(0), dtype="float64"))
    average = tricks.EMA(net, decay=0.9)
    expected = float(net.params["0.W"][0, 0])
    for t, value in enumerate([1.0, -2.0, 4.0]):
        net.params["0.W"][...] = value
        average.update()
        d = min(0.9, (1 + t) / (10 + t))  # 0.1, 0.1818..., 0.25
        expected = d * expected + (1 - d) * value
    assert average.t == 3
    assert average.net.params["0.W"][0, 0] == pytest.approx(expected, rel=1e-15)
    assert net.params["0.W"][0, 0] == 4.0  # the trained network is not touched
    assert not average.net.training  # the average draws samples in evaluation mode
    with pytest.raises(ValueError, match="decay"):
        tricks.EMA(net, decay=1.0)


def test_ema_network_computes_with_the_averaged_weights():
    """The averaged network draws samples through its layers' own arrays: its forward is
    x @ W_avg + b_avg, each average by the formula above (not only what its params dict shows)."""
    net = Sequential(Dense(3, 2, rng=backend.default_rng(0), dtype="float64"))
    average = tricks.EMA(net, decay=0.9)
    expected = {k: v.copy() for k, v in net.params.items()}
    new_values = np.random.default_rng(1)
    for t in range(3):
        for k, p in net.params.items():
            p[...] = new_values.standard_normal(p.shape)
        average.update()
        d = min(0.9, (1 + t) / (10 + t))
        expected = {k: d * expected[k] + (1 - d) * net.params[k] for k in expected}
    x = np.random.default_rng(2).standard_normal((4, 3))
    np.testing.assert_allclose(average.net.forward(x), x @ expected["0.W"] + expected["0.b"],
                               rtol=1e-13, atol=1e-15)


def test_ema_copies_batchnorm_statistics():
    G = gan.make_dcgan_generator(8, (6, 4), rng=backend.default_rng(0), dtype="float64")
    average = tricks.EMA(G, 0.999)
    G.forward(np.random.default_rng(0).standard_normal((4, 8)))  # moves the running stats
    average.update()
    for k, v in G.buffers.items():
        assert np.array_equal(average.net.buffers[k], v)
        assert average.net.buffers[k] is not v


def improved_steps(module, steps=3):
    """A few steps of the improved recipe's pieces on one array module, float32."""
    backend.use_module(module, module.__name__)
    rng = backend.default_rng(3)
    G = gan.make_generator(4, (8,), 6, rng=rng)
    D = gan.make_discriminator(6, (8, 5), rng=rng, pack=2, minibatch_std=True, dropout=0.3,
                               instance_noise=True)
    average = tricks.EMA(G, 0.99)
    opt_G = optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_D = optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    real = backend.to_device(np.random.default_rng(5).uniform(-1, 1, (8, 6)), "float32")
    for step in range(steps):
        tricks.set_instance_noise(D, tricks.instance_noise_std(0.1, step, steps))
        gan.train_step(G, D, opt_G, opt_D, lambda: real, rng, real_target=0.9, latent_dim=4)
        average.update()
    return {f"{name}/{k}": backend.to_host(v) for name, net in
            (("G", G), ("D", D), ("G_ema", average.net)) for k, v in net.params.items()}


def test_improved_step_on_the_strict_stand_in_matches_numpy():
    ours = improved_steps(np)
    strict = improved_steps(strict_xp)
    backend.use("cpu")
    assert sorted(ours) == sorted(strict)
    for k in ours:
        assert ours[k].dtype == np.float32
        assert np.array_equal(ours[k], strict[k]), f"{k} differs on the stand-in"


# ---- train_mnist.py --recipe improved ---------------------------------------------------

SMALL = ["--limit", "192", "--batch-size", "32", "--g-hidden", "32,64", "--d-hidden", "64,32",
         "--latent-dim", "16", "--log-every", "2"]
ALL_TRICKS = ["--recipe", "improved", "--instance-noise", "0.1", "--d-dropout", "0.2",
              "--label-smoothing", "0.1"]


def test_recipe_improved_fills_in_its_settings_and_flags_override(tmp_path):
    out = train_mnist.main([*SMALL, "--epochs", "1", "--recipe", "improved", "--pack", "4",
                            "--out", str(tmp_path / "run")])
    cfg = json.loads((out / "config.json").read_text())
    for name, value in tricks.IMPROVED.items():
        assert cfg[name] == (4 if name == "pack" else value), name
    assert cfg["recipe"] == "improved"
    arrays, _ = checkpoint.load(out / "checkpoint.npz")
    assert arrays["D/1.W"].shape == (784 * 4, 64)  # Pack(4) then the first Dense
    assert any(k.startswith("G_ema/") for k in arrays) == bool(tricks.IMPROVED.get("ema"))


def test_recipe_fast_is_improved_with_its_batch_rates_and_widths_and_flags_override(tmp_path):
    """--recipe fast: every setting of --recipe improved, plus a larger --batch-size, --lr-g
    and --lr-d above the paper's 2e-4, and networks of half the default widths
    (docs/time_to_quality/fast.md measured them); a flag given wins, and a resumed run keeps
    what config.json saved."""
    fast = settings.RECIPES["fast"]
    assert {k: fast[k] for k in tricks.IMPROVED} == tricks.IMPROVED
    assert set(fast) - set(tricks.IMPROVED) == {"batch_size", "lr_g", "lr_d", "g_hidden",
                                                "d_hidden"}
    assert fast["lr_g"] > settings.Config.lr_g and fast["lr_d"] > settings.Config.lr_d
    assert fast["batch_size"] > settings.Config.batch_size
    for name in ("g_hidden", "d_hidden"):  # half of each default width
        assert tuple(2 * w for w in fast[name]) == getattr(settings.Config, name)
    cfg = settings.new_config(settings.parse_train_args(["--recipe", "fast", "--lr-d", "1e-4",
                                                         "--out", str(tmp_path / "a")])[0])
    assert (cfg.batch_size, cfg.lr_g, cfg.lr_d, cfg.pack, cfg.ema, cfg.g_hidden) == (
        fast["batch_size"], fast["lr_g"], 1e-4, 2, fast["ema"], (128, 256, 512))
    G, D = models.build(cfg, backend.default_rng(0))  # the networks the recipe asks for
    assert [p.data.shape for p in G.parameters()][::2] == [(100, 128), (128, 256), (256, 512),
                                                           (512, 784)]
    out = train_mnist.main([*SMALL, "--epochs", "1", "--recipe", "fast",  # SMALL: batches of 32
                            "--out", str(tmp_path / "run")])  # and SMALL's widths win
    saved = json.loads((out / "config.json").read_text())
    assert {k: saved[k] for k in fast} == {**fast, "batch_size": 32, "g_hidden": [32, 64],
                                           "d_hidden": [64, 32]}
    assert saved["recipe"] == "fast"
    resumed = settings.resumed_config({"epochs": 2}, str(out))
    assert (resumed.lr_g, resumed.lr_d, resumed.batch_size, resumed.recipe) == (
        fast["lr_g"], fast["lr_d"], 32, "fast")


@pytest.mark.parametrize("flags,kind", [
    (["--minibatch-std", "1"], tricks.MinibatchStd), (["--pack", "2"], tricks.Pack),
    (["--d-dropout", "0.3"], Dropout), (["--instance-noise", "0.1"], tricks.InstanceNoise),
])
def test_each_trick_flag_puts_its_layer_in_d(flags, kind, tmp_path):
    given, _ = settings.parse_train_args([*SMALL, *flags])
    _, D = models.build(settings.new_config(given), backend.default_rng(0))
    assert [type(layer) for layer in walk(D)].count(kind) >= 1
    _, plain = models.build(settings.new_config(settings.parse_train_args(SMALL)[0]),
                            backend.default_rng(0))
    assert kind not in [type(layer) for layer in walk(plain)]


def test_improved_run_resumes_bit_exact(tmp_path):
    """The recipe's EMA and packing, plus dropout's masks: straight, or 1 epoch then resumed."""
    flags = [*SMALL, "--recipe", "improved", "--d-dropout", "0.2", "--ema", "0.99"]
    straight = train_mnist.main([*flags, "--epochs", "2", "--out", str(tmp_path / "straight")])
    first = train_mnist.main([*flags, "--epochs", "1", "--out", str(tmp_path / "split")])
    train_mnist.main(["--resume", str(first), "--epochs", "2"])
    a, meta_a = checkpoint.load(straight / "checkpoint.npz")
    b, meta_b = checkpoint.load(first / "checkpoint.npz")
    assert sorted(a) == sorted(b) and any(k.startswith("G_ema/") for k in a)
    for k in a:
        assert np.array_equal(a[k], b[k]), f"{k} differs after resuming"
    assert meta_a["ema_t"] == meta_b["ema_t"] == 12


def test_instance_noise_run_interrupted_and_resumed_is_bit_exact(tmp_path, monkeypatch):
    """The noise's schedule runs over the run's planned steps: an interrupted run resumes on
    it exactly; a run resumed with more epochs keeps it (the noise stays 0)."""
    flags = [*SMALL, *ALL_TRICKS, "--epochs", "2"]
    straight = train_mnist.main([*flags, "--out", str(tmp_path / "straight")])
    real_step = models.MINIGAN.train_step
    calls = {"n": 0}

    def step_then_interrupt(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 9:  # in the middle of epoch 2 (6 steps per epoch)
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(models.MINIGAN, "train_step", step_then_interrupt)
        assert train_mnist.cli([*flags, "--out", str(tmp_path / "interrupted")]) == 130
    run = tmp_path / "interrupted"
    assert checkpoint.load(run / "checkpoint.npz")[1]["global_step"] == 9
    train_mnist.main(["--resume", str(run)])
    a, meta_a = checkpoint.load(straight / "checkpoint.npz")
    b, meta_b = checkpoint.load(run / "checkpoint.npz")
    for k in a:
        assert np.array_equal(a[k], b[k]), f"{k} differs after resuming"
    assert meta_a["noise_steps"] == meta_b["noise_steps"] == 12
    train_mnist.main(["--resume", str(run), "--epochs", "3"])
    assert checkpoint.load(run / "checkpoint.npz")[1]["noise_steps"] == 12


def test_resume_cannot_change_a_trick(tmp_path, capsys):
    run = train_mnist.main([*SMALL, "--epochs", "1", "--pack", "2", "--out",
                            str(tmp_path / "run")])
    assert train_mnist.cli(["--resume", str(run), "--epochs", "2", "--pack", "1"]) == 2
    assert "--pack 1 differs from the run's 2" in capsys.readouterr().err


def test_sample_draws_from_the_average_of_g(tmp_path):
    run = train_mnist.main([*SMALL, "--epochs", "1", "--ema", "0.9", "--out",
                            str(tmp_path / "run")])
    G, cfg = sample_cli.load_generator(run)
    arrays, _ = checkpoint.load(run / "checkpoint.npz")
    for k, p in G.params.items():
        assert np.array_equal(p, arrays[f"G_ema/{k}"])
    assert not np.array_equal(arrays["G_ema/0.W"], arrays["G/0.W"])


def test_tricks_that_do_not_fit_the_homework_are_refused(tmp_path):
    from minigan.homework.__main__ import start
    start(tmp_path / "hw")
    result = run_command(["train_mnist.py", *SMALL, "--homework", str(tmp_path / "hw"),
                          "--ema", "0.999", "--out", str(tmp_path / "run")], cwd=tmp_path)
    assert_clean_error(result, "--homework", "default recipe", "--ema")
    assert not (tmp_path / "run").exists()


# ---- the 2-D lab with the tricks ------------------------------------------------------------

def test_toy_with_every_trick_trains_and_scores_the_average():
    G, D, history = toy.train_toy("ring", steps=40, batch_size=64, log_every=20, ema=0.9,
                                  minibatch_std=True, pack=2, instance_noise=0.1,
                                  d_dropout=0.2, label_smoothing=0.1)
    assert not G.training  # the EMA's network, in evaluation mode
    assert [r["step"] for r in history] == [20, 40]
    # The scores are the average's: its second draw from the scoring generator (seed 0 + 2)
    # gives the last row's figures.
    score_rng = backend.default_rng(0 + 2)
    for _ in range(2):
        samples = toy.generate(G, toy.SCORE_SAMPLES, 2, score_rng, "ring")
    scores = toy.mode_scores(samples, "ring")
    assert (history[-1]["modes_covered"], history[-1]["high_quality"]) == (
        scores["modes_covered"], scores["high_quality"])
    assert D.forward(np.zeros((64, 2), dtype=np.float32)).shape == (32, 1)


def test_toy_recipe_improved_takes_the_recipe_unless_a_flag_is_given(tmp_path):
    args, _ = toy.parse_args(["--recipe", "improved", "--pack", "4", "--out", str(tmp_path)])
    for name, value in tricks.IMPROVED.items():
        assert getattr(args, name) == (4 if name == "pack" else value), name
    args, _ = toy.parse_args(["--recipe", "improved", "--pack=4", "--out", str(tmp_path)])
    assert args.pack == 4
    result = run_command(["-m", "minigan.toy", "--pack", "3", "--out", str(tmp_path)],
                         cwd=tmp_path)
    assert_clean_error(result, "--pack 3", "--batch-size")


def test_dcgan_takes_ema_and_instance_noise(tmp_path):
    run = train_mnist.main(["--model", "dcgan", "--limit", "64", "--batch-size", "16",
                            "--latent-dim", "16", "--epochs", "1", "--ema", "0.9",
                            "--instance-noise", "0.1", "--out", str(tmp_path / "run")])
    arrays, meta = checkpoint.load(run / "checkpoint.npz")
    assert meta["ema_t"] == 4 and meta["noise_steps"] == 4
    ema_keys = {k for k in arrays if k.startswith("G_ema/")}
    assert ema_keys == {"G_ema/" + k[2:] for k in arrays if k.startswith("G/")}
    assert any(k.endswith("running_mean") for k in ema_keys)  # BatchNorm's statistics too
    G, _ = sample_cli.load_generator(run)
    for k, p in G.buffers.items():
        assert np.array_equal(p, arrays[f"G_ema/{k}"])
