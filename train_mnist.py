"""Train the MLP GAN (or the DCGAN) on MNIST with minigan: the project's main job.

    python train_mnist.py                          # 20 epochs on the CPU, outputs in runs/<time>
    python train_mnist.py --model dcgan --epochs 5 # the convolutional GAN (minigan/conv.py)
    python train_mnist.py --recipe improved        # the better recipe (lessons/13_better_recipe.md)
    python train_mnist.py --device gpu             # the same on CuPy
    python train_mnist.py --epochs 1 --limit 6400  # a quick try on the first 6400 images
    python train_mnist.py --resume runs/<time> --epochs 30   # continue a run exactly

A run folder holds config.json, metrics.csv (every logged step), samples/epoch_NNN.png (a grid
from one fixed noise batch after every epoch), samples_final.png, samples.gif, curves.png
and checkpoint.npz (both networks, both optimizers, the random generator, the counters; with
--ema, also the average of G's weights that draws every sample);
with --eval-every N, also eval.csv and quality.png (minigan.evaluate's scores every N epochs).
Ctrl-C saves a checkpoint and exits; a NaN or inf loss stops the run and keeps the last good
checkpoint. Each epoch is a fresh shuffle; the last incomplete batch is dropped. Sample grids
come from G in evaluation mode (BatchNorm with its running statistics, as minigan.sample does),
so each image depends on its own noise vector only.

Every setting is checked (validate, RULES) before anything is written: bad input ends in one
message and exit status 2, and changes no file. A process training into a run folder holds a lock
on it, so a second one is refused.
"""

import argparse
import contextlib
import csv
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
from tqdm import tqdm

from minigan import backend, checkpoint, data, evaluate, pictures
from minigan.gan import (
    make_dcgan_discriminator, make_dcgan_generator, make_discriminator, make_generator,
    sample_noise, train_step,
)
from minigan.homework import capstone
from minigan.losses import GENERATOR_LOSSES
from minigan.optim import Adam
from minigan.tricks import EMA, IMPROVED, instance_noise_std, set_instance_noise

try:
    import fcntl  # POSIX file locks
except ImportError:  # Windows
    fcntl = None


@dataclass
class Config:
    """Every knob of a run, with the default recipe (the benchmarks and the PyTorch twin use it)."""

    device: str = "cpu"  # "cpu" (NumPy) or "gpu" (CuPy)
    model: str = "mlp"  # "mlp" or "dcgan" (convolutional; g_hidden and d_hidden do not apply)
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
    limit: int = 0  # train on the first N images only (0, or N >= 60,000: all)
    data_dir: str = ""  # where the MNIST files are ("" : search, see minigan/data.py)
    out: str = ""  # run folder ("" : runs/<timestamp>)
    log_every: int = 100  # steps between logged metrics (a host sync on the GPU)
    sample_every: int = 1  # epochs between sample grids
    homework: str = ""  # a homework folder: train on the learner's code (lessons/08_homework.md)
    eval_every: int = 0  # epochs between sample-quality scores (minigan.evaluate; 0: off)
    eval_samples: int = 10000  # samples each of those scores draws
    # The tricks of --recipe improved (minigan/tricks.py, lessons/13_better_recipe.md); all off
    # in the default recipe. The MLP's D takes all of them; the DCGAN takes ema and
    # instance_noise only.
    recipe: str = "default"  # "improved": the IMPROVED settings below, for those not given
    ema: float = 0.0  # decay of an average of G's weights that draws the samples (0: off)
    minibatch_std: int = 0  # 1: D sees the batch's feature standard deviation (Karras et al.)
    pack: int = 1  # D judges this many samples at once (PacGAN; 1: off)
    instance_noise: float = 0.0  # std of noise on D's inputs, annealed to 0 (0: off)
    d_dropout: float = 0.0  # dropout after each of D's hidden layers (0: off)


# ---- the allowed values of every setting, checked in one place: validate() ----------------


class RunError(Exception):
    """A problem with the run's inputs or state; the message says what to do."""


class ConfigError(RunError):
    """A setting outside its allowed values; the message names the flag, the value, the range."""


def integer(lo, hi=None):
    """A rule: an int (not a bool) with lo <= value (<= hi)."""
    allowed = f"an integer >= {lo}" if hi is None else f"an integer from {lo} to {hi}"
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v
            and (hi is None or v <= hi)), allowed


