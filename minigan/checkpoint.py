"""Checkpoints: every array of a training run in one ``.npz`` file, written atomically.

The file holds plain arrays only (no pickle): ``G/<param>``, ``D/<param>``,
``opt_G/<state>/<param>``, ``opt_D/...``, any extra arrays the caller adds, and ``meta``, a
JSON string with counters, the config and the random generator's state. It is written to a
temporary file in the same folder, flushed to disk, and renamed over the old one, so a crash
or Ctrl-C mid-write leaves the previous checkpoint intact, never a half-written file.
"""

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from minigan import backend


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or does not match the networks asked for."""


def save(path, arrays, meta):
    """Atomically write host or device ``arrays`` (a dict name -> array) and a JSON ``meta``.

    Raises CheckpointError if the file cannot be written (disk full, no permission); the
    previous checkpoint at ``path`` is then left as it was, and no temporary file remains.
    """
    path = Path(path)
    host = {name: backend.to_host(a) for name, a in arrays.items()}  # device -> host copies
    host["meta"] = np.array(json.dumps(meta))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give it an ordinary file's mode
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **host)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            kept = "the previous checkpoint there is intact" if path.exists() else \
                "nothing was saved"
            raise CheckpointError(
                f"cannot write the checkpoint {path} ({e.strerror or e}); {kept}. Free some "
                "disk space or check the folder's permissions."
            ) from None
        raise


def _umask():
    mask = os.umask(0)  # the only way to read the umask is to set it; put it straight back
    os.umask(mask)
    return mask


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
    except (OSError, UnicodeDecodeError, ValueError) as e:  # JSONDecodeError is a ValueError
        raise CheckpointError(
            f"{path} is unreadable ({type(e).__name__}: {e}). The file is damaged: restore it "
            "from a copy, or start a new run."
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
