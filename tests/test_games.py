"""The games beyond Jensen-Shannon, wired: gan.critic_step (each game's D loss against the
papers' formulas written out here, with R1, WGAN-GP and clipping), train_step's G loss in each
game (its value and G's gradient against formulas written out here), and train_mnist.py /
minigan.toy with --loss, --k, --clip, --r1, --gp, --label-smoothing and --optimizer: every
game trains, resumes bit-exact and saves its settings, and the values of its flags reach every
training step (recorded at train_step, critic_step, generator_step and the penalties; the
clipped game's saved D lies in the box, on its wall somewhere). The losses, penalties and
RMSprop themselves are checked in test_losses.py, test_penalties.py and test_optim.py."""

import inspect
import json

import numpy as np
import pytest

import train_mnist
from minigan import backend, checkpoint, gan, models, optim, penalties, rundir, toy

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


def sig(s):
    return 1 / (1 + np.exp(-s))


# Each game's D loss on D's outputs r = D(x) and f = D(G(z)) (N, 1), with the real target t,
# written out from the papers, and its gradients dL/dr, dL/df by hand: LSGAN's
# 0.5 mean((r - t)^2) + 0.5 mean(f^2) (Mao et al. 2017); the hinge's mean relu(1 - r) +
# mean relu(1 + f) (Lim & Ye 2017), no target; WGAN's mean f - mean r (Arjovsky et al. 2017),
# no target.
CRITIC_BY_HAND = {
    "lsgan": lambda r, f, t: (0.5 * np.mean((r - t) ** 2) + 0.5 * np.mean(f ** 2),
                              (r - t) / r.size, f / f.size),
    "hinge": lambda r, f, t: (np.mean(np.maximum(1 - r, 0)) + np.mean(np.maximum(1 + f, 0)),
                              -1.0 * (r < 1) / r.size, 1.0 * (f > -1) / f.size),
    "wgan": lambda r, f, t: (np.mean(f) - np.mean(r), np.full_like(r, -1 / r.size),
                             np.full_like(f, 1 / f.size)),
}


@pytest.mark.parametrize("loss", sorted(CRITIC_BY_HAND))
def test_critic_step_backpropagates_the_games_loss(loss):
    """D's loss and gradient are the game's, as written out above (not read from gan.D_LOSSES,
    the table critic_step reads), with the real target 0.9: LSGAN's real side moves to it, the
    hinge and WGAN have none. The reported D(x) and D(G(z)) are mean sigmoids of D's outputs."""
    G, D, opt, real, z = small_gan()
    t = 0.9
    d_loss, d_real, d_fake = gan.critic_step(G, D, opt, real, z, backend.default_rng(1), loss,
                                             real_target=t)
    got = grads(D)
    D.zero_grad()
    out_real, out_fake = D.forward(real), D.forward(G.forward(z))  # lr 0: D as it was
    if loss == "hinge":  # away from the hinge's kinks, where the gradient jumps
        assert min(np.abs(out_real - 1).min(), np.abs(out_fake + 1).min()) > 1e-3
    value, dr, df = CRITIC_BY_HAND[loss](out_real, out_fake, t)
    D.forward(real)
    D.backward(dr)
    D.forward(G.forward(z))
    D.backward(df)
    assert abs(float(d_loss) - value) < 1e-12 * max(1.0, abs(value))
    assert abs(float(d_real) - sig(out_real).mean()) < 1e-12
    assert abs(float(d_fake) - sig(out_fake).mean()) < 1e-12
    for k, g in D.grads.items():
        np.testing.assert_allclose(got[k], g, rtol=1e-10, atol=1e-14, err_msg=k)
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


# G's loss on f = D(G(z)) in each game, and dL/df, by hand: the 2014 game's non-saturating
# -mean log sigmoid(f); LSGAN's 0.5 mean((f - 1)^2); -mean f for WGAN and the hinge game (Miyato
# et al. 2018 train G on the hinge game's D with WGAN's G loss).
G_BY_HAND = {
    "bce": lambda f: (np.mean(-np.log(sig(f))), (sig(f) - 1) / f.size),
    "lsgan": lambda f: (0.5 * np.mean((f - 1) ** 2), (f - 1) / f.size),
    "hinge": lambda f: (-np.mean(f), np.full_like(f, -1 / f.size)),
    "wgan": lambda f: (-np.mean(f), np.full_like(f, -1 / f.size)),
}


@pytest.mark.parametrize("loss", sorted(G_BY_HAND))
def test_train_step_takes_the_games_g_loss(loss):
    """The G step of each game: its reported loss and G's gradient are those of the game's G loss
    as written out above, at the G step's noise (the second draw of train_step's rng, after the
    D step's). Both learning rates are 0, so D and G stay where the step took them."""
    G, D, _, real, _ = small_gan()
    sgd = {net: optim.SGD(net.parameters(), lr=0.0) for net in (G, D)}
    metrics = gan.train_step(G, D, sgd[G], sgd[D], lambda: real, backend.default_rng(0),
                             latent_dim=3, loss=loss)
    got = grads(G)
    noise = backend.default_rng(0)
    _, z_g = noise.standard_normal((8, 3)), noise.standard_normal((8, 3))
    G.zero_grad()
    fake = G.forward(z_g)
    value, dout = G_BY_HAND[loss](D.forward(fake))
    G.backward(D.backward(dout, param_grads=False))
    assert abs(float(metrics.g_loss) - value) < 1e-12 * max(1.0, abs(value))
    for k, g in G.grads.items():
        np.testing.assert_allclose(got[k], g, rtol=1e-10, atol=1e-14, err_msg=k)
    assert any(np.abs(g).max() > 1e-3 for g in got.values())


# ---- train_mnist.py and minigan.toy ------------------------------------------------------------