def number(lo, hi=None, lo_open=False):
    """A rule: a finite int or float with lo <= value < hi (lo < value if lo_open)."""
    def check(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        if isinstance(v, float) and not math.isfinite(v):  # NaN, inf
            return False
        return (lo < v if lo_open else lo <= v) and (hi is None or v < hi)
    if hi is None:
        return check, f"a number {'>' if lo_open else '>='} {lo}"
    return check, f"a number in {'(' if lo_open else '['}{lo}, {hi})"


def one_of(*choices):
    return (lambda v: isinstance(v, str) and v in choices), "one of " + ", ".join(choices)


MAX_WIDTH = 100_000  # a layer wider than this would not fit in memory anyway


def widths():
    """A rule: a non-empty tuple of layer widths."""
    ok = integer(1, MAX_WIDTH)[0]
    return (lambda v: isinstance(v, tuple) and len(v) > 0 and all(ok(w) for w in v)), (
        f"comma-separated layer widths, each an integer from 1 to {MAX_WIDTH}, like 256,512,1024")


def _path_problem(value, want_dir):
    """Why a path setting cannot be used, or None: not text, a NUL byte, a file in its way."""
    if not isinstance(value, str):
        return "not text"
    if not value:
        return None
    if "\0" in value:
        return "a NUL character in the name"
    try:
        path = Path(value).expanduser()
        if want_dir and not path.is_dir():
            return "no such folder"
        for p in (path, *path.parents):  # --out: the folder and the ones above it
            if p.exists():
                return None if p.is_dir() else f"{p} is a file, not a folder"
    except (OSError, ValueError) as e:  # a name too long
        return str(e)
    return None


def folder(want_dir):
    return (lambda v: _path_problem(v, want_dir) is None), (
        "an existing folder, or empty to search" if want_dir else
        "a folder name (created if missing), not a file, or empty for runs/<time>")


def homework_folder():
    """A rule: empty (minigan's own code) or a folder written by ``minigan.homework start``."""
    return (lambda v: v == "" or (_path_problem(v, want_dir=True) is None
                                  and capstone.is_homework(v))), (
        "a folder written by `python -m minigan.homework start`, or empty for minigan's code")


# One entry per Config field: (check(value) -> bool, the allowed values in words). A new
# setting adds its rule here; tests/test_cli_errors.py checks that every field has one.
RULES = {
    "device": one_of("cpu", "gpu"),
    "model": one_of("mlp", "dcgan"),
    "epochs": integer(1),
    "batch_size": integer(1),
    "lr_g": number(0, lo_open=True),
    "lr_d": number(0, lo_open=True),
    "beta1": number(0, 1),
    "beta2": number(0, 1),
    "latent_dim": integer(1, MAX_WIDTH),
    "g_hidden": widths(),
    "d_hidden": widths(),
    "slope": number(0, 1),
    "k": integer(1),
    "gen_loss": one_of(*sorted(GENERATOR_LOSSES)),
    "label_smoothing": number(0, 1),
    "seed": integer(0, 2**32 - 1),
    "dtype": one_of("float32", "float64"),
    "limit": integer(0),  # 0, or more than the 60,000 images there are: all of them
    "data_dir": folder(want_dir=True),
    "out": folder(want_dir=False),
    "log_every": integer(1),
    "sample_every": integer(1),
    "homework": homework_folder(),
    # --eval-every is off by default (0): each scoring of --eval-samples images takes about
    # half an epoch on a 2-core CPU (README, "Scoring a run").
    "eval_every": (integer(0)[0], "an integer >= 0: score the generator with minigan.evaluate "
                                  "every N epochs into eval.csv and quality.png; 0 is off, the "
                                  "default, as each scoring costs about half an epoch"),
    "eval_samples": (integer(5)[0], "an integer >= 5: samples each --eval-every scoring draws "
                                    "(10000 for figures you compare)"),
    "recipe": (one_of("default", "improved")[0],
               "default (the paper's and the PyTorch twin's) or improved (sets " +
               ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in IMPROVED.items()) +
               " where not given; lessons/13_better_recipe.md)"),
    "ema": ((lambda v: (type(v) in (int, float) and v == 0) or number(0, 1, lo_open=True)[0](v)),
            "0 (off) or a decay in (0, 1), like 0.999"),
    "minibatch_std": (integer(0, 1)[0], "0 or 1: 1 appends the batch's mean feature standard "
                                        "deviation to the last hidden layer of D (MLP only)"),
    "pack": (integer(1, 64)[0], "an integer from 1 to 64: samples D judges at once (PacGAN; "
                                "MLP only; it must divide --batch-size)"),
    "instance_noise": (number(0)[0], "a number >= 0: std of Gaussian noise added to D's inputs, "
                                     "annealed to 0 over the run"),
    "d_dropout": (number(0, 1)[0], "a number in [0, 1): dropout after every hidden layer of D "
                                   "(MLP only)"),
}


