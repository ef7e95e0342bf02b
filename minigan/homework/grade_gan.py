"""Parts 9-10: the GAN steps (discriminator_step, generator_step).

The learner's step and minigan's run on identical small networks; the gradients the step leaves
in the trained network are checked by central differences of its loss, and the other network
must come out exactly as it went in.
"""

import numpy as np

from minigan import gan as mg_gan
from minigan import losses as mg_losses
from minigan import optim as mg_optim
from minigan.gradcheck import numerical_gradient
from minigan.homework.checks import TOL, Failed, diagnose_all, rel, require, same


STALE = 0.5  # the gradients left from "the last step", which a step must not use


def small_gan(seed):
    """A small MLP G and D in float64 (latent 3, hidden 5, 6 "pixels"), the same for one seed."""
    rng = np.random.default_rng(seed)
    G = mg_gan.make_generator(latent_dim=3, hidden=(5,), out_dim=6, rng=rng, dtype="float64")
    D = mg_gan.make_discriminator(in_dim=6, hidden=(5,), rng=rng, dtype="float64")
    return G, D


def snapshot(net):
    """Copies of a network's (params, grads)."""
    return {k: p.copy() for k, p in net.params.items()}, {k: g.copy() for k, g in
                                                          net.grads.items()}


def grade_step(run, learner_step, ref_step, trained, loss_of, make_args, label):
    """Run a GAN step of the learner's and minigan's on identical small networks.

    trained: "D" or "G", the network the step updates; loss_of(G, D) the loss whose gradient
    the step must leave in the trained network's grads, checked by central differences.
    """
    outs = []
    nets = []
    for fn in (learner_step, ref_step):
        G, D = small_gan(13)
        for g in list(G.grads.values()) + list(D.grads.values()):
            g.fill(STALE)
        opt = mg_optim.SGD((D if trained == "D" else G).parameters(), lr=0.1)
        before = snapshot(G), snapshot(D)
        args = make_args(G, D, opt)
        out = run(label, fn, *args) if fn is learner_step else fn(*args)
        outs.append(out)
        nets.append((G, D, before))
    (G, D, (g_before, d_before)), (G_ref, D_ref, _) = nets
    out, ref_out = outs
    net, ref_net = (D, D_ref) if trained == "D" else (G, G_ref)
    other, other_before = (G, g_before) if trained == "D" else (D, d_before)
    n_out = len(ref_out) if isinstance(ref_out, tuple) else 1
    got = out if isinstance(out, tuple) else (out,)
    want = ref_out if isinstance(ref_out, tuple) else (ref_out,)
    require(len(got) == n_out and all(np.ndim(v) == 0 or np.size(v) == 1 for v in got),
            "shapes", f"{label} must return {n_out} number(s), as minigan's does")

    # the gradient check: the grads left in the trained network against central differences
    # of the loss at the parameters before the step
    G0, D0 = small_gan(13)  # the networks as they were before the step
    for k in net.params:
        numeric = numerical_gradient(lambda: loss_of(G0, D0),
                                     (D0 if trained == "D" else G0).params[k], 1.0)
        g = net.grads[k]
        if not same(g, numeric, TOL):
            hints = diagnose_all(g, numeric, {"zero_grad": numeric + STALE}, ks=(2,))
            raise Failed("gradient check", f"{label}: {trained}'s gradient {k} is wrong "
                         f"(relative error {rel(g, numeric):.1e} against central differences)",
                         hints)
    for i, (a, b) in enumerate(zip(got, want)):
        require(same(a, b, TOL), "agreement", f"{label}: returned value {i + 1} differs from "
                f"minigan's (relative error {rel(a, b):.1e})", diagnose_all(a, b, ks=(2,)))
    for k in net.params:
        require(same(net.params[k], ref_net.params[k], TOL), "agreement",
                f"{label}: {trained}'s parameter {k} after the step differs from minigan's")
    params, grads = other_before
    untouched = all(np.array_equal(other.params[k], params[k]) and
                    np.array_equal(other.grads[k], grads[k]) for k in params)
    which = "G" if trained == "D" else "D"
    require(untouched, f"{which} untouched", f"{label} changed {which}'s parameters or grads",
            ["d_touched"] if which == "D" else [])


def grade_d_step(run, learner_gan):
    rng = np.random.default_rng(14)
    real = rng.uniform(-1, 1, (4, 6))
    z = rng.standard_normal((4, 3))
    for real_target in (1.0, 0.9):
        def d_loss(G, D):
            fake = G.forward(z)
            loss_real = mg_losses.bce_with_logits(D.forward(real), real_target)[0]
            loss_fake = mg_losses.bce_with_logits(D.forward(fake), 0.0)[0]
            return loss_real + loss_fake

        grade_step(run, learner_gan.discriminator_step, mg_gan.discriminator_step, "D",
                   d_loss,
                   lambda G, D, opt: (G, D, opt, real.copy(), z.copy(), real_target),
                   f"discriminator_step(real_target={real_target})")


def grade_g_step(run, learner_gan):
    """generator_step receives no opt_D, so D's optimizer state is out of its reach; what it
    can touch, D's parameters and grads, must be exactly as before the step."""
    rng = np.random.default_rng(15)
    z = rng.standard_normal((4, 3))
    for gen_loss in ("nonsaturating", "minimax"):
        def g_loss(G, D):
            return mg_losses.GENERATOR_LOSSES[gen_loss](D.forward(G.forward(z)))[0]

        grade_step(run, learner_gan.generator_step, mg_gan.generator_step, "G",
                   g_loss,
                   lambda G, D, opt: (G, D, opt, z.copy(), gen_loss),
                   f"generator_step(gen_loss={gen_loss!r})")
