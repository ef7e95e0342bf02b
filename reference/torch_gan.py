"""minigan's MLP GAN written the way a PyTorch user writes it: the twin minigan is checked against.

Same networks (``nn.Linear`` + ``nn.LeakyReLU(0.2)``, ``nn.Tanh`` at the end of G, one logit at
the end of D), same losses (``nn.BCEWithLogitsLoss``), same optimizer (``torch.optim.Adam``,
lr 2e-4, betas (0.5, 0.999)), same alternating step as ``minigan.gan``, but with autograd:
``zero_grad()``, ``loss.backward()``, ``step()``. Fed the same weights, real batches and noise,
it computes what minigan computes, up to floating-point rounding: in float64 the losses agree
to 1e-16 at first and within about 1e-10 over 500 steps (docs/compare_losses.png); in float32
the two trajectories part after a few dozen steps, as any two float32 implementations do
(tests/test_parity.py, reference/compare.py).

Two ways to use it:

    # as a twin, starting from minigan's weights, fed minigan's arrays
    twin = TorchGAN.from_minigan(G, D)          # G, D: minigan Sequentials
    metrics = twin.train_step([real], [z_d, z_g])

    # standalone, on MNIST
    python -m reference.torch_gan --epochs 1 --out runs/torch_gan
    python -m reference.torch_gan --model dcgan --epochs 1 --out runs/torch_dcgan

The DCGAN (``--model dcgan``, ``make_dcgan_generator``/``make_dcgan_discriminator``) is
minigan.gan's, layer for layer: nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d. Its G step keeps
D's BatchNorm running statistics as they are (``frozen_running_stats``: momentum 0 for the step),
as minigan's generator_step does; plain PyTorch code would let them move in D's forward there.

The other games (least squares, hinge, Wasserstein; R1, WGAN-GP, clipping; RMSprop; spectral
norm) are reference/torch_games.py's TorchGame, a TorchGAN. Needs PyTorch:
``pip install -e '.[reference]'``.
"""

import contextlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from minigan import backend, settings
from minigan.data import load_mnist, to_model_input, to_pixels
from minigan.gan import StepMetrics
from minigan.conv import Conv2D, ConvTranspose2D
from minigan.batchnorm import BatchNorm
from minigan.layers import Dense, Dropout, Flatten, LeakyReLU, ReLU, Reshape, Sigmoid, Tanh
from minigan.pictures import save_grid

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def torch_dtype(dtype):
    """``"float32"`` / ``"float64"`` (minigan's spelling) or a torch dtype -> a torch dtype."""
    return DTYPES[dtype] if isinstance(dtype, str) else dtype


def make_generator(latent_dim=100, hidden=(256, 512, 1024), out_dim=784, slope=0.2,
                   dtype="float32"):
    """G: z (N, latent_dim) -> image (N, out_dim) in [-1, 1], as ``minigan.gan.make_generator``."""
    sizes = [latent_dim, *hidden]
    layers = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(d_in, d_out), nn.LeakyReLU(slope)]
    layers += [nn.Linear(sizes[-1], out_dim), nn.Tanh()]
    return nn.Sequential(*layers).to(torch_dtype(dtype))


def make_discriminator(in_dim=784, hidden=(1024, 512, 256), slope=0.2, dtype="float32"):
    """D: image (N, in_dim) -> logit (N, 1), like ``minigan.gan.make_discriminator``."""
    sizes = [in_dim, *hidden]
    layers = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(d_in, d_out), nn.LeakyReLU(slope)]
    layers += [nn.Linear(sizes[-1], 1)]  # a logit: BCEWithLogitsLoss applies the sigmoid
    return nn.Sequential(*layers).to(torch_dtype(dtype))


def make_dcgan_generator(latent_dim=100, channels=(128, 64), dtype="float32"):
    """G of the DCGAN, as ``minigan.gan.make_dcgan_generator``: z -> (N, 784) in [-1, 1]."""
    c1, c2 = channels
    return nn.Sequential(
        nn.Linear(latent_dim, c1 * 7 * 7), nn.Unflatten(1, (c1, 7, 7)),
        nn.BatchNorm2d(c1), nn.ReLU(),
        nn.ConvTranspose2d(c1, c2, 5, stride=2, padding=2, output_padding=1),  # 7 -> 14
        nn.BatchNorm2d(c2), nn.ReLU(),
        nn.ConvTranspose2d(c2, 1, 5, stride=2, padding=2, output_padding=1),  # 14 -> 28
        nn.Tanh(), nn.Flatten(),
    ).to(torch_dtype(dtype))


