"""Parts 11-14: the games of lesson 14 (the losses on D's raw output, spectral norm's backward,
R1 by double backward, WGAN-GP's penalty).

The penalties are graded on small float64 critics built from minigan's layers, with every
gradient left in D's grads checked against central differences of the penalty's value. Part 14
grades ``gradient_penalty`` with minigan's ``double_backward`` in place of the learner's, so that
a mistake of part 13 costs part 13 only (as part 6 grades ``Sequential.backward`` with correct
layers). The classic mistakes are recognised by computing them (``penalty_variant``).
"""

import numpy as np

from minigan import layers as mg_layers
from minigan import losses as mg_losses
from minigan import penalties as mg_penalties
from minigan import spectral as mg_spectral
from minigan.conv import Conv2D
from minigan.gradcheck import GradientCheckError, check_loss, numerical_gradient
from minigan.homework.checks import (
    EXTREMES, TOL, Failed, diagnose_all, float_trouble, rel, require, require_loss_pair, same)
from minigan.homework.grade_layers import grade_layer
from minigan.tricks import InstanceNoise

# --- part 11: least squares, hinge, Wasserstein -------------------------------------------------

SCORES = np.array([[-2.3], [-0.6], [0.4], [1.7], [-1.4], [0.05]])  # D's outputs, off the kinks
KINKS = np.array([[1.0], [-1.0], [0.3], [-2.0], [2.0]])  # the hinges' kinks, exactly


def loss_cases(out):
    """(name, extra arguments) of every function of part 11, on D's outputs ``out``."""
    target = np.linspace(-0.5, 1.0, out.size).reshape(out.shape)
    return [("least_squares", (target,)), ("least_squares", (0.0,)),
            ("generator_loss_least_squares", ()), ("hinge_real", ()), ("hinge_fake", ()),
            ("wasserstein_real", ()), ("wasserstein_fake", ()),
            ("generator_loss_wasserstein", ())]


def loss_hints(name, loss, grad, ref_loss, ref_grad, n):
    """The classic mistakes the loss and the grad show: a sign, 1/N, least squares' 0.5."""
    half = name in ("least_squares", "generator_loss_least_squares")
    return sorted(set(
        diagnose_all(loss, ref_loss, {"lsq_half": 2 * ref_loss if half else None}, ks=(n,))
        + diagnose_all(grad, ref_grad, {"lsq_half": 2 * ref_grad if half else None}, ks=(n,))))


def grade_game_losses(run, learner_losses):
    """Shapes, the gradient check, agreement with minigan's, the hinges' kinks, scores of
    +-1e4."""
    x, n = SCORES, SCORES.size
    for name, args in loss_cases(x):
        out = run(f"{name}(out)", getattr(learner_losses, name), x.copy(), *args)
        require_loss_pair(out, name, x.shape, "out's")

    for name, args in loss_cases(x):
        fn = getattr(learner_losses, name)
        try:
            run(f"gradient check of {name}", check_loss, fn, x, *args)
        except GradientCheckError as e:
            loss, grad = run(name, fn, x.copy(), *args)
            ref_loss, ref_grad = getattr(mg_losses, name)(x, *args)
            raise Failed("gradient check", str(e),
                         loss_hints(name, loss, grad, ref_loss, ref_grad, n)) from None

    for name, args in loss_cases(x):
        loss, grad = run(name, getattr(learner_losses, name), x.copy(), *args)
        ref_loss, ref_grad = getattr(mg_losses, name)(x, *args)
        for what, got, want in (("loss", loss, ref_loss), ("grad", grad, ref_grad)):
            require(same(got, want, TOL), "agreement",
                    f"{name}: the {what} differs from minigan's (relative error "
                    f"{rel(got, want):.1e})", loss_hints(name, loss, grad, ref_loss, ref_grad, n))

    for name, kink in (("hinge_real", -1.0 * (KINKS <= 1)), ("hinge_fake", 1.0 * (KINKS >= -1))):
        loss, grad = run(f"{name} at its kink", getattr(learner_losses, name), KINKS.copy())
        ref_loss, ref_grad = getattr(mg_losses, name)(KINKS)
        require(same(loss, ref_loss, TOL) and same(grad, ref_grad, TOL), "the kink",
                f"{name} at out = 1 and -1 exactly differs from minigan's",
                diagnose_all(grad, ref_grad, {"kink": kink / KINKS.size}))

    for name, args in loss_cases(EXTREMES):
        (loss, grad), kinds = run.float_errors(f"{name}(+-1e4)", getattr(learner_losses, name),
                                               EXTREMES.copy(), *args)
        ref_loss, ref_grad = getattr(mg_losses, name)(EXTREMES, *args)
        trouble = float_trouble(kinds, loss, grad)
        require(not trouble, "scores of +-1e4", f"{name} on scores of +-1e4: {trouble}")
        require(same(loss, ref_loss, 1e-9) and same(grad, ref_grad, 1e-9), "scores of +-1e4",
                f"{name} on scores of +-1e4 differs from minigan's")


