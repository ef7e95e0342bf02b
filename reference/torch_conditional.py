"""minigan's conditional GANs in idiomatic PyTorch: the twin of minigan/conditional.py and of
the conditional steps of minigan/gan.py.

G(z, y) is ``G(torch.cat([z, y], 1))`` in all three variants; D(x, y) is, for

- concat: ``D(torch.cat([x, F.one_hot(y)], 1))`` (the DCGAN's: the one-hot row expanded into
  10 constant channels of 28 x 28 beside the image);
- projection: ``psi(phi(x)) + (embed(y) * phi(x)).sum(1)``, ``nn.Embedding`` as the class table;
- acgan: ``D(x)`` with 1 + 10 outputs, column 0 the logit, columns 1..10 the class logits, which
  ``F.cross_entropy`` scores for both players.

--recipe improved's tricks (minigan/tricks.py) as torch modules in D's body, where minigan puts
them: ``MinibatchStd`` and ``Pack``; a packed projection D looks up one class table per
position of a pack (embedding rows i * 10 + y_i, summed over the pack), a packed AC-GAN D gives
each member 10 class logits. ``ema=decay`` keeps minigan's average of G (tricks.EMA's formula,
with its warm-up) in ``G_ema``.

Built from minigan's networks (their weights copied: reference/torch_gan.py's twin_of) and fed
minigan's batches, labels, noise and fake labels, it computes what minigan computes; autograd
gives the gradients (tests/test_conditional_parity.py: 20 whole steps of each variant, float64).

    twin = TorchConditionalGAN.from_minigan(G, D, loss="bce")
    metrics = twin.train_step([(real, labels)], [(z_d, y_d), (z_g, y_g)])

    # standalone, on MNIST: a digit-per-row grid after every epoch
    python -m reference.torch_conditional --conditional projection --epochs 1 --out runs/torch_cgan
"""

import copy
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from minigan import backend, models, settings
from minigan.data import load_mnist, to_model_input, to_pixels
from minigan.pictures import save_grid
from minigan.conditional import (NUM_CLASSES, AuxiliaryClassifierDiscriminator,
                                 ConcatDiscriminator, ConditionalGenerator,
                                 ProjectionDiscriminator)
from minigan.gan import StepMetrics
from minigan.layers import Sequential
from minigan.tricks import MinibatchStd, Pack
from reference.torch_games import D_LOSSES, G_LOSSES, spectral_twin_of
from reference import torch_gan
from reference.torch_gan import frozen_running_stats, twin_of


