"""The games beyond Jensen-Shannon, wired: gan.critic_step (any loss of D_LOSSES with R1,
WGAN-GP and clipping), train_step's choice of step, and train_mnist.py / minigan.toy with
--loss, --clip, --r1, --gp and --optimizer (the losses, penalties and RMSprop themselves are
checked in test_losses.py, test_penalties.py and test_optim.py)."""

import json

import numpy as np
import pytest

import train_mnist
from minigan import backend, checkpoint, gan, losses, optim, penalties, rundir, toy
from minigan.layers import sigmoid

SMALL = ["--limit", "192", "--batch-size", "32", "--g-hidden", "32,64", "--d-hidden", "64,32",
         "--latent-dim", "16", "--log-every", "2"]


def small_gan(seed=0):
    """A float64 G (3 -> 6) and D (6 -> 1) and a batch, with D's optimizer at lr 0 (nothing moves)."""
    rng = backend.default_rng(seed)
    G = gan.make_generator(3, (5,), 6, rng=rng, dtype="float64")
    D = gan.make_discriminator(6, (7, 5), rng=rng, dtype="float64")
    real = rng.uniform(-1, 1, (8, 6))
    z = rng.standard_normal((8, 3))
    return G, D, optim.SGD(D.parameters(), lr=0.0), real, z


def grads(net):
    return {k: v.copy() for k, v in net.grads.items()}


def test_critic_step_with_bce_is_the_papers_d_step():
    """loss "bce" through the two-batch critic_step: the same loss, D(x), D(G(z)) and gradients
    as discriminator_step's stacked pass."""
    G, D, opt, real, z = small_gan()
    paper = gan.discriminator_step(G, D, opt, real, z, 0.9)
    paper_grads = grads(D)
    critic = gan.critic_step(G, D, opt, real, z, backend.default_rng(1), "bce", 0.9)
    for a, b in zip(paper, critic):
        assert abs(float(a) - float(b)) < 1e-12
    for k, g in grads(D).items():
        np.testing.assert_allclose(g, paper_grads[k], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("loss", ["lsgan", "hinge", "wgan"])
def test_critic_step_backpropagates_the_games_loss(loss):
    """D's gradient is that of loss_real(D(x)) + loss_fake(D(G(z))), each from losses.py, and the
    reported loss is their sum."""
    G, D, opt, real, z = small_gan()
    d_loss, d_real, d_fake = gan.critic_step(G, D, opt, real, z, backend.default_rng(1), loss)
    got = grads(D)
    real_fn, fake_fn = gan.D_LOSSES[loss]
    D.zero_grad()
    out_real = D.forward(real)
    loss_real, dout = real_fn(out_real, 1.0)
    D.backward(dout)
    out_fake = D.forward(G.forward(z))
    loss_fake, dout = fake_fn(out_fake)
    D.backward(dout)
    assert abs(float(d_loss) - float(loss_real + loss_fake)) < 1e-12
    assert abs(float(d_real) - float(sigmoid(out_real).mean())) < 1e-12
    assert abs(float(d_fake) - float(sigmoid(out_fake).mean())) < 1e-12
    for k, g in D.grads.items():
        np.testing.assert_allclose(got[k], g, rtol=1e-10, atol=1e-14)
    assert any(np.abs(g).max() > 1e-3 for g in got.values())  # a gradient that can be wrong


@pytest.mark.parametrize("which", ["r1", "gp"])
def test_critic_step_adds_the_penalty_and_its_gradient(which):
    """With D's learning rate 0, D's gradient with the penalty is the gradient without it plus
    the penalty's own (penalties.py), and the reported loss adds the penalty's value."""
    G, D, opt, real, z = small_gan()
    plain_loss, _, _ = gan.critic_step(G, D, opt, real, z, backend.default_rng(1), "wgan")
    plain = grads(D)
    d_loss, _, _ = gan.critic_step(G, D, opt, real, z, backend.default_rng(1), "wgan",
                                   **{which: 10.0})
    total = grads(D)
    D.zero_grad()
    if which == "r1":
        value = penalties.r1(D, real, 10.0)
    else:  # the same interpolation weights: the first draw of the same generator
        value = penalties.gradient_penalty(D, real, G.forward(z), 10.0, backend.default_rng(1))
    assert float(value) > 1e-3
    assert abs(float(d_loss) - float(plain_loss + value)) < 1e-10
    assert any(np.abs(g).max() > 1e-4 for g in D.grads.values())
    for k, g in D.grads.items():
        np.testing.assert_allclose(total[k], plain[k] + g, rtol=1e-10, atol=1e-14)


def test_clipping_keeps_every_parameter_of_d_in_the_box():
    G, D, _, real, z = small_gan()
    opt = optim.RMSprop(D.parameters(), lr=0.05)
    gan.critic_step(G, D, opt, real, z, backend.default_rng(1), "wgan", clip=0.01)
    values = np.concatenate([p.data.ravel() for p in D.parameters()])
    assert np.abs(values).max() <= 0.01 and np.abs(values).max() == 0.01  # some were clipped


def test_train_step_takes_the_games_g_loss(monkeypatch):
    """The G step of loss "wgan" is -mean D(G(z)), of "lsgan" its least squares."""
    seen = []
    real_step = gan.generator_step

    def recording(G, D, opt_G, z, gen_loss="nonsaturating"):
        seen.append(gen_loss)
        return real_step(G, D, opt_G, z, gen_loss)

    monkeypatch.setattr(gan, "generator_step", recording)
    for loss in ("bce", "lsgan", "hinge", "wgan"):
        G, D, _, real, _ = small_gan()
        gan.train_step(G, D, optim.Adam(G.parameters()), optim.Adam(D.parameters()),
                       lambda: real, backend.default_rng(0), latent_dim=3, loss=loss)
    assert seen == ["nonsaturating", "lsgan", "hinge", "wgan"]
    assert gan.G_LOSSES["wgan"] is losses.generator_loss_wasserstein


# ---- train_mnist.py and minigan.toy ------------------------------------------------------------

GAMES = [["--loss", "lsgan"], ["--loss", "hinge"], ["--loss", "wgan", "--gp", "10"],
         ["--loss", "wgan", "--clip", "0.01", "--optimizer", "rmsprop", "--k", "2"],
         ["--r1", "10"], ["--loss", "hinge", "--spectral-norm", "1"],
         ["--loss", "wgan", "--gp", "10", "--spectral-norm", "1"],
         ["--model", "dcgan", "--loss", "hinge", "--spectral-norm", "1"]]


@pytest.mark.parametrize("flags", GAMES, ids=[" ".join(f) for f in GAMES])
def test_each_game_trains_and_resumes_bit_exact(flags, tmp_path):
    """Spectral norm's u and v are in the checkpoint: the resumed run is the straight one."""
    small = [*SMALL, "--limit", "64"] if "dcgan" in flags else SMALL  # 2 steps an epoch
    straight = train_mnist.main([*small, *flags, "--epochs", "2", "--out", str(tmp_path / "a")])
    first = train_mnist.main([*small, *flags, "--epochs", "1", "--out", str(tmp_path / "b")])
    train_mnist.main(["--resume", str(first), "--epochs", "2"])
    a, _ = checkpoint.load(straight / "checkpoint.npz")
    b, _ = checkpoint.load(first / "checkpoint.npz")
    assert sorted(a) == sorted(b)
    for name in a:
        assert np.array_equal(a[name], b[name]), f"{name} differs after resuming"
    rows = rundir.read_rows(straight / "metrics.csv")
    assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in rows)
    assert any(k.endswith(".u") for k in a) == ("--spectral-norm" in flags)
    config = json.loads((straight / "config.json").read_text())
    for name, value in zip(flags[::2], flags[1::2]):
        saved = config[name[2:].replace("-", "_")]
        assert saved == (value if isinstance(saved, str) else type(saved)(value)), name


