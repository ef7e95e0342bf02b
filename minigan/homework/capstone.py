"""The capstone: train the MLP GAN on the learner's own layers, losses, optimizers and GAN steps.

``load(folder)`` gives what train_mnist.py builds a run from (make_generator,
make_discriminator, Adam, train_step), from the learner's files. ``replay`` first runs the
learner's code and minigan's side by side, from the same seed, on the same real batches and
noise, in float64, and reports that they agree (to what tolerance) or where they first part:
the step and the quantity (a loss, D(x), D(G(z)), or which network's which parameter or
gradient).

The learner's gan.py imports minigan's layers and losses, so that the grader can grade the GAN
steps (parts 9 and 10) on their own; here those names, and the entries of gan.py's tables of
losses (``G_LOSSES``), are pointed at the learner's own layers.py and losses.py, so that the
whole GAN runs on the learner's code. Everything else
(data, the training loop, checkpoints, pictures) is minigan's.

Like the grader, the capstone runs the learner's code in a child process first (``isolate``):
``load`` imports the folder there, with a time limit, and refuses a folder that borrows
minigan's code for a graded function (``learner.borrowed``) before importing it here for
training; ``replay`` runs in a child with its own time limit, so it cannot hang forever.
"""

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from minigan import backend, models, settings
from minigan import gan as mg_gan
from minigan import layers as mg_layers
from minigan import losses as mg_losses
from minigan.homework import checks, isolate, learner
from minigan.homework.parts import FILES, PARTS

TIME_LIMIT = 30  # seconds to import the learner's files
REPLAY_LIMIT = 600  # seconds for the replay: 50 steps of the MNIST MLP take about 40 on 2 cores

MINIGAN = models.MINIGAN  # minigan's own functions, beside which the learner's run


class CapstoneError(Exception):
    """The folder is not a homework, or the learner's code does not import; says what to do."""


def is_homework(folder):
    """Does folder hold the files ``python -m minigan.homework start`` writes?"""
    folder = Path(folder).expanduser()
    return folder.is_dir() and all((folder / f).is_file() for f in FILES)


def load(folder, time_limit=TIME_LIMIT):
    """The learner's modules, wired together: a namespace like ``MINIGAN``. They are imported
    in a child process first, so that an import that hangs or exits stops with a message."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise CapstoneError(f"no homework folder at {folder}: create one with `python -m "
                            "minigan.homework start DIR`")
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise CapstoneError(f"{folder} is not a homework folder (no {', '.join(missing)}); "
                            "create one with `python -m minigan.homework start DIR`")
    ((_, outcome),) = isolate.run([{"name": "load", "kind": "load", "folder": str(folder)}],
                                  time_limit)
    if isinstance(outcome, isolate.Death):
        raise CapstoneError("your homework does not load: " + isolate.why(
            outcome, "the import of your files", folder, ", ".join(FILES), time_limit)[1])
    if not (isinstance(outcome.result, dict) and outcome.result.get("error") == ""):
        raise CapstoneError(str((outcome.result or {}).get("error", "your homework does not "
                                                           "load: no result")))
    return wire(folder)


def loaded(task):
    """The child's side of ``load``: {"error": what stops the folder from loading, or ""}."""
    try:
        wire(Path(task["folder"]))
    except CapstoneError as e:
        return {"error": str(e)}
    return {"error": ""}


def learners(name, value, pairs):
    """The learner's ``name`` when ``value`` is minigan's ``name`` in one of ``pairs``
    ((minigan's module, the learner's), ...); else ``value`` itself."""
    for mg_module, own in pairs:
        if name and getattr(mg_module, name, None) is value and hasattr(own, name):
            return getattr(own, name)
    return value


