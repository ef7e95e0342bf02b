"""Every command's settings: the Config of a training run, the allowed value of each setting,
the command-line flags made from them, and the merge of a resumed run's config.json with new
flags. train_mnist.py, minigan.toy, minigan.sample, minigan.evaluate and the PyTorch twin all
check their settings here (the 2-D lab's own are in minigan/toy_settings.py), so a bad value
gets the same kind of message everywhere:

    train_mnist.py: error: --batch-size 0: not allowed; use an integer >= 1 (default: 64).

A rule is a pair (check(value) -> bool, the allowed values in words), made with the vocabulary
of minigan/rules.py. Every setting is checked before anything is written; a failure raises
ConfigError, which the commands print as one line and exit with status 2.
"""

import argparse
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from minigan import checkpoint, data, models, rundir
from minigan.losses import GENERATOR_LOSSES
from minigan.rules import (  # noqa: F401  (re-exported: every command checks through settings)
    MAX_SAMPLES, MAX_WIDTH, PATH_FLAGS, SEED, ConfigError, Parser, check, check_fits_in_memory,
    explained, flag, folder, integer, layer_widths, number, one_of, path_arg, path_ok, show, typed,
    widths)
from minigan.tricks import IMPROVED

GAME_LOSSES = ("bce", "lsgan", "hinge", "wgan")  # minigan/gan.py, D_LOSSES
GAME = ("loss", "r1", "gp", "clip")  # the game's settings that gan.train_step takes
CONDITIONAL = ("concat", "projection", "acgan")  # minigan/conditional.py
# What a conditional D does not take: the penalties (not derived through D(x, y)). D's tricks
# meet the label as minigan/conditional.py says (the DCGAN's: instance noise, as unconditional).
NOT_CONDITIONAL = ("r1", "gp")
# The named recipes (--recipe): each sets these flags where they are not given (with_recipe).
# improved: the tricks that benchmarks/ablate_recipe.py measured best (lessons/13_better_recipe.md).
# fast: the same with batches of 128 (1.5 times the images a second of batches of 64 on a 2-core
# CPU), learning rates 5e-4, and networks of half the default widths (2.4 times the images a
# second again, for nearly the same Fréchet distance after each epoch in the pilots): the
# quickest to a Fréchet distance of 15 (docs/time_to_quality/fast.md). The default recipe is the
# 2014 paper's and the PyTorch twin's.
RECIPES = {"improved": IMPROVED,
           "fast": {**IMPROVED, "batch_size": 128, "lr_g": 5e-4, "lr_d": 5e-4,
                    "g_hidden": (128, 256, 512), "d_hidden": (512, 256, 128)}}


def recipe_settings(name):
    """What a recipe sets, as flags: "sets --pack 2, ...", or "improved's, and --batch-size 128,
    ..." for a recipe that sets everything an earlier one does (the message stays short)."""
    sets = RECIPES[name]
    base = next((b for b in RECIPES if b != name and RECIPES[b].items() <= sets.items()), None)
    rest = {k: v for k, v in sets.items() if base is None or k not in RECIPES[base]}
    listed = ", ".join(f"{flag(k)} {show(v)}" for k, v in rest.items())
    return f"{base}'s, and {listed}" if base else f"sets {listed}"


# --data-dir: the folder is checked for MNIST's files here, so that the message names the flag
# (minigan/data.py's own, for the Python API, names its data_dir argument).
DATA_DIR = ((lambda v: v == "" or (path_ok(v, "folder") and data.holds_mnist(v))),
            "a folder that holds the four MNIST files, raw or .gz (the repository's data/mnist/ "
            "does), or leave the flag out to search")
IMAGES = ((lambda v: v == "" or (path_ok(v, "file") and v.endswith(".npy"))),
          "an existing .npy file of uint8 images, shape (N, 28, 28), or empty for MNIST")


def is_homework(value):
    """A rule's check: empty (minigan's own code) or a folder of ``minigan.homework start``."""
    from minigan.homework import capstone  # the homework imports the library: load it late

    return value == "" or (path_ok(value, "folder") and capstone.is_homework(value))


