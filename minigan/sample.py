"""Draw new images from a trained run.

    python -m minigan.sample RUN_DIR -n 10000 --out samples.npy   # uint8 pixels (N, 28, 28)
    python -m minigan.sample RUN_DIR -n 64 --out grid.png         # one PNG grid

Loads RUN_DIR/config.json and the generator from RUN_DIR/checkpoint.npz; ``--seed`` makes
the noise, and so the images, repeatable.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from minigan import backend, checkpoint, data, pictures
from minigan.gan import make_networks, sample_noise


def load_generator(run_dir):
    """Build the run's generator from config.json and load its checkpointed weights."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise checkpoint.CheckpointError(
            f"{run_dir}: no config.json there; pass the folder of a train_mnist.py run "
            "(runs/<timestamp> by default)"
        )
    cfg = json.loads(config_path.read_text())
    arrays, _ = checkpoint.load(run_dir / "checkpoint.npz")
    G, _ = make_networks(cfg.get("model", "mlp"), cfg["latent_dim"], tuple(cfg["g_hidden"]),
                         tuple(cfg["d_hidden"]), cfg["slope"], backend.default_rng(0),
                         cfg["dtype"])  # init is overwritten below
    checkpoint.restore_network("G", G, arrays, run_dir / "checkpoint.npz")
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


def main(argv=None):
    p = argparse.ArgumentParser(description="Generate images from a trained minigan run.")
    p.add_argument("run_dir", help="a train_mnist.py run folder")
    p.add_argument("-n", type=int, default=64, help="number of images (default: 64)")
    p.add_argument("--out", required=True, help="output file: .npy (uint8 N x 28 x 28) or .png")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    args = p.parse_args(argv)
    out = Path(args.out)
    if out.suffix not in (".npy", ".png"):
        p.error(f"--out {out}: use a .npy or a .png file name")
    if args.n < 1:
        p.error("-n must be at least 1")
    try:
        backend.use(args.device)
        G, cfg = load_generator(args.run_dir)
    except (backend.DeviceError, checkpoint.CheckpointError) as e:
        print(f"minigan.sample: error: {e}", file=sys.stderr)
        return 2
    pixels = generate(G, args.n, cfg["latent_dim"], args.seed, cfg["dtype"])
    if out.suffix == ".npy":
        np.save(out, pixels)
    else:
        pictures.save_grid(out, pixels)
    print(f"wrote {args.n} images to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