def flag(name):
    return "--" + name.replace("_", "-")


def show(value):
    """A setting's value as the user would type it (short, and safe for any value)."""
    if isinstance(value, str) and not value:
        return '""'
    try:
        if isinstance(value, tuple) and all(isinstance(v, int) for v in value):
            value = ",".join(map(str, value))
        text = repr(value) if isinstance(value, str) and not value.isprintable() else str(value)
    except ValueError:  # an int too long to print
        text = f"a {type(value).__name__} too long to print"
    return text if len(text) <= 80 else text[:77] + "..."


def validate(cfg, flags=None, config_file=None):
    """Raise ConfigError unless every setting of cfg is allowed (RULES).

    flags: the names given on the command line (default: all); the others came from
    config_file (a resumed run's config.json), and the message says so.
    """
    for f in fields(Config):
        check, allowed = RULES[f.name]
        value = getattr(cfg, f.name)
        if check(value):
            continue
        if flags is None or f.name in flags:
            raise ConfigError(
                f"{flag(f.name)} {show(value)}: not allowed; use {allowed} "
                f"(default: {show(f.default)})."
            )
        if f.name in RESUMABLE:  # e.g. a data folder that has moved since
            raise ConfigError(f"{config_file}: {f.name} is {show(value)}, but it must be "
                              f"{allowed}: pass {flag(f.name)} with a new value.")
        raise ConfigError(
            f"{config_file}: {f.name} is {show(value)}, but it must be {allowed}. The file is "
            "damaged: restore it from a copy (it must match checkpoint.npz), or start a new run."
        )
    return cfg


# Settings added after the first release (0.1.0): a run folder made before one existed has no
# entry for it in config.json, and resumes with its default (an MLP run, minigan's own code, no
# scoring), which is what that run did.
ADDED_SINCE_0_1 = ("model", "homework", "eval_every", "eval_samples", "recipe", "ema",
                   "minibatch_std", "pack", "instance_noise", "d_dropout")
# Settings of D that --model dcgan does not take (its D is convolutional: minigan/gan.py).
MLP_ONLY = ("minibatch_std", "pack", "d_dropout")

# What a checkpoint's arrays depend on: these cannot change when resuming.
ARCHITECTURE = ("model", "latent_dim", "g_hidden", "d_hidden", "slope", "dtype", "ema",
                "minibatch_std", "pack")
# What may change when resuming; everything else must match the run's config.json.
RESUMABLE = ("epochs", "device", "log_every", "sample_every", "data_dir", "homework",
             "eval_every", "eval_samples")


def layer_widths(text):
    """Parse "256,512,1024" into (256, 512, 1024)."""
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of widths: use integers separated by commas, like 256,512,1024"
        ) from None