# ---- a training run: train_mnist.py -------------------------------------------------------------


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
    limit: int = 0  # train on the first N images only (0, or N >= all of them: all)
    data_dir: str = ""  # where the MNIST files are ("" : search, see minigan/data.py)
    images: str = ""  # a .npy file of uint8 images (N, 28, 28) to train on instead of MNIST
    out: str = ""  # run folder ("" : runs/<timestamp>)
    log_every: int = 100  # steps between logged metrics (a host sync on the GPU)
    sample_every: int = 1  # epochs between sample grids
    homework: str = ""  # a homework folder: train on the learner's code (lessons/08_homework.md)
    eval_every: int = 0  # epochs between sample-quality scores (minigan.evaluate; 0: off)
    eval_samples: int = 10000  # samples each of those scores draws
    # The tricks of --recipe improved (minigan/tricks.py, lessons/13_better_recipe.md); all off
    # in the default recipe. The MLP's D takes all of them; the DCGAN takes ema and
    # instance_noise only.
    recipe: str = "default"  # "improved" or "fast": RECIPES above, for the settings not given
    ema: float = 0.0  # decay of an average of G's weights that draws the samples (0: off)
    minibatch_std: int = 0  # 1: D sees the batch's feature standard deviation (Karras et al.)
    pack: int = 1  # D judges this many samples at once (PacGAN; 1: off)
    instance_noise: float = 0.0  # std of noise on D's inputs, annealed to 0 (0: off)
    d_dropout: float = 0.0  # dropout after each of D's hidden layers (0: off)
    # Beyond Jensen-Shannon (minigan/losses.py, penalties.py, spectral.py); all off by default.
    loss: str = "bce"  # D's and G's losses: bce (with gen_loss), lsgan, hinge or wgan
    clip: float = 0.0  # WGAN's clipping of D's parameters to [-clip, clip] after each D update
    spectral_norm: int = 0  # 1: D's Dense and Conv2D weights over their largest singular value
    r1: float = 0.0  # gamma of R1, gamma / 2 * E ||grad_x D(x)||^2 on real samples
    gp: float = 0.0  # lambda of WGAN-GP, lambda * E (||grad_x D(x_hat)|| - 1)^2
    optimizer: str = "adam"  # or "rmsprop" (the WGAN paper's)
    # A conditional GAN (minigan/conditional.py): G(z, y) draws the digit y; "" is off.
    conditional: str = ""  # "concat", "projection" or "acgan"


