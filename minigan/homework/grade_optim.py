"""Parts 7-8: the optimizers (SGD with momentum, Adam with bias correction).

The learner's optimizer and minigan's step the same parameters with the same gradients, and
every parameter is compared after every step; Adam's classic mistakes are recognised by running
them (``PlainAdam``) beside minigan's.
"""

import numpy as np

from minigan import layers as mg_layers
from minigan import optim as mg_optim
from minigan.homework.checks import TOL, Failed, diagnose, reference_copy, rel, require, same
from minigan.homework.learner import LearnerError


def grade_optimizer(run, make, make_ref, label, extra_variants=None, steps=3):
    """Run the learner's optimizer and minigan's for a few steps on the same parameters and
    gradients; compare every parameter after every step."""
    rng = np.random.default_rng(12)
    layer = mg_layers.Dense(4, 3, rng=rng, dtype="float64")
    ref_layer = reference_copy(mg_layers.Dense(4, 3, rng=rng, dtype="float64"), layer)
    opt = make(layer.parameters())
    ref_opt = make_ref(ref_layer.parameters())
    data = dict(layer.params)
    held = {p.name: p.data for p in opt.params}  # the arrays the optimizer was handed
    for step in range(1, steps + 1):
        for k in layer.grads:  # the same gradient for both, of varied scales
            g = rng.standard_normal(layer.grads[k].shape) * 10.0 ** rng.integers(-2, 1)
            layer.grads[k][...] = g
            ref_layer.grads[k][...] = g
        grads = {k: g.copy() for k, g in layer.grads.items()}
        before = {k: p.copy() for k, p in layer.params.items()}
        try:
            run(f"{label}.step() (step {step})", opt.step)
        except LearnerError as e:
            hints = []
            if type(e.error) is ZeroDivisionError and step == 1 and "Adam" in label:
                hints = ["adam_t0"]  # 1 - beta1**0 = 0
            if type(e.error) is AttributeError and assigned_a_field(e.error):
                hints = ["in_place"]
            if hints:
                raise Failed("your code raised", f"{e}\n  at {e.where}", hints, e.error) from None
            raise
        ref_opt.step()
        for k in layer.params:
            require(layer.params[k] is data[k] and held[k] is data[k], "updates in place",
                    f"{label}.step() replaced parameter {k} with a new array", ["in_place"])
            require(np.shape(layer.params[k]) == before[k].shape, "shapes",
                    f"{label}.step() changed the shape of parameter {k}")
            require(np.array_equal(layer.grads[k], grads[k]), "updates in place",
                    f"{label}.step() changed grads[{k!r}]: an optimizer only reads gradients")
        for k in layer.params:
            got, want = layer.params[k] - before[k], ref_layer.params[k] - before[k]
            variants = {"sign": -want, "in_place": np.zeros_like(want)}
            for name, fn in (extra_variants or {}).items():
                variants[name] = fn(k, step) - before[k]
            if not same(got, want, TOL):
                raise Failed("agreement", f"{label}: step {step} moved parameter {k} "
                             f"differently from minigan's (relative error {rel(got, want):.1e})",
                             diagnose(got, want, variants))
            layer.params[k][...] = ref_layer.params[k]  # the next step starts from the same place
        t = getattr(opt, "t", None)
        require(t == step, "the step count",
                f"{label}: after step {step}, self.t is {t!r}: each step adds 1 to self.t, the "
                "number of steps taken (state_dict saves it, and a resumed run's first-step "
                "rules read it)")


def assigned_a_field(error):
    """Is the AttributeError an assignment to a field of the NamedTuple Param (p.data -= ...)?
    Python says "can't set attribute" (3.11) or "... has no setter" and names no attribute; a
    missing attribute (self.beta1, p.gradient) is another mistake, and names it (error.name)."""
    text = str(error)
    return getattr(error, "name", None) is None and ("can't set attribute" in text
                                                     or "has no setter" in text)


def grade_sgd(run, learner_optim):
    for lr, momentum in ((0.1, 0.0), (0.1, 0.9), (0.05, 0.5)):  # 0.5: a momentum written as 0.9
        grade_optimizer(run,
                        lambda ps: run("SGD(...)", learner_optim.SGD, ps, lr=lr,
                                       momentum=momentum),
                        lambda ps: mg_optim.SGD(ps, lr=lr, momentum=momentum),
                        f"SGD(lr={lr}, momentum={momentum})")


class PlainAdam:
    """Adam as a mistake would write it (t from 0, eps inside the root, no bias correction), to
    recognise it."""

    def __init__(self, params, lr, betas, eps, t0=False, eps_inside=False, uncorrected=False):
        self.params, self.lr, self.betas, self.eps = list(params), lr, betas, eps
        self.t0, self.eps_inside, self.uncorrected = t0, eps_inside, uncorrected
        self.m = [np.zeros_like(p.data) for p in self.params]
        self.v = [np.zeros_like(p.data) for p in self.params]
        self.t = 0

    def step(self):
        b1, b2 = self.betas
        t = self.t if self.t0 else self.t + 1
        for p, m, v in zip(self.params, self.m, self.v):
            m[...] = b1 * m + (1 - b1) * p.grad
            v[...] = b2 * v + (1 - b2) * p.grad**2
            with np.errstate(all="ignore"):
                m_hat, v_hat = (m, v) if self.uncorrected else (m / (1 - b1**t), v / (1 - b2**t))
                denom = np.sqrt(v_hat + self.eps) if self.eps_inside else np.sqrt(v_hat) + self.eps
                p.data[...] = p.data - self.lr * m_hat / denom
        self.t += 1


class Shadow:
    """minigan's optimizer, with the mistakes' optimizers stepping from the same parameters."""

    def __init__(self, opt, mistakes):
        self.opt, self.mistakes = opt, mistakes

    def step(self):
        for opt, copies in self.mistakes.values():
            for c, p in zip(copies, self.opt.params):
                c.data[...] = p.data  # where this step starts, for all of them
            opt.step()
        self.opt.step()


def grade_adam(run, learner_optim):
    # a large eps, so that where it goes shows; lr and betas apart from the first run's, so that
    # settings written as numbers show
    for lr, betas, eps in ((0.01, (0.9, 0.999), 1e-8), (0.02, (0.5, 0.99), 1e-2)):
        kw = dict(lr=lr, betas=betas, eps=eps)
        mistakes = {}

        def make_ref(ps):
            # the mistakes' Adams shadow minigan's on their own copies of the parameters
            for hint, mistake in (("adam_t0", dict(t0=True)), ("eps_sqrt", dict(eps_inside=True)),
                                  ("adam_no_correction", dict(uncorrected=True))):
                copies = [mg_layers.Param(p.name, p.data.copy(), p.grad) for p in ps]
                mistakes[hint] = (PlainAdam(copies, **mistake, **kw), copies)
            return Shadow(mg_optim.Adam(ps, **kw), mistakes)

        def variant(name):
            def value(k, step):
                return {p.name: p.data for p in mistakes[name][1]}[k]
            return value

        grade_optimizer(run, lambda ps: run("Adam(...)", learner_optim.Adam, ps, **kw), make_ref,
                        f"Adam(lr={lr}, betas={betas}, eps={eps})",
                        {hint: variant(hint) for hint in ("adam_t0", "eps_sqrt",
                                                          "adam_no_correction")})