# --- part 12: spectral norm's backward ----------------------------------------------------------

def sn_variants(ref, dout):
    """The classic mistakes' dL/dW, from minigan's SpectralNorm after its backward of dout:
    without the quotient rule's second term, and with u v^T laid on W as it is, (out, in)."""
    sigma, u, v = ref.cache, ref.buffers["u"], ref.buffers["v"]
    G, W_eff = ref.inner.grads["W"], ref.inner.params["W"]  # dL/dW_eff, W_eff
    term = np.sum(G * W_eff) * np.outer(u, v)  # (out, in * k * k)
    layout = (G - term) / sigma if term.shape == G.shape else None
    return {"W": {"sn_term": G / sigma, "sn_layout": layout}}


def spectral_layers(run, learner_spectral, make_inner):
    """make() and make_ref(): the learner's SpectralNorm and minigan's around the same layer,
    with the same u, v, in evaluation mode (sigma from the stored u, v: no power step, so the
    forward is the function whose gradient backward computes, u and v held constant)."""
    def make():
        layer = run("SpectralNorm(...)", learner_spectral.SpectralNorm, make_inner(),
                    np.random.default_rng(17))
        run("SpectralNorm.train(False)", layer.train, False)
        return layer

    def make_ref():
        return mg_spectral.SpectralNorm(make_inner(), np.random.default_rng(17)).train(False)
    return make, make_ref


def grade_spectral(run, learner_spectral):
    """grade_layer's checks on SpectralNorm(Dense) (and, when that crashes, on a square one,
    where the (out, in) vs (in, out) mistake runs), then on SpectralNorm(Conv2D)."""
    rng = np.random.default_rng(18)

    def dense(d_in, d_out):
        return spectral_layers(run, learner_spectral, lambda: mg_layers.Dense(
            d_in, d_out, rng=np.random.default_rng(19), dtype="float64"))

    square = (*dense(4, 4), rng.standard_normal((3, 4)))
    grade_layer(run, *dense(5, 3), rng.standard_normal((4, 5)), square=square,
                variants=sn_variants, square_hint="sn_layout")
    conv = spectral_layers(run, learner_spectral, lambda: Conv2D(
        2, 3, 3, padding=1, rng=np.random.default_rng(20), dtype="float64"))
    grade_layer(run, *conv, rng.standard_normal((2, 2, 4, 4)), variants=sn_variants)


# --- parts 13 and 14: R1 and WGAN-GP by double backward -----------------------------------------

STALE = 0.5  # D's grads before the penalty: it must add into them
N, DIM = 4, 6  # samples, input dimensions (apart, so that a mistaken axis shows)