# One entry per Config field: a new setting adds its rule here (tests/test_cli_errors.py checks
# that every field has one); minigan.toy takes the rules of the settings it shares.
RULES = {
    "device": one_of("cpu", "gpu"), "model": one_of("mlp", "dcgan"),
    "epochs": integer(1), "batch_size": integer(1),
    "lr_g": number(0, lo_open=True), "lr_d": number(0, lo_open=True),
    "beta1": number(0, 1), "beta2": number(0, 1),
    "latent_dim": integer(1, MAX_WIDTH), "g_hidden": widths(), "d_hidden": widths(),
    "slope": number(0, 1), "k": integer(1), "gen_loss": one_of(*sorted(GENERATOR_LOSSES)),
    "label_smoothing": number(0, 1), "seed": SEED, "dtype": one_of("float32", "float64"),
    "limit": integer(0),  # 0, or more than the images there are: all of them
    "data_dir": DATA_DIR, "images": IMAGES, "out": folder(want_dir=False),
    "log_every": integer(1), "sample_every": integer(1),
    "homework": (is_homework, "a folder written by `python -m minigan.homework start`, or empty "
                              "for minigan's code"),
    # --eval-every is off by default (0): each scoring of 10,000 images takes a seventh to a fifth
    # of an MLP epoch on a 2-core CPU, the first a third (it builds the classifier's reference;
    # README, "Scoring a run").
    "eval_every": explained(integer(0), "an integer >= 0: score the generator with "
                            "minigan.evaluate every N epochs into eval.csv and quality.png; 0 "
                            "is off, the default, as each scoring of 10,000 samples costs a "
                            "seventh to a fifth of an MLP epoch (the first a third)"),
    "eval_samples": explained(integer(5, MAX_SAMPLES), f"an integer from 5 to {MAX_SAMPLES:,}: "
                              "samples each --eval-every scoring draws (10000 for figures you "
                              "compare), as minigan.evaluate's -n"),
    "recipe": explained(one_of("default", *RECIPES), (
        "default (the paper's and the PyTorch twin's), " + ", ".join(
            f"{name} ({recipe_settings(name)})" for name in RECIPES) +
        ", each where the flag is not given; README, \"Which recipe\"")),
    "ema": ((lambda v: (type(v) in (int, float) and v == 0) or number(0, 1, lo_open=True)[0](v)),
            "0 (off) or a decay in (0, 1), like 0.999"),
    "minibatch_std": explained(integer(0, 1), "0 or 1: 1 appends the batch's mean feature "
                               "standard deviation to the last hidden layer of D (MLP only)"),
    "pack": explained(integer(1, 64), "an integer from 1 to 64: samples D judges at once "
                      "(PacGAN; MLP only; it must divide --batch-size)"),
    "instance_noise": explained(number(0), "a number >= 0: std of Gaussian noise added to D's "
                                "inputs, annealed to 0 over the run"),
    "d_dropout": explained(number(0, 1), "a number in [0, 1): dropout after every hidden layer "
                           "of D (MLP only)"),
    "loss": explained(one_of(*GAME_LOSSES), "one of bce (the 2014 paper's, with --gen-loss), "
                      "lsgan (least squares), hinge, wgan (Wasserstein: use --gp or --clip)"),
    "clip": explained(number(0), "0 (off) or a number > 0: D's parameters are clipped to "
                      "[-clip, clip] after each D update (WGAN: 0.01)"),
    "spectral_norm": explained(integer(0, 1), "0 or 1: 1 divides each of D's Dense and Conv2D "
                               "weights by its largest singular value (one power iteration each "
                               "time D runs in training)"),
    "r1": explained(number(0), "a number >= 0: gamma of the R1 penalty on real samples, "
                    "gamma / 2 * E ||grad D(x)||^2 (0 is off; 10 is common)"),
    "gp": explained(number(0), "a number >= 0: lambda of the WGAN-GP penalty, "
                    "lambda * E (||grad D(x_hat)|| - 1)^2 (0 is off; 10 is the paper's)"),
    "optimizer": one_of("adam", "rmsprop"),
    "conditional": explained(one_of("", *CONDITIONAL), "one of " + ", ".join(CONDITIONAL) +
                             " (G draws the digit asked for), or empty: off"),
}

# Settings added after the first release (0.1.0): a run folder made before one existed has no
# entry for it in config.json, and resumes with its default (an MLP run on MNIST, minigan's own
# code, no scoring, no tricks), which is what that run did.
ADDED_SINCE_0_1 = ("model", "homework", "eval_every", "eval_samples", "recipe", "ema",
                   "minibatch_std", "pack", "instance_noise", "d_dropout", "images", "loss",
                   "clip", "spectral_norm", "r1", "gp", "optimizer", "conditional")
# Settings of D that --model dcgan does not take (its D is convolutional: minigan/gan.py).
MLP_ONLY = ("minibatch_std", "pack", "d_dropout")
# What a checkpoint's arrays depend on: these cannot change when resuming.
ARCHITECTURE = ("model", "latent_dim", "g_hidden", "d_hidden", "slope", "dtype", "ema",
                "minibatch_std", "pack", "spectral_norm", "optimizer", "conditional")
# What may change when resuming (a data folder or file that moved, the device, the outputs);
# everything else must match the run's config.json.
RESUMABLE = ("epochs", "device", "log_every", "sample_every", "data_dir", "images", "homework",
             "eval_every", "eval_samples")


