"""The games beyond Jensen-Shannon in idiomatic PyTorch: the twin of ``minigan.gan.critic_step``.

D's losses (BCE, least squares, hinge, Wasserstein) and G's, the R1 and WGAN-GP penalties through
``torch.autograd.grad(..., create_graph=True)``, WGAN's weight clipping, ``torch.optim.RMSprop``
and spectral norm (``torch.nn.utils.parametrizations.spectral_norm``, :func:`spectral_twin_of`),
on top of reference/torch_gan.py's TorchGAN (its networks and weights). Fed minigan's
weights, batches, noise and interpolation weights, it computes what minigan computes
(tests/test_games_parity.py: 20 whole steps of each game in float64).

    twin = TorchGame.from_minigan(G, D, loss="wgan", gp=10.0, lr=1e-4, betas=(0.5, 0.9))
    metrics = twin.train_step(reals, zs, eps=eps)   # eps: one (N, 1) array per D step, for gp

The order of one D step is minigan's, so the gradients add up in the same order: D(real) and
its loss backward, D(fake) and its loss backward, then each penalty's backward, then the
optimizer's step, then the clipping.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from minigan import backend
from minigan.gan import StepMetrics
from minigan.layers import Dense, Sequential
from minigan.spectral import SpectralNorm
from reference.torch_gan import TorchGAN, frozen_running_stats, twin_of

# D's loss on its output for real x (with the real target, where the loss has one) and for
# G(z), as minigan.gan.D_LOSSES; each is a mean over the batch.
D_LOSSES = {
    "bce": (lambda out, t: F.binary_cross_entropy_with_logits(out, torch.full_like(out, t)),
            lambda out: F.binary_cross_entropy_with_logits(out, torch.zeros_like(out))),
    "lsgan": (lambda out, t: 0.5 * F.mse_loss(out, torch.full_like(out, t)),  # mean (out-t)^2 / 2
              lambda out: 0.5 * F.mse_loss(out, torch.zeros_like(out))),
    "hinge": (lambda out, t: F.relu(1 - out).mean(), lambda out: F.relu(1 + out).mean()),
    "wgan": (lambda out, t: -out.mean(), lambda out: out.mean()),  # E D(G(z)) - E D(x)
}

# G's loss on D(G(z)), as minigan.gan.G_LOSSES and minigan.losses.GENERATOR_LOSSES.
G_LOSSES = {
    "nonsaturating": lambda out: F.binary_cross_entropy_with_logits(out, torch.ones_like(out)),
    "minimax": lambda out: -F.binary_cross_entropy_with_logits(out, torch.zeros_like(out)),
    "lsgan": lambda out: 0.5 * F.mse_loss(out, torch.ones_like(out)),
    "hinge": lambda out: -out.mean(),
    "wgan": lambda out: -out.mean(),
}


def input_gradient(D, x):
    """g_i = dD(x_i)/dx_i for every row, (N, in), kept in the graph (create_graph=True), so
    that a penalty on g backpropagates into D's parameters (double backpropagation)."""
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)  # sum: row i's own gradient
    return g.flatten(1)  # the norm is over all of a sample's dimensions


def r1_penalty(D, real, gamma):
    """R1 (Mescheder et al. 2018): ``gamma / 2 * mean_i ||grad_x D(x_i)||^2`` on real x."""
    g = input_gradient(D, real)
    return gamma / 2 * g.pow(2).sum(dim=1).mean()


def gradient_penalty(D, real, fake, lam, eps):
    """WGAN-GP (Gulrajani et al. 2017): ``lam * mean_i (||grad D(x_hat_i)|| - 1)^2``.

    x_hat = eps * real + (1 - eps) * fake, eps: (N, 1), one weight in [0, 1) per row, given
    from outside so that the twin uses minigan's draws.
    """
    x_hat = eps * real + (1 - eps) * fake
    g = input_gradient(D, x_hat)
    return lam * (torch.linalg.vector_norm(g, dim=1) - 1).pow(2).mean()


def spectral_twin_of(minigan_seq, dtype=None):
    """twin_of for a network whose layers may be minigan.spectral.SpectralNorm wrappers: each
    wrapped layer's twin is the plain layer under ``torch.nn.utils.parametrizations.spectral_norm``,
    with minigan's trained W (not W / sigma) as ``parametrizations.weight.original`` and minigan's
    u, v as the power method's ``_u``, ``_v``. Both then take one power step per training forward.

    torch's weight matrix is (out, in * k * k): Linear's weight = Dense's W.T, Conv2d's W as it is.
    """
    wrapped = [layer.inner if isinstance(layer, SpectralNorm) else layer
               for layer in minigan_seq.layers]
    twin = twin_of(Sequential(*wrapped), dtype)  # the right layers, W / sigma as their weights
    for module, layer in zip(twin, minigan_seq.layers):
        if isinstance(layer, SpectralNorm):
            W = backend.to_host(layer.params["W"])  # the trained W
            W = W.T if isinstance(layer.inner, Dense) else W  # (out, in) for nn.Linear
            with torch.no_grad():
                module.weight.copy_(torch.from_numpy(np.ascontiguousarray(W)))
            spectral_norm(module, n_power_iterations=layer.n_power_iterations, eps=layer.eps)
            norm = module.parametrizations.weight[0]  # drew its own u, v from torch's RNG ...
            with torch.no_grad():  # ... which minigan's replace
                norm._u.copy_(torch.from_numpy(backend.to_host(layer.buffers["u"])))
                norm._v.copy_(torch.from_numpy(backend.to_host(layer.buffers["v"])))
    return twin


