"""Train the MLP GAN on MNIST with minigan: the project's main job.

    python train_mnist.py                          # 20 epochs on the CPU, outputs in runs/<time>
    python train_mnist.py --device gpu             # the same on CuPy
    python train_mnist.py --epochs 1 --limit 6400  # a quick try on the first 6400 images
    python train_mnist.py --resume runs/<time> --epochs 30   # continue a run exactly

A run folder holds config.json, metrics.csv (every logged step), samples/epoch_NNN.png (a grid
from one fixed noise batch after every epoch), samples_final.png, samples.gif, curves.png
and checkpoint.npz (both networks, both optimizers, the random generator, the counters);
with --eval-every N, also eval.csv and quality.png (minigan.evaluate's scores every N epochs).
Ctrl-C saves a checkpoint and exits; a NaN or inf loss stops the run and keeps the last good
checkpoint. Each epoch is a fresh shuffle; the last incomplete batch is dropped.
"""

import argparse
import csv
import json
import math
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
from tqdm import tqdm

from minigan import backend, checkpoint, data, evaluate, pictures
from minigan.gan import make_discriminator, make_generator, sample_noise, train_step
from minigan.losses import GENERATOR_LOSSES
from minigan.optim import Adam


@dataclass
class Config:
    """Every knob of a run, with the default recipe (the benchmarks and the PyTorch twin use it)."""

    device: str = "cpu"  # "cpu" (NumPy) or "gpu" (CuPy)
    epochs: int = 20
    batch_size: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    latent_dim: int = 100
    g_hidden: tuple = (256, 512, 1024)
    d_hidden: tuple = (1024, 512, 256)
    slope: float = 0.2  # LeakyReLU negative slope
    k: int = 1  # discriminator steps per generator step
    gen_loss: str = "nonsaturating"  # or "minimax"
    label_smoothing: float = 0.0  # one-sided: real target = 1 - label_smoothing
    seed: int = 0
    dtype: str = "float32"
    limit: int = 0  # train on the first N images only (0: all 60,000)
    data_dir: str = ""  # where the MNIST files are ("" : search, see minigan/data.py)
    out: str = ""  # run folder ("" : runs/<timestamp>)
    log_every: int = 100  # steps between logged metrics (a host sync on the GPU)
    sample_every: int = 1  # epochs between sample grids
    eval_every: int = 0  # epochs between sample-quality scores (minigan.evaluate; 0: off)
    eval_samples: int = 10000  # samples each of those scores draws


# What a checkpoint's arrays depend on: these cannot change when resuming.
ARCHITECTURE = ("latent_dim", "g_hidden", "d_hidden", "slope", "dtype")
# What may change when resuming; everything else must match the run's config.json.
RESUMABLE = ("epochs", "device", "log_every", "sample_every", "data_dir", "eval_every",
             "eval_samples")


class RunError(Exception):
    """A problem with the run's inputs or state; the message says what to do."""