def parse_args(argv=None):
    """Parse flags; returns (dict of only the flags given, resume folder or None)."""
    p = argparse.ArgumentParser(prog="train_mnist.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    kinds = {tuple: layer_widths}
    for f in fields(Config):
        kw = {"default": argparse.SUPPRESS, "type": kinds.get(f.type, f.type),
              "help": f"{RULES[f.name][1]} (default: {show(f.default)})"}
        p.add_argument(flag(f.name), **kw)
    p.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue the run in RUN_DIR from its checkpoint")
    ns = vars(p.parse_args(argv))
    resume = ns.pop("resume")
    return ns, resume


def make_config(given, resume):
    """The run's Config and folder: new from the flags, or the resumed run's with overrides.
    Reads, checks and writes nothing else; raises ConfigError or RunError."""
    if resume is None:
        if given.get("recipe") == "improved":
            given = {**IMPROVED, **given}  # flags given override the recipe's settings
        cfg = validate(Config(**given), flags=given)
        check_combination(cfg)
        if cfg.homework:
            capstone.load(cfg.homework)  # CapstoneError if the learner's code does not import
        run_dir = Path(cfg.out or time.strftime("runs/%Y%m%d-%H%M%S"))
        refuse_existing_run(run_dir)
        cfg.out = str(run_dir)
        return cfg, run_dir
    run_dir = Path(resume)
    if not (run_dir / "checkpoint.npz").is_file():
        raise RunError(f"--resume {resume}: no run there (expected {run_dir}/config.json and "
                       f"{run_dir}/checkpoint.npz). Check the path; runs live in runs/ by default.")
    saved = checkpoint.read_config(run_dir)
    for name in ADDED_SINCE_0_1:  # a run from before the setting existed had its default
        saved.setdefault(name, Config.__dataclass_fields__[name].default)
    path = run_dir / "config.json"
    names = [f.name for f in fields(Config)]
    missing = [n for n in names if n not in saved]
    unknown = [n for n in saved if n not in names]
    if missing or unknown:
        raise RunError(
            f"{path}: " + "; ".join(filter(None, [
                missing and "settings missing: " + ", ".join(missing),
                unknown and "unknown settings: " + ", ".join(map(show, unknown))])) +
            ". The file is damaged or from another version of minigan: restore it from a "
            "copy, or start a new run."
        )
    for name in ("g_hidden", "d_hidden"):
        if isinstance(saved[name], list):
            saved[name] = tuple(saved[name])
    for name, value in given.items():
        if name == "out" and value != saved[name]:
            raise RunError(f"--resume {resume}: a resumed run stays in its folder; drop "
                           f"--out {show(value)}")
        if name not in RESUMABLE and value != saved[name]:
            what = "the architecture" if name in ARCHITECTURE else "the training recipe"
            raise RunError(
                f"--resume {resume}: {flag(name)} {show(value)} differs from the run's "
                f"{show(saved[name])} ({what} of a run cannot change). Drop the flag, or start "
                "a new run."
            )
    saved.update(given)
    return validate(Config(**saved), flags=given, config_file=path), run_dir


def check_combination(cfg):
    """Raise ConfigError for settings that are each allowed but do not go together."""
    changed = [f.name for f in fields(Config) if getattr(cfg, f.name) != f.default]
    tricks = [name for name in changed if name in ("recipe", "ema", *MLP_ONLY, "instance_noise")]
    if cfg.homework:
        if cfg.model != "mlp":  # the homework writes the MLP's layers
            raise ConfigError(f"--homework trains the MLP GAN only; drop --model "
                              f"{show(cfg.model)} or --homework")
        if tricks:  # the learner's make_discriminator has the default recipe's arguments
            raise ConfigError(f"--homework trains the default recipe; drop --homework or "
                              f"{flag(tricks[0])}")
    if cfg.model == "dcgan":
        if cfg.recipe == "improved":
            raise ConfigError(
                "--recipe improved is the MLP's (its --pack and --minibatch-std change the MLP's "
                "D, and benchmarks/ablate_recipe.py measured it on the MLP); with --model dcgan, "
                "pass the tricks that fit its D yourself: --ema and --label-smoothing, "
                "--instance-noise")
        mlp_only = [name for name in changed if name in MLP_ONLY]
        if mlp_only:
            raise ConfigError(f"{flag(mlp_only[0])} applies to the MLP's D only; --model dcgan "
                              f"takes --ema and --instance-noise (drop {flag(mlp_only[0])})")
    if cfg.batch_size % cfg.pack:
        raise ConfigError(f"--pack {cfg.pack} needs a --batch-size divisible by it, not "
                          f"{cfg.batch_size}: D judges {cfg.pack} samples at once")
    if cfg.minibatch_std and cfg.batch_size // cfg.pack < 2:
        raise ConfigError(f"--minibatch-std 1 needs at least 2 inputs of D per batch; "
                          f"--batch-size {cfg.batch_size} with --pack {cfg.pack} gives "
                          f"{cfg.batch_size // cfg.pack}")


def refuse_existing_run(run_dir):
    """A new run never writes into another run's folder."""
    if (run_dir / "checkpoint.npz").exists():
        raise RunError(f"--out {run_dir} already holds a run; continue it with --resume "
                       f"{run_dir} or choose another --out")
    for name in ("config.json", "metrics.csv"):
        if (run_dir / name).exists():
            raise RunError(
                f"--out {run_dir} holds a run that stopped before its first checkpoint "
                f"({name} but no checkpoint.npz), so it cannot be resumed: delete that folder "
                "or choose another --out"
            )


@contextlib.contextmanager
def run_lock(run_dir):
    """Hold an exclusive lock on the run folder while training, so that a second process
    cannot train into it. The kernel drops the lock when the process ends, even if killed."""
    if fcntl is None:  # Windows: no flock
        print(f"warning: cannot lock {run_dir} on this platform; never train twice into it "
              "at the same time", file=sys.stderr)
        yield
        return
    fd = os.open(run_dir, os.O_RDONLY)  # the folder itself: nothing is written to lock it
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunError(
                f"another process is training into {run_dir} (it holds the folder's lock). "
                "Wait for it to finish or stop it, or choose another --out."
            ) from None
        except OSError as e:  # a file system without locks (some network shares)
            print(f"warning: cannot lock {run_dir} ({e}); never train twice into it at the "
                  "same time", file=sys.stderr)
        yield
    finally:
        os.close(fd)  # releases the lock


def write_text_atomic(path, text):
    """Replace a small text file in one step: a temporary file beside it, then a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
        make_G, make_D, adam, self.train_step = make_generator, make_discriminator, Adam, None
        if cfg.homework:  # the learner's layers, losses, optimizers (lessons/08_homework.md)
            hw = capstone.load(cfg.homework)
            make_G, make_D, adam, self.train_step = (hw.make_generator, hw.make_discriminator,
                                                     hw.Adam, hw.train_step)
        if cfg.model == "dcgan":  # convolutions: minigan/conv.py (g_hidden, d_hidden unused)
            self.G = make_dcgan_generator(cfg.latent_dim, rng=rng, dtype=cfg.dtype)
            self.D = make_dcgan_discriminator(slope=cfg.slope, rng=rng, dtype=cfg.dtype,
                                              instance_noise=bool(cfg.instance_noise))
        else:
            self.G = make_G(cfg.latent_dim, cfg.g_hidden, 784, cfg.slope, rng, cfg.dtype)
            # D's tricks (the learner's make_discriminator, with --homework, takes none)
            tricks = {} if cfg.homework else dict(
                pack=cfg.pack, minibatch_std=bool(cfg.minibatch_std), dropout=cfg.d_dropout,
                instance_noise=bool(cfg.instance_noise))
            self.D = make_D(784, cfg.d_hidden, cfg.slope, rng, cfg.dtype, **tricks)
        # --ema: an average of G's weights draws every sample (grids, scores, minigan.sample)
        self.ema = EMA(self.G, cfg.ema) if cfg.ema else None
        self.sampler = self.ema.net if self.ema else self.G
        betas = (cfg.beta1, cfg.beta2)
        self.opt_G = adam(self.G.parameters(), lr=cfg.lr_g, betas=betas)
        self.opt_D = adam(self.D.parameters(), lr=cfg.lr_d, betas=betas)
        # One fixed noise batch, from its own generator, so epoch grids are comparable.
        self.fixed_z = sample_noise(backend.default_rng(cfg.seed + 1), 64, cfg.latent_dim,
                                    cfg.dtype)
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.perm = None  # this epoch's order, None until drawn
        self.elapsed = 0.0  # training seconds, over every session of this run
        # --instance-noise anneals to 0 over the steps of --epochs as the run first planned
        # them: resuming with a larger --epochs does not bring the noise back
        self.noise_steps = None
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
        if self.ema:
            arrays.update(checkpoint.network_arrays("G_ema", self.ema.net))
        if self.perm is not None:
            arrays["perm"] = self.perm
        meta = {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
                "global_step": self.global_step, "elapsed": self.elapsed,
                "opt_G_t": self.opt_G.t, "opt_D_t": self.opt_D.t,
                "ema_t": self.ema.t if self.ema else 0, "noise_steps": self.noise_steps,
                "rng": checkpoint.rng_state(self.rng), "device": backend.device,
                "config": asdict(self.cfg)}
        checkpoint.save(self.checkpoint_path(), arrays, meta)

    def load(self):
        path = self.checkpoint_path()
        arrays, meta = checkpoint.load(path)
        try:
            self._restore(arrays, meta)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise checkpoint.CheckpointError(
                f"checkpoint {path} is damaged or not from train_mnist.py ({type(e).__name__}: "
                f"{e}). Resume from a copy, or start a new run."
            ) from None

    def _restore(self, arrays, meta):
        path = self.checkpoint_path()
        checkpoint.restore_network("G", self.G, arrays, path)
        checkpoint.restore_network("D", self.D, arrays, path)
        checkpoint.restore_optimizer("opt_G", self.opt_G, arrays, meta["opt_G_t"])
        checkpoint.restore_optimizer("opt_D", self.opt_D, arrays, meta["opt_D_t"])
        if self.ema:
            checkpoint.restore_network("G_ema", self.ema.net, arrays, path)
            self.ema.t = int(meta["ema_t"])
        self.fixed_z = backend.to_device(arrays["fixed_z"])
        self.perm = backend.to_device(arrays["perm"]) if "perm" in arrays else None
        self.epoch, self.step_in_epoch = int(meta["epoch"]), int(meta["step_in_epoch"])
        self.global_step, self.elapsed = int(meta["global_step"]), float(meta["elapsed"])
        self.noise_steps = meta.get("noise_steps")  # None in checkpoints from before the noise
        if meta["rng"] is not None and backend.device == meta["device"] == "cpu":
            checkpoint.set_rng_state(self.rng, meta["rng"])  # exact continuation
        else:
            # CuPy's generator state cannot be saved: reseed from (seed, step), which is
            # reproducible but not the stream an uninterrupted run would have drawn.
            mixed = np.random.SeedSequence([self.cfg.seed, self.global_step]).generate_state(1)
            self.rng = backend.default_rng(int(mixed[0]))  # an int seed: CuPy takes no lists

    def train_one_step(self, next_real):
        """One training step of the run's recipe, then the counters; returns StepMetrics.

        The instance noise of this step, Algorithm 1's k D steps and one G step (the learner's
        train_step with --homework), then the update of G's average."""
        cfg = self.cfg
        if cfg.instance_noise:
            set_instance_noise(self.D, instance_noise_std(cfg.instance_noise, self.global_step,
                                                          self.noise_steps))
        step = self.train_step or train_step
        metrics = step(self.G, self.D, self.opt_G, self.opt_D, next_real, self.rng, k=cfg.k,
                       gen_loss=cfg.gen_loss, real_target=1.0 - cfg.label_smoothing,
                       latent_dim=cfg.latent_dim)
        if self.ema:
            self.ema.update()
        self.step_in_epoch += 1
        self.global_step += 1
        return metrics

    def save_samples(self):
        """The fixed-noise grid of this epoch, the GIF of all of them, the final grid."""
        self.sampler.eval()  # BatchNorm with running statistics: as minigan.sample draws them
        pixels = data.to_pixels(backend.to_host(self.sampler.forward(self.fixed_z)))  # -> host
        self.G.train()  # the EMA's network stays in evaluation mode
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