def validate(cfg, flags=None, config_file=None, rules=RULES, only=None, resumable=RESUMABLE):
    """Return cfg, or raise ConfigError for the first setting that breaks its rule.

    flags: the names given on the command line (default: all); the others came from
    config_file (a resumed run's config.json), and the message says so. only: check just
    these names (minigan.sample needs the generator's settings, not the data's). resumable:
    the names a flag may set anew (the message offers it); () for a command that only reads a
    run.
    """
    for f in fields(cfg):
        if only is not None and f.name not in only:
            continue
        value = getattr(cfg, f.name)
        if rules[f.name][0](value):
            continue
        if flags is None or f.name in flags:
            check(f.name, value, rules[f.name], f.default)
        allowed = rules[f.name][1]
        if f.name in resumable:  # e.g. a data folder that has moved since
            raise ConfigError(f"{config_file}: {f.name} is {show(value)}, but it must be "
                              f"{allowed}: pass {flag(f.name)} with a new value.")
        raise ConfigError(
            f"{config_file}: {f.name} is {show(value)}, but it must be {allowed}. The file is "
            "damaged: restore it from a copy (it must match checkpoint.npz), or start a new run."
        )
    return cfg


def check_combination(cfg):
    """Raise ConfigError for settings that are each allowed but do not go together."""
    check_conditional(cfg)
    changed = [f.name for f in fields(cfg) if getattr(cfg, f.name) != f.default]
    tricks = [name for name in changed
              if name in ("recipe", "ema", *MLP_ONLY, "instance_noise", *GAME, "spectral_norm",
                          "optimizer")]
    if cfg.homework:
        if cfg.model != "mlp":  # the homework writes the MLP's layers
            raise ConfigError(f"--homework trains the MLP GAN only; drop --model "
                              f"{show(cfg.model)} or --homework")
        if tricks:  # the learner's make_discriminator has the default recipe's arguments
            raise ConfigError(f"--homework trains the default recipe; drop --homework or "
                              f"{flag(tricks[0])}")
    if cfg.model == "dcgan":
        if cfg.recipe != "default":
            raise ConfigError(
                f"--recipe {cfg.recipe} is the MLP's (its --pack and --minibatch-std change the "
                "MLP's D, and the benchmarks measured it on the MLP); with --model dcgan, pass "
                "the tricks that fit its D yourself: --ema and --label-smoothing, "
                "--instance-noise")
        mlp_only = [name for name in changed if name in MLP_ONLY]
        if mlp_only:
            raise ConfigError(f"{flag(mlp_only[0])} applies to the MLP's D only; --model dcgan "
                              f"takes --ema and --instance-noise (drop {flag(mlp_only[0])})")
    check_batch_for_d(cfg)
    check_game(cfg)


def check_conditional(cfg):
    """Raise ConfigError for what a conditional run cannot take (checked on resume too)."""
    given = f"--conditional {cfg.conditional}"
    if cfg.conditional and cfg.images:
        raise ConfigError(f"--images {cfg.images}: the file carries no labels, and {given} "
                          "trains on each image's digit: drop --images (MNIST has labels)")
    if cfg.conditional and cfg.homework:
        raise ConfigError(f"--homework trains the homework's GAN, which takes no labels: drop "
                          f"--homework or {given}")
    off = [name for name in NOT_CONDITIONAL
           if getattr(cfg, name) != Config.__dataclass_fields__[name].default]
    if cfg.conditional and off:
        raise ConfigError(
            f"{flag(off[0])} {show(getattr(cfg, off[0]))} does not fit {given}: the penalties "
            "are not derived through D(x, y). A conditional run takes --loss, --clip, "
            "--spectral-norm, --k, --gen-loss, --label-smoothing, --ema, --optimizer, --recipe "
            "and D's tricks (--pack, --minibatch-std, --instance-noise, --d-dropout; "
            f"with --model dcgan, --instance-noise). Drop {flag(off[0])}.")