def critic(seed, spectral=False, noisy=False):
    """A small float64 MLP critic (N, 6) -> (N, 1), the same for one seed; evaluation mode
    unless noisy (then Dropout and InstanceNoise draw from their own seeded generators)."""
    rng = np.random.default_rng(seed)
    layers = [mg_layers.Dense(DIM, 5, rng=rng, dtype="float64"), mg_layers.LeakyReLU(0.2),
              mg_layers.Dense(5, 4, rng=rng, dtype="float64"), mg_layers.LeakyReLU(0.2),
              mg_layers.Dense(4, 1, rng=rng, dtype="float64")]
    if noisy:
        layers[2:2] = [mg_layers.Dropout(0.25, rng=np.random.default_rng(seed + 1))]
        layers[:0] = [InstanceNoise(0.1, rng=np.random.default_rng(seed + 2))]
    D = mg_layers.Sequential(*layers)
    if spectral:
        D = mg_spectral.apply(D, np.random.default_rng(seed + 3))
    return D.train(noisy)


def with_stale_grads(D):
    for g in D.grads.values():
        g.fill(STALE)
    return D


def flat(grads):
    return np.concatenate([np.ravel(g) for g in grads.values()])


def penalty_variant(D, x, what, axis=1, root=True):
    """A penalty as a mistake computes it, on D (its grads zeroed): (value, flat grads).

    what: ("r1", gamma) or ("gp", lam, real, fake, seed, per_row); axis: the norm's axis;
    root: with the square root's derivative g / ||g||."""
    D.zero_grad()
    if what[0] == "gp":
        _, lam, real, fake, seed, per_row = what
        eps = np.random.default_rng(seed).random((N, 1) if per_row else real.shape)
        x = eps * real + (1 - eps) * fake
    g, douts = mg_penalties.backward_of_ones(D, x)
    g = g.reshape(N, -1)
    sq = (g * g).sum(axis=axis, keepdims=True)  # (N, 1); a mistaken axis: (1, DIM)
    if what[0] == "r1":
        gamma = what[1]
        value, dg = gamma / 2 * np.mean(sq), gamma / N * g
    else:
        norm = np.sqrt(sq)
        value = lam * np.mean((norm - 1) ** 2)
        coef = (norm - 1) / np.where(norm > 0, norm, 1) if root else norm - 1
        dg = 2 * lam / N * coef * g
    mg_penalties.double_backward(D, dg, douts)
    return value, flat(D.grads)


def grade_penalty(run, label, learner_fn, args_of, ref_fn, make_critic, variants):
    """The learner's penalty on a critic with stale grads beside minigan's on an identical one:
    a number; the grads it adds checked by central differences of minigan's penalty; the value
    and the grads against minigan's. variants(D): {hint: (value, flat grads)} of the mistakes."""
    D = with_stale_grads(make_critic())
    arrays = {k: g for k, g in D.grads.items()}
    params = {k: p.copy() for k, p in D.params.items()}
    value = run(label, learner_fn, D, *args_of())
    require(np.ndim(value) == 0 or np.size(value) == 1, "shapes",
            f"{label} must return the penalty, one number; returned shape {np.shape(value)}")
    for k, g in D.grads.items():
        require(g is arrays[k] and g.shape == params[k].shape, "adds into grads",
                f"{label} replaced D's grads[{k!r}] with a new array: add into it (+=)",
                ["assign"])
        require(np.array_equal(D.params[k], params[k]), "D's parameters",
                f"{label} changed D's parameter {k}: a penalty only adds into grads")
    got = flat(D.grads) - STALE

    ref_D = make_critic()
    ref_value = ref_fn(ref_D, *args_of())
    ref = flat(ref_D.grads)
    mistakes = variants(make_critic)
    grad_variants = {hint: g for hint, (_, g) in mistakes.items()}
    grad_variants["assign"] = ref - STALE

    if not ref_D.training:  # central differences need a deterministic D: no noise drawn
        D0 = make_critic()
        numeric = flat({k: numerical_gradient(lambda: ref_fn(D0, *args_of()), p, 1.0)
                        for k, p in D0.params.items()})
        if not same(got, numeric, TOL):
            raise Failed("gradient check", f"{label}: the gradient it adds into D's grads is "
                         f"wrong (relative error {rel(got, numeric):.1e} against central "
                         "differences)", diagnose_all(got, numeric, grad_variants, ks=(N,)))
    require(same(value, ref_value, TOL), "agreement",
            f"{label}: the penalty differs from minigan's (relative error "
            f"{rel(value, ref_value):.1e})",
            diagnose_all(value, ref_value, {h: v for h, (v, _) in mistakes.items()}, ks=(N,)))
    require(same(got, ref, TOL), "agreement",
            f"{label}: the gradient it adds into D's grads differs from minigan's (relative "
            f"error {rel(got, ref):.1e})", diagnose_all(got, ref, grad_variants, ks=(N,)))


