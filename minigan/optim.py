"""Hand-written optimizers with exactly PyTorch's update rules.

Use them the way PyTorch's are used::

    opt = Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999))
    model.zero_grad(); model.backward(dout); opt.step()

``step()`` updates each parameter array in place, so the layers see the new values at once.
No parameter-sized array is allocated per step: each optimizer owns its state (``m``, ``v``,
momentum buffers) and workspaces for the intermediates, allocated once, and every update is
written with ``out=`` or an in-place operator (the formula written plainly, a new array for
each intermediate, makes the MLP's training step 1.35x slower: benchmarks/bench_levers.py adam,
BENCHMARKS.md). The plain formula sits above each in-place block. Derivations:
lessons/05_optimizers.md.
"""

import math

from minigan import backend


class Optimizer:
    """Holds the list of ``Param(name, data, grad)``, the step counter ``t`` and the state."""

    def __init__(self, params, lr):
        if lr < 0:
            raise ValueError(f"{type(self).__name__}: invalid learning rate {lr} (must be >= 0)")
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        names = [p.name for p in self.params]
        if len(set(names)) < len(names):  # state_dict keys them "<state>/<name>": one each
            raise ValueError(
                f"{type(self).__name__}: duplicate parameter names {names}; pass a "
                "Sequential's parameters(), whose names are unique ('0.W', '2.W', ...)"
            )
        self.lr = lr
        self.t = 0  # number of steps taken

    def zero_grad(self):
        for p in self.params:
            p.grad.fill(0)

    def _grad_with_weight_decay(self, param, out):
        """``g = grad + weight_decay * p`` (L2 penalty, as torch's ``weight_decay``), in out."""
        backend.xp.multiply(param.data, self.weight_decay, out=out)
        out += param.grad
        return out

    def state_dict(self):
        """The step counter and every state array, keyed ``"<state>/<param name>"``."""
        state = {"t": self.t}
        for key, arrays in self._state_arrays().items():
            for p, a in zip(self.params, arrays):
                state[f"{key}/{p.name}"] = a
        return state

    def load_state_dict(self, state):
        """Copy saved state into this optimizer's arrays (in place; shapes must match)."""
        xp = backend.xp
        self.t = int(state["t"])
        for key, arrays in self._state_arrays().items():
            for p, a in zip(self.params, arrays):
                saved = state[f"{key}/{p.name}"]
                if saved.shape != a.shape:
                    raise ValueError(
                        f"{type(self).__name__} state {key}/{p.name}: expected shape "
                        f"{a.shape}, checkpoint has {saved.shape}"
                    )
                a[...] = xp.asarray(saved)


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov and weight decay.

    PyTorch's rule (torch.optim.SGD), with g = grad + weight_decay * p:
        b = g on the first step, else  b = momentum * b + (1 - dampening) * g
        g = g + momentum * b  if nesterov  else  b      (only when momentum != 0)
        p = p - lr * g
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        super().__init__(params, lr)
        if momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: invalid momentum {momentum} or weight_decay {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov requires a momentum > 0 and zero dampening")
        self.momentum, self.dampening = momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov
        xp = backend.xp
        self.b = [xp.zeros_like(p.data) for p in self.params] if momentum else []
        self.work = [xp.empty_like(p.data) for p in self.params]  # one workspace each
        self.wd_grad = [xp.empty_like(p.data) for p in self.params] if weight_decay else []

    def _state_arrays(self):
        return {"b": self.b} if self.momentum else {}

    def step(self):
        xp = backend.xp
        for i, (param, work) in enumerate(zip(self.params, self.work)):
            g = param.grad
            if self.weight_decay:
                g = self._grad_with_weight_decay(param, self.wd_grad[i])
            if self.momentum:
                b = self.b[i]
                if self.t == 0:
                    b[...] = g
                else:  # b = momentum * b + (1 - dampening) * g
                    b *= self.momentum
                    xp.multiply(g, 1 - self.dampening, out=work)
                    b += work
                if self.nesterov:  # g = g + momentum * b
                    xp.multiply(b, self.momentum, out=work)
                    work += g
                    g = work
                else:
                    g = b
            # p = p - lr * g
            xp.multiply(g, self.lr, out=work)
            xp.subtract(param.data, work, out=param.data)
        self.t += 1


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with PyTorch's exact rule (torch.optim.Adam, amsgrad off).

    With g = grad + weight_decay * p and t counting from 1:
        m = beta1 * m + (1 - beta1) * g             running mean of g
        v = beta2 * v + (1 - beta2) * g**2          running mean of g**2
        m_hat = m / (1 - beta1**t)                  bias corrections
        v_hat = v / (1 - beta2**t)
        p = p - lr * m_hat / (sqrt(v_hat) + eps)
    ``step`` computes this rule in place, line by line, in torch's order of operations (equal
    to torch's up to the last bit, not bit for bit): m is updated as m + (1 - beta1) * (g - m),
    the form torch's lerp takes for beta1 > 0.5 (at the GAN's beta1 = 0.5 it takes its other
    form, g - beta1 * (g - m), and its CPU kernel fuses the multiply and the add), and the bias
    corrections are folded into two scalars. eps is added after the square root and after the
    bias correction of v, as torch does. Derivation: lessons/05_optimizers.md.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"Adam: invalid betas {betas} (each must be in [0, 1))")
        if eps < 0 or weight_decay < 0:
            raise ValueError(f"Adam: invalid eps {eps} or weight_decay {weight_decay}")
        self.betas, self.eps, self.weight_decay = tuple(betas), eps, weight_decay
        xp = backend.xp
        self.m = [xp.zeros_like(p.data) for p in self.params]  # running mean of g
        self.v = [xp.zeros_like(p.data) for p in self.params]  # running mean of g**2
        # Workspaces, allocated once so that step() allocates nothing: g with weight decay, and
        # `work`, which holds each line's intermediate in turn (one array rather than four:
        # 1.17x, benchmarks/bench_levers.py adam).
        self.wd_grad = [xp.empty_like(p.data) if weight_decay else None for p in self.params]
        self.work = [xp.empty_like(p.data) for p in self.params]

    def _state_arrays(self):
        return {"m": self.m, "v": self.v}

    def step(self):
        """One Adam update of every parameter, in place: the rule above, line by line."""
        xp = backend.xp
        self.t += 1  # bias correction starts at t = 1
        beta1, beta2, t = *self.betas, self.t
        for param, m, v, work, wd_grad in zip(self.params, self.m, self.v, self.work,
                                              self.wd_grad):
            p, g = param.data, param.grad
            if self.weight_decay:  # g = grad + weight_decay * p
                g = self._grad_with_weight_decay(param, wd_grad)
            # m = beta1 * m + (1 - beta1) * g, as m + (1 - beta1) * (g - m) (torch's lerp's form)
            xp.subtract(g, m, out=work)
            work *= 1 - beta1
            m += work
            # v = beta2 * v + (1 - beta2) * g**2
            xp.multiply(g, g, out=work)
            work *= 1 - beta2
            v *= beta2
            v += work
            # sqrt(v_hat) + eps, with sqrt(v_hat) = sqrt(v) / sqrt(1 - beta2**t)
            xp.sqrt(v, out=work)
            work /= math.sqrt(1 - beta2**t)
            work += self.eps
            # p = p - lr * m_hat / (sqrt(v_hat) + eps), with lr * m_hat = lr / (1 - beta1**t) * m
            xp.divide(m, work, out=work)
            work *= self.lr / (1 - beta1**t)
            p -= work


