"""Draw new images from a trained run.

    python -m minigan.sample RUN_DIR -n 10000 --out samples.npy   # uint8 pixels (N, 28, 28)
    python -m minigan.sample RUN_DIR -n 64 --out grid.png         # one PNG grid

Loads RUN_DIR/config.json and the generator from RUN_DIR/checkpoint.npz (the average of G's
weights for a run trained with --ema, as its epoch grids); ``--seed`` makes the noise, and so
the images, repeatable.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from minigan import backend, checkpoint, data, files, models, pictures, settings
from minigan.gan import sample_noise


MAX_N = {".npy": 1_000_000, ".png": 10_000}  # a million images is 784 MB of pixels


# The settings that rebuild G; the others (data, outputs) do not matter for sampling.
GENERATOR_SETTINGS = ("model", "latent_dim", "g_hidden", "slope", "dtype", "ema")


def load_generator(run_dir):
    """Build the run's generator from config.json and load its checkpointed weights.
    Raises CheckpointError when either file is missing, damaged or they do not match."""
    run_dir = Path(run_dir)
    try:
        cfg = settings.saved_config(run_dir)
        settings.validate(cfg, flags=(), config_file=run_dir / "config.json",
                          only=GENERATOR_SETTINGS)
    except settings.ConfigError as e:
        raise checkpoint.CheckpointError(str(e)) from None
    arrays, _ = checkpoint.load(run_dir / "checkpoint.npz")
    G = models.build_generator(cfg, backend.default_rng(0))  # weights overwritten below
    # --ema: the run's samples come from the average of G's weights, saved as G_ema
    # (minigan/tricks.py); its config.json says so
    checkpoint.restore_network("G_ema" if cfg.ema else "G", G, arrays, run_dir / "checkpoint.npz")
    G.eval()  # samples come from G in evaluation mode, as train_mnist.py's epoch grids do
    return G, cfg


def generate(G, n, latent_dim, seed=0, dtype="float32", chunk=1000):
    """n images as uint8 pixels (n, 28, 28) on the host, generated chunk by chunk.

    G should be in evaluation mode (load_generator sets it): then BatchNorm uses its running
    statistics, each image depends on its own z only, and the chunk size changes nothing."""
    rng = backend.default_rng(seed)
    out = []
    for start in range(0, n, chunk):
        z = sample_noise(rng, min(chunk, n - start), latent_dim, dtype)
        out.append(data.to_pixels(backend.to_host(G.forward(z))))  # device -> host
    return np.concatenate(out)


def check_out(out, n):
    """Why --out and -n cannot be used together, or None."""
    if out.suffix not in MAX_N:
        return f"--out {out}: use a .npy or a .png file name"
    if not 1 <= n <= MAX_N[out.suffix]:
        return f"-n {n}: use a number from 1 to {MAX_N[out.suffix]:,} for a {out.suffix} file"
    if out.is_dir():
        return f"--out {out} is a folder; name a file in it, like {out / ('samples' + out.suffix)}"
    if not out.parent.is_dir():
        return f"--out {out}: the folder {out.parent} does not exist; create it first"
    return None


def write_images(out, pixels):
    """The images as a .npy array or a PNG grid, written atomically (minigan/files.py)."""
    if out.suffix == ".npy":
        with files.atomic_write(out) as f:
            np.save(f, pixels)
    else:
        pictures.save_grid(out, pixels)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m minigan.sample",
                                description="Generate images from a trained minigan run.")
    p.add_argument("run_dir", help="a train_mnist.py run folder")
    p.add_argument("-n", type=int, default=64,
                   help=f"number of images, 1 to {MAX_N['.npy']:,} (.png: {MAX_N['.png']:,}) "
                   "(default: 64)")
    p.add_argument("--out", required=True, help="output file: .npy (uint8 N x 28 x 28) or .png")
    p.add_argument("--seed", type=int, default=0, help="noise seed, 0 to 2**32 - 1 (default: 0)")
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    args = p.parse_args(argv)
    out = Path(args.out)
    try:
        problem = check_out(out, args.n)
    except (OSError, ValueError) as e:  # a name too long, a NUL byte
        problem = f"--out {args.out!r}: not a usable file name ({e})"
    if problem:
        p.error(problem)
    try:
        settings.check("seed", args.seed, settings.SEED)
    except settings.ConfigError as e:
        p.error(str(e))
    try:
        backend.use(args.device)
        G, cfg = load_generator(args.run_dir)
        pixels = generate(G, args.n, cfg.latent_dim, args.seed, cfg.dtype)
        write_images(out, pixels)
    except (backend.DeviceError, checkpoint.CheckpointError) as e:
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # to_pixels: NaN weights, a checkpoint edited by hand
        print(f"{p.prog}: error: {args.run_dir}: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"{p.prog}: error: cannot write {out} ({e.strerror or e}); nothing was written. "
              "Free some disk space or check the folder's permissions.", file=sys.stderr)
        return 2
    print(f"wrote {args.n} images to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