def make_dcgan_discriminator(channels=(64, 128), slope=0.2, dtype="float32"):
    """D of the DCGAN, as ``minigan.gan.make_dcgan_discriminator``: (N, 784) -> logit (N, 1)."""
    c1, c2 = channels
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, c1, 5, stride=2, padding=2), nn.LeakyReLU(slope), nn.BatchNorm2d(c1),
        nn.Conv2d(c1, c2, 5, stride=2, padding=2), nn.BatchNorm2d(c2), nn.LeakyReLU(slope),
        nn.Flatten(), nn.Linear(c2 * 7 * 7, 1),
    ).to(torch_dtype(dtype))


@contextlib.contextmanager
def frozen_running_stats(net):
    """Within the block, net's BatchNorm layers normalise by batch statistics as usual but keep
    their running statistics (momentum 0: running = 1 * running + 0 * batch), like
    ``minigan.batchnorm.frozen_running_stats``."""
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    before = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield net
    finally:
        for m, momentum in zip(norms, before):
            m.momentum = momentum


def _describe_torch(module):
    if isinstance(module, nn.Linear):
        return f"Linear({module.in_features}, {module.out_features})"
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        extra = (f", output_padding={module.output_padding[0]}"
                 if isinstance(module, nn.ConvTranspose2d) else "")
        return (f"{type(module).__name__}({module.in_channels}, {module.out_channels}, "
                f"{module.kernel_size[0]}, stride={module.stride[0]}, "
                f"padding={module.padding[0]}{extra})")
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return f"BatchNorm({module.num_features}, momentum={module.momentum}, eps={module.eps})"
    if isinstance(module, nn.Flatten):
        return "Flatten()"
    if isinstance(module, nn.Unflatten):
        return f"Reshape({tuple(module.unflattened_size)})"
    if isinstance(module, nn.Dropout):
        return f"Dropout({module.p})"
    if isinstance(module, nn.LeakyReLU):
        return f"LeakyReLU({module.negative_slope})"
    if isinstance(module, (nn.ReLU, nn.Tanh, nn.Sigmoid)):
        return f"{type(module).__name__}()"
    return f"unsupported {type(module).__name__}"


def _describe_minigan(layer):
    if isinstance(layer, Dense):
        return f"Linear({layer.in_features}, {layer.out_features})"
    if isinstance(layer, (Conv2D, ConvTranspose2D)):
        extra = (f", output_padding={layer.output_padding}"
                 if isinstance(layer, ConvTranspose2D) else "")
        name = "Conv2d" if isinstance(layer, Conv2D) else "ConvTranspose2d"
        return (f"{name}({layer.in_channels}, {layer.out_channels}, {layer.kernel_size}, "
                f"stride={layer.stride}, padding={layer.padding}{extra})")
    if isinstance(layer, BatchNorm):
        return f"BatchNorm({layer.num_features}, momentum={layer.momentum}, eps={layer.eps})"
    if isinstance(layer, (Flatten, Reshape, Dropout)):
        return repr(layer)
    if isinstance(layer, ReLU):  # before LeakyReLU: ReLU is a LeakyReLU with slope 0
        return "ReLU()"
    if isinstance(layer, LeakyReLU):
        return f"LeakyReLU({layer.negative_slope})"
    if isinstance(layer, (Tanh, Sigmoid)):
        return f"{type(layer).__name__}()"
    return f"unsupported {type(layer).__name__}"


