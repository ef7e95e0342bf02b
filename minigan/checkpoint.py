"""Checkpoints: every array of a training run in one ``.npz`` file, written atomically.

The file holds plain arrays only (no pickle): ``G/<param>``, ``D/<param>``,
``opt_G/<state>/<param>``, ``opt_D/...``, any extra arrays the caller adds, and ``meta``, a
JSON string with counters, the config and the random generator's state. It is written to a
temporary file in the same folder, flushed to disk, and renamed over the old one, so a crash
or Ctrl-C mid-write leaves the previous checkpoint intact, never a half-written file.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from minigan import backend, files


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or does not match the networks asked for."""


class CheckpointWriteError(CheckpointError):
    """A checkpoint could not be written (disk full, no permission): the run can continue from
    the previous one, unlike from a checkpoint that is unreadable or does not match. ``cause``
    is the OSError, whose errno says which fix fits."""

    def __init__(self, message, cause):
        super().__init__(message)
        self.cause = cause


def save(path, arrays, meta):
    """Atomically write host or device ``arrays`` (a dict name -> array) and a JSON ``meta``.

    Raises CheckpointError if the file cannot be written (disk full, no permission); the
    previous checkpoint at ``path`` is then left as it was, and no temporary file remains.
    """
    path = Path(path)
    host = {name: backend.to_host(a) for name, a in arrays.items()}  # device -> host copies
    host["meta"] = np.array(json.dumps(meta))
    try:
        with files.atomic_write(path) as f:
            np.savez(f, **host)
    except OSError as e:
        kept = "the previous checkpoint there is intact" if path.exists() else "nothing was saved"
        raise CheckpointWriteError(
            f"cannot write the checkpoint {path} ({e.strerror or e}); {kept}. "
            + files.write_fix(e, path, "choose another folder"), cause=e) from None


def load(path):
    """Read a checkpoint: returns (arrays as a dict of host NumPy arrays, meta dict)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {name: f[name] for name in f.files}
        meta = json.loads(str(arrays.pop("meta")))
    except Exception as e:
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(e).__name__}: {e}); it may be "
            "truncated or not a minigan checkpoint. Start a new run, or resume from a copy."
        ) from None
    return arrays, meta


def read_config(run_dir):
    """A run's config.json as a dict; CheckpointError if it is missing, unreadable or not JSON."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise CheckpointError(
            f"{run_dir}: no config.json there; pass the folder of a train_mnist.py run "
            "(runs/<timestamp> by default)"
        )
    try:
        cfg = json.loads(path.read_text())
    # JSONDecodeError is a ValueError; RecursionError: brackets nested too deep ("[[[[...")
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        why = ("brackets nested too deep to read" if isinstance(e, RecursionError)
               else f"{type(e).__name__}: {e}")
        raise CheckpointError(
            f"{path} is unreadable ({why}). The file is damaged: restore it from a copy, or "
            "start a new run."
        ) from None
    if not isinstance(cfg, dict):
        raise CheckpointError(
            f"{path} holds a {type(cfg).__name__}, not the settings of a run. The file is "
            "damaged: restore it from a copy, or start a new run."
        )
    return cfg


def network_arrays(prefix, net):
    """``{prefix/name: array}`` for every parameter and buffer (BatchNorm's running statistics)
    of a Sequential."""
    return {f"{prefix}/{name}": a for name, a in _state(net).items()}


def _state(net):
    """A network's saved arrays: its parameters and its buffers (none for the MLP)."""
    return {**net.params, **getattr(net, "buffers", {})}


def optimizer_arrays(prefix, opt):
    """``{prefix/state/param: array}`` for an optimizer's state; its step count goes in meta."""
    return {f"{prefix}/{k}": a for k, a in opt.state_dict().items() if k != "t"}


def _under(prefix, arrays):
    """The arrays saved as ``prefix/<name>``, keyed by ``<name>``."""
    return {k[len(prefix) + 1:]: a for k, a in arrays.items() if k.startswith(prefix + "/")}


def restore_network(prefix, net, arrays, path="checkpoint"):
    """Copy saved parameters and buffers into ``net`` in place, checking names and shapes first."""
    saved = _under(prefix, arrays)
    state = _state(net)
    if set(saved) != set(state):
        raise CheckpointError(
            f"{path}: network {prefix} has parameters {sorted(saved)}, but the network asked "
            f"for has {sorted(state)}: the architecture differs (model or number of layers)."
        )
    for name, p in state.items():
        if saved[name].shape != p.shape:
            raise CheckpointError(
                f"{path}: {prefix}/{name} has shape {saved[name].shape} in the checkpoint but "
                f"{p.shape} in the network asked for: the architecture differs "
                "(latent size or hidden sizes)."
            )
    for name, p in state.items():
        p[...] = backend.to_device(saved[name], dtype=p.dtype)  # host -> device copy