class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton 2012) with PyTorch's exact rule (torch.optim.RMSprop).

    With g = grad + weight_decay * p, every state starting at zero:
        v = alpha * v + (1 - alpha) * g**2          running mean of g**2
        a = alpha * a + (1 - alpha) * g             running mean of g    (centered only)
        denom = sqrt(v - a**2) + eps  if centered  else  sqrt(v) + eps
        b = momentum * b + g / denom                                     (momentum > 0 only)
        p = p - lr * b  if momentum > 0  else  p - lr * g / denom
    No bias correction: v starts at 0, so the first steps are large (with alpha = 0.99 the
    first step is lr * g / (0.1 |g| + eps), 10 lr in size), as in torch. ``step`` computes this,
    in this order, in place; ``a`` is updated as a + (1 - alpha) * (g - a), the form torch's
    lerp takes for alpha > 0.5.
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False):
        super().__init__(params, lr)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"RMSprop: invalid alpha {alpha} (must be in [0, 1])")
        if eps < 0 or weight_decay < 0 or momentum < 0:
            raise ValueError(f"RMSprop: invalid eps {eps}, weight_decay {weight_decay} or "
                             f"momentum {momentum} (each must be >= 0)")
        self.alpha, self.eps, self.weight_decay = alpha, eps, weight_decay
        self.momentum, self.centered = momentum, bool(centered)
        xp = backend.xp
        self.v = [xp.zeros_like(p.data) for p in self.params]  # running mean of g**2
        self.a = [xp.zeros_like(p.data) for p in self.params] if centered else []
        self.b = [xp.zeros_like(p.data) for p in self.params] if momentum else []
        self.wd_grad = [xp.empty_like(p.data) if weight_decay else None for p in self.params]
        self.work = [xp.empty_like(p.data) for p in self.params]  # denom, then the step
        self.work2 = [xp.empty_like(p.data) for p in self.params]  # g**2 and a**2

    def _state_arrays(self):
        state = {"v": self.v}
        if self.centered:
            state["a"] = self.a
        if self.momentum:
            state["b"] = self.b
        return state

    def step(self):
        """One RMSprop update of every parameter, in place: the rule above, line by line."""
        xp = backend.xp
        alpha = self.alpha
        for i, param in enumerate(self.params):
            p, g, v, work, work2 = param.data, param.grad, self.v[i], self.work[i], self.work2[i]
            if self.weight_decay:  # g = grad + weight_decay * p
                g = self._grad_with_weight_decay(param, self.wd_grad[i])
            # v = alpha * v + (1 - alpha) * g**2
            xp.multiply(g, g, out=work2)
            work2 *= 1 - alpha
            v *= alpha
            v += work2
            if self.centered:  # a = alpha * a + (1 - alpha) * g, as a + (1 - alpha) * (g - a)
                a = self.a[i]
                xp.subtract(g, a, out=work2)
                work2 *= 1 - alpha
                a += work2
                # denom = sqrt(v - a**2) + eps
                xp.multiply(a, a, out=work2)
                xp.subtract(v, work2, out=work)
                xp.sqrt(work, out=work)
            else:  # denom = sqrt(v) + eps
                xp.sqrt(v, out=work)
            work += self.eps
            xp.divide(g, work, out=work)  # g / denom
            if self.momentum:  # b = momentum * b + g / denom;  p = p - lr * b
                b = self.b[i]
                b *= self.momentum
                b += work
                xp.multiply(b, self.lr, out=work)
            else:  # p = p - lr * g / denom
                work *= self.lr
            p -= work
        self.t += 1
