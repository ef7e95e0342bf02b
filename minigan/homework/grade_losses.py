"""Part 1: the losses on logits (softplus, bce_with_logits, the two generator losses).

bce_with_logits is graded with an array of targets and with one number for every logit (0.9,
0.0), as discriminator_step calls it (real_target, then 0.0 for the fakes).
"""

import numpy as np

from minigan import losses as mg_losses
from minigan.gradcheck import GradientCheckError, check_loss
from minigan.homework.checks import (
    EXTREMES, TOL, Failed, diagnose_all, extreme_hints, float_trouble, rel, require,
    require_loss_pair, same)
from minigan.homework.learner import LearnerError


def grade_losses(run, learner_losses):
    """Shapes, the gradient check, agreement with minigan's losses, then logits of +-1e4."""
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2, (6, 1))
    t = np.array([[1.0], [0.0], [1.0], [0.9], [0.0], [1.0]])
    n = x.size
    cases = [  # (how messages name the call, the function, its arguments after the logits)
        ("bce_with_logits(logits, targets)", "bce_with_logits", (t,)),
        ("bce_with_logits(logits, 0.9)", "bce_with_logits", (0.9,)),  # one target for all
        ("bce_with_logits(logits, 0.0)", "bce_with_logits", (0.0,)),
        ("generator_loss_minimax(logits)", "generator_loss_minimax", ()),
        ("generator_loss_nonsaturating(logits)", "generator_loss_nonsaturating", ())]
    sp = run("softplus(x)", learner_losses.softplus, x)
    require(np.shape(sp) == x.shape, "shapes", f"softplus(x) has shape {np.shape(sp)}, "
            f"expected x's shape {x.shape}")
    for label, name, args in cases:
        out = run(label, getattr(learner_losses, name), x, *args)
        require_loss_pair(out, label, x.shape, "the logits'")

    for label, name, args in cases:
        fn = getattr(learner_losses, name)
        try:
            run(f"gradient check of {label}", check_loss, fn, x, *args, name=label)
        except LearnerError:
            raise
        except GradientCheckError as e:
            ref_grad = getattr(mg_losses, name)(x, *args)[1]
            grad = run(label, fn, x, *args)[1]
            raise Failed("gradient check", str(e), diagnose_all(grad, ref_grad, ks=(n,)))

    require(same(sp, mg_losses.softplus(x), TOL), "agreement",
            "softplus(x) differs from minigan's", diagnose_all(sp, mg_losses.softplus(x)))
    for label, name, args in cases:
        loss, grad = run(label, getattr(learner_losses, name), x, *args)
        ref_loss, ref_grad = getattr(mg_losses, name)(x, *args)
        for what, got, want in (("loss", loss, ref_loss), ("grad", grad, ref_grad)):
            require(same(got, want, TOL), "agreement",
                    f"{label}: the {what} differs from minigan's (relative error "
                    f"{rel(got, want):.1e})", diagnose_all(got, want, ks=(n,)))

    sp, kinds = run.float_errors("softplus(+-1e4)", learner_losses.softplus, EXTREMES)
    trouble = float_trouble(kinds, sp)
    require(not trouble, "logits of +-1e4", f"softplus on logits of +-1e4: {trouble}",
            extreme_hints(kinds))
    targets = np.ones_like(EXTREMES)
    for label, name, args in (("bce_with_logits(logits, ones)", "bce_with_logits", (targets,)),
                              ("bce_with_logits(logits, zeros)", "bce_with_logits",
                               (0 * targets,)),
                              ("generator_loss_minimax", "generator_loss_minimax", ()),
                              ("generator_loss_nonsaturating", "generator_loss_nonsaturating",
                               ())):
        (loss, grad), kinds = run.float_errors(f"{label} on logits of +-1e4",
                                               getattr(learner_losses, name), EXTREMES, *args)
        ref_loss, ref_grad = getattr(mg_losses, name)(EXTREMES, *args)
        trouble = float_trouble(kinds, loss, grad)
        require(not trouble, "logits of +-1e4", f"{label} on logits of +-1e4: {trouble}",
                extreme_hints(kinds))
        require(same(loss, ref_loss, 1e-9) and same(grad, ref_grad, 1e-9), "logits of +-1e4",
                f"{label} on logits of +-1e4 differs from minigan's",
                diagnose_all(grad, ref_grad, ks=(EXTREMES.size,)))
