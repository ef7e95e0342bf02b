"""The composite gradients a GAN trains on, checked end to end with central differences.

The generator's gradient is the one that matters and the easiest to get subtly wrong: the loss
sits on D's logits, so dL/dG(z) is backpropagated through D (without touching D's grads) and
then through G. Here every generator parameter's gradient, as ``gan.generator_step`` leaves it
in ``G.grads``, is compared with a central difference of the loss itself (float64, < 1e-7).
"""

import numpy as np
import pytest

from minigan import backend, gan, losses, optim
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


def test_train_step_needs_at_least_one_discriminator_step():
    G, D, real, z = tiny_gan(seed=0)
    opt = optim.SGD(G.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="k must be at least 1"):
        gan.train_step(G, D, opt, optim.SGD(D.parameters(), lr=0.1), lambda: real,
                       backend.default_rng(0), k=0, latent_dim=z.shape[1])
