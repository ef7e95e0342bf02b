"""The composite gradients a GAN trains on, checked end to end with central differences.

The generator's gradient is the one that matters and the easiest to get subtly wrong: the loss
sits on D's logits, so dL/dG(z) is backpropagated through D (without touching D's grads) and
then through G. Here every generator parameter's gradient, as ``gan.generator_step`` leaves it
in ``G.grads``, is compared with a central difference of the loss itself (float64, < 1e-7).
"""

import numpy as np
import pytest

from minigan import backend, gan, losses, optim, penalties
from minigan.gradcheck import compare, numerical_gradient

LATENT, IMAGE, N = 3, 4, 6


def tiny_gan(seed=0):
    """G: 3 -> 5 -> 4 (tanh), D: 4 -> 5 -> 1 (logit), float64, with real data and noise."""
    rng = backend.default_rng(seed)
    G = gan.make_generator(latent_dim=LATENT, hidden=(5,), out_dim=IMAGE, rng=rng,
                           dtype="float64")
    D = gan.make_discriminator(in_dim=IMAGE, hidden=(5,), rng=rng, dtype="float64")
    real = rng.uniform(-1.0, 1.0, (N, IMAGE))
    z = rng.standard_normal((N, LATENT))
    return G, D, real, z


def check_param_grads(net, analytic, loss_of_params):
    """Every parameter gradient in ``analytic`` against central differences of the loss."""
    errors = {}
    for k, p in net.params.items():
        numeric = numerical_gradient(loss_of_params, p, 1.0)
        errors[k] = compare(k, analytic[k], numeric, tol=1e-7, who=f"{net!r}: ")
    assert set(errors) == set(net.params)
    return errors


def snapshot(arrays):
    return {k: backend.to_host(a).copy() for k, a in arrays.items()}


def assert_unchanged(before, arrays, what):
    for k, a in arrays.items():
        assert np.array_equal(backend.to_host(a), before[k]), f"{what} {k} changed"


@pytest.mark.parametrize("gen_loss", ["nonsaturating", "minimax"])
def test_generator_gradient_through_the_discriminator(xp, gen_loss):
    G, D, real, z = tiny_gan()
    loss_fn = losses.GENERATOR_LOSSES[gen_loss]
    D.grads["0.W"][...] = 1.0  # leftovers from a D step: the G step must not add to them
    G.grads["2.b"][...] = 3.0  # leftovers from the last G step: the G step starts from zero
    D_params, D_grads = snapshot(D.params), snapshot(D.grads)

    loss = gan.generator_step(G, D, optim.SGD(G.parameters(), lr=0.0), z, gen_loss)
    analytic = snapshot(G.grads)
    assert any(np.abs(g).max() > 0 for g in analytic.values())

    def generator_loss():
        return loss_fn(D.forward(G.forward(z)))[0]

    assert float(loss) == float(generator_loss())  # lr = 0: G is where it was
    check_param_grads(G, {k: backend.to_device(g) for k, g in analytic.items()}, generator_loss)
    assert_unchanged(D_params, D.params, "D param")
    assert_unchanged(D_grads, D.grads, "D grad")


@pytest.mark.parametrize("gen_loss", ["nonsaturating", "minimax"])
def test_generator_step_leaves_the_discriminator_and_its_optimizer_alone(gen_loss):
    G, D, real, z = tiny_gan(seed=1)
    opt_G = optim.Adam(G.parameters(), lr=1e-2, betas=(0.5, 0.999))
    opt_D = optim.Adam(D.parameters(), lr=1e-2, betas=(0.5, 0.999))
    gan.discriminator_step(G, D, opt_D, real, z)  # D's grads and Adam state now nonzero
    D_params, D_grads = snapshot(D.params), snapshot(D.grads)
    D_state = {k: v.copy() if isinstance(v, np.ndarray) else v
               for k, v in opt_D.state_dict().items()}
    G_params = snapshot(G.params)

    gan.generator_step(G, D, opt_G, backend.default_rng(9).standard_normal((N, LATENT)),
                       gen_loss)

    assert_unchanged(D_params, D.params, "D param")
    assert_unchanged(D_grads, D.grads, "D grad")
    state = opt_D.state_dict()
    assert state["t"] == D_state["t"] == 1
    for k, v in D_state.items():
        assert np.array_equal(state[k], v), f"D optimizer state {k} changed"
    for k in G_params:
        assert not np.array_equal(G.params[k], G_params[k]), f"G param {k} did not move"
    assert opt_G.t == 1


