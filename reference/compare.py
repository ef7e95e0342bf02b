"""Train minigan and its PyTorch twin side by side on MNIST and watch their losses coincide.

Both start from the same weights (minigan draws them, the twin copies them), see the same real
batches and the same noise, and take the same alternating steps: minigan through
``minigan.gan.train_step``, the twin through autograd (reference/torch_gan.py). The script prints
both losses every ``--every`` steps with their relative difference, each one's time per step,
and saves both loss curves in one plot.

    python -m reference.compare                      # 500 steps in float64
    python -m reference.compare --dtype float32      # the precision minigan trains in

float64 is the default because it is where "the same computation" can be seen: the losses
agree to 1e-16 at first, and the rounding grows to at most about 1e-10 over 500 steps. In float32 they differ from the first step by rounding (~1e-7: the
matrix-multiply kernels sum in different orders) and training amplifies that: Adam's
m / (sqrt(v) + eps) magnifies the rounding of gradient entries near eps, and a pre-activation
within rounding of 0 takes the other LeakyReLU branch on one side. Within ~50 steps the curves
visibly part, as PyTorch in float32 parts from PyTorch in float64 from the same start.
"""

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from minigan import backend, files, models, settings
from minigan.data import load_mnist, to_model_input
from minigan.gan import sample_noise, train_step
from minigan.optim import Adam
from reference import torch_gan
from reference.torch_gan import TorchGAN, parse_config


@dataclass
class Config:
    """Defaults in one place; every field is also a command-line flag."""

    steps: int = 500
    every: int = 50  # print a row of the table every `every` steps
    batch_size: int = 64
    latent_dim: int = 100
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    k: int = 1  # D steps per G step
    gen_loss: str = "nonsaturating"
    real_target: float = 1.0  # 0.9 for one-sided label smoothing
    seed: int = 0
    dtype: str = "float64"  # float32 agrees at first, then drifts: see the docstring
    limit: int = 0  # use only the first `limit` training images (0: all 60,000)
    out: str = "runs/compare/compare_losses.png"


RULES = {**{name: torch_gan.RULES[name] for name in (
    "batch_size", "latent_dim", "lr", "beta1", "beta2", "k", "gen_loss", "real_target", "seed",
    "dtype", "limit")}, "steps": settings.integer(1), "every": settings.integer(1),
    "out": settings.explained(settings.folder(want_dir=False), "a .png file name")}


def parse_args(argv=None):
    return parse_config(
        Config, RULES, "Train minigan and its PyTorch twin side by side and compare their losses.",
        argv)


def real_batches(x, batch_size, rng):
    """Endless shuffled batches (batch_size, 784) of the host array x, one epoch after another."""
    while True:
        order = rng.permutation(len(x))
        for i in range(0, len(x) - batch_size + 1, batch_size):  # drop the last partial batch
            yield backend.to_device(x[order[i:i + batch_size]])  # host -> device (a no-op on CPU)


def rel_diff(a, b):
    return abs(a - b) / max(abs(b), 1e-12)