def grade_r1(run, learner_penalties):
    """R1 on a plain critic, a spectrally normalised one (eval mode) and one with Dropout and
    InstanceNoise (training mode: agreement with minigan's on the same draws)."""
    x = np.random.default_rng(21).normal(0, 1, (N, DIM))

    def variants(make_critic):
        value, grads = penalty_variant(make_critic(), x, ("r1", gamma))  # minigan's R1
        return {"norm_axis": penalty_variant(make_critic(), x, ("r1", gamma), axis=0),
                "r1_half": (2 * value, 2 * grads)}

    # gamma 2 on one critic, so that a gamma written as 3 shows (and not as R1 without its 1/2)
    for kind, gamma in ((dict(), 3.0), (dict(spectral=True), 2.0), (dict(noisy=True), 3.0)):
        grade_penalty(run, f"r1(D, x, gamma={gamma:g})" + (f" with {', '.join(kind)}" if kind
                                                           else ""),
                      learner_penalties.r1, lambda: (x.copy(), gamma), mg_penalties.r1,
                      lambda: critic(22, **kind), variants)


def grade_gp(run, learner_penalties):
    """WGAN-GP's penalty with minigan's double backward (part 13's), then at a D flat at x_hat
    (every g_i = 0, the norm's kink): a finite penalty, lam, and a zero gradient."""
    learner_penalties.double_backward = mg_penalties.double_backward
    rng = np.random.default_rng(23)
    real, fake = rng.uniform(-1, 1, (N, DIM)), rng.uniform(-1, 1, (N, DIM))
    lam, seed = 5.0, 24  # not WGAN-GP's usual 10, so that a lam written as 10 shows

    def args():
        return real.copy(), fake.copy(), lam, np.random.default_rng(seed)

    def variants(make_critic):
        what = ("gp", lam, real, fake, seed, True)
        return {"norm_axis": penalty_variant(make_critic(), None, what, axis=0),
                "sqrt_deriv": penalty_variant(make_critic(), None, what, root=False),
                "per_pixel": penalty_variant(make_critic(), None, what[:-1] + (False,)),
                "eps_swapped": penalty_variant(make_critic(), None,
                                               ("gp", lam, fake, real, seed, True))}

    label = f"gradient_penalty(D, real, fake, lam={lam:g}, rng)"
    grade_penalty(run, label, learner_penalties.gradient_penalty, args,
                  mg_penalties.gradient_penalty, lambda: critic(25), variants)

    D = with_stale_grads(critic(25))
    D.layers[-1].params["W"].fill(0)  # D(x) = b: flat, g_i = 0 for every sample
    value, _ = run.float_errors(f"{label} at a flat D", learner_penalties.gradient_penalty, D,
                                *args())
    require(np.isfinite(value) and all(np.isfinite(g).all() for g in D.grads.values()),
            "a flat D", f"{label} is not finite where D is flat (g_i = 0): g_i / ||g_i|| is 0/0 "
            "there, the norm's kink; take 0, as minigan's docstring says")
    require(same(value, lam, TOL) and np.array_equal(flat(D.grads), np.full(flat(D.grads).size,
                                                                             STALE)),
            "a flat D", f"{label} where D is flat (g_i = 0) should be lam = {lam:g} with a zero "
            "gradient")