def test_discriminator_step_reports_d_before_its_update():
    G, D, real, z = tiny_gan(seed=3)
    fake = G.forward(z)
    D_real = 1 / (1 + np.exp(-D.forward(real)))  # D as it is before the step
    D_fake = 1 / (1 + np.exp(-D.forward(fake)))
    _, d_real, d_fake = gan.discriminator_step(G, D, optim.SGD(D.parameters(), lr=0.5), real, z)
    assert not np.allclose(1 / (1 + np.exp(-D.forward(fake))), D_fake)  # D did move
    np.testing.assert_allclose(float(d_real), D_real.mean(), rtol=1e-14)
    np.testing.assert_allclose(float(d_fake), D_fake.mean(), rtol=1e-14)


@pytest.mark.parametrize("real_target", [1.0, 0.9])
def test_discriminator_gradient(xp, real_target):
    G, D, real, z = tiny_gan(seed=2)
    G.grads["2.b"][...] = 3.0  # the D step runs G forward only: G's grads must stay as they are
    G_params, G_grads = snapshot(G.params), snapshot(G.grads)

    d_loss, d_real, d_fake = gan.discriminator_step(
        G, D, optim.SGD(D.parameters(), lr=0.0), real, z, real_target)
    analytic = {k: g.copy() for k, g in D.grads.items()}
    fake = G.forward(z)

    def discriminator_loss():
        return (losses.bce_with_logits(D.forward(real), real_target)[0]
                + losses.bce_with_logits(D.forward(fake), 0.0)[0])

    # D runs once over real and fake stacked, so the sum rounds differently: 1e-14, not ==.
    np.testing.assert_allclose(float(d_loss), float(discriminator_loss()), rtol=1e-14)
    check_param_grads(D, analytic, discriminator_loss)
    # The reported D(x) and D(G(z)) are the mean probabilities.
    D_real = 1 / (1 + np.exp(-backend.to_host(D.forward(real))))
    D_fake = 1 / (1 + np.exp(-backend.to_host(D.forward(fake))))
    np.testing.assert_allclose(float(d_real), D_real.mean(), rtol=1e-14)
    np.testing.assert_allclose(float(d_fake), D_fake.mean(), rtol=1e-14)
    assert_unchanged(G_params, G.params, "G param")
    assert_unchanged(G_grads, G.grads, "G grad")


def sigmoid(s):
    return 1 / (1 + np.exp(-s))


def bce_closed_form(s, t):
    """BCE on host logits s from its definition: mean(-t log p - (1 - t) log(1 - p)), p = sig(s)."""
    p = sigmoid(s)
    return np.mean(-t * np.log(p) - (1 - t) * np.log(1 - p))


@pytest.mark.parametrize("real_target", [0.9, 0.75])
def test_train_step_trains_d_on_the_smoothed_real_target(xp, real_target):
    """train_step's real_target (one-sided label smoothing) reaches D's loss on real images.

    With lr 0 nothing moves, and D's grads after the step are those of its D step (the G step
    leaves them alone). D's last layer is Dense(5 -> 1) on features h, so the closed form of
    BCE(real, t) + BCE(fake, 0) gives its bias gradient mean(sig(s_real) - t) + mean(sig(s_fake))
    and its weight gradient (h_real.T (sig(s_real) - t) + h_fake.T sig(s_fake)) / N. A step
    that trained D on target 1 would be off by 1 - t in the bias gradient.
    """
    G, D, real, _ = tiny_gan(seed=4)
    sgd = {net: optim.SGD(net.parameters(), lr=0.0) for net in (G, D)}
    metrics = gan.train_step(G, D, sgd[G], sgd[D], lambda: real, backend.default_rng(21), k=1,
                             real_target=real_target, latent_dim=LATENT)
    z = backend.default_rng(21).standard_normal((N, LATENT))  # the D step's noise: first draw

    def logits_and_features(x):
        h = x
        for layer in D.layers[:-1]:
            h = layer.forward(h)
        return backend.to_host(D.layers[-1].forward(h)), backend.to_host(h)

    s_real, h_real = logits_and_features(real)  # (N, 1), (N, 5)
    s_fake, h_fake = logits_and_features(G.forward(z))

    def last_layer_grads(t):
        r, f = sigmoid(s_real) - t, sigmoid(s_fake)  # (N, 1): dBCE/ds times N
        return {"2.b": (r.sum(axis=0) + f.sum(axis=0)) / N,  # (1,)
                "2.W": (h_real.T @ r + h_fake.T @ f) / N}  # (5, 1)

    expected, unsmoothed = last_layer_grads(real_target), last_layer_grads(1.0)
    for k in ("2.b", "2.W"):
        got = backend.to_host(D.grads[k])
        np.testing.assert_allclose(got, expected[k], rtol=1e-10, atol=1e-12, err_msg=k)
    got_b = backend.to_host(D.grads["2.b"])
    assert abs(got_b - unsmoothed["2.b"]).max() > 0.9 * (1 - real_target)  # the target is used
    np.testing.assert_allclose(float(metrics.d_loss), bce_closed_form(s_real, real_target)
                               + bce_closed_form(s_fake, 0.0), rtol=1e-12)
    np.testing.assert_allclose(float(metrics.d_real), sigmoid(s_real).mean(), rtol=1e-12)