def load_minigan_weights(torch_seq, minigan_seq):
    """Copy a minigan Sequential's weights into an ``nn.Sequential`` of the same architecture.

    minigan's Dense computes ``x @ W + b`` with W: (in, out); nn.Linear computes
    ``x @ weight.T + bias`` with weight: (out, in), so ``weight = W.T``. Convolutions share
    torch's shapes and copy as they are; BatchNorm's gamma, beta and running statistics go to
    weight, bias, running_mean and running_var. Values are cast to the torch network's dtype.
    Raises ValueError, listing both layer by layer, if the two architectures differ (layer
    kinds, sizes or slopes).
    """
    ours = [_describe_torch(m) for m in torch_seq]
    theirs = [_describe_minigan(layer) for layer in minigan_seq.layers]
    if ours != theirs:
        raise ValueError(
            "load_minigan_weights: the architectures differ\n"
            f"  torch:   {', '.join(ours)}\n  minigan: {', '.join(theirs)}"
        )
    with torch.no_grad():
        for module, layer in zip(torch_seq, minigan_seq.layers):
            if isinstance(layer, Dense):
                W = backend.to_host(layer.params["W"])  # (in, out)
                b = backend.to_host(layer.params["b"])  # (out,)
                module.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))  # (out, in)
                module.bias.copy_(torch.from_numpy(b))
            elif isinstance(layer, (Conv2D, ConvTranspose2D)):  # torch's shapes already
                module.weight.copy_(torch.from_numpy(backend.to_host(layer.params["W"])))
                module.bias.copy_(torch.from_numpy(backend.to_host(layer.params["b"])))
            elif isinstance(layer, BatchNorm):
                module.weight.copy_(torch.from_numpy(backend.to_host(layer.params["gamma"])))
                module.bias.copy_(torch.from_numpy(backend.to_host(layer.params["beta"])))
                module.running_mean.copy_(torch.from_numpy(backend.to_host(layer.running_mean)))
                module.running_var.copy_(torch.from_numpy(backend.to_host(layer.running_var)))
    return torch_seq


def twin_of(minigan_seq, dtype=None, input_ndim=2):
    """A new ``nn.Sequential`` mirroring a minigan Sequential layer by layer, with its weights.

    dtype defaults to the minigan network's own (float32 or float64). minigan's BatchNorm takes
    (N, C) and (N, C, H, W) alike, torch has one class for each: the twin follows the number of
    dimensions through the layers, starting from input_ndim (2 for (N, D) inputs).
    """
    modules = []
    ndim = input_ndim
    for layer in minigan_seq.layers:
        if isinstance(layer, Dense):
            modules.append(nn.Linear(layer.in_features, layer.out_features))
        elif isinstance(layer, Conv2D):
            modules.append(nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                                     layer.stride, layer.padding))
        elif isinstance(layer, ConvTranspose2D):
            modules.append(nn.ConvTranspose2d(layer.in_channels, layer.out_channels,
                                              layer.kernel_size, layer.stride, layer.padding,
                                              layer.output_padding))
        elif isinstance(layer, BatchNorm):
            kind = nn.BatchNorm2d if ndim == 4 else nn.BatchNorm1d
            modules.append(kind(layer.num_features, eps=layer.eps, momentum=layer.momentum))
        elif isinstance(layer, Flatten):
            modules.append(nn.Flatten())
            ndim = 2
        elif isinstance(layer, Reshape):
            modules.append(nn.Unflatten(1, layer.shape))
            ndim = 1 + len(layer.shape)
        elif isinstance(layer, Dropout):
            modules.append(nn.Dropout(layer.p))
        elif isinstance(layer, ReLU):
            modules.append(nn.ReLU())
        elif isinstance(layer, LeakyReLU):
            modules.append(nn.LeakyReLU(layer.negative_slope))
        elif isinstance(layer, Tanh):
            modules.append(nn.Tanh())
        elif isinstance(layer, Sigmoid):
            modules.append(nn.Sigmoid())
        else:
            raise ValueError(f"twin_of: no PyTorch twin for minigan layer {layer!r}")
    if dtype is None and minigan_seq.params:  # activations alone have no dtype to copy
        dtype = str(next(iter(minigan_seq.params.values())).dtype)
    twin = nn.Sequential(*modules)
    if dtype is not None:
        twin = twin.to(torch_dtype(dtype))
    for module, layer in zip(twin, minigan_seq.layers):
        module.train(getattr(layer, "training", True))  # BatchNorm and Dropout: the same mode
    return load_minigan_weights(twin, minigan_seq)