def wire(folder):
    """The learner's modules, imported in this process and wired together (``load``)."""
    try:
        mods = {f[:-3]: learner.load_module(folder, f) for f in FILES}
    except learner.LearnerError as e:
        raise CapstoneError(f"your homework does not import: {e}, at {e.where}") from e
    for part in PARTS:  # the parts in these four files that the folder has (not 12-14)
        if part.file not in FILES or not learner.present(folder, part):
            continue
        for name, what in learner.borrowed(mods[part.file[:-3]], part.file, part.functions):
            raise CapstoneError(f"{folder} borrows minigan's code: {name} is {what}; the capstone "
                                f"trains on your own code only (part {part.number})")
    gan = mods["gan"]
    pairs = ((mg_layers, mods["layers"]), (mg_losses, mods["losses"]))
    for name, value in list(vars(gan).items()):
        if name.startswith("__"):
            continue  # the module's own (__builtins__, __doc__, ...)
        if isinstance(value, dict):
            # gan.py's tables of losses (G_LOSSES, which a generator_step may read as minigan's
            # does) were built at import from minigan's functions: a new table, the learner's
            # function in each of minigan's places (never minigan's own dict changed in place)
            setattr(gan, name, {k: learners(getattr(v, "__name__", None), v, pairs)
                                for k, v in value.items()})
        else:
            setattr(gan, name, learners(name, value, pairs))  # gan.Dense -> the learner's Dense
    return SimpleNamespace(make_generator=gan.make_generator,
                           make_discriminator=gan.make_discriminator, Adam=mods["optim"].Adam,
                           train_step=gan.train_step, discriminator_step=gan.discriminator_step,
                           generator_step=gan.generator_step)


@dataclass
class Replay:
    steps: int  # how many steps were compared
    tol: float
    seed: int
    worst: float = 0.0  # the largest relative difference seen while they agreed
    worst_at: str = ""
    parted: tuple = None  # (step, quantity, relative difference) where they first part
    error: str = ""  # the learner's code raised: what and where

    @property
    def agree(self):
        return self.parted is None and not self.error

    def __str__(self):
        head = f"replay of {self.steps} training steps, your code beside minigan's (seed " \
               f"{self.seed}, float64)"
        if self.error:
            return f"{head}: {self.error}"
        if self.parted:
            step, what, err = self.parted
            return (f"{head}: they part at step {step}, in {what} (relative difference "
                    f"{err:.1e} > {self.tol:.0e}). Find the part with `python -m "
                    "minigan.homework check DIR`.")
        if self.worst == 0:
            return f"{head}: they agree to {self.tol:.0e} (every number identical)."
        return (f"{head}: they agree to {self.tol:.0e} (largest relative difference "
                f"{self.worst:.1e}, {self.worst_at}).")


class _Parted(Exception):
    pass


def replay(folder, batches, time_limit=REPLAY_LIMIT, **kwargs):
    """``run_replay`` in a child process that gets ``time_limit`` seconds; a Replay. A child
    that hangs, exits or crashes is a Replay with an error that says so."""
    folder = Path(folder).expanduser()
    device = backend.device if backend.device in ("cpu", "gpu") else "cpu"
    with tempfile.TemporaryDirectory(prefix="minigan-replay-") as tmp:
        np.save(Path(tmp) / "batches.npy", np.asarray(batches))
        task = {"name": "replay", "kind": "replay", "folder": str(folder), "device": device,
                "batches": str(Path(tmp) / "batches.npy"), "kwargs": kwargs}
        ((_, outcome),) = isolate.run([task], time_limit)
    report = Replay(kwargs.get("steps", 50), kwargs.get("tol", 1e-6), kwargs.get("seed", 0))
    if isinstance(outcome, isolate.Death):
        report.error = isolate.why(outcome, "the replay", folder, ", ".join(FILES),
                                   time_limit)[1]
    elif not isinstance(outcome.result, dict):
        report.error = "the replay reported no result"
    else:
        report = Replay(**outcome.result)
        report.parted = tuple(report.parted) if report.parted else None
    return report


def replayed(task):
    """The child's side of ``replay``: the Replay's fields, for the parent."""
    backend.use(task["device"])
    batches = np.load(task["batches"])
    try:
        report = run_replay(Path(task["folder"]), batches, **task["kwargs"])
    except CapstoneError as e:
        report = Replay(task["kwargs"].get("steps", 50), task["kwargs"].get("tol", 1e-6),
                        task["kwargs"].get("seed", 0), error=str(e))
    out = asdict(report)
    out["worst"] = float(out["worst"])
    out["parted"] = report.parted and [int(report.parted[0]), report.parted[1],
                                       float(report.parted[2])]
    return out


