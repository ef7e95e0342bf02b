"""The games beyond Jensen-Shannon against their PyTorch twin (reference/torch_games.py), float64.

Each game runs 20 whole steps (k critic steps and one G step) of minigan.gan.train_step, its
noise and WGAN-GP's interpolation weights drawn inside from the run's rng, next to the twin fed
the same real batches (MNIST) and the same draws. The twin gets those draws by replaying a
second generator seeded alike, in train_step's order (:func:`replay_draws`), so the test also
pins that order: a draw taken out of turn would give the two sides different noise.

Under spectral norm, minigan's D is made by minigan.spectral.apply (its u, v drawn by minigan)
and the twin's layers are put under torch's spectral_norm with minigan's trained W and u, v
copied in (torch_games.spectral_twin_of); both take one power step per training forward.

Compared, with test_parity's rel_error (the largest difference over the largest reference
entry): L_D, L_G, mean D(x) and mean D(G(z)) of every step, each as one sequence of 20, and
every parameter of G and D (and u, v) at the end, to 1e-10. Measured (seed 0): the sequences
within 3e-15 (WGAN with clipping's L_D, a difference of nearly equal means; the rest
<= 1.4e-15), the parameters within 6.3e-13 (the penalty alone on BCE, D's first W), 1.3e-13
(R1 under spectral norm), the rest <= 2.2e-14.

The DCGAN (tests/test_conv_parity.py's tiny one, batch 16) plays its games the same way
(DCGAN_GAMES: least squares, hinge, WGAN with clipping, hinge with spectral norm, spectral norm
alone, the 2014 game with k = 2, G's minimax loss and real target 0.9; no penalty, which
minigan/penalties.py refuses with BatchNorm), against the reference's own DCGAN, with every
BatchNorm statistic and every u, v compared too, to TOL, except the biases that feed a
BatchNorm (tests/test_conditional_parity.py's BIAS_BEFORE_BATCHNORM_TOL, for its reason).
"""

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="the parity tests compare minigan with PyTorch; install the reference extra: "
    "pip install -e '.[reference]'"
)

from minigan import backend, optim, penalties, spectral  # noqa: E402
from minigan.gan import (  # noqa: E402
    make_dcgan_discriminator, make_dcgan_generator, sample_noise, train_step,
)
from reference import torch_games  # noqa: E402
from reference.torch_games import TorchGame, spectral_twin_of  # noqa: E402
from reference.torch_gan import twin_of  # noqa: E402
from test_conditional_parity import BIAS_BEFORE_BATCHNORM_TOL, beside_batchnorm  # noqa: E402
from test_conv_parity import reference_twins  # noqa: E402
from test_parity import DEFAULT, SMALL, assert_parity, host, make_gan  # noqa: E402

TOL = 1e-10
N = 64  # batch size


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


OPTIMIZERS = {  # name -> minigan's optimizer for a list of parameters, and the twin's settings
    "adam": (lambda ps: optim.Adam(ps, lr=2e-4, betas=(0.5, 0.999)),
             dict(optimizer="adam", lr=2e-4, betas=(0.5, 0.999))),
    "adam sn-gan": (lambda ps: optim.Adam(ps, lr=2e-4, betas=(0.0, 0.9)),  # Miyato et al.'s
                    dict(optimizer="adam", lr=2e-4, betas=(0.0, 0.9))),
    "adam wgan-gp": (lambda ps: optim.Adam(ps, lr=1e-4, betas=(0.5, 0.9)),  # the paper's
                     dict(optimizer="adam", lr=1e-4, betas=(0.5, 0.9))),
    "rmsprop wgan": (lambda ps: optim.RMSprop(ps, lr=5e-5),  # the WGAN paper's
                     dict(optimizer="rmsprop", lr=5e-5)),
}