def restore_optimizer(prefix, opt, arrays, t):
    """Copy saved optimizer state (and its step count t) into ``opt`` in place."""
    state = {k: backend.to_device(a) for k, a in _under(prefix, arrays).items()}
    state["t"] = t
    opt.load_state_dict(state)


def rng_state(rng):
    """The generator's state as JSON-able data (NumPy's PCG64); None where it cannot be read."""
    bit_generator = getattr(rng, "bit_generator", None)
    state = getattr(bit_generator, "state", None)
    return state if isinstance(state, dict) else None


def set_rng_state(rng, state):
    rng.bit_generator.state = state


# ---- a training run's checkpoint: everything train_mnist.py needs to continue exactly ----------


@dataclass
class Progress:
    """Where a run is: the counters a checkpoint carries besides the arrays."""

    epoch: int = 0  # epochs finished
    step_in_epoch: int = 0  # steps of the current epoch done
    global_step: int = 0
    elapsed: float = 0.0  # training seconds, over every session of this run
    # --instance-noise anneals to 0 over the steps of --epochs as the run first planned them:
    # resuming with a larger --epochs does not bring the noise back
    noise_steps: object = None
    perm: object = None  # this epoch's order of the images (device array), None until drawn


def save_run(path, state):
    """Write a run's state: a dict with the networks G and D, the optimizers opt_G and opt_D,
    ema (an EMA or None), rng, fixed_z, progress (a Progress) and config (a settings.Config).
    Refuses to overwrite the last good checkpoint with non-finite parameters."""
    xp = backend.xp
    for name in ("G", "D"):
        if not all(bool(xp.isfinite(p).all()) for p in state[name].params.values()):
            raise CheckpointError(f"{name}'s parameters are not finite; not overwriting the "
                                  f"last good checkpoint {path}")
    progress, ema = state["progress"], state["ema"]
    arrays = {**network_arrays("G", state["G"]), **network_arrays("D", state["D"]),
              **optimizer_arrays("opt_G", state["opt_G"]),
              **optimizer_arrays("opt_D", state["opt_D"]), "fixed_z": state["fixed_z"]}
    if ema:
        arrays.update(network_arrays("G_ema", ema.net))
    if progress.perm is not None:
        arrays["perm"] = progress.perm
    meta = {"epoch": progress.epoch, "step_in_epoch": progress.step_in_epoch,
            "global_step": progress.global_step, "elapsed": progress.elapsed,
            "opt_G_t": state["opt_G"].t, "opt_D_t": state["opt_D"].t,
            "ema_t": ema.t if ema else 0, "noise_steps": progress.noise_steps,
            "rng": rng_state(state["rng"]), "device": backend.device,
            "config": asdict(state["config"])}
    save(path, arrays, meta)


def restore_run(path, state):
    """Load a checkpoint of save_run into ``state``'s objects, in place; returns the random
    generator to continue with (the saved stream on the CPU; reseeded where it cannot be)."""
    arrays, meta = load(path)
    try:
        return _restore_run(path, state, arrays, meta)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(
            f"checkpoint {path} is damaged or not from train_mnist.py ({type(e).__name__}: "
            f"{e}). Resume from a copy, or start a new run."
        ) from None


def _restore_run(path, state, arrays, meta):
    restore_network("G", state["G"], arrays, path)
    restore_network("D", state["D"], arrays, path)
    restore_optimizer("opt_G", state["opt_G"], arrays, meta["opt_G_t"])
    restore_optimizer("opt_D", state["opt_D"], arrays, meta["opt_D_t"])
    if state["ema"]:
        restore_network("G_ema", state["ema"].net, arrays, path)
        state["ema"].t = int(meta["ema_t"])
    state["fixed_z"][...] = backend.to_device(arrays["fixed_z"])
    progress = state["progress"]
    progress.perm = backend.to_device(arrays["perm"]) if "perm" in arrays else None
    progress.epoch, progress.step_in_epoch = int(meta["epoch"]), int(meta["step_in_epoch"])
    progress.global_step, progress.elapsed = int(meta["global_step"]), float(meta["elapsed"])
    progress.noise_steps = meta.get("noise_steps")  # None in checkpoints from before the noise
    rng = state["rng"]
    if meta["rng"] is not None and backend.device == meta["device"] == "cpu":
        set_rng_state(rng, meta["rng"])  # exact continuation
        return rng
    # CuPy's generator state cannot be saved: reseed from (seed, step), which is reproducible
    # but not the stream an uninterrupted run would have drawn.
    seed = state["config"].seed
    mixed = np.random.SeedSequence([seed, progress.global_step]).generate_state(1)
    return backend.default_rng(int(mixed[0]))
