"""The smallest games where GAN training can be watched near its equilibrium (the dynamics lab,
``python -m minigan.dynamics``; derivations: lessons/15_games_and_equilibria.md).

A two-player game is written as a *vector field* on the players' parameters z = (a, b): the
direction in which each player's own plain gradient step moves its own parameter,

    v(z) = (-dL_a/da, -dL_b/db),

and training is a step along it, either simultaneous (both players at the same z) or alternating
(one player moves, the other answers at the new point, as minigan.gan.train_step does):

- the bilinear game f(x, y) = x y, x minimising and y maximising: v(x, y) = (-y, x);
- the Dirac-GAN (Mescheder et al. 2018, "Which training methods for GANs actually converge?"):
  the data is a point mass at 0, G a point mass at theta, D(x) = psi x. Its field is not written
  out here: :class:`DiracGAN` reads it off minigan's own networks (a Dense(1, 1) each, bias held
  at 0), losses and penalties, running gan.critic_step and gan.generator_step.

Both equilibria are z = (0, 0). Near it the field is linear, v(z) ~ J z, and the eigenvalues of
the Jacobian J decide whether steps converge: :func:`jacobian` measures J by central differences
of the field, and :func:`step_matrix` the Jacobian of one whole step, whose largest eigenvalue
modulus (:func:`spectral_radius`) is below 1 exactly when the steps converge near (0, 0).
"""

import numpy as np

from minigan import backend, gan, optim
from minigan.layers import Dense, Layer, Sequential
from minigan.tricks import EMA

UPDATES = ("simultaneous", "alternating")
BLOWUP = 1e12  # a run whose distance to the equilibrium passes this has diverged: it stops there


class Bilinear:
    """f(x, y) = x y: x descends f, y ascends it; v(x, y) = (-df/dx, df/dy) = (-y, x).

    In alternating steps x moves first (``first = 0``), then y answers at the new x.
    """

    names = ("x", "y")
    first = 0

    def field(self, z):
        x, y = z
        return np.array([-y, x])

    def project(self, z):
        return z  # no constraint


# The Dirac-GAN's methods: D's loss (gan.D_LOSSES), G's loss (gan.G_LOSSES), and what constrains D.
METHODS = {
    "gan": ("bce", "minimax", ""),  # the 2014 zero-sum game: G minimises log(1 - D(G(z)))
    "nsgan": ("bce", "nonsaturating", ""),  # minigan's default: G minimises -log D(G(z))
    "wgan": ("wgan", "wgan", ""),
    "wgan-clip": ("wgan", "wgan", "clip"),  # psi clipped to [-clip, clip] after D's move
    "wgan-gp": ("wgan", "wgan", "gp"),  # + gp * (|grad_x D| - 1)^2 on D
    "r1": ("bce", "nonsaturating", "r1"),  # + gamma / 2 * |grad_x D(x_real)|^2 on D
}


class DiracGAN:
    """The Dirac-GAN played by minigan's networks: G(z) = theta z with z = 1, D(x) = psi x.

    Each is a Dense(1, 1) whose bias is 0 and never trained (Dense always has one; only the
    weight is handed to the optimizer). The field at z = (theta, psi) is the descent direction
    of each player's own loss, as minigan's training computes it:

        v(theta, psi) = (-dL_G/dtheta, -dL_D/dpsi)

    with dL_D/dpsi from gan.critic_step (the game's D loss on real x = 0 and fake x = theta,
    plus R1 or WGAN-GP through minigan.penalties) and dL_G/dtheta from gan.generator_step. Both
    run with an SGD of learning rate 0, which fills the grads and moves nothing: the lab takes
    the step itself, so that it can take it simultaneously. ``gamma`` weighs R1, ``gp``
    WGAN-GP, and ``clip`` is WGAN's box for psi (applied by :meth:`project`).
    """

    names = ("theta", "psi")
    first = 1  # Algorithm 1 of Goodfellow et al.: D moves first, then G answers

    def __init__(self, method, gamma=1.0, gp=1.0, clip=0.5):
        if method not in METHODS:
            raise ValueError(f"DiracGAN: unknown method {method!r}; use one of "
                             f"{', '.join(METHODS)}")
        self.method, self.clip = method, clip
        self.d_loss, self.g_loss, constraint = METHODS[method]
        self.penalty = {"r1": {"r1": gamma}, "gp": {"gp": gp}}.get(constraint, {})
        self.clips = constraint == "clip"
        xp = backend.xp
        self.G = Sequential(Dense(1, 1, dtype="float64"))  # G(z) = theta * z + 0
        self.D = Sequential(Dense(1, 1, dtype="float64"))  # D(x) = psi * x + 0
        for net in (self.G, self.D):
            net[0].params["b"][...] = 0.0
        # lr 0: the steps of critic_step and generator_step leave theta and psi where they are
        self.opt_G = optim.SGD([self.G.parameters()[0]], lr=0.0)  # the weight only
        self.opt_D = optim.SGD([self.D.parameters()[0]], lr=0.0)
        self.real = xp.zeros((1, 1))  # p_data: a point mass at 0
        self.z = xp.ones((1, 1))  # G's one noise value
        self.rng = backend.default_rng(0)  # WGAN-GP's interpolation weights (see the lesson)

    def __repr__(self):
        return f"DiracGAN({self.method!r})"

    def field(self, z):
        """(v_theta, v_psi) at z = (theta, psi), as a host array (2,)."""
        theta, psi = z
        self.G[0].params["W"][...] = theta
        self.D[0].params["W"][...] = psi
        gan.critic_step(self.G, self.D, self.opt_D, self.real, self.z, self.rng, self.d_loss,
                        **self.penalty)
        dL_D = float(self.D[0].grads["W"][0, 0])  # device -> host
        gan.generator_step(self.G, self.D, self.opt_G, self.z, self.g_loss)
        dL_G = float(self.G[0].grads["W"][0, 0])
        return np.array([-dL_G, -dL_D])

    def project(self, z):
        """WGAN's weight clipping: psi back into [-clip, clip] (a no-op for the other methods)."""
        if self.clips:
            return np.array([z[0], np.clip(z[1], -self.clip, self.clip)])
        return z