def parse_args(argv=None):
    """Parse flags; returns (dict of only the flags given, resume folder or None)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    hidden = lambda s: tuple(int(v) for v in s.split(","))  # noqa: E731  "256,512,1024"
    kinds = {tuple: hidden}
    for f in fields(Config):
        flag = "--" + f.name.replace("_", "-")
        kw = {"default": argparse.SUPPRESS, "type": kinds.get(f.type, f.type),
              "help": f"(default: {f.default})"}
        if f.name == "device":
            kw["choices"] = ["cpu", "gpu"]
        if f.name == "gen_loss":
            kw["choices"] = sorted(GENERATOR_LOSSES)
        if f.name == "dtype":
            kw["choices"] = ["float32", "float64"]
        if f.name == "eval_every":
            kw["help"] = ("score the generator every N epochs with minigan.evaluate into "
                          "eval.csv and quality.png; off by default (0): each scoring of "
                          "--eval-samples images takes about half an epoch on a 2-core CPU")
        p.add_argument(flag, **kw)
    p.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue the run in RUN_DIR from its checkpoint")
    ns = vars(p.parse_args(argv))
    resume = ns.pop("resume")
    return ns, resume


def make_config(given, resume):
    """The run's Config and folder: new from the flags, or the resumed run's with overrides."""
    if resume is None:
        cfg = Config(**given)
        run_dir = Path(cfg.out or time.strftime("runs/%Y%m%d-%H%M%S"))
        if (run_dir / "checkpoint.npz").exists():
            raise RunError(f"{run_dir} already holds a run; continue it with --resume {run_dir} "
                           "or choose another --out")
        cfg.out = str(run_dir)
        return cfg, run_dir
    run_dir = Path(resume)
    if not (run_dir / "config.json").is_file() or not (run_dir / "checkpoint.npz").is_file():
        raise RunError(f"--resume {resume}: no run there (expected {run_dir}/config.json and "
                       f"{run_dir}/checkpoint.npz). Check the path; runs live in runs/ by default.")
    saved = json.loads((run_dir / "config.json").read_text())
    saved["g_hidden"], saved["d_hidden"] = tuple(saved["g_hidden"]), tuple(saved["d_hidden"])
    for name, value in given.items():
        if name not in RESUMABLE and value != saved[name]:
            what = "the architecture" if name in ARCHITECTURE else "the training recipe"
            raise RunError(
                f"--resume {resume}: --{name.replace('_', '-')} {value} differs from the run's "
                f"{saved[name]} ({what} of a run cannot change). Drop the flag, or start a "
                "new run."
            )
    saved.update(given)
    return Config(**saved), run_dir


class InterruptFlag:
    """Turns the first Ctrl-C into a request to stop after the current step (so the networks
    are never saved half-updated); a second Ctrl-C interrupts at once."""

    def __init__(self):
        self.requested = False

    def __enter__(self):
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, self.previous)  # a second Ctrl-C raises KeyboardInterrupt

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def epoch_permutation(rng, n):
    """A uniformly random order of n items from the device generator (the same code on both
    devices: argsort of uniform draws)."""
    return backend.xp.argsort(rng.random(n))


def read_metrics(metrics, step, epoch):
    """Copy one step's metrics to the host as floats (a GPU sync: log steps only)."""
    row = {"step": step, "epoch": epoch}
    for name in ("d_loss", "g_loss", "d_real", "d_fake"):
        row[name] = float(getattr(metrics, name))
    return row


