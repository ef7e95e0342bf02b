"""Part 1: the losses on logits (softplus, bce_with_logits, the two generator losses)."""

import numpy as np

from minigan import losses as mg_losses
from minigan.gradcheck import GradientCheckError, check_loss
from minigan.homework.checks import (
    EXTREMES, TOL, Failed, diagnose_all, rel, require, require_loss_pair, same)
from minigan.homework.learner import LearnerError


def grade_losses(run, learner_losses):
    """Shapes, the gradient check, agreement with minigan's losses, then logits of +-1e4."""
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2, (6, 1))
    t = np.array([[1.0], [0.0], [1.0], [0.9], [0.0], [1.0]])
    n = x.size
    cases = [("bce_with_logits", (t,)), ("generator_loss_minimax", ()),
             ("generator_loss_nonsaturating", ())]
    sp = run("softplus(x)", learner_losses.softplus, x)
    require(np.shape(sp) == x.shape, "shapes", f"softplus(x) has shape {np.shape(sp)}, "
            f"expected x's shape {x.shape}")
    for name, args in cases:
        out = run(f"{name}(logits)", getattr(learner_losses, name), x, *args)
        require_loss_pair(out, name, x.shape, "the logits'")

    for name, args in cases:
        fn = getattr(learner_losses, name)
        try:
            run(f"gradient check of {name}", check_loss, fn, x, *args)
        except LearnerError:
            raise
        except GradientCheckError as e:
            ref_grad = getattr(mg_losses, name)(x, *args)[1]
            grad = run(name, fn, x, *args)[1]
            raise Failed("gradient check", str(e), diagnose_all(grad, ref_grad, ks=(n,)))

    require(same(sp, mg_losses.softplus(x), TOL), "agreement",
            "softplus(x) differs from minigan's", diagnose_all(sp, mg_losses.softplus(x)))
    for name, args in cases:
        loss, grad = run(name, getattr(learner_losses, name), x, *args)
        ref_loss, ref_grad = getattr(mg_losses, name)(x, *args)
        for what, got, want in (("loss", loss, ref_loss), ("grad", grad, ref_grad)):
            require(same(got, want, TOL), "agreement",
                    f"{name}: the {what} differs from minigan's (relative error "
                    f"{rel(got, want):.1e})", diagnose_all(got, want, ks=(n,)))

    sp, over = run.overflow_free("softplus(+-1e4)", learner_losses.softplus, EXTREMES)
    require(not over and np.isfinite(sp).all(), "logits of +-1e4",
            "softplus overflows on logits of +-1e4", ["overflow"])
    targets = np.ones_like(EXTREMES)
    for name, args in (("bce_with_logits", (targets,)), ("bce_with_logits", (0 * targets,)),
                       ("generator_loss_minimax", ()), ("generator_loss_nonsaturating", ())):
        (loss, grad), over = run.overflow_free(f"{name}(+-1e4)", getattr(learner_losses, name),
                                               EXTREMES, *args)
        ref_loss, ref_grad = getattr(mg_losses, name)(EXTREMES, *args)
        require(not over and np.isfinite(loss) and np.isfinite(grad).all(), "logits of +-1e4",
                f"{name} is not finite (or overflows) on logits of +-1e4", ["overflow"])
        require(same(loss, ref_loss, 1e-9) and same(grad, ref_grad, 1e-9), "logits of +-1e4",
                f"{name} on logits of +-1e4 differs from minigan's",
                diagnose_all(grad, ref_grad, ks=(EXTREMES.size,)))