def run_replay(folder, batches, steps=50, tol=1e-6, seed=0, latent_dim=100,
               g_hidden=(256, 512, 1024), d_hidden=(1024, 512, 256), slope=0.2, lr_g=2e-4,
               lr_d=2e-4, betas=(0.5, 0.999), gen_loss="nonsaturating", real_target=1.0, k=1):
    """Train the learner's GAN and minigan's side by side for ``steps`` steps; a Replay.

    batches: real batches (B, N, D) on the host, used in order (and around again if needed).
    Both sides start from the same weights (the same seed), see the same real batches and the
    same noise, and run in float64. After every D step its loss, D(x), D(G(z)), D's parameters
    and both networks' grads are compared; after every G step the generator loss, G's
    parameters and both networks' grads: each as rel_error against ``tol``.
    """
    own = wire(folder)
    report = Replay(steps, tol, seed)
    cfg = settings.Config(latent_dim=latent_dim, g_hidden=tuple(g_hidden),
                          d_hidden=tuple(d_hidden), slope=slope, lr_g=lr_g, lr_d=lr_d,
                          beta1=betas[0], beta2=betas[1], dtype="float64")
    sides = []
    for code in (own, MINIGAN):  # the same builder (minigan/models.py), each side's functions
        rng = backend.default_rng(seed)
        out_dim = batches.shape[-1]
        run = learner.Runner(folder)
        G = run("make_generator", models.build_generator, cfg, rng, out_dim, code)
        D = run("make_discriminator", models.build_discriminator, cfg, rng, out_dim, code)
        opt_G, opt_D = run("Adam(...)", models.optimizers, cfg, G, D, code)
        sides.append((code, run, G, D, opt_G, opt_D))
    noise = backend.default_rng(seed + 1)
    xp = backend.xp
    batch = 0

    def compare(step, what, values):
        mine, theirs = (backend.to_host(xp.asarray(v)) for v in values)
        err = checks.rel(mine, theirs)
        if not err <= tol:
            raise _Parted((step, what, err))
        if err >= report.worst:
            report.worst, report.worst_at = float(err), f"{what} at step {step}"

    def compare_net(step, net, i, attr, what, phase):
        for name in getattr(sides[1][i], attr):
            compare(step, f"{net}'s {what} {name} after the {phase} step",
                    [getattr(s[i], attr)[name] for s in sides])

    try:
        for step in range(1, steps + 1):
            for _ in range(k):
                real = xp.asarray(batches[batch % len(batches)], dtype="float64")
                batch += 1
                z = mg_gan.sample_noise(noise, real.shape[0], latent_dim, "float64")
                outs = [run("discriminator_step", code.discriminator_step, G, D, opt_D,
                            real.copy(), z.copy(), real_target)
                        for code, run, G, D, opt_G, opt_D in sides]
                for i, what in enumerate(("the loss", "mean D(x)",
                                          "mean D(G(z))")):
                    compare(step, f"{what} of the discriminator step", [o[i] for o in outs])
                compare_net(step, "D", 3, "params", "parameter", "discriminator")
                compare_net(step, "D", 3, "grads", "gradient", "discriminator")
                compare_net(step, "G", 2, "grads", "gradient", "discriminator")  # untouched
            z = mg_gan.sample_noise(noise, real.shape[0], latent_dim, "float64")
            outs = [run("generator_step", code.generator_step, G, D, opt_G, z.copy(), gen_loss)
                    for code, run, G, D, opt_G, opt_D in sides]
            compare(step, "the generator loss", outs)
            compare_net(step, "G", 2, "params", "parameter", "generator")
            compare_net(step, "G", 2, "grads", "gradient", "generator")
            compare_net(step, "D", 3, "grads", "gradient", "generator")  # untouched
    except _Parted as p:
        report.parted = p.args[0]
    except learner.LearnerError as e:
        report.error = f"your code raised in {e.what}: {type(e.error).__name__}: {e.error}" + (
            f", at {e.where}" if e.where else "")
    return report


def replay_config(cfg, X, steps=50):
    """The replay for a train_mnist.py Config, on the first real batches of X (N, 784)."""
    bs = cfg.batch_size
    count = max(1, min(steps * cfg.k, X.shape[0] // bs))
    batches = np.stack([backend.to_host(X[i * bs:(i + 1) * bs]) for i in range(count)])
    return replay(cfg.homework, batches, steps=steps, seed=cfg.seed, latent_dim=cfg.latent_dim,
                  g_hidden=list(cfg.g_hidden), d_hidden=list(cfg.d_hidden), slope=cfg.slope,
                  lr_g=cfg.lr_g, lr_d=cfg.lr_d, betas=[cfg.beta1, cfg.beta2],
                  gen_loss=cfg.gen_loss, real_target=1.0 - cfg.label_smoothing, k=cfg.k)