# ---- the other games: critic_step and train_step's k D steps -----------------------------------

# Each game's D loss on D's outputs for real x and for G(z), and G's loss on D(G(z)), written out
# from the papers on host arrays: BCE with the real target t; LSGAN with targets 1 and 0 (Mao et
# al. 2017); the hinge (Lim & Ye 2017); WGAN's E D(G(z)) - E D(x) (Arjovsky et al. 2017).
CRITIC_LOSSES = {
    "bce": lambda r, f, t: bce_closed_form(r, t) + bce_closed_form(f, 0.0),
    "lsgan": lambda r, f, t: 0.5 * np.mean((r - 1) ** 2) + 0.5 * np.mean(f ** 2),
    "hinge": lambda r, f, t: np.mean(np.maximum(1 - r, 0)) + np.mean(np.maximum(1 + f, 0)),
    "wgan": lambda r, f, t: np.mean(f) - np.mean(r),
}
G_LOSSES_BY_HAND = {"bce": lambda f: np.mean(-np.log(sigmoid(f))),  # non-saturating -log D(G(z))
                    "lsgan": lambda f: 0.5 * np.mean((f - 1) ** 2)}

CRITIC_CASES = {
    "lsgan": dict(loss="lsgan"),
    "hinge": dict(loss="hinge"),
    "wgan-gp": dict(loss="wgan", gp=10.0),
    "bce + r1, smoothed": dict(loss="bce", real_target=0.9, r1=5.0),
    "wgan, clipped": dict(loss="wgan", clip=0.3),
}


def critic_loss(D, real, fake, loss="wgan", real_target=1.0, r1=0.0, gp=0.0, clip=0.0,
                gp_seed=8):
    """L_D at D's current weights: the game's loss by hand, plus the penalties' values from
    minigan.penalties (checked against autograd in test_penalties.py); WGAN-GP's interpolation
    weights are the first draw of a generator seeded with gp_seed, as critic_step's rng. clip is
    taken so that a case's options pass through: clipping is not part of L_D."""
    value = CRITIC_LOSSES[loss](D.forward(real), D.forward(fake), real_target)
    if r1:
        value = value + penalties.r1(D, real, r1)
    if gp:
        value = value + penalties.gradient_penalty(D, real, fake, gp, backend.default_rng(gp_seed))
    return value