GAMES = {  # name -> (train_step's game, k, optimizer, D under spectral norm)
    "wgan-gp k=1": (dict(loss="wgan", gp=10.0), 1, "adam wgan-gp", False),
    "wgan-gp k=5": (dict(loss="wgan", gp=10.0), 5, "adam wgan-gp", False),  # the paper's n_critic
    "wgan clip": (dict(loss="wgan", clip=0.01), 5, "rmsprop wgan", False),
    "lsgan": (dict(loss="lsgan"), 1, "adam", False),
    "hinge": (dict(loss="hinge"), 1, "adam", False),
    "r1 bce": (dict(loss="bce", r1=10.0), 1, "adam", False),  # with G's non-saturating loss
    "gp bce": (dict(loss="bce", gp=10.0), 1, "adam", False),  # the penalty alone on the 2014 game
    "hinge sn": (dict(loss="hinge"), 1, "adam", True),
    "hinge sn k=5": (dict(loss="hinge"), 5, "adam sn-gan", True),  # SN-GAN's n_dis and Adam
    # a penalty through spectral norm: its D forward takes one more power step, on both sides
    "wgan-gp sn": (dict(loss="wgan", gp=10.0), 1, "adam wgan-gp", True),
    "r1 bce sn": (dict(loss="bce", r1=10.0), 1, "adam", True),
    # the 2014 game through spectral norm: real and fake as two passes, two power steps, as
    # the twin's D(real) and D(fake) take (one stacked pass would take one)
    "bce sn": (dict(loss="bce"), 1, "adam", True),
}


def replay_draws(rng, k, latent_dim, gp, n=N):
    """What minigan.gan.train_step draws from rng in one step, in its order: for each critic
    step z (n, latent_dim) and then, with gp, WGAN-GP's eps (n, 1) (drawn inside critic_step by
    penalties.gradient_penalty); then G's z. Returns (zs, eps), eps None without gp."""
    zs, eps = [], []
    for _ in range(k):
        zs.append(sample_noise(rng, n, latent_dim, "float64"))
        if gp:
            eps.append(rng.random((n, 1), dtype="float64"))
    zs.append(sample_noise(rng, n, latent_dim, "float64"))
    return zs, (eps if gp else None)