def test_the_game_differs_from_the_papers(tmp_path):
    paper = train_mnist.main([*SMALL, "--epochs", "1", "--out", str(tmp_path / "paper")])
    hinge = train_mnist.main([*SMALL, "--epochs", "1", "--loss", "hinge", "--out",
                              str(tmp_path / "hinge")])
    a, _ = checkpoint.load(paper / "checkpoint.npz")
    b, _ = checkpoint.load(hinge / "checkpoint.npz")
    assert not np.array_equal(a["D/0.W"], b["D/0.W"])


def test_rmsprop_state_is_in_the_checkpoint(tmp_path):
    run = train_mnist.main([*SMALL, "--epochs", "1", "--optimizer", "rmsprop", "--out",
                            str(tmp_path / "run")])
    arrays, _ = checkpoint.load(run / "checkpoint.npz")
    assert any(k.startswith("opt_D/v/") for k in arrays)
    assert not any(k.startswith("opt_D/m/") for k in arrays)


@pytest.mark.parametrize("flag,value", [("--loss", "hinge"), ("--gp", "1"), ("--clip", "0.1"),
                                        ("--optimizer", "rmsprop")])
def test_resume_refuses_to_change_the_game(flag, value, tmp_path, capsys):
    run = train_mnist.main([*SMALL, "--epochs", "1", "--out", str(tmp_path / "run")])
    before = (run / "checkpoint.npz").read_bytes()
    assert train_mnist.cli(["--resume", str(run), "--epochs", "2", flag, value]) == 2
    err = capsys.readouterr().err
    assert flag in err and "cannot change" in err
    assert (run / "checkpoint.npz").read_bytes() == before


def test_the_toy_plays_every_game():
    for kwargs in ({"loss": "wgan", "gp": 1.0, "optimizer": "rmsprop"}, {"loss": "hinge"},
                   {"loss": "lsgan", "r1": 1.0}, {"loss": "wgan", "clip": 0.05}):
        G, D, history = toy.train_toy("ring", steps=40, batch_size=64, log_every=20, **kwargs)
        assert [r["step"] for r in history] == [20, 40]
        assert all(np.isfinite(r["d_loss"]) for r in history)
    if "clip" in kwargs:
        assert max(float(np.abs(p.data).max()) for p in D.parameters()) <= np.float32(0.05)