def check_game(cfg):
    """Raise ConfigError for a loss or penalty that does not fit the rest (train and the lab)."""
    if cfg.loss != "bce" and cfg.gen_loss != "nonsaturating":
        raise ConfigError(f"--gen-loss {cfg.gen_loss} is a generator loss of --loss bce; "
                          f"--loss {cfg.loss} has its own: drop --gen-loss")
    if cfg.loss in ("hinge", "wgan") and cfg.label_smoothing:
        raise ConfigError(f"--label-smoothing moves the real target of a BCE or least-squares "
                          f"loss; --loss {cfg.loss} has no target: drop --label-smoothing")
    penalty = next((name for name in ("r1", "gp") if getattr(cfg, name)), None)
    if penalty and cfg.model == "dcgan":
        raise ConfigError(
            f"{flag(penalty)} needs each sample's gradient alone, and the DCGAN's D has BatchNorm, "
            "which couples the samples of a batch (Gulrajani et al. 2017 drop it from the critic "
            f"for this reason): use {flag(penalty)} with --model mlp, or --spectral-norm 1 with "
            "the DCGAN")
    coupled = "minibatch_std" if cfg.minibatch_std else "pack" if cfg.pack > 1 else None
    if penalty and coupled:
        raise ConfigError(f"{flag(penalty)} needs each sample's gradient alone, and "
                          f"{flag(coupled)} {show(getattr(cfg, coupled))} makes D judge samples "
                          f"together: drop one of them")


def check_batch_for_d(cfg):
    """Raise ConfigError unless D's batch tricks fit the batch size (--pack, --minibatch-std)."""
    if cfg.batch_size % cfg.pack:
        raise ConfigError(f"--pack {cfg.pack} needs a --batch-size divisible by it, not "
                          f"{cfg.batch_size}: D judges {cfg.pack} samples at once")
    if cfg.minibatch_std and cfg.batch_size // cfg.pack < 2:
        raise ConfigError(f"--minibatch-std 1 needs at least 2 inputs of D per batch; "
                          f"--batch-size {cfg.batch_size} with --pack {cfg.pack} gives "
                          f"{cfg.batch_size // cfg.pack}")


def game_options(cfg):
    """The game's settings (GAME, and conditional) that differ from the 2014 paper's, as
    keywords of gan.train_step: {} for the default game, which the homework's train_step
    (written before them) takes too."""
    return {name: getattr(cfg, name) for name in (*GAME, "conditional")  # the lab has no labels
            if getattr(cfg, name, "") != Config.__dataclass_fields__[name].default}


def with_recipe(given, rules=RULES):
    """The flags given, over the settings of the recipe asked for (RECIPES; none for default):
    the one place a recipe is merged (train_mnist.py and minigan.toy). A recipe that the
    command's rules refuse is not merged (it may set what the command has not: --recipe fast's
    widths and the 2-D lab); validate then refuses it in its turn, with the rule's message."""
    recipe = given.get("recipe")
    if recipe is None or not rules["recipe"][0](recipe):
        return dict(given)
    return {**RECIPES.get(recipe, {}), **given}


# ---- flags --------------------------------------------------------------------------------------