class Run:
    """The state of one training run: networks, optimizers, generator, counters, outputs."""

    def __init__(self, cfg, run_dir, resume):
        self.cfg, self.dir = cfg, run_dir
        rng = backend.default_rng(cfg.seed)
        self.rng = rng
        self.G = make_generator(cfg.latent_dim, cfg.g_hidden, 784, cfg.slope, rng, cfg.dtype)
        self.D = make_discriminator(784, cfg.d_hidden, cfg.slope, rng, cfg.dtype)
        betas = (cfg.beta1, cfg.beta2)
        self.opt_G = Adam(self.G.parameters(), lr=cfg.lr_g, betas=betas)
        self.opt_D = Adam(self.D.parameters(), lr=cfg.lr_d, betas=betas)
        # One fixed noise batch, from its own generator, so epoch grids are comparable.
        self.fixed_z = sample_noise(backend.default_rng(cfg.seed + 1), 64, cfg.latent_dim,
                                    cfg.dtype)
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.perm = None  # this epoch's order, None until drawn
        self.elapsed = 0.0  # training seconds, over every session of this run
        if resume:
            self.load()

    def checkpoint_path(self):
        return self.dir / "checkpoint.npz"

    def save(self):
        """Write checkpoint.npz atomically, refusing to save non-finite parameters."""
        xp = backend.xp
        for name, net in (("G", self.G), ("D", self.D)):
            if not all(bool(xp.isfinite(p).all()) for p in net.params.values()):
                raise RunError(f"{name}'s parameters are not finite; not overwriting the last "
                               f"good checkpoint {self.checkpoint_path()}")
        arrays = {**checkpoint.network_arrays("G", self.G),
                  **checkpoint.network_arrays("D", self.D),
                  **checkpoint.optimizer_arrays("opt_G", self.opt_G),
                  **checkpoint.optimizer_arrays("opt_D", self.opt_D),
                  "fixed_z": self.fixed_z}
        if self.perm is not None:
            arrays["perm"] = self.perm
        meta = {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
                "global_step": self.global_step, "elapsed": self.elapsed,
                "opt_G_t": self.opt_G.t, "opt_D_t": self.opt_D.t,
                "rng": checkpoint.rng_state(self.rng), "device": backend.device,
                "config": asdict(self.cfg)}
        checkpoint.save(self.checkpoint_path(), arrays, meta)

    def load(self):
        path = self.checkpoint_path()
        arrays, meta = checkpoint.load(path)
        checkpoint.restore_network("G", self.G, arrays, path)
        checkpoint.restore_network("D", self.D, arrays, path)
        checkpoint.restore_optimizer("opt_G", self.opt_G, arrays, meta["opt_G_t"])
        checkpoint.restore_optimizer("opt_D", self.opt_D, arrays, meta["opt_D_t"])
        self.fixed_z = backend.to_device(arrays["fixed_z"])
        self.perm = backend.to_device(arrays["perm"]) if "perm" in arrays else None
        self.epoch, self.step_in_epoch = meta["epoch"], meta["step_in_epoch"]
        self.global_step, self.elapsed = meta["global_step"], meta["elapsed"]
        if meta["rng"] is not None and backend.device == meta["device"] == "cpu":
            checkpoint.set_rng_state(self.rng, meta["rng"])  # exact continuation
        else:
            # CuPy's generator state cannot be saved: reseed from (seed, step), which is
            # reproducible but not the stream an uninterrupted run would have drawn.
            mixed = np.random.SeedSequence([self.cfg.seed, self.global_step]).generate_state(1)
            self.rng = backend.default_rng(int(mixed[0]))  # an int seed: CuPy takes no lists

    def save_samples(self):
        """The fixed-noise grid of this epoch, the GIF of all of them, the final grid."""
        pixels = data.to_pixels(backend.to_host(self.G.forward(self.fixed_z)))  # device -> host
        folder = self.dir / "samples"
        folder.mkdir(exist_ok=True)
        pictures.save_grid(folder / f"epoch_{self.epoch:03d}.png", pixels, nrow=8)
        pictures.save_grid(self.dir / "samples_final.png", pixels, nrow=8)
        pictures.save_gif(self.dir / "samples.gif", sorted(folder.glob("epoch_*.png")))


def log_row(run_dir, row):
    path = run_dir / "metrics.csv"
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def read_rows(run_dir):
    with open(run_dir / "metrics.csv", newline="") as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]