class TorchGame(TorchGAN):
    """TorchGAN playing any game of minigan.gan.critic_step.

    loss: D's loss, a key of D_LOSSES; G's is gen_loss ("nonsaturating" or "minimax") for
    "bce" and the game's own otherwise, as in minigan.gan.train_step. r1, gp: the penalties'
    weights (0: off); clip: D's parameters clamped to [-clip, clip] after each D update (0: off).
    optimizer: "adam" (lr, betas) or "rmsprop" (lr, alpha; the WGAN paper's), for both players.
    Spectral norm: D's layers under torch's spectral_norm (from_minigan does it for a minigan D
    made with minigan.spectral.apply).
    """

    def __init__(self, G, D, loss="bce", gen_loss="nonsaturating", r1=0.0, gp=0.0, clip=0.0,
                 optimizer="adam", lr=2e-4, betas=(0.5, 0.999), alpha=0.99):
        if loss not in D_LOSSES:
            raise ValueError(f"unknown loss {loss!r}: use one of {', '.join(D_LOSSES)}")
        super().__init__(G, D, lr, betas, gen_loss)
        if optimizer == "rmsprop":
            self.opt_G = torch.optim.RMSprop(G.parameters(), lr=lr, alpha=alpha)
            self.opt_D = torch.optim.RMSprop(D.parameters(), lr=lr, alpha=alpha)
        elif optimizer != "adam":
            raise ValueError(f"unknown optimizer {optimizer!r}: use 'adam' or 'rmsprop'")
        self.loss, self.r1, self.gp, self.clip = loss, r1, gp, clip
        self.g_loss = gen_loss if loss == "bce" else loss

    @classmethod
    def from_minigan(cls, G, D, dtype=None, **kwargs):
        """Twins of minigan's G and D (spectral norm included), with fresh optimizers."""
        return cls(twin_of(G, dtype), spectral_twin_of(D, dtype), **kwargs)

    def critic_step(self, real, z, eps=None, real_target=1.0):
        """One update of D, in minigan.gan.critic_step's order.

        real: (N, 784), z: (N, latent_dim), eps: (N, 1) WGAN-GP's interpolation weights (needed
        when gp > 0). Returns (L_D with its penalties, mean sigmoid(D(x)), mean sigmoid(D(G(z))))
        as 0-d tensors, D's outputs measured before its update.
        """
        real, z = self._tensor(real), self._tensor(z)
        loss_real_fn, loss_fake_fn = D_LOSSES[self.loss]
        fake = self.G(z).detach()  # (N, 784); no gradient flows into G here
        self.opt_D.zero_grad()
        out_real = self.D(real)  # (N, 1)
        loss_real = loss_real_fn(out_real, real_target)
        loss_real.backward()
        out_fake = self.D(fake)  # (N, 1)
        loss_fake = loss_fake_fn(out_fake)
        loss_fake.backward()  # .grad adds up: the gradient of loss_real + loss_fake
        d_loss = loss_real.detach() + loss_fake.detach()
        if self.r1:
            penalty = r1_penalty(self.D, real, self.r1)
            penalty.backward()  # its gradient adds into D's .grad
            d_loss = d_loss + penalty.detach()
        if self.gp:
            if eps is None:
                raise ValueError("critic_step: gp > 0 needs eps, one weight per row, (N, 1)")
            penalty = gradient_penalty(self.D, real, fake, self.gp, self._tensor(eps))
            penalty.backward()
            d_loss = d_loss + penalty.detach()
        self.opt_D.step()
        if self.clip:
            with torch.no_grad():
                for p in self.D.parameters():
                    p.clamp_(-self.clip, self.clip)  # in place, as WGAN's p.data.clamp_
        with torch.no_grad():
            return d_loss, torch.sigmoid(out_real).mean(), torch.sigmoid(out_fake).mean()

    def g_step(self, z):
        """One update of G through a fixed D on the game's G loss; returns it (0-d tensor)."""
        z = self._tensor(z)
        self.opt_G.zero_grad()
        with frozen_running_stats(self.D):  # as minigan: the G step leaves D's statistics
            out = self.D(self.G(z))  # (N, 1)
        g_loss = G_LOSSES[self.g_loss](out)
        g_loss.backward()  # also fills D's .grad, which the next critic_step clears
        self.opt_G.step()
        return g_loss.detach()

    def train_step(self, real_batches, zs, *, eps=None, real_target=1.0):
        """k critic steps then one G step, as minigan.gan.train_step.

        real_batches: k batches (N, 784); zs: k + 1 noise batches (N, latent_dim), the last for
        G; eps: k interpolation weights (N, 1), one per critic step (gp only). Returns
        minigan's StepMetrics of 0-d tensors, D's from the last critic step.
        """
        if len(zs) != len(real_batches) + 1:
            raise ValueError(f"train_step: {len(real_batches)} real batches need "
                             f"{len(real_batches) + 1} noise batches, got {len(zs)}")
        eps = eps if eps is not None else [None] * len(real_batches)
        for real, z, e in zip(real_batches, zs[:-1], eps):
            d_loss, d_real, d_fake = self.critic_step(real, z, e, real_target)
        return StepMetrics(d_loss, self.g_step(zs[-1]), d_real, d_fake)