def drop_rows_after(path, column, last):
    """Keep only the rows of a CSV log whose column is <= last (the checkpoint's step or epoch).

    A run that stopped between two checkpoints (killed, or stopped by a NaN) had logged steps
    that its resumed run trains and logs again; without this they would appear twice. A log
    with nothing to drop is not rewritten."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        lines = f.read().splitlines(keepends=True)
    if not lines:
        return
    index = next(csv.reader(lines[:1])).index(column)
    kept = [line for line in lines[1:] if float(next(csv.reader([line]))[index]) <= last]
    if len(kept) < len(lines) - 1:
        write_text_atomic(path, "".join(lines[:1] + kept))


def read_rows(run_dir):
    with open(run_dir / "metrics.csv", newline="") as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]


def train(cfg, run_dir, resume=False):
    """Train (or continue) the run; returns its folder. Raises RunError, DataError,
    DeviceError or CheckpointError with a message that says what to do.

    Everything that can fail on bad input (device, data, memory, the lock, the checkpoint) is
    done before the first write to the run folder, so a failed start changes nothing there.
    """
    backend.use(cfg.device)
    images, _ = data.load_mnist("train", data_dir=cfg.data_dir or None)
    if cfg.limit:
        images = images[:cfg.limit]
    X = backend.to_device(data.to_model_input(images, cfg.dtype))  # host -> device, once
    n, bs, k = X.shape[0], cfg.batch_size, cfg.k
    steps_per_epoch = (n // bs) // k
    if steps_per_epoch == 0:
        raise RunError(f"{n} images cannot fill one step of --k {k} batches of --batch-size "
                       f"{bs}: raise --limit or lower --batch-size or --k")
    if cfg.homework and not resume:  # the capstone: 50 steps beside minigan's own, first
        print(f"replaying 50 steps of {cfg.homework} beside minigan's own, in float64 ...")
        report = capstone.replay_config(cfg, X)
        print(report)
        if report.error:
            raise RunError(f"--homework {cfg.homework}: {report}")
    if not resume:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunError(f"--out {run_dir}: cannot create the run folder ({e}). Check the "
                           "path and its permissions, or choose another --out.") from None
    with run_lock(run_dir):
        if not resume:
            refuse_existing_run(run_dir)  # again: another process may have just finished
        try:
            run = Run(cfg, run_dir, resume)
        except MemoryError:
            raise RunError("the networks do not fit in memory: choose smaller --latent-dim, "
                           "--g-hidden or --d-hidden") from None
        if run.epoch >= cfg.epochs:
            raise RunError(f"--resume {run_dir}: the run has already trained {run.epoch} "
                           f"epoch(s), and --epochs {cfg.epochs} asks for no more. To continue "
                           f"it, pass a larger --epochs, like --epochs {run.epoch + 10}.")
        try:
            write_text_atomic(run_dir / "config.json", json.dumps(asdict(cfg), indent=2) + "\n")
            if resume:  # rows logged after the checkpoint are trained, and logged, again
                drop_rows_after(run_dir / "metrics.csv", "step", run.global_step)
                drop_rows_after(run_dir / "eval.csv", "epoch", run.epoch)
            return train_loop(cfg, run, X, steps_per_epoch)
        except checkpoint.CheckpointError as e:  # checkpoint.save failed: disk full?
            if not run.checkpoint_path().exists():
                raise
            raise checkpoint.CheckpointError(f"{e} Then continue with --resume {run_dir}.") \
                from None
        except OSError as e:
            raise RunError(
                f"cannot write in {run_dir} ({e}). The last checkpoint, if any, is intact at "
                f"{run.checkpoint_path()}. Free some disk space or check the folder's "
                f"permissions, then continue with --resume {run_dir}."
            ) from None


def train_loop(cfg, run, X, steps_per_epoch):
    """The epochs and steps of train(), from the run's counters to cfg.epochs."""
    run_dir, n, bs, k = run.dir, X.shape[0], cfg.batch_size, cfg.k
    print(f"minigan: training the {'DCGAN' if cfg.model == 'dcgan' else 'MLP GAN'} on MNIST")
    for name, v in asdict(cfg).items():
        print(f"  {name:16s} {v}")
    if run.global_step:
        print(f"resuming {run_dir} at epoch {run.epoch + 1}, step {run.global_step}")
    if run.noise_steps is None:
        run.noise_steps = cfg.epochs * steps_per_epoch  # instance noise reaches 0 here
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
                metrics = run.train_one_step(next_real)
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
                run.sampler.eval()  # as the grids and minigan.sample draw
                evaluate.log_quality(run_dir, run.sampler, cfg.latent_dim, cfg.dtype,
                                     cfg.eval_samples, run.epoch, run.global_step)
                run.G.train()
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
    cfg, run_dir = make_config(given, resume)  # every setting checked before anything is written
    return train(cfg, run_dir, resume=resume is not None)


def cli(argv=None):
    """Run main and turn expected failures into one clear message and exit status 2."""
    try:
        main(argv)
    except (RunError, data.DataError, backend.DeviceError, checkpoint.CheckpointError,
            capstone.CapstoneError) as e:
        print(f"train_mnist.py: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C, or one before training started
        print("\ntrain_mnist.py: interrupted; the last checkpoint, if any, is intact",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(cli())