def train(cfg, run_dir, resume=False):
    """Train (or continue) the run; returns its folder. Raises RunError, DataError,
    DeviceError or CheckpointError with a message that says what to do."""
    backend.use(cfg.device)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    print("minigan: training the MLP GAN on MNIST")
    for k, v in asdict(cfg).items():
        print(f"  {k:16s} {v}")

    images, _ = data.load_mnist("train", data_dir=cfg.data_dir or None)
    if cfg.limit:
        images = images[:cfg.limit]
    X = backend.to_device(data.to_model_input(images, cfg.dtype))  # host -> device, once
    n, bs, k = X.shape[0], cfg.batch_size, cfg.k
    steps_per_epoch = (n // bs) // k
    if steps_per_epoch == 0:
        raise RunError(f"{n} images cannot fill one step of k={k} batches of {bs}: raise "
                       "--limit or lower --batch-size")

    run = Run(cfg, run_dir, resume)
    if resume:
        print(f"resuming {run_dir} at epoch {run.epoch + 1}, step {run.global_step}")
    real_target = 1.0 - cfg.label_smoothing
    start_step = run.global_step
    session_start = start_time = time.perf_counter()
    with InterruptFlag() as interrupt:
        while run.epoch < cfg.epochs:
            if run.perm is None:
                run.perm = epoch_permutation(run.rng, n)
            cursor = run.step_in_epoch * k  # batches of this epoch used so far

            def next_real():
                nonlocal cursor
                batch = X[run.perm[cursor * bs:(cursor + 1) * bs]]  # (bs, 784)
                cursor += 1
                return batch

            bar = tqdm(total=steps_per_epoch, initial=run.step_in_epoch, unit="step",
                       desc=f"epoch {run.epoch + 1}/{cfg.epochs}", mininterval=1.0)
            while run.step_in_epoch < steps_per_epoch:
                metrics = train_step(run.G, run.D, run.opt_G, run.opt_D, next_real, run.rng,
                                     k=k, gen_loss=cfg.gen_loss, real_target=real_target,
                                     latent_dim=cfg.latent_dim)
                run.step_in_epoch += 1
                run.global_step += 1
                bar.update(1)
                last = run.step_in_epoch == steps_per_epoch
                if run.global_step % cfg.log_every == 0 or last or interrupt.requested:
                    row = read_metrics(metrics, run.global_step, run.epoch + 1)  # host sync
                    if not all(math.isfinite(row[m]) for m in ("d_loss", "g_loss")):
                        bar.close()
                        raise RunError(
                            f"the loss became {row['d_loss']} (D) / {row['g_loss']} (G) by step "
                            f"{run.global_step}: training diverged. The last good checkpoint "
                            f"is kept at {run.checkpoint_path()}. Try a lower learning rate "
                            "(--lr-g/--lr-d) or label smoothing (--label-smoothing 0.1)."
                        )
                    log_row(run_dir, row)
                    bar.set_postfix(D=f"{row['d_loss']:.3f}", G=f"{row['g_loss']:.3f}",
                                    Dx=f"{row['d_real']:.2f}", DGz=f"{row['d_fake']:.2f}")
                if interrupt.requested:
                    bar.close()
                    run.elapsed += time.perf_counter() - start_time
                    run.save()
                    print(f"\ninterrupted: checkpoint saved at step {run.global_step} in "
                          f"{run.checkpoint_path()}\ncontinue with: python train_mnist.py "
                          f"--resume {run_dir}")
                    return run_dir
            bar.close()
            run.epoch += 1
            run.step_in_epoch, run.perm = 0, None
            if run.epoch % cfg.sample_every == 0 or run.epoch == cfg.epochs:
                run.save_samples()
            if cfg.eval_every and (run.epoch % cfg.eval_every == 0 or run.epoch == cfg.epochs):
                # eval.csv and quality.png; its own seeded noise, so training's stream is untouched
                evaluate.log_quality(run_dir, run.G, cfg.latent_dim, cfg.dtype,
                                     cfg.eval_samples, run.epoch, run.global_step)
            pictures.save_curves(run_dir / "curves.png", read_rows(run_dir))
            run.elapsed += time.perf_counter() - start_time
            start_time = time.perf_counter()
            run.save()

    seconds = time.perf_counter() - session_start
    images = (run.global_step - start_step) * k * bs
    print(f"done: {run.epoch} epochs, {run.global_step} steps; this session {seconds:.1f} s, "
          f"{images / max(seconds, 1e-9):.0f} real images/s (sampling and saving included); "
          f"{run.elapsed:.1f} s of training in the whole run")
    print(f"outputs in {run_dir}/: samples_final.png, samples.gif, curves.png, metrics.csv, "
          "checkpoint.npz")
    return run_dir


def main(argv=None):
    given, resume = parse_args(argv)
    cfg, run_dir = make_config(given, resume)
    return train(cfg, run_dir, resume=resume is not None)


def cli(argv=None):
    """Run main and turn expected failures into one clear message and exit status 2."""
    try:
        main(argv)
    except (RunError, data.DataError, backend.DeviceError, checkpoint.CheckpointError) as e:
        print(f"train_mnist.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