def parser(config_class, rules, prog, description):
    """An ArgumentParser with one flag per field of config_class (--batch-size for batch_size).
    A flag not given is absent from the parsed namespace (so a resume can tell them apart).
    A number that is not one ("--epochs abc") gets its rule's message; a path flag
    (rules.PATH_FLAGS) refuses an empty path and has "~" expanded (rules.path_arg); a list of
    widths that is not one ("--g-hidden 32,") gets its rule's message too (rules.layer_widths)."""
    p = Parser(prog=prog, description=description,
               formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in fields(config_class):
        if f.type in (int, float):
            kind = typed(f.type, f.name, rules[f.name], f.default)
        elif f.name in PATH_FLAGS:
            kind = path_arg(f.name)
        elif f.type is tuple:
            kind = layer_widths(f.name, rules[f.name], f.default)
        else:
            kind = f.type
        p.add_argument(flag(f.name), default=argparse.SUPPRESS, type=kind,
                       help=f"{rules[f.name][1]} (default: {show(f.default)})")
    return p


def parse_train_args(argv=None):
    """train_mnist.py's flags; returns (dict of only the flags given, resume folder or None)."""
    p = parser(Config, RULES, "train_mnist.py", "Train the MLP GAN (or the DCGAN) on MNIST "
               "with minigan: the project's main job.")
    p.add_argument("--resume", metavar="RUN_DIR", default=None,
                   type=path_arg("resume", "give a run folder, like runs/<time>"),
                   help="continue the run in RUN_DIR from its checkpoint")
    given = vars(p.parse_args(argv))
    return given, given.pop("resume")


def new_config(given):
    """A new run's Config from the flags given; checks them all, writes nothing."""
    given = with_recipe(given)
    cfg = validate(Config(**given), flags=given)
    check_combination(cfg)
    models.check_networks_fit(cfg)  # on the CPU: weights beyond the machine's memory
    cfg.out = str(rundir.new_run_path(cfg.out))
    return cfg


def saved_config(run_dir):
    """The Config a run was trained with, from its config.json (checked like flags).
    Raises CheckpointError (missing or unreadable file) or ConfigError (a bad value)."""
    path = Path(run_dir) / "config.json"
    saved = checkpoint.read_config(run_dir)
    for name in ADDED_SINCE_0_1:  # a run from before the setting existed had its default
        saved.setdefault(name, Config.__dataclass_fields__[name].default)
    for name in PATH_FLAGS:  # "~" is expanded where a value is read (a hand-edited config too)
        if isinstance(saved.get(name), str):
            saved[name] = os.path.expanduser(saved[name])
    names = [f.name for f in fields(Config)]
    missing = [n for n in names if n not in saved]
    unknown = [n for n in saved if n not in names]
    if missing or unknown:
        raise ConfigError(
            f"{path}: " + "; ".join(filter(None, [
                missing and "settings missing: " + ", ".join(missing),
                unknown and "unknown settings: " + ", ".join(map(show, unknown))])) +
            ". The file is damaged or from another version of minigan: restore it from a "
            "copy, or start a new run."
        )
    for name in ("g_hidden", "d_hidden"):
        if isinstance(saved[name], list):
            saved[name] = tuple(saved[name])
    return Config(**saved)


def used_config(run_dir):
    """The Config of a run that another command reads (minigan.anomaly --run, minigan.augment
    --generator), its config.json checked as --resume checks it: every setting but the paths
    (PATH_FLAGS), which only training reads, so that a data folder moved since is no reason to
    refuse the run. Raises CheckpointError (missing or unreadable file) or ConfigError."""
    cfg = saved_config(run_dir)
    used = [f.name for f in fields(Config) if f.name not in PATH_FLAGS]
    return validate(cfg, flags=(), config_file=Path(run_dir) / "config.json", only=used,
                    resumable=())


def same_folder(a, b):
    """Whether the paths a and b name one folder: runs/a, runs/a/, ./runs/a and its absolute
    path do (compared resolved, links followed)."""
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, RuntimeError):  # a loop of symbolic links
        return False


def resumed_config(given, resume):
    """The resumed run's Config: its config.json, with the flags that may change (RESUMABLE).
    --out is taken only where it names the run's own folder, however written (runs/a/,
    ./runs/a, an absolute path): the paths are compared resolved, and config.json keeps its
    own spelling."""
    run_dir = Path(resume)
    if not (run_dir / "checkpoint.npz").is_file():
        raise ConfigError(f"--resume {resume}: no run there (expected {run_dir}/config.json and "
                          f"{run_dir}/checkpoint.npz). Check the path; runs live in runs/ by "
                          "default.")
    saved = asdict(saved_config(run_dir))
    given = dict(given)
    if "out" in given:
        out = given.pop("out")
        if not same_folder(out, run_dir):
            raise ConfigError(f"--resume {resume}: a resumed run stays in its folder; drop "
                              f"--out {show(out)}")
    for name, value in given.items():
        if name not in RESUMABLE and value != saved[name]:
            what = "the architecture" if name in ARCHITECTURE else "the training recipe"
            raise ConfigError(
                f"--resume {resume}: {flag(name)} {show(value)} differs from the run's "
                f"{show(saved[name])} ({what} of a run cannot change). Drop the flag, or start "
                "a new run."
            )
    saved.update(given)
    cfg = validate(Config(**saved), flags=given, config_file=run_dir / "config.json")
    check_combination(cfg)  # --images and --homework may be given on resume
    return cfg