GAMES = [["--loss", "lsgan"], ["--loss", "hinge"], ["--loss", "wgan", "--gp", "10"],
         ["--loss", "wgan", "--clip", "0.01", "--optimizer", "rmsprop", "--k", "2"],
         ["--r1", "10"], ["--loss", "hinge", "--spectral-norm", "1"],
         ["--loss", "wgan", "--gp", "10", "--spectral-norm", "1"],
         ["--model", "dcgan", "--loss", "hinge", "--spectral-norm", "1"]]


def record(monkeypatch, owner, name, calls):
    """Replace owner.name with a function that appends its arguments, by parameter name
    (defaults filled in), to calls and then calls the original."""
    original = getattr(owner, name)
    signature = inspect.signature(original)

    def recording(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        calls.append(dict(bound.arguments))
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, recording)


def record_the_game(monkeypatch):
    """Record every call of train_mnist.py's train_step (models.MINIGAN's), gan.critic_step,
    gan.generator_step and both penalties: {name: [arguments of each call]}."""
    calls = {name: [] for name in ("train_step", "critic_step", "generator_step", "r1", "gp")}
    record(monkeypatch, models.MINIGAN, "train_step", calls["train_step"])
    record(monkeypatch, gan, "critic_step", calls["critic_step"])
    record(monkeypatch, gan, "generator_step", calls["generator_step"])
    record(monkeypatch, penalties, "r1", calls["r1"])
    record(monkeypatch, penalties, "gradient_penalty", calls["gp"])
    return calls


@pytest.mark.parametrize("flags", GAMES, ids=[" ".join(f) for f in GAMES])
def test_each_game_trains_and_resumes_bit_exact(flags, tmp_path, monkeypatch):
    """Spectral norm's u and v are in the checkpoint: the resumed run is the straight one. The
    flags reach every step: each train_step call gets the game's k, loss, r1, gp, clip and D's
    optimizer; each makes k critic_step calls with them and one G step on the game's G loss;
    each critic step runs the penalty asked for, with its weight, and no other. The clipped
    game's saved D lies in [-clip, clip], on the box's wall somewhere."""
    calls = record_the_game(monkeypatch)
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

    # the game each step played, from the flags by hand (the 2014 paper's where not given)
    given = dict(zip(flags[::2], flags[1::2]))
    k, loss = int(given.get("--k", 1)), given.get("--loss", "bce")
    game = {"loss": loss, **{name: float(given.get(f"--{name}", 0.0)) for name in
                             ("r1", "gp", "clip")}}
    images = 64 if "dcgan" in flags else 192
    steps = 4 * (images // (32 * k))  # 2 epochs straight, 1, then 1 more resumed
    opt_D = optim.RMSprop if given.get("--optimizer") == "rmsprop" else optim.Adam
    assert len(calls["train_step"]) == steps
    for call in calls["train_step"]:
        assert call["k"] == k and call["real_target"] == 1.0 and type(call["opt_D"]) is opt_D
        assert {name: call[name] for name in game} == game
    assert len(calls["critic_step"]) == k * steps  # every game here takes critic_step
    for call in calls["critic_step"]:
        assert {name: call[name] for name in game} == game and call["real_target"] == 1.0
    assert [call["gen_loss"] for call in calls["generator_step"]] == [
        "nonsaturating" if loss == "bce" else loss] * steps
    for name, weight in (("r1", "gamma"), ("gp", "lam")):
        expected = [game[name]] * (k * steps if game[name] else 0)
        assert [call[weight] for call in calls[name]] == expected, name
    if game["clip"]:
        D = np.concatenate([v.ravel() for key, v in a.items() if key.startswith("D/")])
        bound = np.float32(game["clip"])
        assert np.abs(D).max() == bound  # inside the box, and some weight on its wall


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


TOY_GAMES = [  # (train_toy's keywords, the game train_step must get, D's optimizer)
    ({"loss": "wgan", "gp": 1.0, "optimizer": "rmsprop"},
     dict(k=1, loss="wgan", gp=1.0, real_target=1.0), optim.RMSprop),
    ({"loss": "hinge", "k": 2}, dict(k=2, loss="hinge", real_target=1.0), optim.Adam),
    ({"loss": "lsgan", "r1": 1.0, "label_smoothing": 0.25},
     dict(k=1, loss="lsgan", r1=1.0, real_target=0.75), optim.Adam),
    ({"loss": "wgan", "clip": 0.05}, dict(k=1, loss="wgan", clip=0.05, real_target=1.0),
     optim.Adam),
]


@pytest.mark.parametrize("kwargs,game,opt_D", TOY_GAMES,
                         ids=["wgan-gp-rmsprop", "hinge-k2", "lsgan-r1-smoothed", "wgan-clip"])
def test_the_toy_plays_every_game(kwargs, game, opt_D, monkeypatch):
    """Every step of the lab calls train_step with the game asked for (the real target is
    1 - label_smoothing; r1, gp and clip 0 where not asked) and D's optimizer; the clipped game's
    D ends in the box, on its wall somewhere."""
    calls = []
    record(monkeypatch, toy, "train_step", calls)
    G, D, history = toy.train_toy("ring", steps=40, batch_size=64, log_every=20, **kwargs)
    assert [r["step"] for r in history] == [20, 40]
    assert all(np.isfinite(r["d_loss"]) for r in history)
    assert len(calls) == 40
    expected = {"r1": 0.0, "gp": 0.0, "clip": 0.0, **game}
    for call in calls:
        assert {name: call[name] for name in expected} == expected
        assert type(call["opt_D"]) is opt_D and call["D"] is D
    if "clip" in kwargs:
        assert max(float(np.abs(p.data).max()) for p in D.parameters()) == np.float32(0.05)