def torch_state(net):
    """A twin's parameters and buffers under minigan's keys: ``"<i>.W"``, ``"<i>.b"`` of a Linear
    ((in, out), Dense's layout), Conv2d or ConvTranspose2d (as they are), ``"<i>.u"``, ``"<i>.v"``
    under spectral norm, and a BatchNorm's ``"<i>.gamma"``, ``"<i>.beta"``, ``"<i>.running_mean"``,
    ``"<i>.running_var"``. A spectral_norm'd layer's W is the trained one,
    ``parametrizations.weight.original``: reading ``.weight`` would give W / sigma, and in
    training mode take a power step."""
    out = {}
    for i, module in enumerate(net):
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            out[f"{i}.gamma"], out[f"{i}.beta"] = host(module.weight), host(module.bias)
            out[f"{i}.running_mean"] = host(module.running_mean)
            out[f"{i}.running_var"] = host(module.running_var)
            continue
        if not isinstance(module, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            continue
        if torch.nn.utils.parametrize.is_parametrized(module, "weight"):
            norm = module.parametrizations.weight
            W = host(norm.original)
            out[f"{i}.u"], out[f"{i}.v"] = host(norm[0]._u), host(norm[0]._v)
        else:
            W = host(module.weight)
        out[f"{i}.W"] = W.T if isinstance(module, torch.nn.Linear) else W
        out[f"{i}.b"] = host(module.bias)
    return out


def make_players(model, spectral_norm, widths, seed):
    """(G, D, G_t, D_t): minigan's G and D in float64 from one seed, and their twins with the
    same weights. model "mlp": make_gan's networks at widths, twinned layer by layer (twin_of).
    model "dcgan": tests/test_conv_parity.py's tiny DCGAN (latent 8, G's channels (6, 4), D's
    (4, 6)), whose twins are the reference's own networks (reference_twins: they refuse a
    minigan DCGAN of another design). Under spectral norm, D's Dense and Conv2D layers are
    wrapped by minigan.spectral.apply (u, v drawn by minigan) and the twin's D is put under
    torch's spectral_norm with minigan's W and u, v (torch_games.spectral_twin_of)."""
    if model == "dcgan":
        rng = backend.default_rng(seed)
        G = make_dcgan_generator(8, (6, 4), rng=rng, dtype="float64")
        D = make_dcgan_discriminator((4, 6), rng=rng, dtype="float64")
        G_t, D_t = reference_twins(G, D)
    else:
        G, D = make_gan(widths, "float64", seed)
        G_t, D_t = twin_of(G), twin_of(D)
    if spectral_norm:
        D = spectral.apply(D, backend.default_rng(seed + 2))
        D_t = spectral_twin_of(D)
    return G, D, G_t, D_t


def play_twins(images, game, k, optimizer, spectral_norm=False, steps=20, widths=SMALL, seed=0,
               model="mlp", n=N):
    """minigan's train_step and the twin's from one initialisation, ``steps`` whole steps on
    batches of n. game: train_step's keywords (loss, gen_loss, real_target, r1, gp, clip).

    Returns (G, D, twin, ours, theirs); ours and theirs: (steps, 4) arrays of L_D, L_G,
    mean D(x), mean D(G(z)), one row per whole step (D's from its last critic step).
    """
    G, D, G_t, D_t = make_players(model, spectral_norm, widths, seed)
    make_opt, twin_opt = OPTIMIZERS[optimizer]
    real_target = game.get("real_target", 1.0)  # the twin takes it per step, not as a setting
    twin = TorchGame(G_t, D_t, **{key: value for key, value in game.items()
                                  if key != "real_target"}, **twin_opt)
    opt_G, opt_D = make_opt(G.parameters()), make_opt(D.parameters())
    latent_dim = G.layers[0].in_features  # both G's begin with a Dense on z
    rng, rng_twin = np.random.default_rng(seed + 1), np.random.default_rng(seed + 1)
    batches = iter(images[n * i:n * (i + 1)] for i in range(steps * k))
    ours, theirs = [], []
    for _ in range(steps):
        reals = [next(batches) for _ in range(k)]
        metrics = train_step(G, D, opt_G, opt_D, iter(reals).__next__, rng, k=k,
                             latent_dim=latent_dim, **game)
        zs, eps = replay_draws(rng_twin, k, latent_dim, game.get("gp", 0), n)
        metrics_t = twin.train_step(reals, zs, eps=eps, real_target=real_target)
        ours.append([float(v) for v in metrics.read().values()])
        theirs.append([float(v) for v in metrics_t.read().values()])
    return G, D, twin, np.array(ours), np.array(theirs)


def check_game_parity(images, game, k, optimizer, spectral_norm, **kwargs):
    """play_twins, then every step's L_D, L_G, D(x), D(G(z)) and every parameter and buffer
    of G and D at the end to TOL; a bias that feeds a BatchNorm, and that BatchNorm's running
    mean, to BIAS_BEFORE_BATCHNORM_TOL (tests/test_conditional_parity.py says why; the MLP has
    none). Returns (G, D, twin, ours), ours as play_twins's, for the caller's own checks."""
    G, D, twin, ours, theirs = play_twins(images, game, k, optimizer, spectral_norm, **kwargs)
    for j, metric in enumerate(("L_D", "L_G", "D(x)", "D(G(z))")):
        assert_parity(metric, ours[:, j], theirs[:, j], TOL)
    for net_name, net, net_t in (("G", G, twin.G), ("D", D, twin.D)):
        state, theirs_state = {**net.params, **net.buffers}, torch_state(net_t)
        assert sorted(theirs_state) == sorted(state)  # u, v, running statistics included
        for key, value in state.items():
            tol = BIAS_BEFORE_BATCHNORM_TOL if beside_batchnorm(key, state) else TOL
            assert_parity(f"{net_name} {key}", value, theirs_state[key], tol)
    assert np.abs(ours[-1] - ours[0]).max() > 1e-6  # the players moved: a trajectory to match
    if game.get("clip"):  # the box is active: on both sides some parameters sit on each edge
        for net in (D, twin.D):
            values = np.concatenate([np.ravel(param_values(p)) for p in net.parameters()])
            assert values.max() == game["clip"] and values.min() == -game["clip"]
    return G, D, twin, ours


@pytest.mark.parametrize("name", list(GAMES))
def test_game_parity_20_steps(mnist_f64, name):
    check_game_parity(mnist_f64, *GAMES[name])


@pytest.mark.parametrize("name", ["wgan-gp k=1", "hinge sn"])
def test_game_parity_default_widths(mnist_f64, name):
    """The default networks (1.5M weights each), 5 steps. Measured: the sequences within 7e-16,
    the parameters within 1.1e-13 (WGAN-GP) and 7.3e-13 (hinge with spectral norm)."""
    check_game_parity(mnist_f64, *GAMES[name], steps=5, widths=DEFAULT)


# ---- the DCGAN's games -------------------------------------------------------------------------

DCGAN_GAMES = {  # name -> (train_step's game, k, optimizer, D under spectral norm): the DCGAN's
    # recipes of benchmarks/time_to_quality.py (no penalty: minigan/penalties.py refuses BatchNorm)
    "lsgan": (dict(loss="lsgan"), 1, "adam", False),
    "hinge": (dict(loss="hinge"), 1, "adam", False),
    # the twin clamps every parameter of D, BatchNorm's gamma and beta too, as minigan does
    "wgan clip": (dict(loss="wgan", clip=0.01), 5, "rmsprop wgan", False),
    "hinge sn": (dict(loss="hinge"), 1, "adam", True),  # D's two Conv2D and its Dense
    "sn": (dict(), 1, "adam", True),  # spectral norm alone, on the 2014 game
    # the 2014 game off test_conv_parity's one path: k = 2, G's minimax loss, label smoothing
    "bce minimax k=2": (dict(gen_loss="minimax", real_target=0.9), 2, "adam", False),
}
DCGAN_N, DCGAN_STEPS = 16, 20  # batch size, whole steps


@pytest.fixture(scope="module")
def mnist_nudged(mnist_f64):
    """The real batches of the DCGAN's games: MNIST with every pixel raised by a uniform draw in
    [0, 1e-3), (1600, 784) float64. Plain MNIST's background is exactly -1, and after WGAN's
    clipping nearly every weight of D's first convolution and its bias sit at exactly +-clip,
    so a window of background and padding sums to exactly 0 (a multiple of clip that cancels):
    there LeakyReLU's kink picks its branch by the sign of each side's rounding (im2col's
    matrix product against torch's convolution), and where the two signs differ D's first
    gradient differs by 2% (measured, seed 1: 3 of 12,544 outputs; the players then part, to
    7e-3). Nudged, no window sums to 0; the other games have no kink there and pass either way."""
    n = DCGAN_N * DCGAN_STEPS * max(k for _, k, _, _ in DCGAN_GAMES.values())
    return mnist_f64[:n] + np.random.default_rng(0).uniform(0, 1e-3, (n, 784))


@pytest.mark.parametrize("name", list(DCGAN_GAMES))
def test_dcgan_game_parity(mnist_nudged, name):
    """The tiny DCGAN (tests/test_conv_parity.py's: latent 8, G's channels (6, 4), D's (4, 6))
    in each of its games, 20 whole steps at batch 16, against the twin built from the
    reference's own networks: check_game_parity's comparisons, BatchNorm's running statistics
    and spectral norm's u, v included. Measured (seed 0): the sequences within 1.4e-14 (WGAN
    with clipping's L_D; the rest <= 2.5e-15), the parameters and statistics within 3.1e-14
    (WGAN with clipping; the rest <= 1.9e-15), the biases that feed a BatchNorm and those
    BatchNorms' running means within 9.7e-10 (G's 4.b, hinge with spectral norm). Over seeds
    0-9: 5.1e-14, 1.0e-13 and 4.1e-9."""
    game, k, optimizer, spectral_norm = DCGAN_GAMES[name]
    G, D, twin, ours = check_game_parity(mnist_nudged, game, k, optimizer, spectral_norm,
                                         model="dcgan", n=DCGAN_N, steps=DCGAN_STEPS)
    if game.get("clip"):  # BatchNorm's gamma (1 at the start) is clamped too: on both sides
        for state in (D.params, torch_state(twin.D)):  # some of it sits on the top edge
            gamma = np.concatenate([state[key] for key in state if key.endswith(".gamma")])
            assert gamma.max() == game["clip"]  # (and beta inside: check_game_parity's box)
    if game.get("gen_loss") == "minimax":  # the game asked: L_G = mean log(1 - D(G(z))) < 0
        assert ours[:, 1].max() < 0


def param_values(p):
    """A parameter's values as a NumPy array: a minigan Param's data or a torch parameter's."""
    return p.detach().numpy() if isinstance(p, torch.Tensor) else p.data


@pytest.mark.parametrize("which", ["r1", "gp"])
def test_twin_penalty_matches_minigans(mnist_f64, which):
    """The twin's penalty alone, on one batch: its value and its gradient in every parameter of D
    against minigan.penalties, the gradient it adds into D's grads (zero for the biases)."""
    G, D = make_gan(SMALL, "float64", 0)
    twin = TorchGame.from_minigan(G, D)
    real = mnist_f64[:N]
    fake = G.forward(sample_noise(backend.default_rng(1), N, SMALL["latent_dim"], "float64"))
    D.zero_grad()
    if which == "r1":
        value = penalties.r1(D, real, 10.0)
        value_t = torch_games.r1_penalty(twin.D, torch.from_numpy(real), 10.0)
    else:  # minigan draws eps from the generator it is given: the twin gets that draw
        value = penalties.gradient_penalty(D, real, fake, 10.0, backend.default_rng(2))
        eps = torch.from_numpy(backend.default_rng(2).random((N, 1), dtype="float64"))
        value_t = torch_games.gradient_penalty(twin.D, torch.from_numpy(real),
                                               torch.from_numpy(fake), 10.0, eps)
    value_t.backward()
    assert float(value) > 1e-2  # a penalty that is there
    assert_parity("penalty", value, value_t, TOL)
    for i, module in enumerate(twin.D):
        if isinstance(module, torch.nn.Linear):
            assert_parity(f"dP/dW {i}", D.grads[f"{i}.W"], module.weight.grad.T, TOL)
            # the last bias is not in the graph of g at all: autograd leaves its .grad None
            db = module.bias.grad if module.bias.grad is not None else torch.zeros_like(module.bias)
            assert_parity(f"dP/db {i}", D.grads[f"{i}.b"], db, TOL)


def test_lab_gp_alone_is_the_games_failure_not_minigans():
    """The 2-D lab's ``--gp 10`` (the 2014 game with WGAN-GP's penalty alone) covers no mode of
    the ring (docs/time_to_quality/lab). Is that minigan or the game? The twin, in float64 from
    the same start, fed the same points and draws, follows the same 400 steps of the lab's
    networks, batch and Adam: measured, G's parameters and the last step's metrics within
    1.6e-15. So the failure is the game's.

    What it is, measured on this trajectory: a flat D would pay the whole penalty (10, against
    the 1.39 of BCE a flat D scores), so D keeps a slope of about 1, and from step 100 it rates
    G's samples above the reals (mean sigmoid 0.71 against 0.50). G's samples climb that slope
    to the edge of the square the networks see: at step 0 none has a coordinate beyond 0.99,
    at step 200 74%, from step 300 all. There G's tanh saturates, its gradient vanishes, and G
    stays, far from every mode (the reals reach 0.69).
    """
    from minigan import models, toy, toy_settings

    cfg = toy_settings.ToyConfig(gp=10.0)
    cfg.dtype = "float64"  # the lab trains in float32 (ToyConfig.dtype); parity needs 64
    G, D = models.build(cfg, backend.default_rng(0), data_dim=2)
    opt_G, opt_D = models.optimizers(cfg, G, D)
    twin = TorchGame.from_minigan(G, D, loss="bce", gp=cfg.gp, lr=cfg.lr_g,
                                  betas=(cfg.beta1, 0.999))
    data_rng = np.random.default_rng(1)
    rng, rng_twin = np.random.default_rng(2), np.random.default_rng(2)
    for _ in range(400):
        real = toy.sample_mixture(data_rng, "ring", cfg.batch_size) / toy.SCALE["ring"]
        metrics = train_step(G, D, opt_G, opt_D, lambda: real, rng, latent_dim=cfg.latent_dim,
                             gp=cfg.gp)
        zs, eps = replay_draws(rng_twin, 1, cfg.latent_dim, cfg.gp, n=cfg.batch_size)
        metrics_t = twin.train_step([real], zs, eps=eps)
    for key, value in torch_state(twin.G).items():
        assert_parity(f"G {key}", G.params[key], value, TOL)
    ours, theirs = metrics.read(), metrics_t.read()
    for name in ours:
        assert_parity(name, ours[name], theirs[name], TOL)
    assert ours["d_fake"] > ours["d_real"] + 0.1  # D rates G's samples above the real points
    fake = G.forward(sample_noise(np.random.default_rng(3), 1000, cfg.latent_dim, "float64"))
    assert np.mean(np.abs(fake).max(axis=1) > 0.99) > 0.99  # at tanh's edge: saturated
    assert np.abs(real).max() < 0.75  # where no real point is