class Generator(nn.Module):
    """G(z, y) = net(cat([z, y])): y (N, 10) one-hot rows (or mixtures) of z's dtype."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, z, y):
        return self.net(torch.cat([z, y.to(z.dtype)], dim=1))


class ConcatD(nn.Module):
    """D(x, y) = net(cat([x, one_hot(y)])); spatial > 1: each one-hot entry as a constant
    channel of ``spatial`` pixels (the DCGAN's, spatial = 784)."""

    def __init__(self, net, spatial=1):
        super().__init__()
        self.net, self.spatial = net, spatial

    def forward(self, x, labels):
        y = F.one_hot(labels, NUM_CLASSES).to(x.dtype)  # (N, 10)
        y = y[:, :, None].expand(-1, -1, self.spatial).reshape(x.shape[0], -1)
        return self.net(torch.cat([x, y], dim=1))


class ProjectionD(nn.Module):
    """D(x, y) = psi(phi(x)) + <embed(y), phi(x)> (Miyato & Koyama 2018). pack=m: phi packs m
    samples; the pack's class vector is the sum of its members' rows i * 10 + y_i."""

    def __init__(self, phi, psi, embed, pack=1):
        super().__init__()
        self.phi, self.psi, self.embed, self.pack = phi, psi, embed, pack

    def forward(self, x, labels):
        n, m = x.shape[0], self.pack
        h = self.phi(x)  # (N / m, H)
        slots = labels + NUM_CLASSES * (torch.arange(n, device=labels.device) % m)
        e = self.embed(slots).view(n // m, m, -1).sum(dim=1)  # (N / m, H)
        return self.psi(h) + (e * h).sum(dim=1, keepdim=True)


class MinibatchStdT(nn.Module):
    """[x, mean_j sqrt(var_j(x) + eps)] (Karras et al. 2018), the variance biased."""

    def __init__(self, eps=1e-8):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        s = torch.sqrt(x.var(dim=0, unbiased=False) + self.eps).mean()
        return torch.cat([x, s.expand(x.shape[0], 1)], dim=1)


class PackT(nn.Module):
    """(N, F) -> (N / m, m * F): m consecutive samples side by side (PacGAN)."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return x.reshape(x.shape[0] // self.m, -1)


def body_twin(seq, dtype=None):
    """spectral_twin_of for a body that may hold minigan's MinibatchStd and Pack: one torch
    module per minigan layer, so the twin's indices are minigan's keys."""
    modules, run = [], []
    for layer in [*seq.layers, None]:
        if isinstance(layer, (MinibatchStd, Pack)) or layer is None:
            if run:
                modules += list(spectral_twin_of(Sequential(*run), dtype))
            if layer is not None:
                modules.append(MinibatchStdT(layer.eps) if isinstance(layer, MinibatchStd)
                               else PackT(layer.m))
            run = []
        else:
            run.append(layer)
    return nn.Sequential(*modules)


class AuxiliaryClassifierD(nn.Module):
    """AC-GAN's D: net(x), (N, 1 + 10); the labels are scored by the losses, not seen by D."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, labels):
        return self.net(x)


def embedding_twin(embedding, dtype=None):
    """An nn.Embedding holding minigan's Embedding's table (num_classes, dim)."""
    table = torch.from_numpy(np.ascontiguousarray(backend.to_host(embedding.params["W"])))
    module = nn.Embedding(embedding.num_classes, embedding.dim, dtype=dtype or table.dtype)
    with torch.no_grad():
        module.weight.copy_(table)  # in the module's dtype: float64 stays exact
    return module


def conditional_twin(net, dtype=None):
    """The torch twin of a minigan conditional G or D, with its weights; D's layers under
    minigan's spectral norm go under torch's (torch_games.spectral_twin_of)."""
    if isinstance(net, ConditionalGenerator):
        return Generator(twin_of(net.net, dtype))
    if isinstance(net, ConcatDiscriminator) and net.noise is None:
        return ConcatD(body_twin(net.net, dtype), net.spatial)
    if isinstance(net, ProjectionDiscriminator):
        psi = spectral_twin_of(Sequential(net.psi), dtype)[0]
        return ProjectionD(body_twin(net.phi, dtype), psi, embedding_twin(net.embed, dtype),
                           net.pack)
    if isinstance(net, AuxiliaryClassifierDiscriminator):
        return AuxiliaryClassifierD(body_twin(net.net, dtype))
    raise ValueError(f"conditional_twin: no twin for {net!r}")


def class_loss(D, out, labels):
    """AC-GAN's class loss on D's output (mean cross-entropy of columns 1..10, each member's 10
    of a packed D's columns as its own row); 0 otherwise."""
    if isinstance(D, AuxiliaryClassifierD):
        return F.cross_entropy(out[:, 1:].reshape(labels.shape[0], NUM_CLASSES), labels)
    return 0.0


class TorchConditionalGAN:
    """G(z, y), D(x, y), Adam for each, and minigan's conditional steps with autograd.

    loss: D's game (a key of reference/torch_games.py's D_LOSSES); G plays gen_loss for "bce",
    the game's own loss otherwise; clip: D's parameters clamped after each D update (0: off);
    ema: the decay of an average of G's weights, G_ema, updated after each G step (0: off).
    """

    def __init__(self, G, D, loss="bce", gen_loss="nonsaturating", clip=0.0, lr=2e-4,
                 betas=(0.5, 0.999), ema=0.0):
        self.G, self.D, self.loss, self.clip = G, D, loss, clip
        self.ema, self.ema_steps = ema, 0
        self.G_ema = copy.deepcopy(G).eval() if ema else None
        self.g_loss = gen_loss if loss == "bce" else loss
        self.opt_G = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
        self.opt_D = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)

    @classmethod
    def from_minigan(cls, G, D, dtype=None, **kwargs):
        return cls(conditional_twin(G, dtype), conditional_twin(D, dtype), **kwargs)

    def _tensor(self, a):
        return torch.as_tensor(backend.to_host(a) if not isinstance(a, torch.Tensor) else a)

    def d_step(self, real, labels, z, fake_labels, real_target=1.0):
        """One update of D in minigan.gan.conditional_discriminator_step's order: D(real) and its
        loss backward, D(fake) and its loss backward, step, clip. Returns (L_D, mean sigmoid
        of the logit on real, on fake)."""
        real, z = self._tensor(real), self._tensor(z)
        labels, fake_labels = self._tensor(labels).long(), self._tensor(fake_labels).long()
        loss_real_fn, loss_fake_fn = D_LOSSES[self.loss]
        y = F.one_hot(fake_labels, NUM_CLASSES).to(z.dtype)
        fake = self.G(z, y).detach()
        self.opt_D.zero_grad()
        out_real = self.D(real, labels)
        loss_real = loss_real_fn(out_real[:, :1], real_target) + class_loss(self.D, out_real,
                                                                          labels)
        loss_real.backward()
        out_fake = self.D(fake, fake_labels)
        loss_fake = loss_fake_fn(out_fake[:, :1]) + class_loss(self.D, out_fake, fake_labels)
        loss_fake.backward()
        self.opt_D.step()
        if self.clip:
            with torch.no_grad():
                for p in self.D.parameters():
                    p.clamp_(-self.clip, self.clip)
        with torch.no_grad():
            return (loss_real.detach() + loss_fake.detach(), torch.sigmoid(out_real[:, :1]).mean(),
                    torch.sigmoid(out_fake[:, :1]).mean())

    def g_step(self, z, fake_labels):
        """One update of G through a fixed D (its BatchNorm statistics kept, as minigan)."""
        z, fake_labels = self._tensor(z), self._tensor(fake_labels).long()
        self.opt_G.zero_grad()
        with frozen_running_stats(self.D):
            out = self.D(self.G(z, F.one_hot(fake_labels, NUM_CLASSES).to(z.dtype)), fake_labels)
        g_loss = G_LOSSES[self.g_loss](out[:, :1]) + class_loss(self.D, out, fake_labels)
        g_loss.backward()
        self.opt_G.step()
        if self.ema:  # minigan.tricks.EMA: decay_t = min(decay, (1 + t) / (10 + t))
            d = min(self.ema, (1 + self.ema_steps) / (10 + self.ema_steps))
            with torch.no_grad():
                for avg, p in zip(self.G_ema.parameters(), self.G.parameters()):
                    avg.mul_(d).add_((1 - d) * p)
                for avg_buffer, buffer in zip(self.G_ema.buffers(), self.G.buffers()):
                    avg_buffer.copy_(buffer)  # BatchNorm's statistics: copied, not averaged
            self.ema_steps += 1
        return g_loss.detach()

    def train_step(self, real_batches, draws, *, real_target=1.0):
        """k D steps, then one G step. real_batches: k pairs (real, labels); draws: k + 1 pairs
        (z, fake_labels), in minigan's order, the last for G. Returns StepMetrics of tensors."""
        for (real, labels), (z, fake_labels) in zip(real_batches, draws[:-1]):
            d_loss, d_real, d_fake = self.d_step(real, labels, z, fake_labels, real_target)
        return StepMetrics(d_loss, self.g_step(*draws[-1]), d_real, d_fake)


# ---- standalone training on MNIST ------------------------------------------------------------


@dataclass
class Config(torch_gan.Config):
    """reference/torch_gan.py's standalone defaults, and the variant (every field a flag)."""

    conditional: str = "projection"
    out: str = "runs/torch_cgan"


RULES = {**torch_gan.RULES, "conditional": settings.one_of(*settings.CONDITIONAL)}


def main(argv=None):
    cfg = torch_gan.parse_config(Config, RULES, "Train the PyTorch twin of minigan's "
                                 "conditional GANs on MNIST.", argv)
    print(asdict(cfg))
    torch.manual_seed(cfg.seed)
    dev, out = torch.device(cfg.device), Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    images, labels = load_mnist("train")
    if cfg.limit:
        images, labels = images[:cfg.limit], labels[:cfg.limit]
    data = torch.utils.data.TensorDataset(
        torch.from_numpy(to_model_input(images, dtype=cfg.dtype)), torch.from_numpy(labels).long())
    loader = torch.utils.data.DataLoader(data, batch_size=cfg.batch_size, shuffle=True,
                                         drop_last=True,
                                         generator=torch.Generator().manual_seed(cfg.seed))
    # the networks of minigan's models.build for these settings, with its initial weights
    mg = settings.Config(model=cfg.model, latent_dim=cfg.latent_dim, dtype=cfg.dtype,
                         conditional=cfg.conditional)
    G, D = models.build(mg, backend.default_rng(cfg.seed))
    gan = TorchConditionalGAN.from_minigan(G, D, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                                           gen_loss=cfg.gen_loss)
    gan.G.to(dev), gan.D.to(dev)
    dtype = torch_gan.torch_dtype(cfg.dtype)
    # digit d in row d, the same 10 noise vectors in every row (as train_mnist.py's grids)
    fixed_z = torch.randn(10, cfg.latent_dim, dtype=dtype, device=dev).repeat(10, 1)
    fixed_y = F.one_hot(torch.arange(100, device=dev) // 10, NUM_CLASSES).to(dtype)

    def draw():  # noise, then labels uniform over the digits, as minigan draws them
        return (torch.randn(cfg.batch_size, cfg.latent_dim, dtype=dtype, device=dev),
                torch.randint(0, NUM_CLASSES, (cfg.batch_size,), device=dev))

    step, t0 = 0, time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        batches = iter(loader)
        for _ in range(len(loader) // cfg.k):
            reals = [tuple(t.to(dev) for t in next(batches)) for _ in range(cfg.k)]
            metrics = gan.train_step(reals, [draw() for _ in range(cfg.k + 1)],
                                     real_target=cfg.real_target)
            step += 1
            if step % cfg.log_every == 0:
                print(f"epoch {epoch} step {step:6d}  " + "  ".join(
                    f"{k} {v:.4f}" for k, v in metrics.read().items()))
        gan.G.eval()  # BatchNorm with running statistics, as minigan samples
        with torch.no_grad():
            samples = gan.G(fixed_z, fixed_y).cpu().numpy()  # (100, 784)
        gan.G.train()
        save_grid(out / f"samples_epoch_{epoch:03d}.png", to_pixels(samples), nrow=10)
    seconds = time.perf_counter() - t0
    print(f"{step} steps in {seconds:.1f} s ({1000 * seconds / max(step, 1):.1f} ms/step)")
    return gan


if __name__ == "__main__":
    main()