@pytest.mark.parametrize("case", sorted(CRITIC_CASES))
def test_critic_step_descends_the_whole_critic_loss_and_leaves_g_alone(case):
    """One SGD step of critic_step moves D by -lr times the gradient of all of L_D (both sides,
    the penalty included) at D's weights before the step, central differences, and clipping
    comes after that step. G is only run forward: its weights and grads stay as they were."""
    options, lr = CRITIC_CASES[case], 0.1
    G, D, real, z = tiny_gan(seed=5)
    G.grads["2.b"][...] = 3.0
    G_params, G_grads = snapshot(G.params), snapshot(G.grads)
    fake = G.forward(z)
    out_real, out_fake = D.forward(real), D.forward(fake)
    if options["loss"] == "hinge":  # away from the hinge's kinks, where differences would jump
        assert min(np.abs(out_real - 1).min(), np.abs(out_fake + 1).min()) > 1e-3
    before = snapshot(D.params)
    expected_loss = float(critic_loss(D, real, fake, **options))
    numeric = {k: numerical_gradient(lambda: critic_loss(D, real, fake, **options), p, 1.0)
               for k, p in D.params.items()}

    d_loss, _, _ = gan.critic_step(G, D, optim.SGD(D.parameters(), lr=lr), real, z,
                                   backend.default_rng(8), **options)

    assert abs(float(d_loss) - expected_loss) <= 1e-12 * abs(expected_loss)
    scale = lr * max(float(np.abs(g).max()) for g in numeric.values())  # the largest move
    clip = options.get("clip", 0.0)
    for k, g in numeric.items():
        expected = before[k] - lr * g
        if clip:
            expected = np.clip(expected, -clip, clip)
        err = float(np.abs(D.params[k] - expected).max()) / scale
        assert err < 1e-7, f"D param {k}: relative error {err:.2e} after the step"
    if clip:  # weights that end on the box's wall with a gradient: clipped before the step,
        # they would have left it by lr * g
        assert sum(int(((np.abs(np.clip(before[k] - lr * g, -clip, clip)) == clip)
                        & (np.abs(lr * g) > 1e-3 * scale)).sum()) for k, g in numeric.items()) > 3
    assert_unchanged(G_params, G.params, "G param")
    assert_unchanged(G_grads, G.grads, "G grad")


@pytest.mark.parametrize("loss, r1", [("bce", 0.0), ("bce", 5.0), ("lsgan", 0.0)],
                         ids=["bce", "bce + r1", "lsgan"])
def test_train_step_plays_k_d_steps_then_a_g_step_on_fresh_noise(loss, r1):
    """Algorithm 1 with k = 2, both learning rates 0 (nothing moves, so every gradient can be
    checked where it was taken): the D steps take the next two real batches and the first two
    draws of noise, the G step the third. D's grads are then its last step's, of the game's D
    loss (with R1 where asked), G's those of the game's G loss, against central differences."""
    G, D, _, _ = tiny_gan(seed=6)
    # three batches for two steps: a train_step that asked for a third would get it, and be counted
    batches = [np.random.default_rng(30 + i).uniform(-1, 1, (N, IMAGE)) for i in range(3)]
    handed = []

    def next_real():
        handed.append(batches[len(handed)])
        return handed[-1]

    opt_G, opt_D = optim.SGD(G.parameters(), lr=0.0), optim.SGD(D.parameters(), lr=0.0)
    gan.train_step(G, D, opt_G, opt_D, next_real, backend.default_rng(22), k=2,
                   latent_dim=LATENT, loss=loss, r1=r1)
    assert len(handed) == 2 and opt_D.t == 2 and opt_G.t == 1
    noise = backend.default_rng(22)
    _, z_d, z_g = (noise.standard_normal((N, LATENT)) for _ in range(3))

    fake = G.forward(z_d)
    check_param_grads(D, snapshot(D.grads),
                      lambda: critic_loss(D, handed[1], fake, loss, r1=r1))
    g_loss = G_LOSSES_BY_HAND[loss]
    check_param_grads(G, snapshot(G.grads), lambda: g_loss(D.forward(G.forward(z_g))))


def test_train_step_needs_at_least_one_discriminator_step():
    G, D, real, z = tiny_gan(seed=0)
    opt = optim.SGD(G.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="k must be at least 1"):
        gan.train_step(G, D, opt, optim.SGD(D.parameters(), lr=0.1), lambda: real,
                       backend.default_rng(0), k=0, latent_dim=z.shape[1])


@pytest.mark.parametrize("penalty", [{"r1": 10.0}, {"gp": 10.0}])
def test_train_step_refuses_a_penalty_on_a_conditional_d(penalty):
    """The penalties' double backward covers the MLP's D only; before any step, nothing moves."""
    G, D, real, z = tiny_gan(seed=0)
    before = snapshot(D.params)
    with pytest.raises(ValueError, match="not derived through a conditional D"):
        gan.train_step(G, D, optim.SGD(G.parameters(), lr=0.1),
                       optim.SGD(D.parameters(), lr=0.1), lambda: real, backend.default_rng(0),
                       latent_dim=z.shape[1], conditional="projection", **penalty)
    assert all(np.array_equal(before[name], D.params[name]) for name in before)