class TorchGAN:
    """G, D, their Adam optimizers and minigan's alternating step, in idiomatic PyTorch.

    Each step takes its real batches and noise as arguments (tensors, or NumPy arrays that are
    wrapped without a copy), so it can be fed exactly what minigan is fed.
    gen_loss: "nonsaturating" (mean(-log D(G(z))), the default) or "minimax"
    (mean(log(1 - D(G(z))))).
    """

    def __init__(self, G, D, lr=2e-4, betas=(0.5, 0.999), gen_loss="nonsaturating"):
        if gen_loss not in ("nonsaturating", "minimax"):
            raise ValueError(f"unknown gen_loss {gen_loss!r}: use 'nonsaturating' or 'minimax'")
        self.G, self.D, self.gen_loss = G, D, gen_loss
        self.opt_G = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
        self.opt_D = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
        self.bce = nn.BCEWithLogitsLoss()  # mean over the batch, on logits: stable for any logit

    @classmethod
    def from_minigan(cls, G, D, dtype=None, **kwargs):
        """Twins of minigan networks G and D (same layers, same weights), with fresh optimizers."""
        return cls(twin_of(G, dtype), twin_of(D, dtype), **kwargs)

    def _tensor(self, a):
        """A NumPy array (or tensor) as a tensor on the networks' device; no copy on the CPU."""
        return torch.as_tensor(a, device=next(self.G.parameters()).device)

    def d_step(self, real, z, real_target=1.0):
        """One update of D on BCE(D(real), real_target) + BCE(D(G(z)), 0).

        real: (N, 784), z: (N, latent_dim). Returns (d_loss, mean D(x), mean D(G(z))) as
        0-d tensors, D(G(z)) measured before D's update, as minigan.gan.discriminator_step does.
        """
        real, z = self._tensor(real), self._tensor(z)
        fake = self.G(z).detach()  # (N, 784); detach: no gradient flows into G here
        self.opt_D.zero_grad()
        logits_real = self.D(real)  # (N, 1)
        logits_fake = self.D(fake)  # (N, 1)
        d_loss = (self.bce(logits_real, torch.full_like(logits_real, real_target))
                  + self.bce(logits_fake, torch.zeros_like(logits_fake)))
        d_loss.backward()
        self.opt_D.step()
        with torch.no_grad():
            return (d_loss.detach(), torch.sigmoid(logits_real).mean(),
                    torch.sigmoid(logits_fake).mean())

    def g_step(self, z):
        """One update of G through a fixed D; returns the generator loss (0-d tensor).

        backward() also adds into D's .grad here, on top of the last d_step's gradients
        (autograd has to go through D to reach G); only opt_G steps, so D's weights stay as they
        are, and opt_D.zero_grad() in the next d_step clears what was written into D's .grad.
        """
        z = self._tensor(z)
        self.opt_G.zero_grad()
        with frozen_running_stats(self.D):  # as minigan: the G step leaves D's statistics
            logits = self.D(self.G(z))  # (N, 1)
        if self.gen_loss == "nonsaturating":  # mean(-log D(G(z))): the fakes labelled real
            g_loss = self.bce(logits, torch.ones_like(logits))
        else:  # minimax: mean(log(1 - D(G(z)))) = -BCE(D(G(z)), 0)
            g_loss = -self.bce(logits, torch.zeros_like(logits))
        g_loss.backward()
        self.opt_G.step()
        return g_loss.detach()

    def train_step(self, real_batches, zs, *, real_target=1.0):
        """k discriminator steps then one generator step, like minigan.gan.train_step.

        real_batches: k real batches (N, 784); zs: k + 1 noise batches (N, latent_dim), one for
        each D step and the last for the G step (the order in which minigan draws them).
        Returns minigan's StepMetrics, holding 0-d tensors.
        """
        if len(zs) != len(real_batches) + 1:
            raise ValueError(
                f"train_step: {len(real_batches)} real batches need {len(real_batches) + 1} "
                f"noise batches (one per D step, one for G), got {len(zs)}"
            )
        for real, z in zip(real_batches, zs[:-1]):
            d_loss, d_real, d_fake = self.d_step(real, z, real_target)
        g_loss = self.g_step(zs[-1])
        return StepMetrics(d_loss, g_loss, d_real, d_fake)


# ---- standalone training on MNIST ------------------------------------------------------------