def step(game, z, lr, update="simultaneous"):
    """One gradient step of both players from z (2,), of size lr; returns the new z.

    simultaneous:  z' = z + lr * v(z)
    alternating:   the first player moves by lr * v(z); the other by lr * v at the new point.
    """
    if update == "simultaneous":
        return game.project(z + lr * game.field(z))
    z = np.array(z, dtype=float)
    for i in (game.first, 1 - game.first):
        z[i] += lr * game.field(z)[i]
        z = game.project(z)
    return z


def run(game, z0, lr, steps, update="simultaneous"):
    """The iterates (T + 1, 2) of ``steps`` steps from z0; T < steps if the distance to the
    equilibrium passed BLOWUP (the run diverged and stops there)."""
    path = [np.array(z0, dtype=float)]
    for _ in range(steps):
        path.append(step(game, path[-1], lr, update))
        if not np.hypot(*path[-1]) < BLOWUP:
            break
    return np.array(path)


def averaged(path, decay):
    """Lesson 13's averaged iterate: minigan.tricks.EMA run over the iterates (T + 1, 2).

    EMA averages a network's params; here the "network" holds one array, the players' z.
    Row t is the average after t updates (row 0: z0).
    """
    holder = Layer()
    holder.params["z"] = np.array(path[0], dtype=float)
    ema = EMA(holder, decay)
    rows = [ema.net.params["z"].copy()]
    for z in path[1:]:
        holder.params["z"][...] = z
        ema.update()
        rows.append(ema.net.params["z"].copy())
    return np.array(rows)


def jacobian(f, z, h=1e-5):
    """The Jacobian (2, 2) of f: R^2 -> R^2 at z by central differences: column j is
    (f(z + h e_j) - f(z - h e_j)) / (2 h)."""
    z = np.asarray(z, dtype=float)
    J = np.zeros((2, 2))
    for j in range(2):
        e = np.zeros(2)
        e[j] = h
        J[:, j] = (f(z + e) - f(z - e)) / (2 * h)
    return J


def differentiable(f, z, h=1e-5):
    """Whether f looks differentiable at z: its central-difference Jacobians with steps h and
    2 h agree (for a smooth f they differ by O(h^2)). Where f jumps by s, each difference
    quotient is about s / (2 h): halving the step doubles it, and there is no Jacobian."""
    J1, J2 = jacobian(f, z, h), jacobian(f, z, 2 * h)
    return bool(np.allclose(J1, J2, rtol=1e-4, atol=1e-6))


def step_matrix(game, lr, update, z=(0.0, 0.0)):
    """The Jacobian (2, 2) of one whole step at z, by central differences: near an equilibrium
    z*, z_{t+1} - z* ~ M (z_t - z*). Simultaneous steps give M = I + lr J."""
    return jacobian(lambda w: step(game, w, lr, update), z)


def spectral_radius(M):
    """The largest modulus of M's eigenvalues: below 1, the steps converge near the equilibrium
    (linearly, by that factor per step); above 1, they move away."""
    return float(np.abs(np.linalg.eigvals(M)).max())


VERDICTS = ("converges", "stalls", "spirals out", "spirals in", "oscillates", "too few steps")


def verdict(path, steps, tol=1e-6):
    """What a run (T + 1, 2) of ``steps`` steps did around the equilibrium 0, in VERDICTS' words.

    - converges: the distance fell below tol times the starting distance, or its mean over the
      last quarter of the steps is below a tenth of that over the second quarter (a tenfold fall
      while the steps double: linear convergence, faster than any slow power law);
    - stalls: it stopped moving (the last step moved < 1e-9 of the distance) away from 0;
    - spirals out: it diverged (stopped at BLOWUP), or the mean distance over the last quarter
      is more than 1 % above that over the third;
    - spirals in: more than 1 % below, but not converging as above (too slowly, or too few
      steps to tell);
    - oscillates: neither (bounded, circling at about the same distance);
    - too few steps: under 8, too few for the quarters.
    """
    d = np.hypot(*np.asarray(path).T)
    if d[-1] <= tol * d[0]:
        return "converges"
    if len(d) <= steps:
        return "spirals out"
    if np.abs(path[-1] - path[-2]).max() <= 1e-9 * d[-1]:
        return "stalls"
    n = len(d) - 1
    if n < 8:
        return "too few steps"
    second, third, last = (d[n // 4: n // 2].mean(), d[n // 2: 3 * n // 4].mean(),
                           d[3 * n // 4:].mean())
    if last < 0.1 * second:
        return "converges"
    if last > 1.01 * third:
        return "spirals out"
    if last < 0.99 * third:
        return "spirals in"
    return "oscillates"