def save_plot(path, history):
    """Both runs' losses against the step (top) and their relative difference (bottom, log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax_diff) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True,
                                      gridspec_kw={"height_ratios": [2, 1]})
    step = history["step"]
    for name, label, color in (("d_loss", "D loss", "tab:blue"),
                               ("g_loss", "G loss", "tab:orange")):
        ours, theirs = history[f"minigan_{name}"], history[f"torch_{name}"]
        ax.plot(step, ours, color=color, lw=2.5, alpha=0.5, label=f"{label}, minigan")
        ax.plot(step, theirs, color="black", lw=0.8, ls="--", label=f"{label}, PyTorch")
        # the floor keeps an exact agreement (difference 0) on the log scale
        ax_diff.semilogy(step, [max(rel_diff(a, b), 1e-17) for a, b in zip(ours, theirs)],
                         color=color, lw=1, label=label)
    ax.set_ylabel("loss")
    ax.set_title("minigan and its PyTorch twin: same weights, batches and noise")
    ax.legend()
    ax_diff.set_xlabel("step")
    ax_diff.set_ylabel("|minigan - PyTorch| / |PyTorch|")
    ax_diff.legend()
    fig.tight_layout()
    with files.atomic_write(path) as f:
        fig.savefig(f, dpi=100, format="png")
    plt.close(fig)


def main(argv=None):
    cfg = parse_args(argv)
    print(asdict(cfg))
    images, _ = load_mnist("train")
    if cfg.limit:
        images = images[:cfg.limit]
    x = to_model_input(images, cfg.dtype)  # host (N, 784) in [-1, 1]
    if len(x) < cfg.batch_size:
        raise ValueError(f"--limit {cfg.limit} leaves fewer images than one batch")

    # One initialisation: minigan draws the weights, the twin copies them.
    rng = backend.default_rng(cfg.seed)
    G, D = models.build(settings.Config(latent_dim=cfg.latent_dim, dtype=cfg.dtype), rng)
    twin = TorchGAN.from_minigan(G, D, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                                 gen_loss=cfg.gen_loss)
    betas = (cfg.beta1, cfg.beta2)
    opt_G = Adam(G.parameters(), lr=cfg.lr, betas=betas)
    opt_D = Adam(D.parameters(), lr=cfg.lr, betas=betas)

    batches = real_batches(x, cfg.batch_size, np.random.default_rng(cfg.seed + 1))
    # Two generators with one seed give one noise stream twice: train_step draws from the first,
    # one z per D step then one for the G step; we draw the same z's, in that order, for the twin.
    noise_minigan = backend.default_rng(cfg.seed + 2)
    noise_torch = backend.default_rng(cfg.seed + 2)

    history = {key: [] for key in ("step", "minigan_d_loss", "torch_d_loss",
                                   "minigan_g_loss", "torch_g_loss")}
    seconds = {"minigan": 0.0, "torch": 0.0}
    print(f"\n{'step':>6} | {'D loss minigan':>14} {'D loss torch':>14} {'rel diff':>9} | "
          f"{'G loss minigan':>14} {'G loss torch':>14} {'rel diff':>9}")
    for step in range(1, cfg.steps + 1):
        reals = [next(batches) for _ in range(cfg.k)]  # fetched outside both timings
        next_real = iter(reals).__next__  # train_step asks for its k batches one by one
        t0 = time.perf_counter()
        ours = train_step(G, D, opt_G, opt_D, next_real, noise_minigan, k=cfg.k,
                          gen_loss=cfg.gen_loss, real_target=cfg.real_target,
                          latent_dim=cfg.latent_dim)
        t1 = time.perf_counter()
        zs = [sample_noise(noise_torch, cfg.batch_size, cfg.latent_dim, cfg.dtype)
              for _ in range(cfg.k + 1)]
        theirs = twin.train_step(reals, zs, real_target=cfg.real_target)
        t2 = time.perf_counter()
        seconds["minigan"] += t1 - t0
        seconds["torch"] += t2 - t1

        # Every step is read for the plot: on the CPU float() costs nothing (no device sync).
        history["step"].append(step)
        for who, metrics in (("minigan", ours), ("torch", theirs)):
            history[f"{who}_d_loss"].append(float(metrics.d_loss))
            history[f"{who}_g_loss"].append(float(metrics.g_loss))
        if step % cfg.every == 0 or step == cfg.steps:
            row = {key: values[-1] for key, values in history.items()}
            print(f"{step:6d} | {row['minigan_d_loss']:14.8f} {row['torch_d_loss']:14.8f} "
                  f"{rel_diff(row['minigan_d_loss'], row['torch_d_loss']):9.1e} | "
                  f"{row['minigan_g_loss']:14.8f} {row['torch_g_loss']:14.8f} "
                  f"{rel_diff(row['minigan_g_loss'], row['torch_g_loss']):9.1e}")

    ms = {who: 1000 * s / cfg.steps for who, s in seconds.items()}
    print(f"\ntime per step ({cfg.dtype}, batch {cfg.batch_size}, k={cfg.k}): "
          f"minigan {ms['minigan']:.1f} ms, PyTorch {ms['torch']:.1f} ms")
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_plot(out, history)
    print(f"saved {out}")
    return history


if __name__ == "__main__":
    main()