@dataclass
class Config:
    """Defaults of the standalone run, in one place; every field is also a command-line flag."""

    device: str = "cpu"  # or "cuda"
    model: str = "mlp"  # or "dcgan"
    epochs: int = 1
    batch_size: int = 64
    latent_dim: int = 100
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    k: int = 1  # D steps per G step
    gen_loss: str = "nonsaturating"
    real_target: float = 1.0  # 0.9 for one-sided label smoothing
    seed: int = 0
    dtype: str = "float32"
    limit: int = 0  # use only the first `limit` training images (0: all 60,000)
    log_every: int = 100
    out: str = "runs/torch_gan"


# The allowed values, checked by minigan's settings module like every command's (one rule each).
RULES = {
    "device": settings.one_of("cpu", "cuda"), "model": settings.RULES["model"],
    "epochs": settings.integer(1), "batch_size": settings.integer(1),
    "latent_dim": settings.RULES["latent_dim"], "lr": settings.number(0, lo_open=True),
    "beta1": settings.number(0, 1), "beta2": settings.number(0, 1), "k": settings.integer(1),
    "gen_loss": settings.RULES["gen_loss"],
    "real_target": ((lambda v: settings.number(0)[0](v) and v <= 1), "a number in [0, 1]"),
    "seed": settings.SEED, "dtype": settings.one_of(*DTYPES), "limit": settings.integer(0),
    "log_every": settings.integer(1), "out": settings.folder(want_dir=False),
}


def parse_config(config_class, rules, description, argv=None, prog=None):
    """A config dataclass filled from command-line flags, one flag per field (--batch-size),
    each checked against its rule; a bad value exits with status 2 and a message."""
    parser = settings.parser(config_class, rules, prog, description)
    given = vars(parser.parse_args(argv))
    try:
        return settings.validate(config_class(**given), flags=given, rules=rules)
    except settings.ConfigError as e:
        parser.error(str(e))


def parse_args(argv=None):
    return parse_config(Config, RULES, "Train the PyTorch twin of minigan's GAN on MNIST.", argv)


def main(argv=None):
    cfg = parse_args(argv)
    print(asdict(cfg))
    torch.manual_seed(cfg.seed)
    dtype = torch_dtype(cfg.dtype)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)

    images, _ = load_mnist("train")
    if cfg.limit:
        images = images[:cfg.limit]
    dev = torch.device(cfg.device)
    x = torch.from_numpy(to_model_input(images, dtype=cfg.dtype)).to(dev)  # (N, 784) in [-1, 1]
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x), batch_size=cfg.batch_size, shuffle=True,
        drop_last=True, generator=torch.Generator().manual_seed(cfg.seed))
    if cfg.model == "dcgan":
        G = make_dcgan_generator(cfg.latent_dim, dtype=dtype).to(dev)
        D = make_dcgan_discriminator(dtype=dtype).to(dev)
    else:
        G = make_generator(cfg.latent_dim, dtype=dtype).to(dev)
        D = make_discriminator(dtype=dtype).to(dev)

    gan = TorchGAN(G, D, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), gen_loss=cfg.gen_loss)
    fixed_z = torch.randn(64, cfg.latent_dim, dtype=dtype, device=dev)  # the same faces every epoch

    step, t0 = 0, time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        batches = iter(loader)
        for _ in range(len(loader) // cfg.k):
            reals = [next(batches)[0] for _ in range(cfg.k)]
            zs = [torch.randn(cfg.batch_size, cfg.latent_dim, dtype=dtype, device=dev)
                  for _ in range(cfg.k + 1)]
            metrics = gan.train_step(reals, zs, real_target=cfg.real_target)
            step += 1
            if step % cfg.log_every == 0:
                print(f"epoch {epoch} step {step:6d}  D loss {float(metrics.d_loss):.4f}  "
                      f"G loss {float(metrics.g_loss):.4f}  D(x) {float(metrics.d_real):.3f}  "
                      f"D(G(z)) {float(metrics.d_fake):.3f}")
        gan.G.eval()  # BatchNorm with running statistics, as minigan samples
        with torch.no_grad():
            samples = gan.G(fixed_z).cpu().numpy()  # (64, 784)
        gan.G.train()
        path = out / f"samples_epoch_{epoch:03d}.png"
        save_grid(path, to_pixels(samples))
        print(f"saved {path}")
    seconds = time.perf_counter() - t0
    print(f"{step} steps in {seconds:.1f} s ({1000 * seconds / max(step, 1):.1f} ms/step)")
    return gan


if __name__ == "__main__":
    main()
